"""The one typed schema for a training run. Defaults live here and nowhere else.

A YAML file is read into plain data, dotted ``key=value`` overrides are applied,
and the result is checked field by field. Every problem is collected and reported
at once with its dotted name, as a ConfigError (exit code 2).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from whisperft.data.augment import AugmentSettings
from whisperft.errors import ConfigError, UsageError
from whisperft.io import atomic_write_text
from whisperft.languages import Language, get_language
from whisperft.models.registry import model_spec_problem
from whisperft.text import EVAL_BATCH_SIZE, MAX_CLIP_SECONDS, PYTORCH_BEAMS

CONFIG_DIR = Path(__file__).resolve().parent / "configs"  # shipped with the package; configs/ links here
# LoRA's default layers: every attention projection and both MLP layers of encoder and decoder. Adapting the
# MLP too: QLoRA (Dettmers et al., 2023) found LoRA on every linear layer needed to match full fine-tuning.
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")


@dataclass
class ModelConfig:
    """Which Whisper to start from. In YAML, ``model: small`` is short for ``model: {name: small}``."""

    name: str = "small"  # a size (tiny ... large-v3, turbo), Hub id, folder, run folder or bundled:NAME
    audio_context_s: float | None = None  # encoder window shorter than 30 s, whole seconds (opt-in)
    attn_implementation: str = "sdpa"  # sdpa (PyTorch's fused attention) or eager

    def problems(self) -> list[str]:
        out = []
        problem = model_spec_problem(self.name)
        if problem:
            out.append(f"model.name: {problem}")
        ctx = self.audio_context_s
        if ctx is not None and not (0 < ctx <= 30 and float(ctx).is_integer()):
            # whole seconds: the saved feature extractor's chunk_length (an int in every client) must match it
            out.append(f"model.audio_context_s: must be a whole number of seconds in [1, 30], got {ctx}")
        if self.attn_implementation not in ("sdpa", "eager"):
            out.append(f"model.attn_implementation: must be 'sdpa' or 'eager', got {self.attn_implementation!r}")
        return out


@dataclass
class MixSource:
    """One source of ``data.mix``: a prepared store and its share of the training examples."""

    store: str = ""  # a prepared feature store: a folder or an fsspec URL
    weight: float = 1.0  # its share of each epoch, relative to the other sources' weights
    name: str | None = None  # in the eval metrics (eval_wer_NAME); default: the store folder's name


@dataclass
class DataConfig:
    """Where the prepared feature store is, and how to read it."""

    store: str = "data/sv"  # the feature store from whisperft prepare: a folder or an fsspec URL (hf://, s3://)
    train_split: str = "train"  # the store's split to train on
    eval_split: str | None = "validation"  # null: train without evaluation (final/ is then the last weights)
    max_duration: float = MAX_CLIP_SECONDS  # longest clip, seconds in (0, 30]; prepare --max-duration decides the store
    max_eval_samples: int | None = None  # validate on the first N examples of eval_split; null: all of them
    num_workers: int = 2  # DataLoader worker processes that build batches ahead of the model; 0: in the main process
    pack: bool = False  # several clips per encoder window, within the decoder's 448 label tokens
    timestamp_fraction: float = 0.5  # packed windows whose labels carry timestamp tokens
    augment: AugmentSettings = field(default_factory=AugmentSettings)  # off unless a probability is set
    mix: list[MixSource] = field(default_factory=list)  # several stores with weights (then store is unused)

    def sources(self) -> list[tuple[str, str, float]]:
        """(name, store, weight) of every training source: the mix, or the one store."""
        if not self.mix:
            return [(Path(self.store.rstrip("/")).name or "store", self.store, 1.0)]
        return [(m.name or Path(m.store.rstrip("/")).name, m.store, m.weight) for m in self.mix]

    def problems(self) -> list[str]:
        out = []
        if not (0 < self.max_duration <= MAX_CLIP_SECONDS):
            out.append(f"data.max_duration: must be in (0, {MAX_CLIP_SECONDS:g}] seconds, got {self.max_duration}")
        if self.max_eval_samples is not None and self.max_eval_samples <= 0:
            out.append(f"data.max_eval_samples: must be positive, got {self.max_eval_samples}")
        if self.num_workers < 0:
            out.append(f"data.num_workers: must be >= 0, got {self.num_workers}")
        if not (0 <= self.timestamp_fraction <= 1):
            out.append(f"data.timestamp_fraction: must be in [0, 1], got {self.timestamp_fraction}")
        for i, m in enumerate(self.mix):
            if not m.store.strip():
                out.append(f"data.mix.{i}.store: name a prepared store")
            if not m.weight > 0:
                out.append(f"data.mix.{i}.weight: must be positive, got {m.weight}")
        names = [n for n, _, _ in self.sources()]
        if len(set(names)) != len(names):
            out.append(f"data.mix: two sources are named alike ({', '.join(names)}); give each a name")
        if self.pack and self.augment.speed_prob > 0:
            out.append(
                "data.augment.speed_prob: speed changes clip lengths, and packed windows are planned from the "
                "stored lengths; use pitch, gain and noise with data.pack, or set data.pack: false"
            )
        return out + self.augment.problems()


DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?$")


def parse_duration(text: str | int | float) -> float | None:
    """Seconds in ``3h30m``, ``90m``, ``1.5h``, ``45s`` or ``45``; None when it is not a positive duration."""
    match = DURATION.match(str(text).strip().lower().replace(" ", ""))
    if not match or not any(match.groups()):
        return None
    h, m, s = (float(g) if g else 0.0 for g in match.groups())
    seconds = 3600 * h + 60 * m + s
    return seconds if seconds > 0 else None


SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2, "mib": 1024**2,
              "g": 1024**3, "gb": 1024**3, "gib": 1024**3, "t": 1024**4, "tb": 1024**4, "tib": 1024**4}  # fmt: skip


def parse_size(text: str) -> int | None:
    """Bytes in ``16GB``, ``80G``, ``24 GiB`` or ``512MB`` (powers of 1024, as GPU memory is quoted)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(text))
    if not match or match.group(2).lower() not in SIZE_UNITS:
        return None
    return int(float(match.group(1)) * SIZE_UNITS[match.group(2).lower()]) or None


