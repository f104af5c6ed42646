"""How much memory a training step needs, computed from the model's config: ``whisperft plan``, and the
estimate that ``train.batch_size: auto`` starts from (its search on the device is ``train/auto_batch``).

The peak of a step is the weights, their gradients, the optimizer's state and the activations
that the forward pass keeps for the backward pass. Each is counted from the architecture:

- weights: every parameter, float32 (Accelerate keeps float32 master weights under fp16/bf16,
  and autocast adds a half-precision copy of the matrices it multiplies);
- gradients and optimizer state: the trainable parameters only (all of them, a LoRA adapter's,
  or the decoder's with ``freeze_encoder``); AdamW keeps two float32 moments, 8-bit AdamW two bytes;
- activations per example, per layer, the tensors autograd saves (derived below), at the encoder's
  frame count and the longest label; with gradient checkpointing only each layer's input is kept,
  plus one layer recomputed at a time.

It is an estimate: a CUDA step adds the allocator's fragmentation and the CUDA context
(``CUDA_OVERHEAD``), and kernels may keep workspace. On the CPU the test suite holds it against
the measured peak of real steps (``tests/test_levers.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import WhisperConfig, WhisperForConditionalGeneration

from whisperft.config import LORA_TARGETS, find_config, load_config, parse_size
from whisperft.data.store import FeatureStore, Split
from whisperft.errors import ConfigError, UsageError, WhisperftError
from whisperft.models.registry import released_config, resolve_model
from whisperft.models.whisper import POSITIONS_PER_SECOND
from whisperft.train.request import PlanRequest

GB = 1024**3
CUDA_OVERHEAD = 0.5 * GB  # the CUDA context and cuBLAS/cuDNN workspaces
FRAGMENTATION = 1.10  # PyTorch's caching allocator holds some memory it cannot hand out
PROMPT_TOKENS = 4  # <|startoftranscript|><|lang|><|task|><|notimestamps|>


@dataclass
class Plan:
    """One way of training: what it trains, at what precision, with or without checkpointing."""

    method: str = "full"  # full | lora
    precision: str = "no"  # no | fp16 | bf16
    checkpointing: bool = False
    freeze_encoder: bool = False
    optimizer: str = "adamw"  # adamw | adamw_8bit
    lora_r: int = 32
    lora_targets: Sequence[str] = LORA_TARGETS
    lora_dropout: float = 0.0
    attention: str = "sdpa"  # sdpa | eager (eager keeps the attention matrices)


@dataclass
class Estimate:
    weights: int
    gradients: int
    optimizer: int
    activations_per_example: int

    @property
    def states(self) -> int:
        """What does not grow with the batch: weights, gradients and optimizer state."""
        return self.weights + self.gradients + self.optimizer

    def total(self, batch: int, cuda: bool = True) -> int:
        step = self.states + batch * self.activations_per_example
        return int(step * FRAGMENTATION + CUDA_OVERHEAD) if cuda else int(step)

    def largest_batch(self, budget: int, cuda: bool = True, limit: int = 4096) -> int:
        """The largest batch whose estimate fits ``budget`` bytes (0 when not even one example fits)."""
        free = budget / (FRAGMENTATION if cuda else 1) - (CUDA_OVERHEAD / FRAGMENTATION if cuda else 0)
        free -= self.states
        return max(0, min(limit, math.floor(free / self.activations_per_example)))


def _meta_model(config: WhisperConfig) -> Any:
    """The model's structure on the meta device: shapes without memory or weights."""
    with torch.device("meta"):
        return WhisperForConditionalGeneration(config)


_COUNTS: dict[str, tuple[int, int, int, int]] = {}  # config JSON -> counts: plan estimates many rows of one model


def _counts(config: WhisperConfig) -> tuple[int, int, int, int]:
    """(all parameters, the encoder's, the root's, the largest layer's), from the meta-device model built once
    per architecture; tied weights count once."""
    key = config.to_json_string()
    if key not in _COUNTS:
        model = _meta_model(config)
        total = sum(p.numel() for p in model.parameters())
        encoder = sum(p.numel() for p in model.model.encoder.parameters())
        layers = [
            sum(p.numel() for p in layer.parameters())
            for layer in (*model.model.encoder.layers, *model.model.decoder.layers)
        ]
        _COUNTS[key] = total, encoder, total - sum(layers), max(layers)
    return _COUNTS[key]


