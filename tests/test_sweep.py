"""``whisperft sweep`` on Ray Tune (#24): a local Ray of 2 CPUs, the tiny model, ASHA, resume after SIGTERM."""

from __future__ import annotations

import csv
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import cli_command, invoke, train_config

SWEPT = "train.learning_rate=1e-4,1e-3,3e-3,3e-2"


def _rows(folder: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((folder / "sweep.csv").read_text().splitlines()))


@pytest.mark.slow
def test_four_trials_two_at_a_time_asha_stops_some_and_a_sigterm_resumes(
    tmp_path: Path, tiny_store: Path, tiny_model: Path
) -> None:
    cfg = train_config(tmp_path / "s.yaml", tiny_model, tiny_store, tmp_path / "run", max_steps=4, eval_steps=2,
                       save_steps=1, save_total_limit=2)  # fmt: skip
    args = [*cli_command(), "sweep", str(cfg), SWEPT, "eval.num_beams=1", "--concurrent", "2"]
    folder = tmp_path / "run-sweep"

    # SIGTERM to the driver once a trial has saved a checkpoint: Ray Tune saves its state, the sweep exits 1
    driver = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not list(folder.glob("*/checkpoints/step-*")) and time.monotonic() < deadline and driver.poll() is None:
        time.sleep(0.2)
    driver.send_signal(signal.SIGTERM)
    out, err = driver.communicate(timeout=300)
    assert driver.returncode == 1, out + err[-3000:]
    assert "sweep interrupted" in err and "run the same command again" in err
    interrupted = [r for r in _rows(folder) if r["status"] == "interrupted"]
    assert interrupted and (folder / "ray").is_dir()

    # the same command continues: the interrupted trials resume from their own checkpoints
    r = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "resuming from" in r.stderr
    rows = _rows(folder)
    assert sorted(row["train.learning_rate"] for row in rows) == ["1e-3", "1e-4", "3e-2", "3e-3"]  # as given
    done = [row for row in rows if row["status"] == "done"]
    stopped = [row for row in rows if row["status"].startswith("stopped by ASHA at step 2")]
    assert done and stopped and len(done) + len(stopped) == 4, rows
    for row in done:
        assert (Path(row["run"]) / "final" / "model.safetensors").is_file() and row["steps"] == "4"
        assert float(row["dev_wer"]) >= 0
    for row in stopped:  # stopped at the first rung: trained to step 2, not to the end, its best model kept
        assert not (Path(row["run"]) / "final").exists() and row["dev_wer"] != ""
        assert (Path(row["run"]) / "best" / "model.safetensors").is_file()
    assert (folder / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    assert list((folder / "ray").glob("*/progress.csv"))  # Ray's own results, for its tools

    # the same folder with other settings is refused before Ray starts: Ray would resume the old ones
    r = invoke(*args[len(cli_command()) :], "--no-asha")
    assert r.exit_code == 2 and "holds another sweep (asha differ)" in r.output
    cfg.write_text(cfg.read_text().replace("max_steps: 4", "max_steps: 6"))  # an edited config, same arguments
    r = invoke(*args[len(cli_command()) :])
    assert r.exit_code == 2 and "holds another sweep (config_sha256 differ)" in r.output


def test_a_bad_search_space_is_exit_2_before_ray_starts(tmp_path: Path, tiny_store: Path, tiny_model: Path) -> None:
    cfg = train_config(tmp_path / "s.yaml", tiny_model, tiny_store, tmp_path / "run", eval_steps=2)
    for args, message in [
        (["train.learnin_rate=1e-3,3e-3"], "train.learnin_rate: unknown key"),
        (["train.learning_rate=loguniform(0,1e-4)", "--search", "random"], "loguniform needs 0 < low < high"),
        (["train.learning_rate=loguniform(1e-6,1e-4)"], "a grid takes values"),
        (["train.batch_size=uniform(2,8)", "--search", "optuna"], "train.batch_size"),
        (["train.learning_rate=1e-3,3e-3", "--search", "bayes"], "--search 'bayes'"),
        (["train.learning_rate=1e-3,3e-3", "--trials", "0"], "--trials and --concurrent take a number of 1 or more"),
        (["train.max_steps=10,20"], "ASHA compares trials at the same steps: sweep train.max_steps with --no-asha"),
        (["train.learning_rate=1e-3,3e-3", "--address", "ray://head:10001"], "Ray Client runs Tune on the cluster"),
    ]:
        r = invoke("sweep", str(cfg), *args)
        assert r.exit_code == 2, (args, r.output)
        assert message in r.output, (args, r.output)
        assert not (tmp_path / "run-sweep").exists()  # nothing written, no Ray started


def test_random_and_optuna_sample_inside_the_ranges_given(tmp_path: Path) -> None:
    import ray
    from ray import tune

    from whisperft.train.sweep import plan_search
    from whisperft.train.sweep_space import parse_space

    args = ["train.learning_rate=loguniform(1e-6,1e-4)", "train.warmup_steps=randint(0,5)", "train.batch_size=4,8"]
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        for search in ("random", "optuna"):
            domains, search_alg = plan_search(parse_space(args, search), search, seed=0)
            tuner = tune.Tuner(
                lambda c: tune.report({"wer": c["train.learning_rate"]}),
                param_space=domains,
                tune_config=tune.TuneConfig(
                    metric="wer", mode="min", search_alg=search_alg, num_samples=8, reuse_actors=True
                ),
                run_config=tune.RunConfig(storage_path=str(tmp_path), name=search, verbose=0),
            )
            configs = [r.config for r in tuner.fit()]
            rates = sorted(c["train.learning_rate"] for c in configs)
            assert len(set(rates)) == 8 and rates[0] >= 1e-6 and rates[-1] <= 1e-4, (search, rates)
            assert rates[0] < 1e-5 < rates[-1]  # spread over both decades: sampled on a log scale
            assert {c["train.warmup_steps"] for c in configs} <= {0, 1, 2, 3, 4}
            assert {c["train.batch_size"] for c in configs} <= {4, 8}
    finally:
        ray.shutdown()
