"""Where a run's numbers go besides train_log.jsonl: TensorBoard or Weights & Biases while it trains
(``train.report_to``), and ``curves.png`` when it ends.

``curves.png`` has three panels against the optimizer step: training loss, learning rate, and
validation WER with the best checkpoint marked (the one ``final/`` is copied from).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from whisperft.config import Config
from whisperft.errors import ConfigError

PANELS = ("training loss", "learning rate", "validation WER")
TRACKER_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb"}


def trackers(cfg: Config) -> list[str]:
    """Accelerate's ``log_with`` for ``train.report_to``; a missing package is a config error, not a crash later."""
    name = cfg.train.report_to
    if name == "none":
        return []
    if importlib.util.find_spec(TRACKER_PACKAGES[name]) is None:
        raise ConfigError(
            [
                f"train.report_to: {name} needs the {TRACKER_PACKAGES[name]} package (pip install "
                f"{TRACKER_PACKAGES[name]}), or set train.report_to: none"
            ]
        )
    return [name]


def start_trackers(accelerator: Any, cfg: Config, out: Path) -> None:
    """TensorBoard event files go to OUTPUT_DIR/tensorboard; a wandb run is named after OUTPUT_DIR."""
    if not cfg.train.report_to or cfg.train.report_to == "none":
        return
    hparams = {k: v if isinstance(v, int | float | str | bool) else str(v) for k, v in _flat(cfg.to_dict()).items()}
    if cfg.train.report_to == "tensorboard":
        accelerator.init_trackers("tensorboard", config=hparams)
    else:
        accelerator.init_trackers("whisperft", config=hparams, init_kwargs={"wandb": {"name": out.name}})


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def plot_curves(history: list[dict[str, Any]], best_step: int | None, path: Path) -> list[str]:
    """Draw ``curves.png`` from the run's history records; returns the panel titles drawn."""
    import matplotlib  # deferred: slow to import, needed once at the end of a run

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: as above

    train = [r for r in history if "loss" in r]
    evals = [r for r in history if r.get("eval_wer") is not None]  # None: no reference words to rate
    fig, axes = plt.subplots(3, 1, figsize=(8, 9), sharex=True)
    series = (
        ([r["step"] for r in train], [r["loss"] for r in train]),
        ([r["step"] for r in train], [r["lr"] for r in train]),
        ([r["step"] for r in evals], [100 * r["eval_wer"] for r in evals]),
    )
    for ax, title, (xs, ys) in zip(axes, PANELS, series, strict=True):
        ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if not xs:
            ax.text(0.5, 0.5, "no records", transform=ax.transAxes, ha="center", va="center")
    axes[1].ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    axes[2].set_ylabel("WER (%)")
    axes[2].set_xlabel("optimizer step")
    best = next((r for r in evals if r["step"] == best_step), None)
    if best is not None:
        axes[2].axvline(best["step"], color="tab:green", linestyle="--", alpha=0.6)
        axes[2].plot(
            [best["step"]],
            [100 * best["eval_wer"]],
            "*",
            color="tab:green",
            markersize=14,
            label=f"best: step {best['step']}, WER {100 * best['eval_wer']:.1f}%",
        )
        axes[2].legend(loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(
        tmp, dpi=100, format="png", metadata={"Title": "whisperft training curves", "Description": ", ".join(PANELS)}
    )
    plt.close(fig)
    tmp.replace(path)
    return list(PANELS)