def parameter_count(config: WhisperConfig) -> tuple[int, int]:
    """(all parameters, the encoder's): tied weights count once."""
    return _counts(config)[:2]


def _linears(config: WhisperConfig, decoder_only: bool) -> list[tuple[str, int, int]]:
    """(name, in, out) of every projection LoRA can adapt."""
    d = config.d_model
    out: list[tuple[str, int, int]] = []
    if not decoder_only:
        for _ in range(config.encoder_layers):
            out += [(n, d, d) for n in ("q_proj", "k_proj", "v_proj", "out_proj")]
            out += [("fc1", d, config.encoder_ffn_dim), ("fc2", config.encoder_ffn_dim, d)]
    for _ in range(config.decoder_layers):
        out += [(n, d, d) for n in ("q_proj", "k_proj", "v_proj", "out_proj")] * 2  # self- and cross-attention
        out += [("fc1", d, config.decoder_ffn_dim), ("fc2", config.decoder_ffn_dim, d)]
    return out


def trainable_count(config: WhisperConfig, plan: Plan, total: int, encoder: int) -> int:
    """Parameters with gradients: a LoRA adapter's, the decoder's with a frozen encoder, or all but the
    encoder's fixed position table."""
    if plan.method == "lora":
        linears = _linears(config, plan.freeze_encoder)
        return sum(plan.lora_r * (i + o) for name, i, o in linears if name in plan.lora_targets)
    positions = int(config.max_source_positions) * int(config.d_model)
    return total - (encoder if plan.freeze_encoder else positions)


def _encoder_layer(s: int, d: int, f: int, heads: int, eager: bool) -> tuple[int, int]:
    """Saved elements of one encoder layer over ``s`` frames: (half-precision-able, float32).

    LayerNorm keeps its float32 input (2); the q/k/v projections share their input, then keep q, k, v
    (4); attention keeps its output (1, plus the score matrices when eager); out_proj its input (1);
    fc1 its input (1); GELU its input and fc2 its input (2 f).
    """
    half = s * (7 * d + 2 * f) + (2 * heads * s * s if eager else 0)
    return half, 2 * s * d


def _decoder_layer(t: int, s: int, d: int, f: int, heads: int, eager: bool) -> tuple[int, int]:
    """Saved elements of one decoder layer: self-attention as in the encoder over ``t`` tokens, and
    cross-attention: its query input, query, output and out_proj input (4 t d), with keys and values
    over the encoder's ``s`` frames (2 s d; the encoder output they read is shared by all layers)."""
    self_half, self_f32 = _encoder_layer(t, d, f, heads, eager)
    cross = 4 * t * d + 2 * s * d + (2 * heads * t * s if eager else 0)
    return self_half + cross, self_f32 + t * d


def _lora_dropout(config: WhisperConfig, plan: Plan, s: int, t: int, element: int) -> tuple[int, int]:
    """Bytes per encoder layer and per decoder layer that LoRA's dropout adds: each adapted projection
    keeps its dropped-out input (for its A matrix) and the dropout mask (a byte per value)."""
    if plan.method != "lora" or plan.lora_dropout <= 0:
        return 0, 0
    d = int(config.d_model)
    inputs = {"q_proj": d, "k_proj": d, "v_proj": d, "out_proj": d, "fc1": d}
    per_value = element + 1
    chosen = set(plan.lora_targets)
    enc = s * (sum(v for k, v in inputs.items() if k in chosen) + (config.encoder_ffn_dim if "fc2" in chosen else 0))
    # decoder: self-attention and the feed-forward over the t tokens; cross-attention's keys and values
    # read the encoder's s frames, its queries and output the t tokens
    dec = t * (sum(v for k, v in inputs.items() if k in chosen) + (config.decoder_ffn_dim if "fc2" in chosen else 0))
    dec += t * d * len(chosen & {"q_proj", "out_proj"}) + s * d * len(chosen & {"k_proj", "v_proj"})
    return (0 if plan.freeze_encoder else enc * per_value), dec * per_value


