"""Ctrl-C and SIGTERM during training: finish the current step, save a checkpoint, then exit.

A second Ctrl-C raises KeyboardInterrupt at once (Python's default handler is back by then).
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType, TracebackType

logger = logging.getLogger("whisperft")

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """While active, SIGINT/SIGTERM set ``requested`` instead of killing the process."""

    def __init__(self, announce: bool = True) -> None:
        self.requested = False
        self.announce = announce  # only the main process logs
        self._previous: dict[int, object] = {}

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if self.announce:
            logger.warning("stopping after this step and saving a checkpoint (Ctrl-C again to abort now)")

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is not threading.main_thread():
            return self  # only the main thread may set handlers; a sweep's trial thread is stopped by Ray
        self._previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
        for sig in SIGNALS:
            signal.signal(sig, self._on_signal)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
