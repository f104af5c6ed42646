"""What ``whisperft serve`` takes, and what one request to the page may cost. Light to import (no gradio):
the command line reads its defaults from here when it starts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from whisperft.checks import language_problems
from whisperft.text import MAX_CLIP_SECONDS
from whisperft.transcribe.request import TranscribeRequest

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass
class Limits:
    """What one request may cost the server."""

    max_upload_mb: int = 100
    max_seconds: float = 600.0  # audio to transcribe
    max_clip_seconds: float = MAX_CLIP_SECONDS  # a dataset clip: Whisper trains on windows of at most 30 s


@dataclass(frozen=True)
class ServeRequest:
    """Everything ``whisperft serve`` takes. These defaults are the only copy: the CLI reads them.

    ``model``: a spec or CTranslate2 folder (None: the newest finished run); ``compare``: a second model, side by
    side; ``host``/``port``: where to listen (anything but a local address opens the app to the network); ``lang``:
    the language the page starts with (None: the first model's own, else auto); ``dataset_dir``: where the Record
    tab adds clips; ``max_upload_mb``/``max_seconds``: ``Limits``; ``compute_type``: CTranslate2's; ``review``: a
    ``whisperft label`` folder for the Review tab.
    """

    model: str | None
    compare: str | None = None
    host: str = LOCAL_HOSTS[0]
    port: int = 7860  # Gradio's own default
    lang: str | None = None
    dataset_dir: Path = Path("recordings")
    max_upload_mb: int = Limits.max_upload_mb
    max_seconds: float = Limits.max_seconds
    compute_type: str = TranscribeRequest.compute_type
    trust_pickle: bool = False
    review: Path | None = None
    quiet: bool = True

    def problems(self) -> list[str]:
        """Every usage error in the request, each naming its option."""
        out = []
        if not 1 <= self.port <= 65535:
            out.append(f"--port must be in [1, 65535], got {self.port}")
        if self.max_upload_mb < 1 or self.max_seconds < 1:
            out.append("--max-upload-mb and --max-seconds take a number of 1 or more")
        out += language_problems(self.lang)
        return out

    @property
    def public(self) -> bool:
        """True when the app listens beyond this machine."""
        return self.host not in LOCAL_HOSTS

    @property
    def limits(self) -> Limits:
        return Limits(max_upload_mb=self.max_upload_mb, max_seconds=self.max_seconds)
