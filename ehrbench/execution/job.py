"""A job: one generator's repeat, fitted, sampled and scored. The same body under every executor.

:func:`execute` generates (fit or load, then sample, checked against the contract and for
collapse) and scores the sample with every metric. An executor runs it where it likes and
reports each step through :class:`JobEvents`; the runner alone records them.
"""

from __future__ import annotations

import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import numpy as np

from ehrbench.api import Generator, Metric, ProgressReporter, RunContext, null_progress
from ehrbench.errors import InputError
from ehrbench.execution import failure, model_cache
from ehrbench.execution.collapse import sample_warnings
from ehrbench.execution.cost import measure, weighted_utilization
from ehrbench.execution.scoring import score_rows
from ehrbench.matrix import EHRMatrix, check_values
from ehrbench.plugins import FILE_PLUGIN_PREFIX
from ehrbench.rundir.records import Kind, Status


CONDITIONAL = "conditional"  # the leaderboard category of scores on conditional samples


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
    # --condition: code → (its column, records to draw), asked of a generator that declares `conditional`;
    # another generator is scored by those of its records that contain the code
    conditions: dict[str, tuple[int, int]] = field(default_factory=dict)


@dataclass
class GenerationOutcome:
    status: str  # Status.OK or Status.FAILED
    reason: str | None = None
    samples: np.ndarray | None = None
    cost: dict[str, Any] = field(default_factory=dict)
    training_log: dict[str, list[float]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    traceback: str | None = None  # a failure's full traceback, the plugin's own frame marked
    conditional: dict[str, np.ndarray] = field(default_factory=dict)  # code → records drawn with it (never saved)
    conditional_problems: dict[str, str] = field(default_factory=dict)  # code → why its records break the contract


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


def _failure(exc: BaseException, cls: type) -> str:
    return str(exc) if isinstance(exc, JobTimeout) else failure.describe(exc, cls)


def contained(exc: BaseException) -> bool:
    """Whether a plugin's exception is the job's failure (recorded) rather than the run's end.

    Everything a plugin raises is contained, ``sys.exit()`` and other ``BaseException`` subclasses
    included, except the user's Ctrl-C (KeyboardInterrupt), which stops the run.
    """
    return not isinstance(exc, KeyboardInterrupt)


def read_only(X: np.ndarray) -> np.ndarray:
    """A view of ``X`` that cannot be written: a generator that modifies its training array in
    place fails (that job only) instead of corrupting every later job and metric."""
    view = X.view()
    view.flags.writeable = False
    return view


# torch warns once when it wraps an array it may not write; the array is read-only on purpose.
_READ_ONLY_WARNING = "The given NumPy array is not writable"


def generate(task: GenerationTask, X_train: np.ndarray, progress: ProgressReporter = null_progress) -> GenerationOutcome:
    """Fit (or load the cached model) and sample; every failure becomes a failed outcome."""
    ctx = RunContext(
        seed=task.seed,
        device=task.device,
        representation=task.representation,  # type: ignore[arg-type]
        profile=task.profile,
        scratch_dir=task.scratch_dir,
        progress=progress,
    )
    cost: dict[str, Any] = {"device": task.device, "n_samples": task.n_samples}
    X_train = read_only(X_train)
    stage = "configure"
    try:
        with deadline(task.timeout), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_READ_ONLY_WARNING)
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
                    problem = model_cache.save(generator, cache)
                    if problem:  # the cache is an optimisation: the job goes on, resume fits again
                        cost["model_save_error"] = problem
                        progress(f"warning: the fitted model was not cached ({problem})")
            stage = "sample"
            progress("sampling")
            with measure(task.device) as draw:
                samples = generator.sample(task.n_samples, ctx)
            stage = "privacy_guarantee"
            guarantee = checked_guarantee(generator.privacy_guarantee())
            conditional: dict[str, Any] = {}
            if task.conditions and getattr(generator, "conditional", False):
                stage = "sample_conditional"
                for code, (column, n) in task.conditions.items():
                    progress(f"sampling records with code {code}")
                    conditional[code] = generator.sample_conditional(n, ctx, [column])
    except BaseException as exc:  # a generator's failure (sys.exit included) is recorded, never fatal to the run
        if not contained(exc):
            raise
        return GenerationOutcome(Status.FAILED, f"{stage}: {_failure(exc, task.generator_cls)}", cost=cost,
                                 traceback=failure.format_traceback(exc, task.generator_cls))
    cost.update(
        fit_seconds=fit.seconds,
        sample_seconds=draw.seconds,
        fit_cpu_seconds=fit.cpu_seconds,
        sample_cpu_seconds=draw.cpu_seconds,
        records_per_second=task.n_samples / draw.seconds if draw.seconds > 0 else None,
        peak_rss_mb=max(fit.peak_rss_mb, draw.peak_rss_mb),
        peak_gpu_mb=_max_or_none(fit.peak_gpu_mb, draw.peak_gpu_mb),
        parameters=generator.parameter_count(),
        **guarantee,
    )
    if fit.gpu_seconds is not None and draw.gpu_seconds is not None:  # a CUDA job: per-step GPU figures
        cost.update(
            fit_gpu_seconds=fit.gpu_seconds, sample_gpu_seconds=draw.gpu_seconds,
            gpu_seconds=fit.gpu_seconds + draw.gpu_seconds,
            fit_peak_gpu_mb=fit.peak_gpu_mb, sample_peak_gpu_mb=draw.peak_gpu_mb,
            gpu_utilization=weighted_utilization(fit, draw),
        )
    log = _training_log(generator)
    try:
        problem = sample_problem(samples, task.n_samples, X_train.shape[1], task.representation)
    except BaseException as exc:  # e.g. an ndarray subclass whose methods raise
        if not contained(exc):
            raise
        problem = _failure(exc, task.generator_cls)
    if problem:
        return GenerationOutcome(Status.FAILED, f"invalid sample: {problem}", cost=cost, training_log=log)
    samples = np.asarray(samples, dtype=np.float32)  # the cast check_values validated
    if task.conditions and not conditional:  # no capability: its own records with the code (rejection sampling)
        conditional = {code: samples[samples[:, column] > 0] for code, (column, _) in task.conditions.items()}
        checked, problems = {c: r for c, r in conditional.items() if len(r)}, {
            c: f"none of its {len(samples)} records contains code {c}" for c, r in conditional.items() if not len(r)}
    else:
        checked, problems = _checked_conditional(conditional, task, X_train.shape[1])
    return GenerationOutcome(
        Status.OK, samples=samples, cost=cost, training_log=log, warnings=sample_warnings(samples, X_train),
        conditional=checked, conditional_problems=problems,
    )


