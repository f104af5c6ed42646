"""The prepare stage: a speech source -> a feature store (see ARCHITECTURE.md)."""

from whisperft.prepare.filters import RateBounds
from whisperft.prepare.run import PrepareResult, prepare

__all__ = ["PrepareResult", "RateBounds", "prepare"]