def estimate(config: WhisperConfig, plan: Plan, label_tokens: int) -> Estimate:
    """Bytes of one training step of ``config`` under ``plan`` (see the module's docstring)."""
    total, encoder = parameter_count(config)
    trainable = trainable_count(config, plan, total, encoder)
    mixed = plan.precision in ("fp16", "bf16")
    weights = 4 * total + (2 * total if mixed else 0)
    gradients = 4 * trainable
    optimizer = (2 if plan.optimizer == "adamw_8bit" else 8) * trainable

    s, t, d = int(config.max_source_positions), int(label_tokens), int(config.d_model)
    eager = plan.attention == "eager"
    half_size = 2 if mixed else 4
    enc = _encoder_layer(s, d, config.encoder_ffn_dim, config.encoder_attention_heads, eager)
    dec = _decoder_layer(t, s, d, config.decoder_ffn_dim, config.decoder_attention_heads, eager)
    enc_lora, dec_lora = _lora_dropout(config, plan, s, t, half_size)
    enc_b, dec_b = enc[0] * half_size + enc[1] * 4 + enc_lora, dec[0] * half_size + dec[1] * 4 + dec_lora
    n_enc, n_dec = int(config.encoder_layers), int(config.decoder_layers)
    train_encoder = not plan.freeze_encoder
    # the convolutional front end (mel input, two convolutions and their GELUs) and the final norm
    front = (config.num_mel_bins * 2 * s + 5 * s * d) * half_size + s * d * 4 if train_encoder else s * d * 4
    # the shared encoder output, embeddings, final norm, the logits and the loss's float32 log-softmax
    head = s * d * half_size + 3 * t * d * 4 + t * config.vocab_size * (half_size + 4)
    if plan.checkpointing:
        kept = (n_enc * s * d if train_encoder else 0) + n_dec * t * d
        per_example = front + head + kept * half_size + max(enc_b if train_encoder else 0, dec_b)
    else:
        per_example = front + head + (n_enc * enc_b if train_encoder else 0) + n_dec * dec_b
    return Estimate(weights, gradients, optimizer, int(per_example))


SHARDINGS = {  # strategy -> what the table calls it, and the accelerate config that runs it
    "ddp": ("replicated (DDP)", ""),
    "zero2": ("DeepSpeed ZeRO-2", "configs/accelerate/deepspeed-zero2.yaml"),
    "zero3": ("DeepSpeed ZeRO-3", "configs/accelerate/deepspeed-zero3.yaml"),
    "fsdp": ("FSDP full shard", "configs/accelerate/fsdp.yaml"),
}
ADAM_STATE_BYTES = {"adamw": 8, "adamw_8bit": 2}  # two moments per trainable parameter


def unit_counts(config: WhisperConfig) -> tuple[int, int]:
    """(the root's parameters, the largest layer's): FSDP and ZeRO-3 gather one layer at a time, while the
    root (convolutions, positions, token embedding tied to the output projection, final norms) stays whole."""
    return _counts(config)[2:]


