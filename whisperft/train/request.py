"""What ``whisperft plan`` takes. Light to import: the command line reads its defaults from here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

GPUS = 8  # the sharded rows' GPU count: one node of the usual cloud GPU servers


@dataclass(frozen=True)
class PlanRequest:
    """Everything ``whisperft plan`` takes. These defaults are the only copy: the CLI reads them.

    ``config``: a YAML config or a shipped config's name; ``overrides``: dotted ``key=value`` as for train;
    ``gpu_memory``: the GPU's memory as a size (``16GB``; None: this machine's GPU, else 16 GB); ``gpus``:
    the GPUs that shard the training state in the sharded rows (ZeRO-2, ZeRO-3, FSDP).
    """

    config: Path
    overrides: tuple[str, ...] = ()
    gpu_memory: str | None = None
    gpus: int = GPUS

    def problems(self) -> list[str]:
        """Every usage error in the request, each naming its option."""
        out = []
        if self.gpus < 1:
            out.append(f"--gpus takes a number of 1 or more, got {self.gpus}")
        if self.gpu_memory is not None:
            from whisperft.config import parse_size  # deferred: the config schema imports the model registry

            size = parse_size(self.gpu_memory)
            if size is None or size < 1024**3:  # "24" alone is 24 bytes: a forgotten unit
                out.append(f"--gpu-memory: expected a size like 16GB or 80G, got {self.gpu_memory!r}")
        return out