@dataclass
class LoraSettings:
    """LoRA's shape (``train.method: lora``): rank, scale, dropout and the layers that get adapters."""

    r: int = 32  # the adapters' rank
    alpha: float = 64.0  # the update is scaled by alpha / r
    dropout: float = 0.05  # on each adapted layer's input; 0 saves the memory of that copy
    target_modules: list[str] = field(default_factory=lambda: list(LORA_TARGETS))  # the layers that get adapters

    def problems(self) -> list[str]:
        out = []
        if self.r <= 0:
            out.append(f"train.lora.r: must be positive, got {self.r}")
        if not self.alpha > 0:
            out.append(f"train.lora.alpha: must be positive, got {self.alpha}")
        if not (0 <= self.dropout < 1):
            out.append(f"train.lora.dropout: must be in [0, 1), got {self.dropout}")
        if not self.target_modules:
            out.append("train.lora.target_modules: name at least one layer, e.g. [q_proj, v_proj]")
        return out


@dataclass
class TrainConfig:
    """The optimisation recipe and its bookkeeping."""

    output_dir: str = "runs/whisper"  # the run's folder: checkpoints, best/, final/, logs; the same folder resumes
    max_steps: int = 1000  # optimizer steps to train
    learning_rate: float = 1e-5  # peak learning rate of AdamW, reached after warmup_steps
    warmup_steps: int = 50  # steps of linear warm-up from 0 to learning_rate
    lr_scheduler: Literal["linear", "constant", "cosine"] = "linear"  # the decay after warm-up
    weight_decay: float = 0.0  # AdamW's decoupled weight decay
    batch_size: int | Literal["auto"] = 16  # auto: the largest that fits, accumulation keeps effective_batch_size
    gradient_accumulation_steps: int = 1  # batches whose gradients add up to one optimizer step
    effective_batch_size: int | None = None  # with batch_size auto: batch x accumulation x processes (default 16)
    memory_limit: str | None = None  # with batch_size auto: e.g. 16GB; default: the GPU's memory, or free RAM
    max_grad_norm: float = 1.0  # clip the gradients' norm to this; 0: no clipping
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"  # fp16 needs a CUDA GPU (on a CPU: warning, fp32)
    gradient_checkpointing: bool = False  # recompute activations in the backward pass: slower steps, less memory
    freeze_encoder: bool = False  # train the decoder only (no encoder gradients or optimizer state)
    seed: int = 42  # data order, augmentation, mixing and initialisation
    logging_steps: int = 10  # a train_log.jsonl record every N steps
    eval_steps: int = 200  # validation WER every N steps (it picks best/)
    save_steps: int = 200  # a checkpoint every N steps
    save_total_limit: int = 2  # checkpoints kept (the newest)
    early_stopping_patience: int = 0  # evaluations without improvement before stopping; 0 = off
    max_bad_steps: int = 10  # consecutive non-finite losses before the run stops
    # where the live curves go (wandb needs the wandb package); curves.png is drawn either way
    report_to: Literal["tensorboard", "wandb", "none"] = "tensorboard"
    time_budget: str | None = None  # wall time for this invocation, e.g. 3h30m: stop, save, write final/ in time
    method: Literal["full", "lora"] = "full"  # lora: train low-rank adapters; final/ holds the merged model
    lora: LoraSettings = field(default_factory=LoraSettings)  # used with method: lora
    optimizer: Literal["adamw", "adamw_8bit"] = "adamw"  # adamw_8bit: bitsandbytes, on CUDA only

    def problems(self) -> list[str]:
        out = []
        for key in ("max_steps", "batch_size", "gradient_accumulation_steps", "eval_steps", "save_steps"):
            if getattr(self, key) != "auto" and getattr(self, key) <= 0:
                out.append(f"train.{key}: must be positive, got {getattr(self, key)}")
        for key in ("warmup_steps", "save_total_limit", "early_stopping_patience", "logging_steps"):
            if getattr(self, key) < 0:
                out.append(f"train.{key}: must be >= 0, got {getattr(self, key)}")
        if not (self.learning_rate > 0):
            out.append(f"train.learning_rate: must be positive, got {self.learning_rate}")
        if not self.weight_decay >= 0:
            out.append(f"train.weight_decay: must be >= 0, got {self.weight_decay}")
        if not self.max_grad_norm >= 0:
            out.append(f"train.max_grad_norm: must be >= 0 (0 = no clipping), got {self.max_grad_norm}")
        if self.max_bad_steps <= 0:
            out.append(f"train.max_bad_steps: must be positive, got {self.max_bad_steps}")
        if self.effective_batch_size is not None and self.effective_batch_size <= 0:
            out.append(f"train.effective_batch_size: must be positive, got {self.effective_batch_size}")
        if self.effective_batch_size is not None and self.batch_size != "auto":
            out.append("train.effective_batch_size: only used with train.batch_size: auto")
        if self.memory_limit is not None and parse_size(self.memory_limit) is None:
            out.append(f"train.memory_limit: expected a size like 16GB or 512MB, got {self.memory_limit!r}")
        if self.time_budget is not None and parse_duration(self.time_budget) is None:
            out.append(f"train.time_budget: expected a duration like 3h30m, 90m or 45s, got {self.time_budget!r}")
        if not self.output_dir.strip():
            out.append("train.output_dir: must not be empty")
        return out + self.lora.problems()


