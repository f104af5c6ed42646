"""What ``whisperft eval`` takes. Light to import (no numpy, no torch): the command line reads its
defaults from here when it starts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from whisperft.checks import language_problems
from whisperft.text import EVAL_BATCH_SIZE

METRICS = "metrics.json"


@dataclass(frozen=True)
class EvalRequest:
    """Everything ``whisperft eval`` takes. These defaults are the only copy: the CLI reads them.

    ``model``: a spec, run, folder or CTranslate2 folder (None: the newest finished run); ``data``: a feature store
    (a folder or an fsspec URL) or any source prepare accepts; ``split``: None for test, else validation; ``lang``:
    None for the store's (else the model's own); ``num_beams``: None for the engine's default, the beam width
    ``transcribe`` decodes it with (so the WER measured is the WER transcribed); ``max_new_tokens``: a cap on tokens
    per utterance (None: the run's ``eval.max_new_tokens`` when the model is a run's); ``out``: metrics.json to
    write, or a folder to write it in (None: nothing written), with predictions.jsonl (and report.html with
    ``report``) beside it; ``bound``: bound each utterance by its duration and stop repeats (``text.token_limit``,
    ``text.runaway_stop``).
    """

    model: str | None
    data: str
    split: str | None = None
    lang: str | None = None
    batch_size: int = EVAL_BATCH_SIZE
    num_beams: int | None = None
    max_samples: int | None = None
    max_new_tokens: int | None = None
    out: Path | None = Path(METRICS)
    trust_pickle: bool = False
    report: bool = False
    bound: bool = True

    def problems(self) -> list[str]:
        """Every usage error in the request, each naming its option."""
        out = []
        for name in ("batch_size", "num_beams", "max_samples", "max_new_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                out.append(f"--{name.replace('_', '-')} takes a number of 1 or more, got {value}")
        if self.report and self.out is None:
            out.append("--report writes report.html beside metrics.json: give --out")
        out += language_problems(self.lang, auto=False)
        return out

    @property
    def metrics_path(self) -> Path | None:
        """The metrics.json to write: ``out``, or ``out/metrics.json`` when ``out`` is a folder."""
        if self.out is None:
            return None
        return self.out / METRICS if self.out.is_dir() else self.out