def _checked_conditional(conditional: dict[str, Any], task: GenerationTask, d: int
                         ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Conditional samples that keep the contract and contain their code in every record; the others' problems."""
    checked, problems = {}, {}
    for code, records in conditional.items():
        column, n = task.conditions[code]
        problem = sample_problem(records, n, d, task.representation)
        if problem is None:
            lacking = int((np.asarray(records)[:, column] <= 0).sum())
            if lacking:
                problem = f"{lacking} of {n} records drawn with code {code} do not contain it"
        if problem:
            problems[code] = f"sample_conditional(): {problem.removeprefix('sample() ')}"
        else:
            checked[code] = np.asarray(records, dtype=np.float32)
    return checked, problems


def checked_guarantee(guarantee: Any) -> dict[str, float]:
    """``{"epsilon": ε, "delta": δ}`` from a generator's ``privacy_guarantee()``, or {} for None.

    ε must be positive (a guarantee of 0 would read as perfect privacy) and δ in [0, 1).
    """
    if guarantee is None:
        return {}
    try:
        epsilon, delta = float(guarantee["epsilon"]), float(guarantee["delta"])
    except (TypeError, KeyError, ValueError):
        raise ValueError(f"privacy_guarantee() returned {guarantee!r}; expected None or "
                         f"{{'epsilon': number, 'delta': number}}") from None
    if not epsilon > 0 or not 0 <= delta < 1:
        raise ValueError(f"privacy_guarantee() returned epsilon {epsilon!r}, delta {delta!r}; "
                         f"expected epsilon > 0 and 0 ≤ delta < 1")
    return {"epsilon": epsilon, "delta": delta}


def _training_log(generator: Generator) -> dict[str, list[float]]:
    """The generator's curves as plain floats; a broken ``training_log`` must not fail the job."""
    try:
        log = generator.training_log() or {}
        return {str(k): [float(v) for v in values] for k, values in log.items()}
    except BaseException as exc:
        if not contained(exc):
            raise
        return {}


def _max_or_none(*values: float | None) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


@dataclass(frozen=True)
class Job:
    """One cell of the grid: a generator's repeat, with the seed derived for it."""

    generator: str
    repeat: int
    seed: int

    @property
    def label(self) -> str:
        return f"{self.generator} · repeat {self.repeat}"


@dataclass
class JobSpec:
    """One job as picklable data: everything a worker needs to generate and score it.

    ``keep_samples`` is False for generators whose samples are real rows: a worker does not
    send them back, since the runner never writes them (DESIGN.md §4).
    """

    job: Job
    attempt: str
    calibration: bool
    task: GenerationTask
    metrics: dict[str, Metric]
    run_seed: int
    keep_samples: bool = True
    cache_dir: Path | None = None  # the metrics' shared folder (RunContext.cache_dir), set by the executor

    def record(self, kind: str) -> dict[str, Any]:
        """The fields every ``results.jsonl`` record of this job execution carries."""
        return {
            "type": kind,
            "generator": self.job.generator,
            "repeat": self.job.repeat,
            "seed": self.job.seed,
            "attempt": self.attempt,
            "calibration": self.calibration,
        }


class JobEvents(Protocol):
    """What an executor reports; the runner records each event as it arrives.

    Per job: ``started``, any ``progress``, then ``generated``; after a successful generation
    either ``scored`` (the metric rows) or ``lost`` (the job died while being scored).
    """

    def started(self, spec: JobSpec) -> None: ...
    def progress(self, spec: JobSpec, message: str | None, completed: float | None, total: float | None) -> None: ...
    def generated(self, spec: JobSpec, outcome: GenerationOutcome) -> None: ...
    def scored(self, spec: JobSpec, rows: list[dict[str, Any]]) -> None: ...
    def lost(self, spec: JobSpec, reason: str) -> None: ...


def execute(
    spec: JobSpec,
    train: EHRMatrix,
    test: EHRMatrix,
    progress: ProgressReporter,
    on_generated: Callable[[GenerationOutcome], None],
) -> list[dict[str, Any]] | None:
    """A job's body, the same under every executor: generate, report it, then score the sample.

    Returns the metric rows, or None when generation failed.
    """
    outcome = generate(spec.task, train.X, progress)
    conditional, problems = outcome.conditional, outcome.conditional_problems
    on_generated(replace(outcome, conditional={}))  # conditional samples are scored here, never recorded
    if outcome.status != Status.OK:
        return None
    rows = score(spec, train, test, outcome.samples, progress)
    return rows + score_conditional(spec, train, test, conditional, problems, progress)


def conditional_metric(code: str, metric: str) -> str:
    """The name of a metric scored on the records drawn with ``code``: ``conditional[CODE].metric``."""
    return f"{CONDITIONAL}[{code}].{metric}"


def score_conditional(spec: JobSpec, train: EHRMatrix, test: EHRMatrix, samples: dict[str, np.ndarray],
                      problems: dict[str, str], progress: ProgressReporter = null_progress) -> list[dict[str, Any]]:
    """Rows of the run's ``conditional`` metrics for each code's samples, against the real records with it.

    Category ``conditional`` (its own leaderboard table, outside the overall ranking); a code whose
    samples broke the contract gets a ``metric_failure`` row instead. A generator without the
    capability is scored by its unconditional records that contain the code (rejection sampling),
    so the calibration rows are the references (the marginals without correlation, a copy of the data).
    """
    task = spec.task
    metrics = {name: m for name, m in spec.metrics.items() if getattr(m, "conditional", False)}
    rows: list[dict[str, Any]] = []
    for code, reason in problems.items():
        rows.append({**spec.record(Kind.METRIC_FAILURE), "metric": conditional_metric(code, "*"), "reason": reason})
    for code, records in samples.items():
        column, _ = task.conditions[code]
        real_train = train.with_data(train.X[train.X[:, column] > 0])
        real_test = test.with_data(test.X[test.X[:, column] > 0])
        scored = score_rows(metrics, spec.record(Kind.METRIC), spec.run_seed, task.device, task.representation,
                            task.profile, real_train, real_test, train.with_data(records), progress, spec.cache_dir)
        for row in scored:
            row["metric"] = conditional_metric(code, row["metric"])
            if row["type"] == Kind.METRIC:
                row["category"] = CONDITIONAL
        rows += scored
    return rows


def score(
    spec: JobSpec, train: EHRMatrix, test: EHRMatrix, samples: np.ndarray, progress: ProgressReporter = null_progress
) -> list[dict[str, Any]]:
    """The job's metric rows for ``samples``, with the run's metric seeds."""
    task = spec.task
    return score_rows(spec.metrics, spec.record(Kind.METRIC), spec.run_seed, task.device, task.representation,
                      task.profile, train, test, train.with_data(samples), progress, spec.cache_dir)


def reporter(events: JobEvents, spec: JobSpec) -> ProgressReporter:
    """A generator's progress callback that forwards to ``events``."""

    def progress(message: str | None = None, *, completed: float | None = None, total: float | None = None) -> None:
        events.progress(spec, message, completed, total)

    return progress


def file_plugin_modules(spec: JobSpec) -> list[ModuleType]:
    """The ``--plugin FILE`` modules a job's classes come from: a worker must load them too."""
    classes = [spec.task.generator_cls, *(type(m) for m in spec.metrics.values())]
    modules: list[ModuleType] = []
    for cls in classes:
        module = sys.modules.get(cls.__module__)
        if cls.__module__.startswith(FILE_PLUGIN_PREFIX) and module is not None and module not in modules:
            modules.append(module)
    return modules
