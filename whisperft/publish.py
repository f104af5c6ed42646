"""``whisperft push`` and ``push-store``: a model folder or a feature store onto the Hugging Face Hub.

Both list exactly what they would upload first (``--dry-run`` stops there, offline). The token
comes from huggingface_hub's standard places (``HF_TOKEN``, ``huggingface-cli login``) and is
never printed. A store goes up with its completion marker last, so a reader never fetches half.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import huggingface_hub
import yaml
from huggingface_hub.errors import HfHubHTTPError

from whisperft.data.store import FeatureStore
from whisperft.errors import UsageError, WhisperftError
from whisperft.hub import require_hub
from whisperft.io import COMPLETE_MARKER, is_complete
from whisperft.languages import get_language

# A model folder's files that belong on the Hub: weights, configs, tokenizer, card and curves.
MODEL_PATTERNS = (
    "*.safetensors", "*.safetensors.index.json", "config.json", "generation_config.json",
    "preprocessor_config.json", "processor_config.json", "tokenizer.json", "tokenizer_config.json",
    "special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt", "normalizer.json",
    "README.md", "curves.png", "metrics.json", "config.yaml",
)  # fmt: skip
REPO_ID_PARTS = 2
PUSH_HINT = "check the network or HF_ENDPOINT; --dry-run lists the files offline"


@dataclass
class Upload:
    repo_id: str
    repo_type: str  # "model" or "dataset"
    folder: Path
    files: list[tuple[str, int]]  # (path in the repo, bytes), in upload order

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self.files)


def check_repo_id(repo_id: str) -> None:
    parts = repo_id.split("/")
    if len(parts) != REPO_ID_PARTS or not all(parts) or any(" " in p for p in parts):
        raise UsageError(f"--repo-id must be user/name or org/name, got {repo_id!r}")


def model_upload(folder: Path, repo_id: str) -> Upload:
    """What ``push`` sends for a finished model folder (a run's ``final/``, or any HF Whisper folder)."""
    check_repo_id(repo_id)
    if not (folder / "config.json").is_file():
        raise UsageError(f"{folder} is not a model folder (no config.json)")
    if (folder.parent / "checkpoints").is_dir() and not is_complete(folder):
        raise UsageError(f"{folder} is not finished ({COMPLETE_MARKER} missing); let training finish or resume it")
    files = sorted({p for pattern in MODEL_PATTERNS for p in folder.glob(pattern) if p.is_file()})
    if not any(p.suffix == ".safetensors" for p in files):
        raise UsageError(f"{folder} has no *.safetensors weights; only safetensors models are pushed")
    return Upload(repo_id, "model", folder, [(p.name, p.stat().st_size) for p in files])


def store_upload(folder: Path, repo_id: str) -> Upload:
    """What ``push-store`` sends: every file of a complete store, split markers and the store marker last."""
    check_repo_id(repo_id)
    if not FeatureStore.is_store(folder):
        raise UsageError(f"{folder} is not a feature store (no store.json); make one with whisperft prepare")
    if not is_complete(folder):
        raise UsageError(f"{folder} is not complete ({COMPLETE_MARKER} missing); run prepare again")
    files = [p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")]
    files.sort(key=lambda p: (p.name == COMPLETE_MARKER, p == folder / COMPLETE_MARKER, str(p)))
    return Upload(repo_id, "dataset", folder, [(str(p.relative_to(folder)), p.stat().st_size) for p in files])


def dataset_card(store: FeatureStore, repo_id: str) -> str:
    """README.md for a pushed store: Hub metadata, what it holds, and how to use it."""
    report = (
        json.loads((store.folder / "prepare_report.json").read_text())
        if (store.folder / "prepare_report.json").is_file()
        else {}
    )
    lang = get_language(store.meta.get("language") or "en")
    rows = [f"| {name} | {info.get('kept', '?')} | {info.get('hours', 0):.2f} |" for name, info in report.items()] or [
        "| – | – | – |"
    ]
    meta = {"language": [lang.code], "task_categories": ["automatic-speech-recognition"], "tags": ["whisperft"]}
    return "\n".join(
        [
            "---",
            yaml.safe_dump(meta, sort_keys=False).rstrip(),
            "---",
            "",
            f"# {repo_id.split('/')[1]}",
            "",
            f"A [whisperft](https://pypi.org/project/whisperft/) feature store: {lang.name.title()} speech as "
            f"{store.n_mels}-bin log-mel frames (float16) with tokenized transcripts for `{store.meta.get('model')}`, "
            f"from {store.meta.get('source', 'unknown data')}.",
            "",
            "| split | clips | hours |",
            "|---|---|---|",
            *rows,
            "",
            "Train on it directly; whisperft fetches it once into its cache:",
            "",
            "```yaml",
            f"data:\n  store: hf://datasets/{repo_id}",
            "```",
            "",
            f"or `whisperft eval --model MODEL --data hf://datasets/{repo_id}`.",
            "",
        ]
    )


def upload(plan: Upload, private: bool, card: str | None = None) -> str:
    """Create the repo (if needed) and upload; returns the repo's URL. The Hub is the only thing touched.
    Without a network, a one-line error in seconds (``whisperft.hub``), before the client's retries."""
    require_hub(f"push to {plan.repo_id}", PUSH_HINT)
    api = huggingface_hub.HfApi()
    try:
        url = api.create_repo(plan.repo_id, repo_type=plan.repo_type, private=private, exist_ok=True)
        if card is not None:
            api.upload_file(
                path_or_fileobj=card.encode(),
                path_in_repo="README.md",
                repo_id=plan.repo_id,
                repo_type=plan.repo_type,
                commit_message="whisperft: dataset card",
            )
        body = [f for f, _ in plan.files if Path(f).name != COMPLETE_MARKER]
        markers = [f for f, _ in plan.files if Path(f).name == COMPLETE_MARKER]
        for batch, message in ((body, "whisperft push"), (markers, "whisperft push: complete")):
            if batch:
                api.upload_folder(
                    folder_path=str(plan.folder),
                    repo_id=plan.repo_id,
                    repo_type=plan.repo_type,
                    allow_patterns=batch,
                    commit_message=message,
                )
    except HfHubHTTPError as exc:
        raise WhisperftError(f"the Hub refused the upload to {plan.repo_id}: {_first_line(exc)}") from None
    except Exception as exc:  # the network boundary: connection, auth and offline-mode errors of any client
        hint = " (log in with huggingface-cli login or set HF_TOKEN)" if "token" in str(exc).lower() else ""
        raise WhisperftError(
            f"cannot upload to {plan.repo_id}: {type(exc).__name__}: {_first_line(exc)}{hint}"
        ) from None
    return str(url)


def human_size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