@dataclass
class EvalConfig:
    """Decoding settings for evaluation during and after training."""

    batch_size: int = EVAL_BATCH_SIZE  # utterances decoded at once during validation
    num_beams: int = PYTORCH_BEAMS  # beam width of validation decoding; 1 is greedy
    max_new_tokens: int | None = None  # cap on tokens per utterance; null: the bound from its duration
    before_training: bool = True  # validate the starting model at step 0: the model card's "before" row

    def problems(self) -> list[str]:
        out = []
        if self.batch_size <= 0:
            out.append(f"eval.batch_size: must be positive, got {self.batch_size}")
        if self.num_beams <= 0:
            out.append(f"eval.num_beams: must be positive, got {self.num_beams}")
        if self.max_new_tokens is not None and self.max_new_tokens <= 0:
            out.append(f"eval.max_new_tokens: must be positive, got {self.max_new_tokens}")
        return out


def language_token_problems(lang: Language, token: str) -> list[str]:
    """What is wrong with ``language_token`` for ``lang``: auto, new (a language Whisper lacks) or a Whisper code."""
    if token == "auto":
        return []
    if token == "new":
        if lang.whisper:
            return [f"language_token: new adds a token for a language Whisper lacks; {lang.code} has {lang.token}"]
        return []
    try:
        proxy = get_language(token)
    except UsageError as exc:
        return [f"language_token: expected auto, new or a language code; {exc}"]
    if not proxy.whisper:
        return [f"language_token: Whisper has no token for {proxy.name} ({proxy.code}); name one it has, or new"]
    return []