def sharded(config: WhisperConfig, plan: Plan, est: Estimate, strategy: str, gpus: int) -> Estimate:
    """Per-GPU bytes of ``est`` when ``gpus`` data-parallel processes shard the training state.

    Following the ZeRO paper's accounting (Rajbhandari et al. 2020, arXiv:1910.02054, section 5 and
    Figure 1): with Psi parameters and mixed precision, half-precision weights (2 Psi) and gradients (2 Psi),
    and K Psi of optimizer state (fp32 master weights, 4, plus AdamW's two moments, 8);

    - ZeRO-2 shards gradients and optimizer state: 2 Psi + (2 + K) Psi / N;
    - ZeRO-3 shards the weights too: (2 + 2 + K) Psi / N, plus the layers gathered for compute;
    - FSDP full shard keeps float32 weights and gradients sharded (4 + 4 + 8) Psi / N, and gathers each
      layer in the compute precision for its forward and backward.

    In fp32, weights and gradients take 4 bytes and there are no master weights. ZeRO-3 and FSDP gather the
    root module (``unit_counts``) plus two layers (the one computed and the one prefetched), with their
    gradients. Activations are per process, as without sharding. ``ddp`` returns ``est`` unchanged.
    """
    if strategy == "ddp":
        return est
    total, encoder = parameter_count(config)
    trainable = trainable_count(config, plan, total, encoder)
    mixed = plan.precision in ("fp16", "bf16")
    half = 2 if mixed else 4  # the compute precision's bytes
    moments = ADAM_STATE_BYTES[plan.optimizer] * trainable
    root, layer = unit_counts(config)
    gathered = half * (root + 2 * layer)
    zero_optimizer = ((4 * trainable if mixed else 0) + moments) // gpus  # fp32 master weights and moments
    if strategy == "zero2":
        return Estimate(half * total, half * trainable // gpus, zero_optimizer, est.activations_per_example)
    if strategy == "zero3":
        return Estimate(
            half * total // gpus + gathered,
            half * trainable // gpus + gathered,
            zero_optimizer,
            est.activations_per_example,
        )
    if strategy == "fsdp":
        return Estimate(
            4 * total // gpus + gathered, 4 * trainable // gpus + gathered, moments // gpus, est.activations_per_example
        )
    raise UsageError(f"sharding {strategy!r}: expected one of {', '.join(SHARDINGS)}")


def plans_for(base: Plan) -> list[Plan]:
    """The table's rows: each method at each precision, with and without checkpointing."""
    rows = []
    for method in ("full", "lora"):
        for precision in ("no", "bf16"):
            for ckpt in (False, True):
                rows.append(
                    Plan(
                        method,
                        precision,
                        ckpt,
                        base.freeze_encoder,
                        base.optimizer,
                        base.lora_r,
                        base.lora_targets,
                        base.lora_dropout,
                        base.attention,
                    )
                )
    return rows


def describe(plan: Plan) -> str:
    precision = {"no": "fp32"}.get(plan.precision, plan.precision)
    parts = [plan.method + (f" r={plan.lora_r}" if plan.method == "lora" else ""), precision]
    parts.append("checkpointing" if plan.checkpointing else "no checkpointing")
    return ", ".join(parts)


def plan_from_config(cfg: Any) -> Plan:
    """The Plan that a run's config describes."""
    t = cfg.train
    return Plan(
        t.method,
        t.mixed_precision,
        t.gradient_checkpointing,
        t.freeze_encoder,
        t.optimizer,
        t.lora.r,
        tuple(t.lora.target_modules),
        t.lora.dropout,
        cfg.model.attn_implementation or "sdpa",
    )


@dataclass
class PlanRow:
    plan: Plan
    estimate: Estimate
    at_batch: int  # bytes at the config's batch size
    largest_batch: int
    is_config: bool


def model_config(cfg: Any) -> WhisperConfig:
    """The config of the model a run starts from, with its audio context applied. A released size needs
    no download (its published architecture, ``released_config``); any other model's config.json is read."""
    config = released_config(cfg.model.name)
    try:
        config = config or WhisperConfig.from_pretrained(resolve_model(cfg.model.name))
    except OSError as exc:
        raise WhisperftError(f"cannot read the config of {cfg.model.name}: {str(exc).splitlines()[0]}") from None
    if cfg.model.audio_context_s is not None:
        config.max_source_positions = min(
            int(config.max_source_positions), round(cfg.model.audio_context_s * POSITIONS_PER_SECOND)
        )
    return config


def label_tokens(cfg: Any, config: WhisperConfig, split: Split | None) -> tuple[int, str]:
    """The longest label a batch can hold, and where that figure comes from."""
    limit = int(config.max_target_positions)
    if cfg.data.pack:
        return limit, "packed windows fill up to the decoder's limit"
    if split is None or len(split) == 0:
        return limit, f"no store at {cfg.data.store}: assuming the decoder's limit"
    longest = int(split.n_labels.max()) + PROMPT_TOKENS + 1
    return min(limit, longest), f"the longest label in {split.folder}"


def store_split(cfg: Any) -> Split | None:
    """The training split with the longest label among the run's local stores (plan runs before any fetch)."""
    splits = []
    for _, location, _ in cfg.data.sources():
        folder = Path(str(location))
        if FeatureStore.is_store(folder) and cfg.data.train_split in FeatureStore(folder).splits:
            splits.append(FeatureStore(folder).split(cfg.data.train_split))
    splits = [s for s in splits if len(s)]
    return max(splits, key=lambda s: int(s.n_labels.max())) if splits else None


def plan_rows(cfg: Any, config: WhisperConfig, tokens: int, budget: int, cuda: bool = True) -> list[PlanRow]:
    """The config's own plan first, then each method, precision and checkpointing choice."""
    own = plan_from_config(cfg)
    batch = cfg.train.batch_size if isinstance(cfg.train.batch_size, int) else 1
    rows = []
    for plan in [own, *(p for p in plans_for(own) if p != own)]:
        est = estimate(config, plan, tokens)
        rows.append(PlanRow(plan, est, est.total(batch, cuda), est.largest_batch(budget, cuda), plan == own))
    return rows


@dataclass
class ShardRow:
    strategy: str
    estimate: Estimate  # per GPU
    at_batch: int
    largest_batch: int


def shard_rows(cfg: Any, config: WhisperConfig, own: PlanRow, budget: int, gpus: int) -> list[ShardRow]:
    """The config's plan (``own``, plan_rows' first row) replicated and under each sharding, per GPU for
    ``gpus`` GPUs (CUDA overheads in)."""
    plan, est = own.plan, own.estimate
    batch = cfg.train.batch_size if isinstance(cfg.train.batch_size, int) else 1
    rows = []
    for strategy in SHARDINGS:
        e = sharded(config, plan, est, strategy, gpus)
        rows.append(ShardRow(strategy, e, e.total(batch), e.largest_batch(budget)))
    return rows


DEFAULT_GPU_MEMORY = 16 * 1024**3  # without a GPU or --gpu-memory: a T4, Colab's free GPU (16 GB)


@dataclass
class PlanReport:
    """What ``whisperft plan`` found: the resolved config and model, the label tokens it planned for (and
    why), the GPU memory budget in bytes (and where it came from), a row per plan, and the config's rows
    per GPU when ``gpus`` GPUs shard its state."""

    cfg: Any
    model: WhisperConfig
    tokens: int
    why: str
    budget: int
    where: str
    rows: list[PlanRow]
    shards: list[ShardRow]
    gpus: int


def gpu_budget(text: str | None) -> tuple[int, str]:
    """(bytes, where they come from): ``text`` (a size such as 16GB), else this machine's first GPU, else
    ``DEFAULT_GPU_MEMORY``."""
    if text is not None:
        size = parse_size(text)
        if size is None or size < 1024**3:  # "24" alone is 24 bytes: a forgotten unit
            raise UsageError(f"--gpu-memory: expected a size like 16GB or 80G, got {text!r}")
        return size, "--gpu-memory"
    if torch.cuda.is_available():
        return int(torch.cuda.get_device_properties(0).total_memory), torch.cuda.get_device_name(0)
    return DEFAULT_GPU_MEMORY, "no GPU here: assuming 16 GB, pass --gpu-memory"


def run_plan(request: PlanRequest) -> PlanReport:
    """Plan the request's config: every method, precision and checkpointing against the GPU's memory, then
    the config sharded over ``request.gpus``. Raises ConfigError for a bad request or config."""
    problems = request.problems()
    if problems:
        raise ConfigError(problems)
    cfg = load_config(find_config(request.config), list(request.overrides))
    budget, where = gpu_budget(request.gpu_memory)
    mc = model_config(cfg)
    tokens, why = label_tokens(cfg, mc, store_split(cfg))
    rows = plan_rows(cfg, mc, tokens, budget)
    shards = shard_rows(cfg, mc, rows[0], budget, request.gpus)
    return PlanReport(cfg, mc, tokens, why, budget, where, rows, shards, request.gpus)
