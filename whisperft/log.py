"""whisperft's one logger and where its lines go: the CLI's rich handler on stderr, or plain lines in a worker
whose stderr another process forwards (a sweep's Ray worker); the other libraries' chatter turned down."""

from __future__ import annotations

import logging
import os
import warnings

logger = logging.getLogger("whisperft")

PLAIN_FORMAT = "%(levelname)s %(message)s"  # a worker's lines, forwarded by Ray prefixed with the trial's pid


def setup_logging(debug: bool, plain: bool = False) -> None:
    """whisperft's log lines on stderr, at DEBUG with ``debug`` else INFO: through rich, or ``plain`` lines.
    Without ``debug``, warnings and accelerate's chatter are off (transformers': ``models.quiet_transformers``)."""
    if plain:
        handler: logging.Handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(PLAIN_FORMAT))
    else:
        from rich.console import Console  # deferred, like every UI library here: start-up time
        from rich.logging import RichHandler

        handler = RichHandler(
            console=Console(stderr=True), show_time=False, show_path=False, markup=False, rich_tracebacks=debug
        )
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    logger.propagate = False
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not debug:
        warnings.filterwarnings("ignore")
        logging.getLogger("accelerate").setLevel(logging.ERROR)
        # huggingface_hub's "Retrying in Ns" lines: its level is set from this variable when it is imported
        os.environ.setdefault("HF_HUB_VERBOSITY", "error")
