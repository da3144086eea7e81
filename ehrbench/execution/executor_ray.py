"""The Ray executor: each job a Ray task, packed onto the cluster by its CPU and GPU request.

Ray is imported here only (the ``ray`` extra). The train/test split goes into the object store
once, not per job. Tasks return their generation outcome and metric rows; the driver records
each job as it finishes (``ray.wait``), so only the driver writes the run directory and an
interrupted driver loses no finished job. No more tasks are in flight than the cluster can run
at once, so a job reported as started is running, and results never pile up unrecorded.

Ray is configured deliberately:

- A local runtime (no ``--ray-address``) listens on 127.0.0.1 only (every server it starts) and
  starts without the dashboard. ``--ray-address auto`` (or ``HOST:PORT``) joins a running cluster
  instead; an address where nothing answers fails within seconds.
- Usage statistics are off (``RAY_USAGE_STATS_ENABLED=0``) unless the user set the variable.
- Token authentication follows ``RAY_AUTH_MODE`` when the user set it; otherwise Ray's own
  default applies (a new local runtime gets a token; joining a cluster uses the token found
  in ``RAY_AUTH_TOKEN`` or ``~/.ray/auth_token``).
- Worker output is not forwarded to the terminal (``log_to_driver=False``): it would tear the
  progress display. A failed job's reason comes back to the driver; Ray keeps worker logs in
  its session directory.
- Tasks are never retried: a crash is the job's result, recorded with its reason.
- The timeout is the local executor's SIGALRM deadline, inside the task (tasks run on the
  worker's main thread). ``--executor process`` gives a hard one.
- The model cache (``models/``) is used only by a local runtime, which shares the driver's
  file system; on a cluster, scratch and cache directories are the workers' own.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from ehrbench.errors import ConfigError
from ehrbench.execution.job import GenerationOutcome, JobEvents, JobSpec, execute, file_plugin_modules
from ehrbench.matrix import EHRMatrix, Split
from ehrbench.rundir.records import Status


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray, which is not installed: pip install 'ehrbench[ray]'.") from None
    return ray


# Ray's own switch between a loopback-only node and a cluster node: while it is off, Ray resolves
# 127.0.0.1 to itself instead of to the machine's outward address, and every server it starts (GCS,
# raylet, object manager, workers, agents) binds to 127.0.0.1 (checked by tests/test_executors_ray.py).
_CLUSTER_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
_CONNECT_TIMEOUT_SECONDS = 5.0


@contextmanager
def _loopback_only(ray: Any) -> Iterator[None]:
    """Start a local runtime that listens on the loopback interface only, then restore Ray's setting."""
    from ray._private import ray_constants

    before_env, before_flag = os.environ.get(_CLUSTER_SWITCH), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[_CLUSTER_SWITCH] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before_flag
        if before_env is None:
            os.environ.pop(_CLUSTER_SWITCH, None)
        else:
            os.environ[_CLUSTER_SWITCH] = before_env


def _check_reachable(address: str) -> None:
    """Fail in seconds, not minutes, when nothing answers at ``--ray-address HOST:PORT``."""
    if address == "auto":
        return  # Ray finds a cluster started on this machine, or says at once that there is none
    target = address.split("://", 1)[-1].rsplit("/", 1)[0]
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"--ray-address {address}: expected 'auto' or HOST:PORT (e.g. 10.0.0.5:6379).")
    host = host.strip("[]")
    try:
        socket.create_connection((host, int(port)), timeout=_CONNECT_TIMEOUT_SECONDS).close()
    except OSError as exc:
        raise ConfigError(
            f"--ray-address {address}: nothing answers there ({exc.strerror or exc} within "
            f"{_CONNECT_TIMEOUT_SECONDS:g} s). Start a cluster with `ray start --head`, check the address, "
            f"or leave --ray-address out to start a local Ray runtime."
        ) from None


