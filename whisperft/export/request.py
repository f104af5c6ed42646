"""What ``whisperft export`` takes. Light to import: the command line reads its defaults from here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from whisperft.checks import language_problems
from whisperft.errors import UsageError
from whisperft.export.targets import check_names


@dataclass(frozen=True)
class ExportRequest:
    """Everything ``whisperft export`` takes. These defaults are the only copy: the CLI reads them.

    ``model``: a spec, run or folder; ``out``: the folder to write; ``to``: a key of ``targets.TARGETS``;
    ``quantization``: None for the target's default; ``verify_audio``: clips for the parity check (None:
    synthesized sentences in ``lang``); ``lang``: the parity check's language (None: the model's own, else
    English); ``verify``: False skips the parity check.
    """

    model: str
    out: Path
    to: str = "ct2"
    quantization: str | None = None
    verify_audio: tuple[Path, ...] | None = None
    lang: str | None = None
    verify: bool = True

    def problems(self) -> list[str]:
        """Every usage error in the request, each naming its option."""
        out = []
        try:
            check_names(self.to, self.quantization)
        except UsageError as exc:
            out.append(str(exc))
        missing = [str(p) for p in (self.verify_audio or ()) if self.verify and not Path(p).is_file()]
        if missing:
            out.append(f"--verify-audio: no such file: {', '.join(missing)}")
        out += language_problems(self.lang, auto=False)
        return out
