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

from ehrbench import manifest
from ehrbench.api import Metric
from ehrbench.config import RunConfig
from ehrbench.device import describe_device, resolve_device
from ehrbench.errors import ConfigError, InputError
from ehrbench.executors import (Executor, GenerationOutcome, GenerationTask, Job, JobSpec, make_executor, reporter,
                                score)
from ehrbench.matrix import EHRMatrix, Split, split
from ehrbench.plugins import Registry
from ehrbench.results import ResultStore, closed_jobs, open_generation, write_json_atomic
from ehrbench.scoring import compute_metric
from ehrbench.seeding import derive_seed

__all__ = ["Job", "Runner", "RunObserver", "RunPlan", "compute_metric", "plan_run"]


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
        executor: Executor | None = None,
    ) -> None:
        self.plan = plan
        self.config = plan.config
        self.registry = registry
        self.run_dir = Path(run_dir)
        self.resume = resume
        self.observer = observer or SilentObserver()
        self.executor = executor or make_executor(self.config, plan.device)
        self.store = ResultStore(self.run_dir)
        self._warnings: dict[tuple[str, int], list[str]] = {}

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
            # A simulated cohort saved to .npz and read back by `matrix` stays marked simulated.
            "simulated": dataset.simulated or bool(matrix.meta.get("simulated")),
            "n_patients": matrix.n_patients,
            "n_codes": matrix.n_codes,
            "representation": self.config.representation,
            # Aggregates only (patients, admissions, rows used/dropped, codes) and a notice.
            "summary": matrix.meta.get("summary"),
            "notice": matrix.meta.get("notice"),
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
            # Every generator's options as its profile and the user's overrides resolve them.
            "generator_options": {
                n: self.registry.get("generators", n).configure(
                    self.config.profile, self.config.generator_options.get(n)).options_dict()
                for n in self.plan.generators
            },
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
        pending = []
        for job in jobs:
            if (job.generator, job.repeat) in done:
                continue
            reusable = open_generation(records, (job.generator, job.repeat))
            if reusable is not None and self._sample_path(job).exists():
                self._score_saved(job, reusable, data_split)
            else:
                pending.append(self._spec(job, data_split))
        self.executor.run(pending, data_split, _Recorder(self, data_split))
        self._finish()
        build = self.plan.config.report
        self.observer.stage("writing report.html and figures" if build else
                            f"report skipped; build it with: ehrbench report {self.run_dir}")
        from ehrbench.report import finish_run  # never raises: a report error is logged, results stay

        finish_run(self.run_dir, data_split.test, build=build)
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

    def _spec(self, job: Job, data_split: Split) -> JobSpec:
        cls = self.registry.get("generators", job.generator)
        task = GenerationTask(
            generator_cls=cls,
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
        return JobSpec(job, uuid.uuid4().hex[:12], bool(cls.calibration), task, self.plan.metric_instances,
                       self.config.seed, keep_samples=not cls.releases_real_records)

    def _score_saved(self, job: Job, reusable: dict[str, Any], data_split: Split) -> None:
        """Score a sample saved before an interruption, here in the driver, without refitting."""
        self.observer.job_started(job)
        spec = self._spec(job, data_split)
        spec.attempt = reusable["attempt"]
        self._warnings[(job.generator, job.repeat)] = list(reusable.get("warnings", []))
        samples = EHRMatrix.load(self._sample_path(job)).X
        rows = score(spec, data_split.train, data_split.test, samples, reporter(_Recorder(self, data_split), spec))
        self._record_scores(spec, rows)

    # -- recording (the runner is the only writer of the run directory) -----------------------
    def _record_generation(self, spec: JobSpec, outcome: GenerationOutcome, data_split: Split) -> None:
        """The job's ``cost`` (and ``training``) record and its sample; a failure closes the job."""
        job = spec.job
        cost = {**spec.record("cost"), **outcome.cost, "status": outcome.status, "executor": self.executor.name}
        training = [{**spec.record("training"), "curves": outcome.training_log}] if outcome.training_log else []
        if outcome.status != "ok":
            cost["reason"] = outcome.reason
            self.store.append([cost, *training, {**spec.record("job"), "status": "failed", "reason": outcome.reason}])
            self.observer.job_finished(job, "failed", outcome.reason)
            return
        cost["warnings"] = outcome.warnings
        if spec.keep_samples and outcome.samples is not None:
            EHRMatrix(outcome.samples, data_split.train.codes).save(self._sample_path(job))
            cost["samples_saved"] = True
        else:
            cost["samples_saved"] = False  # real patient rows never go to disk
        self.store.append([cost, *training])
        self._warnings[(job.generator, job.repeat)] = list(outcome.warnings)
        for warning in outcome.warnings:
            self.observer.job_progress(job, f"warning: {warning}", None, None)

    def _record_scores(self, spec: JobSpec, rows: list[dict[str, Any]]) -> None:
        """The metric rows and the closing ``job`` record, in one append."""
        warnings = self._warnings.pop((spec.job.generator, spec.job.repeat), [])
        self.store.append([*rows, {**spec.record("job"), "status": "ok", "warnings": warnings}])
        self.observer.job_finished(spec.job, "ok", None)

    def _record_lost(self, spec: JobSpec, reason: str) -> None:
        """A job that died after its sample was recorded: closed as failed, with the reason."""
        self._warnings.pop((spec.job.generator, spec.job.repeat), None)
        self.store.append([{**spec.record("job"), "status": "failed", "reason": reason}])
        self.observer.job_finished(spec.job, "failed", reason)


class _Recorder:
    """The runner's side of :class:`ehrbench.executors.JobEvents`: records events as they arrive."""

    def __init__(self, runner: Runner, data_split: Split) -> None:
        self.runner = runner
        self.data_split = data_split

    def started(self, spec: JobSpec) -> None:
        self.runner.observer.job_started(spec.job)

    def progress(self, spec: JobSpec, message: str | None, completed: float | None, total: float | None) -> None:
        self.runner.observer.job_progress(spec.job, message, completed, total)

    def generated(self, spec: JobSpec, outcome: GenerationOutcome) -> None:
        self.runner._record_generation(spec, outcome, self.data_split)

    def scored(self, spec: JobSpec, rows: list[dict[str, Any]]) -> None:
        self.runner._record_scores(spec, rows)

    def lost(self, spec: JobSpec, reason: str) -> None:
        self.runner._record_lost(spec, reason)