@dataclass
class Config:
    """A whole run: ``whisperft train CONFIG.yaml`` reads one of these."""

    model: ModelConfig = field(default_factory=ModelConfig)
    language: str = "sv"  # the language trained: an ISO 639-1/-3 code, a BCP 47 locale or a name
    # auto: the language's own token, or for one Whisper lacks a proxy found on the training clips;
    # a Whisper code: that language's token (a proxy you name); new: add the language's own token
    language_token: str = "auto"
    task: Literal["transcribe", "translate"] = "transcribe"  # the task token of every label and of generation
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def problems(self) -> list[str]:
        out = self.model.problems() + self.data.problems() + self.train.problems() + self.eval.problems()
        try:
            lang = get_language(self.language)
        except UsageError as exc:
            out.append(f"language: {exc}")
            return out
        out += language_token_problems(lang, self.language_token)
        if self.language_token == "new" and self.train.method == "lora":
            out.append(
                "language_token: new needs train.method full: LoRA trains no embedding, so the new token "
                "would keep its proxy's row; use auto"
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | Path) -> None:
        """Write the resolved config as YAML (atomically)."""
        atomic_write_text(Path(path), yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True))


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " or ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        item = typing.get_args(tp)[0]
        return "a list of " + {str: "strings", int: "integers", float: "numbers"}.get(item, _type_name(item))
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string", type(None): "null"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _coerce(value: Any, tp: Any) -> tuple[bool, Any]:
    """Check ``value`` against a field type; ints are accepted where floats are expected."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return (value in typing.get_args(tp), value)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            ok, v = _coerce(value, arg)
            if ok:
                return True, v
        return False, value
    if tp is type(None):
        return value is None, value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-5" as a string
            try:
                return True, float(value)
            except ValueError:
                return False, value
        return False, value
    if tp is str:
        return isinstance(value, str), value
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            return False, value
        checked = [_coerce(v, item) for v in value]
        return all(ok for ok, _ in checked), [v for _, v in checked]
    return isinstance(value, tp), value


def _build(cls: type, data: Any, prefix: str, problems: list[str]) -> Any:
    if not isinstance(data, dict):
        problems.append(f"{prefix.rstrip('.') or 'config'}: must be a mapping, got {type(data).__name__}")
        return cls()
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            close = [k for k in fields if k.startswith(str(key)[:3])]
            hint = f" (did you mean {', '.join(close)}?)" if close else f" (valid keys: {', '.join(fields)})"
            problems.append(f"{dotted}: unknown key{hint}")
            continue
        tp = hints[key]
        item = typing.get_args(tp)[0] if typing.get_origin(tp) is list else None
        if item is not None and dataclasses.is_dataclass(item):  # a list of sections: data.mix
            if not isinstance(value, list):
                problems.append(f"{dotted}: expected a list, got {value!r}")
                continue
            kwargs[key] = [_build(item, v, f"{dotted}.{i}.", problems) for i, v in enumerate(value)]
            continue
        if dataclasses.is_dataclass(tp):
            if tp is ModelConfig and isinstance(value, str):
                value = {"name": value}
            kwargs[key] = _build(tp, value, f"{dotted}.", problems)
            continue
        ok, coerced = _coerce(value, tp)
        if not ok:
            problems.append(f"{dotted}: expected {_type_name(tp)}, got {value!r}")
            continue
        kwargs[key] = coerced
    return cls(**kwargs)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``train.max_steps=20`` into (["train", "max_steps"], 20)."""
    if "=" not in text:
        raise UsageError(f"override {text!r} must look like key=value, e.g. train.max_steps=20")
    key, _, raw = text.partition("=")
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise UsageError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply dotted overrides to raw config data (before validation)."""
    for text in overrides:
        path, value = parse_override(text)
        if path == ["model"]:
            path = ["model", "name"]
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if part == "model" and isinstance(child, str):
                child = {"name": child}
            if not isinstance(child, dict):
                child = {}
            node[part] = child
            node = child
        node[path[-1]] = value
    return data


def config_from_dict(data: dict[str, Any], source: str | None = None) -> Config:
    """Validate raw data into a Config, raising ConfigError with every problem found."""
    problems: list[str] = []
    cfg = _build(Config, data, "", problems)
    problems.extend(cfg.problems())
    if problems:
        raise ConfigError(problems, source)
    return cfg


def shipped_configs() -> dict[str, Path]:
    """The configs installed with whisperft (``configs/`` in the repository), by name."""
    return {p.stem: p for p in sorted(CONFIG_DIR.glob("*.yaml"))}


def find_config(arg: str | Path) -> Path:
    """A config file as given; else a shipped config named ``small-1000``, ``small-1000.yaml`` or
    ``configs/small-1000.yaml`` (so the README's commands work from any folder after pip install)."""
    path = Path(arg)
    shipped = shipped_configs()
    if path.is_file() or path.stem not in shipped or path.parent.name not in ("", "configs"):
        return path
    return shipped[path.stem]


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a YAML config, apply overrides and validate it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        names = ", ".join(shipped_configs())
        raise UsageError(f"config file not found: {path} (shipped configs: {names}; see whisperft configs)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read config {path}: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise UsageError(f"{path}: invalid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UsageError(f"{path}: the top level must be a mapping of keys, got {type(data).__name__}")
    data = apply_overrides(data, overrides or [])
    return config_from_dict(data, str(path))
