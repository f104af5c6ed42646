"""Training past one GPU's memory (#24): accelerate configs for FSDP and DeepSpeed, and ``plan``'s sharded rows.

FSDP on the CPU cannot be tested here: torch's fully_shard runs on gloo, but Accelerate turns FSDP and
DeepSpeed on only for GPU-type devices (accelerate/state.py), so under ``accelerate launch`` on a CPU the
run would be plain DDP. whisperft refuses that run instead of training unsharded; the sharded runs
themselves need CUDA GPUs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from accelerate.commands.config.config_args import load_config_from_file

from tests.helpers import invoke, no_gpu, train_config
from whisperft.config import find_config
from whisperft.models.registry import released_config
from whisperft.train.loop import eval_indices
from whisperft.train.plan import GB, Plan, estimate, sharded, unit_counts

ACCELERATE = Path(__file__).parents[1] / "configs" / "accelerate"


@pytest.mark.parametrize("name, kind", [("fsdp", "FSDP"), ("deepspeed-zero2", "DEEPSPEED"),
                                        ("deepspeed-zero3", "DEEPSPEED")])  # fmt: skip
def test_each_accelerate_config_loads_in_accelerate_and_names_a_runnable_command(name: str, kind: str) -> None:
    path = ACCELERATE / f"{name}.yaml"
    cfg = load_config_from_file(str(path))
    assert cfg.distributed_type.value == kind and cfg.mixed_precision == "bf16"
    if kind == "FSDP":  # FSDP2, one Whisper layer per unit
        assert cfg.fsdp_config["fsdp_version"] == 2
        layers = cfg.fsdp_config["fsdp_transformer_layer_cls_to_wrap"].split(",")
        import transformers.models.whisper.modeling_whisper as modeling

        assert all(hasattr(modeling, cls) for cls in layers)
    else:
        stage = int(name[-1])
        assert cfg.deepspeed_config["zero_stage"] == stage
        assert "gradient_accumulation_steps" not in cfg.deepspeed_config  # "auto": whisperft's config decides
        assert cfg.deepspeed_config.get("zero3_save_16bit_model", False) == (stage == 3)
    command = path.read_text().splitlines()[0].removeprefix("# ").split()
    assert command[:3] == ["accelerate", "launch", "--config_file"] and Path(command[3]).name == path.name
    assert command[4:7] == ["-m", "whisperft.cli", "train"]
    assert find_config(Path(Path(command[7]).name)).is_file()


@no_gpu
def test_an_fsdp_config_on_the_cpu_is_refused_not_trained_unsharded(
    tmp_path: Path, tiny_store: Path, tiny_model: Path
) -> None:
    cfg = train_config(tmp_path / "s.yaml", tiny_model, tiny_store, tmp_path / "run", max_steps=2)
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(ACCELERATE / "fsdp.yaml"),
              "--num_processes", "2", "-m", "whisperft.cli", "train", str(cfg)]  # fmt: skip
    r = subprocess.run(launch, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    assert "error: the accelerate config asks for FSDP, but Accelerate runs it only on CUDA GPUs" in r.stderr
    assert "MULTI_CPU" in r.stderr and not (tmp_path / "run" / "checkpoints").exists()


def test_sharded_memory_follows_the_zero_papers_accounting() -> None:
    # ZeRO (arXiv:1910.02054), Figure 1: 7.5B parameters on 64 GPUs with mixed-precision Adam (K = 12) take
    # 120 GB replicated, 16.6 GB with gradients and optimizer state sharded (ZeRO-2), 1.9 GB with all (ZeRO-3)
    config = released_config("large-v3")
    assert config is not None
    p = Plan(precision="bf16")
    est = estimate(config, p, 448)
    psi = est.weights // 6  # mixed precision: float32 weights and a half-precision copy
    trainable = est.gradients // 4
    scale = 7.5e9 / psi  # the same formulas at the paper's size
    z2, z3, fsdp = (sharded(config, p, est, s, 64) for s in ("zero2", "zero3", "fsdp"))
    root, layer = unit_counts(config)
    gathered = 2 * (root + 2 * layer)
    assert round(z2.states * scale / 1e9, 1) == 16.6
    assert round((z3.states - 2 * gathered) * scale / 1e9, 1) == 1.9
    assert z2.weights == 2 * psi and z2.gradients == 2 * trainable // 64
    assert z2.optimizer == (4 + 8) * trainable // 64  # fp32 master weights and two moments, sharded
    assert z3.weights == 2 * psi // 64 + gathered and z3.optimizer == z2.optimizer
    assert fsdp.weights == 4 * psi // 64 + gathered and fsdp.optimizer == 8 * trainable // 64
    assert all(e.activations_per_example == est.activations_per_example for e in (z2, z3, fsdp))
    assert sharded(config, p, est, "ddp", 64) is est


def test_large_v3_needs_sharding_on_24_gb_gpus_and_plan_says_which() -> None:
    config = released_config("large-v3")
    assert config is not None
    p = Plan(precision="bf16", checkpointing=True)
    est = estimate(config, p, 448)
    budget = 24 * GB
    assert est.largest_batch(budget) == 0  # replicated: not even one example fits
    for strategy in ("zero2", "zero3", "fsdp"):
        assert sharded(config, p, est, strategy, 4).largest_batch(budget) >= 8, strategy
    assert sharded(config, p, est, "zero3", 8).states < sharded(config, p, est, "zero2", 8).states


def test_plan_prints_the_sharded_rows_for_n_gpus(tmp_path: Path) -> None:
    cfg = tmp_path / "big.yaml"
    data = yaml.safe_load(find_config(Path("large-v3")).read_text())
    cfg.write_text(yaml.safe_dump(data))
    r = invoke("plan", str(cfg), "--gpu-memory", "24GB", "--gpus", "4")
    assert r.exit_code == 0, r.output
    assert "per GPU over 4 GPUs" in r.output
    for name in ("replicated (DDP)", "DeepSpeed ZeRO-2", "DeepSpeed ZeRO-3", "FSDP full shard"):
        assert name in r.output
    assert "configs/accelerate/fsdp.yaml" in r.output
    r = invoke("plan", str(cfg), "--gpu-memory", "24")  # 24 bytes: a forgotten unit
    assert r.exit_code == 2 and "--gpu-memory: expected a size like 16GB" in r.output


def test_eval_rows_are_shared_equally_when_the_model_is_sharded() -> None:
    assert eval_indices(5, 0, 2, equal=False) == [0, 2, 4] and eval_indices(5, 1, 2, equal=False) == [1, 3]
    assert eval_indices(5, 1, 2, equal=True) == [1, 3, 3]  # as many batches as rank 0; the repeat gathers once
    assert eval_indices(1, 1, 2, equal=True) == [0]
    assert eval_indices(0, 1, 2, equal=True) == []
