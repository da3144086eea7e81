"""Executors run jobs and hand their outcomes back to the runner, which records them.

The runner is the single writer of a run directory: an executor reports each job's outcome
through :class:`~ehrbench.execution.job.JobEvents` as it arrives. Three executors, named by
``RunConfig.executor`` (:data:`ehrbench.config.EXECUTORS`), and ``auto`` (the default), which
:func:`choose_executor` resolves to one of the first two:

- ``local`` (this module): in this process, one job at a time. Its timeout is a SIGALRM
  deadline (main thread, POSIX): it interrupts Python code between bytecodes, so a generator
  stuck inside one long native call is stopped when that call returns.
- ``process`` (:mod:`ehrbench.execution.executor_process`): each job in its own interpreter, with a
  hard timeout, crash isolation and the job's own peak RSS; ``--jobs N`` runs N at once.
- ``ray`` (:mod:`ehrbench.execution.executor_ray`): each job a Ray task; Ray is imported only there.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ehrbench.api import ProgressReporter, null_progress, usable_cores
from ehrbench.errors import ConfigError
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


# Memory a job of the default run may take (peak RSS measured 0.55–0.85 GiB, with headroom):
# ``auto`` runs no more jobs at once than the machine's memory holds at this size each.
AUTO_MEMORY_PER_JOB = 2 * 1024**3


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def choose_executor(config: RunConfig, device: str, grid_jobs: int, importable: bool = True) -> tuple[str, int]:
    """(executor, jobs at once) for ``executor = auto``: one job per usable core where that pays.

    The process executor runs the jobs on every core at once, but each job's fresh interpreter
    imports torch and scikit-learn (about 3 CPU seconds); that is more than a ``smoke`` job's own
    fit, so smoke runs stay in this process (measured: bench_smoke.py). CUDA jobs share one device
    and run one at a time in this process; classes that a fresh interpreter cannot import (defined
    in ``__main__`` or a function) keep the run in this process too. ``jobs`` the user set wins.
    """
    if config.jobs is not None:
        if config.jobs > 1 and not importable:
            raise ConfigError(f"jobs = {config.jobs} runs jobs in fresh interpreters, which cannot import a class "
                              f"defined in the main script, a notebook or a function; drop jobs or define the "
                              f"class in an importable module.")
        return ("process", config.jobs) if config.jobs > 1 else ("local", 1)
    if not device.startswith("cpu") or not importable or config.profile == "smoke":
        return "local", 1
    jobs = min(usable_cores(), grid_jobs)
    memory = _physical_memory()
    if memory is not None:
        jobs = min(jobs, max(1, memory // AUTO_MEMORY_PER_JOB))
    return ("process", jobs) if jobs > 1 else ("local", 1)


def resolve_auto(config: RunConfig, device: str, grid_jobs: int, importable: bool = True) -> RunConfig:
    """``config`` with ``executor = auto`` replaced by the executor :func:`choose_executor` picks."""
    if config.executor != "auto":
        return config
    name, jobs = choose_executor(config, device, grid_jobs, importable)
    return dataclasses.replace(config, executor=name, jobs=jobs if name == "process" else None)


def make_executor(config: RunConfig, device: str, grid_jobs: int = sys.maxsize, importable: bool = True) -> Executor:
    """The executor a run's configuration names (``auto`` resolved for a grid of ``grid_jobs`` jobs);
    process and ray are imported only when used."""
    config = resolve_auto(config, device, grid_jobs, importable)
    if config.executor == "process":
        from ehrbench.execution.executor_process import ProcessExecutor

        return ProcessExecutor(jobs=config.jobs or 1)
    if config.executor == "ray":
        from ehrbench.execution.executor_ray import RayExecutor

        gpus = config.gpus_per_job if config.gpus_per_job is not None else (1.0 if device.startswith("cuda") else 0.0)
        return RayExecutor(config.ray_address, cpus_per_job=config.cpus_per_job, gpus_per_job=gpus, jobs=config.jobs)
    return LocalExecutor()


