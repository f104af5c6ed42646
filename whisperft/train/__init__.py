"""The train stage: setup -> fit -> save, with exact resume (see ARCHITECTURE.md)."""

from whisperft.train.loop import TrainResult, train

__all__ = ["TrainResult", "train"]
