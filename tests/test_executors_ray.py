"""The Ray executor on a local 2-CPU runtime (one per module: Ray starts slowly)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

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


# -- issue 23: nothing listens beyond the loopback interface; the split is read-only; a dead address fails fast
def _listening_sockets() -> dict[str, tuple[str, int]]:
    """Socket inode → (address, port) of every TCP socket in LISTEN state (/proc/net/tcp and tcp6)."""
    import socket

    found = {}
    for family, table in ((socket.AF_INET, "/proc/net/tcp"), (socket.AF_INET6, "/proc/net/tcp6")):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A":  # TCP_LISTEN
                continue
            address, port = fields[1].split(":")
            raw = bytes.fromhex(address)
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))  # /proc writes 32-bit words little-endian
            found[fields[9]] = (socket.inet_ntop(family, raw), int(port, 16))
    return found


def _process_tree(root: int) -> dict[int, str]:
    """pid → command name of ``root`` and every process below it (Ray's GCS, raylet, agents, workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    tree, todo = {}, [root]
    while todo:
        pid = todo.pop()
        try:
            tree[pid] = (Path("/proc") / str(pid) / "comm").read_text().strip()
        except OSError:
            continue
        todo += children.get(pid, [])
    return tree


def _sockets_of(pids) -> dict[str, int]:
    inodes = {}
    for pid in pids:
        try:
            for fd in (Path("/proc") / str(pid) / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes[target[8:-1]] = pid
        except OSError:
            continue
    return inodes


class ListenerSnapshot(SilentObserver):
    """Lists, when each job finishes (its worker is up), the listening sockets of this process tree."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, int, str]] = set()

    def job_finished(self, job, status, reason) -> None:
        listening = _listening_sockets()
        tree = _process_tree(os.getpid())
        for inode, pid in _sockets_of(tree).items():
            if inode in listening:
                address, port = listening[inode]
                self.seen.add((address, port, tree[pid]))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/net/tcp")
def test_the_local_runtime_listens_on_the_loopback_interface_only(tmp_path, local_ray):
    from ehrbench.execution.executor_ray import RayExecutor

    observer = ListenerSnapshot()
    run_grid(tmp_path / "run", ["independent-marginals", "torch-autoencoder"], executor=RayExecutor(), observer=observer)
    names = {name for _, _, name in observer.seen}
    assert {"gcs_server", "raylet"} <= names and any(n.startswith("ray::") for n in names), observer.seen
    print("listening sockets during the run:", *sorted(observer.seen), sep="\n  ")
    beyond = {s for s in observer.seen if s[0] not in ("127.0.0.1", "::1", "::ffff:127.0.0.1")}
    assert not beyond, f"listening beyond the loopback interface: {sorted(beyond)}"


def test_under_ray_a_generator_that_writes_its_training_array_fails_alone(tmp_path, local_ray):
    from ehrbench.execution.executor_ray import RayExecutor

    out = run_grid(tmp_path / "run", ["writes-train", "independent-marginals"], executor=RayExecutor(),
                   plugins=[PLUGINS / "hostile.py"])
    assert "assignment destination is read-only" in jobs(out)[("writes-train", 0)]["reason"]
    key = ("independent-marginals", 0, "dimension_wise_probability")
    assert metric_values(out)[key] == metric_values(local_reference())[key]


def test_a_ray_address_where_nothing_answers_fails_in_seconds(tmp_path):
    import socket
    import subprocess
    import time

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "ehrbench.cli", "run", "--executor", "ray", "--ray-address", f"127.0.0.1:{port}",
         "--generators", "independent-marginals", "--profile", "smoke", "--repeats", "1",
         "--dataset-option", "patients=50", "--dataset-option", "codes=10", "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=120)
    assert time.monotonic() - start < 60
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"--ray-address 127.0.0.1:{port}: nothing answers there" in result.stderr
