"""The runner: run directory layout, failures recorded per job, timeout, resume without duplicates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from ehrbench.config import resolve_config
from ehrbench.errors import ConfigError
from ehrbench.matrix import EHRMatrix
from ehrbench.plugins import load_registry
from ehrbench.execution.plan import plan_run
from ehrbench.execution.runner import Runner
from ehrbench.rundir.directory import RunDirectory
from ehrbench.rundir.records import current_records

TINY = {"patients": 200, "codes": 40}
FAST_METRICS = ["dimension_wise_probability", "pairwise_correlation_difference"]
FAST_METRIC_ROWS = 4  # DWP; PCD with its informational .constant_codes and .constant_share


def run(tmp_path: Path, plugins=(), resume=False, **overrides) -> Path:
    values = {"dataset_options": TINY, "metrics": FAST_METRICS, "repeats": 2, "profile": "smoke", **overrides}
    registry = load_registry(list(plugins))
    config = resolve_config(None, values)
    out = tmp_path / "run"
    Runner(plan_run(config, registry), registry, out, resume=resume).run()
    return out


def records(out: Path) -> list[dict]:
    return RunDirectory(out).records()


def test_run_directory_layout_and_records(tmp_path):
    out = run(tmp_path, generators=["independent-marginals", "train-resample"])
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["split"] == {"seed": 0, "test_fraction": 0.3, "n_train": 140, "n_test": 60}
    assert manifest["dataset"]["simulated"] is True and len(manifest["dataset"]["fingerprint"]) == 16
    assert manifest["device"]["device"] == "cpu" and manifest["finished_at"]
    assert "numpy" in manifest["environment"]["versions"]
    recs = records(out)
    jobs = [r for r in recs if r["type"] == "job"]
    assert sorted((r["generator"], r["repeat"]) for r in jobs) == [
        ("independent-marginals", 0), ("independent-marginals", 1), ("train-resample", 0), ("train-resample", 1)]
    cost = [r for r in recs if r["type"] == "cost"]
    assert all(r["fit_seconds"] >= 0 and r["peak_rss_mb"] > 0 and r["device"] == "cpu" for r in cost)
    # train-resample draws real patient rows: they must never be written into the run directory.
    assert not (out / "samples" / "train-resample").exists()
    sample = EHRMatrix.load(out / "samples" / "independent-marginals" / "repeat-1.npz")
    assert sample.X.shape == (60, 40) and sample.ids is None


def test_results_are_reproducible_for_a_seed(tmp_path):
    def values(out):
        return sorted((r["generator"], r["repeat"], r["metric"], r["value"]) for r in records(out) if r["type"] == "metric")

    first = values(run(tmp_path / "a", generators=["independent-marginals"]))
    second = values(run(tmp_path / "b", generators=["independent-marginals"]))
    third = values(run(tmp_path / "c", generators=["independent-marginals"], seed=1))
    assert first == second
    assert first != third


@pytest.mark.parametrize(
    "generator, reason",
    [
        ("nan-output", "row 1, column 2: value nan is not a finite number"),
        ("negative-output", "is negative"),
        ("fractional-output", "is not an integer"),
        ("wrong-shape", "expected (60, 40)"),
        ("list-output", "returned list; expected a numpy.ndarray"),
    ],
)
def test_invalid_samples_fail_the_job_with_a_reason(tmp_path, plugin_file, generator, reason):
    out = run(tmp_path, plugins=[plugin_file("faulty")], generators=[generator, "independent-marginals"], repeats=1)
    jobs = {r["generator"]: r for r in records(out) if r["type"] == "job"}
    assert jobs[generator]["status"] == "failed" and reason in jobs[generator]["reason"]
    assert jobs["independent-marginals"]["status"] == "ok"


def test_timeout_fails_the_job_and_the_run_goes_on(tmp_path, plugin_file):
    out = run(tmp_path, plugins=[plugin_file("faulty")], generators=["sleepy", "train-resample"], repeats=1, timeout=0.3)
    jobs = {r["generator"]: r for r in records(out) if r["type"] == "job"}
    assert jobs["sleepy"]["status"] == "failed" and "timed out after 0.3 s" in jobs["sleepy"]["reason"]
    assert jobs["train-resample"]["status"] == "ok"


def test_metric_failure_is_recorded_beside_the_others(tmp_path, plugin_file):
    out = run(tmp_path, plugins=[plugin_file("extra_metric")], generators=["train-resample"], repeats=1,
              metrics=["exploding", "empty_record_share"])
    recs = records(out)
    [failure] = [r for r in recs if r["type"] == "metric_failure"]
    assert failure["metric"] == "exploding" and "always fails" in failure["reason"]
    assert [r["metric"] for r in recs if r["type"] == "metric"] == ["empty_record_share"]


def test_existing_run_directory_needs_resume(tmp_path):
    run(tmp_path, generators=["train-resample"], repeats=1)
    with pytest.raises(ConfigError, match="--resume"):
        run(tmp_path, generators=["train-resample"], repeats=1)


def test_failed_job_then_resume_finishes_only_missing_jobs(tmp_path, plugin_file, monkeypatch):
    monkeypatch.setenv("FLAKY_COUNTER", str(tmp_path / "count"))
    monkeypatch.setenv("FLAKY_FAIL_ON", "2")
    out = run(tmp_path, plugins=[plugin_file("faulty")], generators=["flaky"], repeats=3)
    status = {r["repeat"]: r["status"] for r in records(out) if r["type"] == "job"}
    assert status == {0: "ok", 1: "failed", 2: "ok"}
    # A resume finishes missing jobs only: the failed job is finished (recorded), so nothing reruns.
    before = records(out)
    run(tmp_path, plugins=[plugin_file("faulty")], generators=["flaky"], repeats=3, resume=True)
    assert records(out) == before


def _cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ehrbench.cli", *args], capture_output=True, text=True, env=env, timeout=300)


def test_killed_process_resumes_with_every_job_exactly_once(tmp_path, plugin_file):
    out = tmp_path / "run"
    args = ["run", "--plugin", str(plugin_file("faulty")), "--generators", "killer,independent-marginals",
            "--metrics", ",".join(FAST_METRICS), "--repeats", "3", "--profile", "smoke",
            "--dataset-option", "patients=200", "--dataset-option", "codes=40", "--out", str(out)]
    env = {**os.environ, "KILLER_COUNTER": str(tmp_path / "count"), "KILLER_KILL_ON": "2"}
    killed = _cli(args, env)
    assert killed.returncode == -9  # SIGKILL in the middle of the second repeat
    done = {(r["generator"], r["repeat"]) for r in records(out) if r["type"] == "job"}
    assert done == {("killer", 0), ("independent-marginals", 0)}

    resumed = _cli([*args, "--resume"], env)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming: 2 of 6 jobs already finished" in resumed.stderr
    recs = records(out)
    jobs = Counter((r["generator"], r["repeat"]) for r in recs if r["type"] == "job")
    assert jobs == Counter({(g, k): 1 for g in ("killer", "independent-marginals") for k in range(3)})
    rows = Counter((r["generator"], r["repeat"], r["metric"]) for r in current_records(recs) if r["type"] == "metric")
    assert set(rows.values()) == {1} and len(rows) == 6 * FAST_METRIC_ROWS
    board = (out / "leaderboard.csv").read_text()
    assert "killer" in board and "independent-marginals" in board


def test_resume_after_sampling_scores_saved_samples_without_refitting(tmp_path, plugin_file):
    out = run(tmp_path, generators=["independent-marginals"], repeats=1)
    recs = records(out)
    # Simulate a kill after the samples and cost record were written but before scoring finished.
    kept = [r for r in recs if r["type"] == "cost"]
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept) + '{"torn": ')
    run(tmp_path, generators=["independent-marginals"], repeats=1, resume=True)
    after = records(out)
    assert [r for r in after if r["type"] == "cost"] == kept  # no second fit
    assert {r["attempt"] for r in after} == {kept[0]["attempt"]}
    assert sum(r["type"] == "job" for r in after) == 1


def test_resume_rejects_a_changed_dataset(tmp_path):
    run(tmp_path, generators=["train-resample"], repeats=1)
    registry = load_registry()
    stored = json.loads((tmp_path / "run" / "run.json").read_text())["config"]
    stored["dataset_options"] = {"patients": 201, "codes": 40}
    with pytest.raises(Exception, match="dataset changed"):
        Runner(plan_run(resolve_config(None, stored), registry), registry, tmp_path / "run", resume=True).run()


def test_samples_count_option(tmp_path):
    out = run(tmp_path, generators=["independent-marginals"], repeats=1, samples=17)
    assert EHRMatrix.load(out / "samples" / "independent-marginals" / "repeat-0.npz").n_patients == 17
    assert np.isfinite([r["value"] for r in records(out) if r["type"] == "metric"]).all()


def test_run_writes_the_whole_directory_without_help(tmp_path):
    registry = load_registry()
    config = resolve_config(None, {"dataset_options": TINY, "metrics": FAST_METRICS, "repeats": 1, "profile": "smoke",
                                   "generators": ["independent-marginals"]})
    finished = Runner(plan_run(config, registry), registry, tmp_path / "run").run()
    out = finished.directory.path
    for name in ("run.json", "results.jsonl", "leaderboard.csv", "leaderboard.md", "reference.npz", "report.html"):
        assert (out / name).is_file(), name
    assert finished.report == out / "report.html"
    assert finished.leaderboard.to_csv() == (out / "leaderboard.csv").read_text()
    quiet = Runner(plan_run(config.__class__(**{**config.to_dict(), "report": False}), registry), registry,
                   tmp_path / "quiet").run()
    assert quiet.report is None and not (tmp_path / "quiet" / "report.html").exists()
    assert (tmp_path / "quiet" / "leaderboard.csv").is_file() and (tmp_path / "quiet" / "reference.npz").is_file()


def test_the_plan_resolves_the_default_dataset_and_leaves_the_config_alone(tmp_path, plugin_file, monkeypatch):
    registry = load_registry()
    config = resolve_config(None, {"dataset_options": TINY, "repeats": 1, "profile": "smoke",
                                   "generators": ["train-resample"], "metrics": ["dimension_wise_probability"]})
    plan = plan_run(config, registry)
    assert config.dataset is None and plan.config is config
    assert plan.dataset == registry.defaults("datasets")[0]
    monkeypatch.chdir(tmp_path)
    runner = Runner(plan, registry)
    assert runner.directory.path.parent == Path("runs") and runner.directory.name.startswith(f"{plan.dataset}-smoke-")
    runner.run()
    stored = json.loads((runner.directory / "run.json").read_text())["config"]
    assert stored["out"] == str(runner.directory) and stored["dataset"] is None
    with pytest.raises(ConfigError, match="all claim to be the default dataset"):
        plan_run(config, load_registry([plugin_file("published_dataset")]))


def test_run_json_lists_the_versions_of_what_the_run_uses(tmp_path):
    source = tmp_path / "needs_pytest.py"
    source.write_text(
        "import numpy as np\n"
        "from ehrbench import Generator, hookimpl\n"
        "class Zeros(Generator):\n"
        "    name = 'zeros'\n"
        "    requires = ('pytest',)\n"
        "    def fit(self, X, ctx): self.d = X.shape[1]\n"
        "    def sample(self, n, ctx): return np.zeros((n, self.d), np.float32)\n"
        "@hookimpl\n"
        "def ehrbench_generators():\n"
        "    return [Zeros]\n"
    )

    def versions(generators, plugins=()):
        out = run(tmp_path / "-".join(generators), plugins=plugins, generators=generators, repeats=1)
        return json.loads((out / "run.json").read_text())["environment"]["versions"]

    calibration = versions(["independent-marginals"])
    assert {"python", "ehrbench", "numpy", "pluggy"} <= set(calibration)
    assert "pytest" not in calibration and "sdv" not in calibration  # installed here, but not used
    assert "pytest" in versions(["zeros"], plugins=[source])
