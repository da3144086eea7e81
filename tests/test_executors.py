"""The process executor: the same results as in-process, crash isolation, a hard timeout, resume
after the driver is killed (finished under another executor), and the executor options."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pytest
from _executor_grid import (PLUGINS, ROWS_PER_JOB, jobs, leaderboard_without_cost, local_reference, metric_values, records,
                            run_grid)

from ehrbench.config import resolve_config
from ehrbench.errors import ConfigError
from ehrbench.execution.executor_process import ProcessExecutor
from ehrbench.matrix import EHRMatrix


def test_process_executor_gives_the_local_results(tmp_path):
    local = local_reference()
    out = run_grid(tmp_path / "run", executor=ProcessExecutor())
    assert metric_values(out) == metric_values(local) and len(metric_values(out)) == 3 * ROWS_PER_JOB
    assert leaderboard_without_cost(out) == leaderboard_without_cost(local)
    for generator in ("independent-marginals", "torch-autoencoder"):
        path = f"samples/{generator}/repeat-0.npz"
        np.testing.assert_array_equal(EHRMatrix.load(out / path).X, EHRMatrix.load(local / path).X)
    assert not (out / "samples" / "train-resample").exists()  # real rows are not sent back, nor saved
    cost = [r for r in records(out) if r["type"] == "cost"]
    assert {r["executor"] for r in cost} == {"process"}
    assert all(r["status"] == "ok" and r["peak_rss_mb"] > 0 for r in cost)
    training = [r for r in records(out) if r["type"] == "training"]
    assert [len(r["curves"]["loss"]) for r in training] == [30]


def test_a_crashed_job_is_recorded_with_its_reason_and_the_run_goes_on(tmp_path, monkeypatch):
    monkeypatch.setenv("KILLER_COUNTER", str(tmp_path / "count"))
    monkeypatch.setenv("KILLER_KILL_ON", "1")
    out = run_grid(tmp_path / "run", ["exits", "killer"], executor=ProcessExecutor(), plugins=[PLUGINS / "faulty.py"])
    done = jobs(out)
    assert done[("exits", 0)]["reason"] == "fit: the job's process exited with status 3"
    assert done[("killer", 0)]["reason"].startswith("fit: the job's process was killed by SIGKILL (the kernel's "
                                                    "out-of-memory killer")
    failed_cost = [r for r in records(out) if r["type"] == "cost" and r["status"] == "failed"]
    assert len(failed_cost) == 2 and all(r["peak_rss_mb"] > 10 for r in failed_cost)  # the dead job's own peak


def test_a_job_that_dies_while_scoring_keeps_its_sample_and_is_closed_as_failed(tmp_path):
    out = run_grid(tmp_path / "run", ["independent-marginals"], executor=ProcessExecutor(),
                   metrics=["dimension_wise_probability", "exits_while_scoring"])
    [cost] = [r for r in records(out) if r["type"] == "cost"]
    assert cost["status"] == "ok" and cost["samples_saved"] and (out / "samples/independent-marginals/repeat-0.npz").exists()
    assert jobs(out)[("independent-marginals", 0)]["reason"] == "scoring: the job's process exited with status 4"
    assert metric_values(out) == {}


def test_the_process_timeout_kills_a_job_that_ignores_the_soft_one(tmp_path):
    start = time.monotonic()
    out = run_grid(tmp_path / "run", ["stubborn"], executor=ProcessExecutor(), timeout=1)
    assert time.monotonic() - start < 25  # the job sleeps 60 s with SIGALRM blocked
    assert jobs(out)[("stubborn", 0)]["reason"] == "timed out after 1 s (--timeout); the job's process was killed"


def _cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ehrbench.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_killed_driver_resumes_under_another_executor_with_every_job_once(tmp_path):
    out = tmp_path / "run"
    args = ["run", "--plugin", str(PLUGINS / "executor_jobs.py"), "--generators", "independent-marginals,kills-driver",
            "--metrics", "dimension_wise_probability", "--repeats", "1", "--profile", "smoke",
            "--dataset-option", "patients=200", "--dataset-option", "codes=40", "--out", str(out)]
    env = {**os.environ, "KILLS_DRIVER_COUNTER": str(tmp_path / "count"), "KILLS_DRIVER_ON": "1"}
    killed = _cli([*args, "--executor", "process"], env)
    assert killed.returncode == -9  # the second job SIGKILLs the driver
    assert set(jobs(out)) == {("independent-marginals", 0)}

    resumed = _cli([*args, "--resume", "--executor", "local"], env)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming: 1 of 2 jobs already finished" in resumed.stderr
    closed = Counter((r["generator"], r["repeat"]) for r in records(out) if r["type"] == "job")
    assert closed == Counter({("independent-marginals", 0): 1, ("kills-driver", 0): 1})
    assert len(metric_values(out)) == 2
    executors = {r["generator"]: r["executor"] for r in records(out) if r["type"] == "cost"}
    assert executors == {"independent-marginals": "process", "kills-driver": "local"}


@pytest.mark.parametrize("flags, message", [
    (["--executor", "threads"], "'threads' is not one of 'auto', 'local', 'process', 'ray'"),
    (["--cpus-per-job", "0"], "cpus_per_job must be positive, got 0.0"),
    (["--gpus-per-job", "-1"], "gpus_per_job must be 0 or more, got -1.0"),
])
def test_bad_executor_options_are_one_paragraph_and_exit_2(cli, tmp_path, flags, message):
    result = cli("run", "--generators", "train-resample", "--out", tmp_path / "run", *flags)
    assert result.code == 2 and message in result.err and "Traceback" not in result.err


def test_executor_keys_in_a_config_file_are_validated_by_name(tmp_path):
    config = tmp_path / "bench.toml"
    config.write_text('executor = "cluster"\n')
    with pytest.raises(ConfigError, match=r"bench.toml.*executor.*'cluster' is not one of"):
        resolve_config(config, {})


def test_resume_may_change_the_executor_but_not_the_results_it_defines(tmp_path):
    stored = resolve_config(None, {"executor": "process", "repeats": 2}).to_dict()
    resumed = resolve_config(None, {"executor": "ray", "cpus_per_job": 2, "ray_address": "auto"}, stored)
    assert (resumed.executor, resumed.cpus_per_job, resumed.ray_address) == ("ray", 2.0, "auto")
    with pytest.raises(ConfigError, match="repeats"):
        resolve_config(None, {"executor": "local", "repeats": 3}, stored)
