"""The evaluate stage: WER/CER of a model on a prepared split (see ARCHITECTURE.md)."""

from whisperft.evaluate.run import EvalResult, run_eval

__all__ = ["EvalResult", "run_eval"]