def connect(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Start a local Ray runtime (``address`` None) or join a cluster; False when Ray was already up."""
    ray = _import_ray()
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING, "namespace": "ehrbench"}
    try:
        if address is None:
            with _loopback_only(ray):
                ray.init(num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1", **options)
        else:
            _check_reachable(address)
            ray.init(address=address, **options)
    except ConnectionError as exc:
        raise ConfigError(
            f"--ray-address {address}: cannot connect to a Ray cluster ({exc}). Start one with "
            f"`ray start --head`, or leave --ray-address out to start a local Ray runtime."
        ) from None
    return True


def _ray_job(spec: JobSpec, data: tuple[EHRMatrix, EHRMatrix]) -> tuple[GenerationOutcome, list[dict[str, Any]] | None]:
    """The task: the job's body, as under every executor; real rows are not sent back."""
    train, test = data
    generated: list[GenerationOutcome] = []
    rows = execute(spec, train, test, lambda *args, **kwargs: None, generated.append)
    outcome = generated[0] if spec.keep_samples else replace(generated[0], samples=None)
    return outcome, rows


def _reason(exc: BaseException) -> str:
    """A failed task's reason, one line."""
    ray = _import_ray()
    if isinstance(exc, ray.exceptions.WorkerCrashedError):
        return ("the Ray worker running the job died (a crash, os._exit or the out-of-memory killer); "
                "its log is in Ray's session directory")
    first = next((line for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {first}"


class RayExecutor:
    """Submits jobs as Ray tasks, as many at a time as the cluster can run."""

    name = "ray"
    requires: tuple[str, ...] = ("ray",)

    def __init__(self, address: str | None = None, cpus_per_job: float = 1.0, gpus_per_job: float = 0.0,
                 jobs: int | None = None) -> None:
        self.address = address
        self.jobs = jobs  # a cap on tasks in flight; None: as many as the cluster holds
        self.cpus_per_job = cpus_per_job
        self.gpus_per_job = gpus_per_job
        ray = _import_ray()
        self._pickle_by_value = ray.cloudpickle.register_pickle_by_value

    def _capacity(self, ray: Any) -> int:
        """How many jobs the cluster can run at once; none is a user error."""
        total = ray.cluster_resources()
        cpus, gpus = total.get("CPU", 0.0), total.get("GPU", 0.0)
        slots = cpus / self.cpus_per_job
        if self.gpus_per_job > 0:
            slots = min(slots, gpus / self.gpus_per_job)
        if slots < 1:
            raise ConfigError(
                f"each job asks Ray for {self.cpus_per_job:g} CPU and {self.gpus_per_job:g} GPU, but the "
                f"cluster has {cpus:g} CPUs and {gpus:g} GPUs in all. Lower --cpus-per-job or --gpus-per-job."
            )
        return int(slots)

    def _prepare(self, spec: JobSpec) -> JobSpec:
        for module in file_plugin_modules(spec):
            self._pickle_by_value(module)  # --plugin files travel with the task, not by path
        if self.address is None:
            return spec
        return replace(spec, task=replace(spec.task, model_dir=None, scratch_dir=None))

    def run(self, specs: list[JobSpec], data: Split, events: JobEvents) -> None:
        if not specs:
            return
        ray = _import_ray()
        started_here = connect(self.address)
        in_flight: dict[Any, JobSpec] = {}
        try:
            remote = ray.remote(_ray_job).options(
                num_cpus=self.cpus_per_job, num_gpus=self.gpus_per_job, max_retries=0, retry_exceptions=False,
            )
            data_ref = ray.put((data.train, data.test))
            queue = [self._prepare(spec) for spec in specs]
            while queue or in_flight:
                capacity = self._capacity(ray) if self.jobs is None else min(self._capacity(ray), self.jobs)
                while queue and len(in_flight) < capacity:
                    spec = queue.pop(0)
                    in_flight[remote.remote(spec, data_ref)] = spec
                    events.started(spec)
                [ready], _ = ray.wait(list(in_flight), num_returns=1)
                spec = in_flight.pop(ready)
                try:
                    outcome, rows = ray.get(ready)
                except ray.exceptions.RayError as exc:
                    cost = {"device": spec.task.device, "n_samples": spec.task.n_samples}
                    events.generated(spec, GenerationOutcome(Status.FAILED, _reason(exc), cost=cost))
                    continue
                events.generated(spec, outcome)
                if rows is not None:
                    events.scored(spec, rows)
        finally:
            for ref in in_flight:
                ray.cancel(ref, force=True)
            if started_here:
                ray.shutdown()
