"""Plans jobs (generator × repeat), runs them through an executor, scores and records them.

The runner is the only part that writes a run directory (DESIGN.md §4). It writes samples
atomically and results as fsync'd appends, so a run killed at any moment resumes with
``--resume`` without redoing finished jobs or duplicating rows.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ehrbench import manifest
from ehrbench.api import Generator, Metric, RunContext, flat_key
from ehrbench.config import RunConfig
from ehrbench.device import describe_device, resolve_device
from ehrbench.errors import ConfigError, InputError
from ehrbench.executors import GenerationOutcome, GenerationTask, LocalExecutor
from ehrbench.matrix import EHRMatrix, Split, split
from ehrbench.plugins import Registry
from ehrbench.results import ResultStore, closed_jobs, open_generation, write_json_atomic
from ehrbench.seeding import derive_seed


@dataclass(frozen=True)
class Job:
    generator: str
    repeat: int
    seed: int

    @property
    def label(self) -> str:
        return f"{self.generator} · repeat {self.repeat}"


class RunObserver(Protocol):
    """Receives progress; the CLI draws it, tests may ignore it."""

    def stage(self, text: str) -> None: ...
    def jobs_planned(self, total: int, already_done: int) -> None: ...
    def job_started(self, job: Job) -> None: ...
    def job_progress(self, job: Job, message: str | None, completed: float | None, total: float | None) -> None: ...
    def job_finished(self, job: Job, status: str, reason: str | None) -> None: ...


class SilentObserver:
    def stage(self, text: str) -> None: ...
    def jobs_planned(self, total: int, already_done: int) -> None: ...
    def job_started(self, job: Job) -> None: ...
    def job_progress(self, job: Job, message: str | None, completed: float | None, total: float | None) -> None: ...
    def job_finished(self, job: Job, status: str, reason: str | None) -> None: ...


@dataclass
class RunPlan:
    """A validated run: config with names resolved and plugins configured."""

    config: RunConfig
    generators: list[str]
    metrics: list[str]
    device: str
    metric_instances: dict[str, Metric] = field(default_factory=dict)

    def jobs(self) -> list[Job]:
        return [
            Job(g, k, derive_seed(self.config.seed, "generator", g, k))
            for k in range(self.config.repeats)
            for g in self.generators
        ]


def plan_run(config: RunConfig, registry: Registry) -> RunPlan:
    """Check every name and option before anything runs, so bad input fails in a second."""
    registry.get("datasets", config.dataset).configure(config.dataset_options)
    generators = config.generators if config.generators is not None else registry.defaults("generators")
    metrics = config.metrics if config.metrics is not None else registry.defaults("metrics")
    if not generators:
        raise ConfigError("no generators to run: name some with --generators.")
    if not metrics:
        raise ConfigError("no metrics to compute: name some with --metrics.")
    for kind, names in (("generators", generators), ("metrics", metrics)):
        if len(set(names)) != len(names):
            raise ConfigError(f"{kind} lists a name twice: {', '.join(names)}.")
    for kind, key in (("generators", "generator_options"), ("metrics", "metric_options")):
        for name in getattr(config, key):
            registry.entry(kind, name)
    for name in generators:
        cls = registry.get("generators", name)
        cls.configure(config.profile, config.generator_options.get(name))
    metric_instances = {
        name: registry.get("metrics", name).configure(config.metric_options.get(name), config.profile)
        for name in metrics
    }
    needs_torch = any(registry.get("generators", g).uses_torch for g in generators)
    return RunPlan(config, list(generators), list(metrics), resolve_device(config.device, needs_torch), metric_instances)


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """The ``run.json`` of a run to resume; its absence is a user error."""
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        raise ConfigError(f"{run_dir}: no run.json here, so there is no run to resume.")
    return json.loads(path.read_text())


def default_run_dir(config: RunConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{config.name or config.dataset}-{config.profile}-{stamp}"


class Runner:
    """Executes a :class:`RunPlan` into a run directory."""

    def __init__(
        self,
        plan: RunPlan,
        registry: Registry,
        run_dir: Path,
        resume: bool = False,
        observer: RunObserver | None = None,
        executor: LocalExecutor | None = None,
    ) -> None:
        self.plan = plan
        self.config = plan.config
        self.registry = registry
        self.run_dir = Path(run_dir)
        self.resume = resume
        self.observer = observer or SilentObserver()
        self.executor = executor or LocalExecutor()
        self.store = ResultStore(self.run_dir)

    # -- setup -----------------------------------------------------------------------------
    def _check_run_dir(self) -> None:
        if self.resume:
            read_manifest(self.run_dir)
        if not self.resume and self.run_dir.exists() and any(self.run_dir.iterdir()):
            raise ConfigError(
                f"{self.run_dir} already exists and is not empty. Pass --resume to finish the run "
                f"in it, or choose another --out."
            )

    def _load_data(self) -> tuple[Split, dict[str, Any]]:
        dataset = self.registry.get("datasets", self.config.dataset).configure(self.config.dataset_options)
        self.observer.stage(f"loading dataset {self.config.dataset}")
        matrix = dataset.load().as_representation(self.config.representation)
        fingerprint = dataset.fingerprint()
        data_split = split(matrix, self.config.seed, self.config.test_fraction)
        info = {
            "name": dataset.name,
            "options": dataset.options_dict(),
            "fingerprint": fingerprint,
            "simulated": dataset.simulated,
            "n_patients": matrix.n_patients,
            "n_codes": matrix.n_codes,
            "representation": self.config.representation,
        }
        return data_split, info

    def _write_manifest(self, data_split: Split, dataset_info: dict[str, Any]) -> None:
        previous = None
        if self.resume:
            previous = read_manifest(self.run_dir)
            stored_fp = previous.get("dataset", {}).get("fingerprint")
            if stored_fp != dataset_info["fingerprint"]:
                raise InputError(
                    f"{self.run_dir}: the dataset changed since this run started (fingerprint "
                    f"{stored_fp} → {dataset_info['fingerprint']}); resuming would mix results. "
                    f"Start a new run with another --out."
                )
        data = {
            "config": self.config.to_dict(),
            "generators": self.plan.generators,
            "metrics": self.plan.metrics,
            "metric_options": {n: m.options_dict() for n, m in self.plan.metric_instances.items()},
            "plugins": {
                kind: {n: self.registry.entry(kind, n).source for n in names}
                for kind, names in (("generators", self.plan.generators), ("metrics", self.plan.metrics))
            },
            "dataset": dataset_info,
            "split": data_split.manifest(),
            "n_samples": self._n_samples(data_split),
            "device": describe_device(self.plan.device),
            "environment": manifest.environment(),
            "created_at": previous["created_at"] if previous else manifest.now(),
            "resumed_at": (previous.get("resumed_at", []) + [manifest.now()]) if previous else [],
            "finished_at": None,
        }
        write_json_atomic(self.run_dir / "run.json", data)

    def _n_samples(self, data_split: Split) -> int:
        return self.config.samples or data_split.test.n_patients

    # -- execution -------------------------------------------------------------------------
    def run(self) -> Path:
        """Run every unfinished job; returns the run directory."""
        self._check_run_dir()
        data_split, dataset_info = self._load_data()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._write_manifest(data_split, dataset_info)
        self.store.repair()
        records = self.store.read()
        done = closed_jobs(records)
        jobs = self.plan.jobs()
        self.observer.jobs_planned(len(jobs), sum(1 for j in jobs if (j.generator, j.repeat) in done))
        for job in jobs:
            if (job.generator, job.repeat) in done:
                continue
            self._run_job(job, data_split, open_generation(records, (job.generator, job.repeat)))
        self._finish()
        return self.run_dir

    def _finish(self) -> None:
        data = read_manifest(self.run_dir)
        data["finished_at"] = manifest.now()
        write_json_atomic(self.run_dir / "run.json", data)

    def _sample_path(self, job: Job) -> Path:
        return self.run_dir / "samples" / job.generator / f"repeat-{job.repeat}.npz"

    def _model_dir(self, job: Job) -> Path | None:
        """Where the job's fitted model is cached; None for generators that hold real rows."""
        if self.registry.get("generators", job.generator).releases_real_records:
            return None
        return self.run_dir / "models" / job.generator / f"repeat-{job.repeat}"

    def _base_record(self, job: Job, attempt: str, kind: str) -> dict[str, Any]:
        cls = self.registry.get("generators", job.generator)
        return {
            "type": kind,
            "generator": job.generator,
            "repeat": job.repeat,
            "seed": job.seed,
            "attempt": attempt,
            "calibration": bool(cls.calibration),
        }

    def _run_job(self, job: Job, data_split: Split, reusable: dict[str, Any] | None) -> None:
        self.observer.job_started(job)
        samples = None
        if reusable is not None and self._sample_path(job).exists():
            attempt = reusable["attempt"]
            warnings = list(reusable.get("warnings", []))
            samples = EHRMatrix.load(self._sample_path(job)).X
        else:
            attempt = uuid.uuid4().hex[:12]
            outcome = self._generate(job, data_split)
            cost = {**self._base_record(job, attempt, "cost"), **outcome.cost, "status": outcome.status}
            training = [{**self._base_record(job, attempt, "training"), "curves": outcome.training_log}]
            if not outcome.training_log:
                training = []
            if outcome.status != "ok":
                cost["reason"] = outcome.reason
                self.store.append([cost, *training,
                                   {**self._base_record(job, attempt, "job"), "status": "failed", "reason": outcome.reason}])
                self.observer.job_finished(job, "failed", outcome.reason)
                return
            samples = outcome.samples
            warnings = outcome.warnings
            cost["warnings"] = warnings
            cls: type[Generator] = self.registry.get("generators", job.generator)
            if cls.releases_real_records:
                cost["samples_saved"] = False  # real patient rows never go to disk
            else:
                EHRMatrix(samples, data_split.train.codes).save(self._sample_path(job))
                cost["samples_saved"] = True
            self.store.append([cost, *training])
        for warning in warnings:
            self.observer.job_progress(job, f"warning: {warning}", None, None)
        rows = self._score(job, attempt, data_split, data_split.train.with_data(samples))
        rows.append({**self._base_record(job, attempt, "job"), "status": "ok", "warnings": warnings})
        self.store.append(rows)
        self.observer.job_finished(job, "ok", None)

    def _generate(self, job: Job, data_split: Split) -> GenerationOutcome:
        task = GenerationTask(
            generator_cls=self.registry.get("generators", job.generator),
            options=self.config.generator_options.get(job.generator, {}),
            profile=self.config.profile,
            repeat=job.repeat,
            seed=job.seed,
            device=self.plan.device,
            representation=self.config.representation,
            n_samples=self._n_samples(data_split),
            timeout=self.config.timeout,
            scratch_dir=self.run_dir / "scratch" / job.generator / f"repeat-{job.repeat}",
            model_dir=self._model_dir(job),
        )

        def progress(message: str | None = None, *, completed: float | None = None, total: float | None = None) -> None:
            self.observer.job_progress(job, message, completed, total)

        return self.executor.generate(task, data_split.train.X, progress)

    def _score(self, job: Job, attempt: str, data_split: Split, synthetic: EHRMatrix) -> list[dict[str, Any]]:
        rows = []
        for name, metric in self.plan.metric_instances.items():
            self.observer.job_progress(job, f"scoring {name}", None, None)
            ctx = RunContext(
                seed=derive_seed(self.config.seed, "metric", name, job.repeat),
                device=self.plan.device,
                representation=self.config.representation,  # type: ignore[arg-type]
                profile=self.config.profile,
            )
            start = time.perf_counter()
            try:
                values = compute_metric(metric, data_split.train, data_split.test, synthetic, ctx)
            except Exception as exc:  # a metric's failure is recorded beside the others
                rows.append({**self._base_record(job, attempt, "metric_failure"), "metric": name,
                             "reason": f"{type(exc).__name__}: {exc}"})
                continue
            seconds = time.perf_counter() - start
            for key, value in values.items():
                direction = metric.direction(key)
                rows.append({
                    **self._base_record(job, attempt, "metric"),
                    "metric": flat_key(name, key),
                    "category": metric.category,
                    "higher_is_better": direction.higher_is_better if direction else None,
                    "target": direction.target if direction else None,
                    "ranked": direction is not None,
                    "value": value,
                    "seconds": seconds,
                })
        return rows


def compute_metric(
    metric: Metric, train: EHRMatrix, test: EHRMatrix, synthetic: EHRMatrix, ctx: RunContext
) -> dict[str, float]:
    """Run a metric and check it returned ``{str: number}``; anything else is the metric's bug."""
    values = metric.compute(train, test, synthetic, ctx)
    if not isinstance(values, dict) or not values:
        raise TypeError(f"compute() returned {values!r}; expected a non-empty dict of numbers")
    out = {}
    for key, value in values.items():
        if not isinstance(key, str) or isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise TypeError(f"compute() returned {key!r}: {value!r}; expected str keys and numeric values")
        out[key] = float(value)
    return out
