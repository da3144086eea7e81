"""The Ray executor on a local 2-CPU runtime (one per module: Ray starts slowly)."""

from __future__ import annotations

import numpy as np
import pytest
from _extras import needs_extra
from _executor_grid import (GRID, PLUGINS, ROWS_PER_JOB, jobs, leaderboard_without_cost, local_reference, metric_values,
                            records, run_grid)

from ehrbench.matrix import EHRMatrix
from ehrbench.execution.runner import SilentObserver

pytestmark = [pytest.mark.ray, needs_extra("ray")]
ray = pytest.importorskip("ray", reason="needs the 'ray' extra (pip install 'ehrbench[ray]')")


@pytest.fixture(scope="module")
def local_ray():
    from ehrbench.execution.executor_ray import connect

    assert connect(num_cpus=2), "a Ray runtime was already running"
    yield
    ray.shutdown()


class CountingObserver(SilentObserver):
    def __init__(self) -> None:
        self.running: set = set()
        self.most_running = 0
        self.finished: list[tuple[str, str]] = []

    def job_started(self, job) -> None:
        self.running.add(job)
        self.most_running = max(self.most_running, len(self.running))

    def job_finished(self, job, status, reason, traceback=None) -> None:
        self.running.discard(job)
        self.finished.append((job.generator, status))


def test_ray_gives_the_local_results_packs_jobs_and_records_a_crash(tmp_path, local_ray):
    from ehrbench.execution.executor_ray import RayExecutor

    observer = CountingObserver()
    out = run_grid(tmp_path / "run", [*GRID, "exits"], executor=RayExecutor(cpus_per_job=1), observer=observer)
    local = local_reference()
    assert metric_values(out) == metric_values(local) and len(metric_values(out)) == 3 * ROWS_PER_JOB
    assert leaderboard_without_cost(out) == leaderboard_without_cost(local)
    path = "samples/torch-autoencoder/repeat-0.npz"
    np.testing.assert_array_equal(EHRMatrix.load(out / path).X, EHRMatrix.load(local / path).X)
    assert not (out / "samples" / "train-resample").exists()
    assert jobs(out)[("exits", 0)]["reason"].startswith("the Ray worker running the job died")
    assert {r["executor"] for r in records(out) if r["type"] == "cost"} == {"ray"}
    assert observer.most_running == 2  # two 1-CPU jobs at a time on 2 CPUs
    assert sorted(observer.finished) == sorted([(g, "ok") for g in GRID] + [("exits", "failed")])


@pytest.mark.parametrize("device, given, expected", [("cuda", None, 1.0), ("cpu", None, 0.0), ("cuda", 0.5, 0.5)])
def test_gpus_per_job_defaults_to_one_on_cuda(device, given, expected):
    from ehrbench.config import resolve_config
    from ehrbench.execution.executors import make_executor

    executor = make_executor(resolve_config(None, {"executor": "ray", "gpus_per_job": given}), device)
    assert (executor.name, executor.gpus_per_job, executor.cpus_per_job, executor.address) == ("ray", expected, 1.0, None)


def test_a_job_asking_for_more_than_the_cluster_has_is_a_user_error(cli, tmp_path, local_ray):
    result = cli("run", "--executor", "ray", "--gpus-per-job", "1", "--generators", "independent-marginals",
                 "--plugin", PLUGINS / "executor_jobs.py", "--profile", "smoke", "--repeats", "1",
                 "--dataset-option", "patients=50", "--dataset-option", "codes=10", "--out", tmp_path / "run")
    assert result.code == 2 and "Traceback" not in result.err
    assert "each job asks Ray for 1 CPU and 1 GPU, but the cluster has 2 CPUs and 0 GPUs" in result.err
