"""Models: resolving a spec, Whisper's rules, the bundled weights, CTranslate2 conversion, decoding."""


def quiet_transformers() -> None:
    """transformers' info logs and progress bars off. Only code that uses transformers calls this:
    importing it costs a second that the CTranslate2 path does not pay."""
    from transformers.utils import logging as hf_logging  # deferred: slow to import

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
