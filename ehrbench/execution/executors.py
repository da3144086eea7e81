"""Executors run jobs and hand their outcomes back to the runner, which records them.

The runner is the single writer of a run directory: an executor reports each job's outcome
through :class:`~ehrbench.execution.job.JobEvents` as it arrives. Three executors, named by
``RunConfig.executor`` (:data:`ehrbench.config.EXECUTORS`):

- ``local`` (this module): in this process, one job at a time. Its timeout is a SIGALRM
  deadline (main thread, POSIX): it interrupts Python code between bytecodes, so a generator
  stuck inside one long native call is stopped when that call returns.
- ``process`` (:mod:`ehrbench.execution.executor_process`): each job in its own interpreter, with a
  hard timeout, crash isolation and the job's own peak RSS; ``--jobs N`` runs N at once.
- ``ray`` (:mod:`ehrbench.execution.executor_ray`): each job a Ray task; Ray is imported only there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

from ehrbench.api import ProgressReporter, null_progress
from ehrbench.execution.job import GenerationOutcome, GenerationTask, JobEvents, JobSpec, execute, generate, reporter
from ehrbench.matrix import Split

if TYPE_CHECKING:
    from ehrbench.config import RunConfig


class Executor(Protocol):
    name: str
    requires: tuple[str, ...]  # modules it imports beyond the core (their versions go into run.json)

    def run(self, specs: list[JobSpec], data: Split, events: JobEvents) -> None:
        """Run every job in ``specs``, reporting each through ``events``."""


class LocalExecutor:
    """Runs jobs in this process, one at a time."""

    name = "local"
    requires: tuple[str, ...] = ()

    def generate(
        self, task: GenerationTask, X_train: np.ndarray, progress: ProgressReporter = null_progress
    ) -> GenerationOutcome:
        return generate(task, X_train, progress)

    def run(self, specs: list[JobSpec], data: Split, events: JobEvents) -> None:
        for spec in specs:
            events.started(spec)
            rows = execute(spec, data.train, data.test, reporter(events, spec),
                           lambda outcome, spec=spec: events.generated(spec, outcome))
            if rows is not None:
                events.scored(spec, rows)


def make_executor(config: RunConfig, device: str) -> Executor:
    """The executor a run's configuration names; process and ray are imported only when used."""
    if config.executor == "process":
        from ehrbench.execution.executor_process import ProcessExecutor

        return ProcessExecutor(jobs=config.jobs or 1)
    if config.executor == "ray":
        from ehrbench.execution.executor_ray import RayExecutor

        gpus = config.gpus_per_job if config.gpus_per_job is not None else (1.0 if device.startswith("cuda") else 0.0)
        return RayExecutor(config.ray_address, cpus_per_job=config.cpus_per_job, gpus_per_job=gpus, jobs=config.jobs)
    return LocalExecutor()


