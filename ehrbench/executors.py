"""Executors run a job's generation step (fit + sample) and return its outcome.

The local executor runs in this process. Its timeout is a SIGALRM deadline (main thread,
POSIX): it interrupts Python code between bytecodes, so a generator stuck inside one long
native call is stopped when that call returns.
"""

from __future__ import annotations

import signal
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ehrbench import model_cache
from ehrbench.api import Generator, ProgressReporter, RunContext, null_progress
from ehrbench.collapse import sample_warnings
from ehrbench.cost import measure
from ehrbench.errors import InputError
from ehrbench.matrix import check_values


class JobTimeout(Exception):
    """The job ran past its ``--timeout``."""


@dataclass
class GenerationTask:
    """What a job needs to fit one generator and draw its synthetic sample."""

    generator_cls: type[Generator]
    options: dict[str, Any]
    profile: str
    repeat: int
    seed: int
    device: str
    representation: str
    n_samples: int
    timeout: float | None = None
    scratch_dir: Path | None = None
    model_dir: Path | None = None  # the run cache: load from here when complete, else save here after fit


@dataclass
class GenerationOutcome:
    status: str  # "ok" or "failed"
    reason: str | None = None
    samples: np.ndarray | None = None
    cost: dict[str, Any] = field(default_factory=dict)
    training_log: dict[str, list[float]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Raise :class:`JobTimeout` in the main thread after ``seconds`` (no-op elsewhere)."""
    usable = seconds is not None and threading.current_thread() is threading.main_thread()
    if not usable or not hasattr(signal, "setitimer"):
        yield
        return

    def _expire(signum: int, frame: Any) -> None:
        raise JobTimeout(f"timed out after {seconds:g} s (--timeout)")

    previous = signal.signal(signal.SIGALRM, _expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def sample_problem(samples: Any, n: int, d: int, representation: str) -> str | None:
    """Why a generator's output breaks the contract (DESIGN.md §3), or None when it is valid."""
    if not isinstance(samples, np.ndarray):
        return f"sample() returned {type(samples).__name__}; expected a numpy.ndarray"
    if samples.shape != (n, d):
        return f"sample() returned shape {samples.shape}; expected ({n}, {d})"
    try:
        check_values(samples, None, "sample()", binary=representation == "binary")
    except InputError as exc:
        return str(exc)
    return None


def _failure(exc: BaseException) -> str:
    if isinstance(exc, JobTimeout):
        return str(exc)
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


class LocalExecutor:
    """Runs jobs in this process, one at a time."""

    name = "local"

    def generate(
        self, task: GenerationTask, X_train: np.ndarray, progress: ProgressReporter = null_progress
    ) -> GenerationOutcome:
        ctx = RunContext(
            seed=task.seed,
            device=task.device,
            representation=task.representation,  # type: ignore[arg-type]
            profile=task.profile,
            scratch_dir=task.scratch_dir,
            progress=progress,
        )
        cost: dict[str, Any] = {"device": task.device, "n_samples": task.n_samples}
        stage = "configure"
        try:
            with deadline(task.timeout):
                generator = task.generator_cls.configure(task.profile, task.options)
                cache = task.model_dir if generator.can_save() else None
                if cache is not None and model_cache.is_complete(cache):
                    stage = "load"
                    progress("loading the saved model")
                    with measure(task.device) as fit:
                        generator.load(cache, ctx)
                    cost["model_loaded"] = True
                else:
                    stage = "fit"
                    progress("fitting")
                    with measure(task.device) as fit:
                        generator.fit(X_train, ctx)
                    if cache is not None:
                        stage = "save"
                        model_cache.save(generator, cache)
                stage = "sample"
                progress("sampling")
                with measure(task.device) as draw:
                    samples = generator.sample(task.n_samples, ctx)
        except Exception as exc:  # a generator's failure is recorded, never fatal to the run
            return GenerationOutcome("failed", f"{stage}: {_failure(exc)}", cost=cost)
        cost.update(
            fit_seconds=fit.seconds,
            sample_seconds=draw.seconds,
            records_per_second=task.n_samples / draw.seconds if draw.seconds > 0 else None,
            peak_rss_mb=max(fit.peak_rss_mb, draw.peak_rss_mb),
            peak_gpu_mb=_max_or_none(fit.peak_gpu_mb, draw.peak_gpu_mb),
            parameters=generator.parameter_count(),
        )
        log = _training_log(generator)
        problem = sample_problem(samples, task.n_samples, X_train.shape[1], task.representation)
        if problem:
            return GenerationOutcome("failed", f"invalid sample: {problem}", cost=cost, training_log=log)
        return GenerationOutcome(
            "ok", samples=samples.astype(np.float32, copy=False), cost=cost, training_log=log,
            warnings=sample_warnings(samples, X_train),
        )


def _training_log(generator: Generator) -> dict[str, list[float]]:
    """The generator's curves as plain floats; a broken ``training_log`` must not fail the job."""
    try:
        log = generator.training_log() or {}
        return {str(k): [float(v) for v in values] for k, values in log.items()}
    except Exception:
        return {}


def _max_or_none(*values: float | None) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None
