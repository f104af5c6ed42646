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


@dataclass(frozen=True)
class SweepRequest:
    """Everything ``whisperft sweep`` takes. These defaults are the only copy: the CLI reads them.

    ``config``: a YAML config or a shipped config's name; ``args``: swept keys (``key=v1,v2``, or
    ``key=uniform|loguniform|randint(low,high)``) and fixed overrides for every trial (``key=value``);
    ``search``: grid, random or optuna (TPE); ``trials``: repeats of the grid (None: 1), or the points
    random and optuna sample (None: 8); ``concurrent``: at most this many trials at once (None: as many as
    the resources hold); ``address``: a Ray cluster to join (``auto`` or ``HOST:6379``; None: a local Ray);
    ``asha``: stop trials early on validation WER; ``out``: the sweep's folder (None: ``train.output_dir``
    + ``-sweep``); ``debug``: the trials log as ``--debug`` does.
    """

    config: Path
    args: tuple[str, ...] = ()
    search: str = "grid"
    trials: int | None = None
    concurrent: int | None = None
    address: str | None = None
    asha: bool = True
    out: Path | None = None
    debug: bool = False

    def problems(self) -> list[str]:
        """The usage errors of the request's options (its parameters and config are checked by
        ``sweep_space``, which reads the config)."""
        out = []
        if (self.trials is not None and self.trials < 1) or (self.concurrent is not None and self.concurrent < 1):
            out.append("--trials and --concurrent take a number of 1 or more")
        if self.address and self.address.startswith("ray://"):
            out.append(
                f"--address {self.address}: Ray Client runs Tune on the cluster, away from this folder; run the "
                "sweep on a node of the cluster with --address auto, its folder on the cluster's shared filesystem"
            )
        return out

    @property
    def sample_count(self) -> int:
        """``trials``, else its default for the search."""
        return (1 if self.search == "grid" else 8) if self.trials is None else self.trials
