"""Sharing: push a model, push a store, and read a store back from an fsspec URL (no network here)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import ClassVar

import pytest

from tests.helpers import run_cli
from whisperft.data.remote import cached_path, local_store
from whisperft.data.store import FeatureStore
from whisperft.errors import UsageError, WhisperftError
from whisperft.io import COMPLETE_MARKER
from whisperft.publish import dataset_card, model_upload, store_upload, upload

SECRET = "hf_whisperftTestTokenNeverPrinted"


def test_push_dry_run_lists_the_model_files_with_sizes(tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", SECRET)
    r = run_cli("push", str(tiny_model), "--repo-id", "someone/whisper-tiny-sv", "--private", "--dry-run")
    assert r.returncode == 0, r.stderr
    plan = model_upload(tiny_model, "someone/whisper-tiny-sv")
    names = [f for f, _ in plan.files]
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json"} <= set(names)
    assert r.stdout.splitlines()[0].startswith(f"would push {len(names)} files")
    assert "model repo someone/whisper-tiny-sv (private)" in r.stdout.splitlines()[0]
    listed = [line.split()[0] for line in r.stdout.splitlines()[1:]]
    assert listed == names
    assert SECRET not in r.stdout + r.stderr


def test_push_refuses_unfinished_runs_and_bad_repo_ids(tiny_model: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_model, run / "final")
    (run / "checkpoints" / "step-10").mkdir(parents=True)
    with pytest.raises(UsageError, match="not finished"):
        model_upload(run / "final", "a/b")
    r = run_cli("push", str(tiny_model), "--repo-id", "no-slash", "--dry-run")
    assert r.returncode == 2 and "--repo-id must be user/name" in r.stderr


def test_a_real_push_without_network_fails_in_one_line(tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", SECRET)
    r = run_cli("push", str(tiny_model), "--repo-id", "someone/x")
    assert r.returncode == 1 and r.stderr.strip().startswith("error: cannot upload to someone/x")
    assert "Traceback" not in r.stderr and SECRET not in r.stdout + r.stderr


class FakeHub:
    """HfApi at the network boundary: records what would go over the wire."""

    calls: ClassVar[list[tuple[str, dict]]] = []

    def create_repo(self, repo_id: str, **kw: object) -> str:
        self.calls.append(("create_repo", {"repo_id": repo_id, **kw}))
        return f"https://huggingface.co/datasets/{repo_id}"

    def upload_file(self, **kw: object) -> None:
        self.calls.append(("upload_file", kw))

    def upload_folder(self, **kw: object) -> None:
        self.calls.append(("upload_folder", kw))


def test_push_store_uploads_the_marker_last_with_a_card(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHub)
    FakeHub.calls = []
    plan = store_upload(store, "someone/sv-features")
    card = dataset_card(FeatureStore(store), "someone/sv-features")
    assert upload(plan, private=True, card=card) == "https://huggingface.co/datasets/someone/sv-features"
    kinds = [c for c, _ in FakeHub.calls]
    assert kinds == ["create_repo", "upload_file", "upload_folder", "upload_folder"]
    assert FakeHub.calls[0][1]["private"] is True and FakeHub.calls[0][1]["repo_type"] == "dataset"
    body, markers = FakeHub.calls[2][1]["allow_patterns"], FakeHub.calls[3][1]["allow_patterns"]
    assert all(Path(f).name != COMPLETE_MARKER for f in body) and "train/frames.f16" in body
    assert markers[-1] == COMPLETE_MARKER and set(markers) == {
        COMPLETE_MARKER,
        *(f"{s}/_COMPLETE" for s in FeatureStore(store).splits),
    }
    assert "language:\n- sv" in card and "hf://datasets/someone/sv-features" in card
    r = run_cli("push-store", str(store), "--repo-id", "someone/sv-features", "--dry-run")
    assert r.returncode == 0 and "would push" in r.stdout and "README.md" in r.stdout


def test_a_store_reads_from_an_fsspec_url(store: Path, tiny_model: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("WHISPERFT_CACHE", str(tmp_path / "cache"))
    url = f"file://{store}"
    local = local_store(url)
    assert local == cached_path(url) and local.is_relative_to(tmp_path / "cache")
    for split in FeatureStore(store).splits:
        a, b = FeatureStore(store).split(split), FeatureStore(local).split(split)
        assert a.texts == b.texts and (a.frames(0) == b.frames(0)).all()
    mtime = (local / "store.json").stat().st_mtime_ns
    assert local_store(url) == local and (local / "store.json").stat().st_mtime_ns == mtime  # fetched once
    r = run_cli("eval", "--model", str(tiny_model), "--data", url, "--split", "validation", "--max-samples", "2",
                "--max-new-tokens", "4", "--out", str(tmp_path / "m.json"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "m.json").read_text())["num_utterances"] == 2


def test_an_incomplete_remote_store_is_refused(store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHISPERFT_CACHE", str(tmp_path / "cache"))
    half = tmp_path / "half"
    shutil.copytree(store, half)
    (half / COMPLETE_MARKER).unlink()
    with pytest.raises(WhisperftError, match="not a complete feature store"):
        local_store(f"file://{half}")
    (half / COMPLETE_MARKER).write_text("{}")
    (half / "train" / COMPLETE_MARKER).unlink()
    with pytest.raises(WhisperftError, match="incomplete"):
        local_store(f"file://{half}")
    assert not cached_path(f"file://{half}").exists()
    assert not [p for p in (tmp_path / "cache" / "stores").iterdir() if p.name.startswith(".tmp-")]


def test_a_relative_file_url_names_its_own_folder(store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """file://store from two working folders is two stores, each fetched from where it is (#18, item 1)."""
    monkeypatch.setenv("WHISPERFT_CACHE", str(tmp_path / "cache"))
    for name in ("a", "b"):
        shutil.copytree(store, tmp_path / name / "store")
    shutil.rmtree(tmp_path / "b" / "store" / "test", ignore_errors=True)
    meta = json.loads((tmp_path / "b" / "store" / "store.json").read_text())
    meta["splits"] = [s for s in meta["splits"] if s != "test"]
    (tmp_path / "b" / "store" / "store.json").write_text(json.dumps(meta))
    got = {}
    for name in ("a", "b"):
        monkeypatch.chdir(tmp_path / name)
        got[name] = local_store("file://store")
        assert local_store(f"file://{tmp_path / name / 'store'}") == got[name]  # the same store, once
    assert got["a"] != got["b"]
    assert set(FeatureStore(got["a"]).splits) != set(FeatureStore(got["b"]).splits)
