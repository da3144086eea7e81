"""Runs a planned benchmark into its run directory, whole: results, leaderboards, reference, report.

The runner is the only part that writes a run directory while it runs (DESIGN.md §4). It writes
samples atomically and results as fsync'd appends, so a run killed at any moment resumes with
``--resume`` without redoing finished jobs or duplicating rows. :meth:`Runner.run` leaves the
directory complete: ``results.jsonl``, ``leaderboard.csv``/``.md``, ``reference.npz`` and, unless
the configuration switches it off, ``report.html`` with ``figures/``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ehrbench.errors import ConfigError, InputError
from ehrbench.execution.executors import Executor, make_executor
from ehrbench.execution.job import GenerationOutcome, GenerationTask, Job, JobSpec, reporter, score
from ehrbench.execution.manifest import run_manifest
from ehrbench.execution.plan import RunPlan
from ehrbench.matrix import EHRMatrix, Split, split
from ehrbench.plugins import Registry
from ehrbench.rundir.directory import RunDirectory
from ehrbench.rundir.environment import now
from ehrbench.rundir.records import JobKey, Kind, Status, closed_jobs, open_generation
from ehrbench.views import leaderboard as lb
from ehrbench.views.report import finish_run


class RunObserver(Protocol):
    """Receives progress; the CLI draws it, tests may ignore it."""

    def stage(self, text: str) -> None: ...
    def jobs_planned(self, total: int, already_done: int) -> None: ...
    def job_started(self, job: Job) -> None: ...
    def job_progress(self, job: Job, message: str | None, completed: float | None, total: float | None) -> None: ...
    def job_finished(self, job: Job, status: str, reason: str | None, traceback: str | None = None) -> None: ...
    def metric_failed(self, job: Job, metric: str, reason: str, traceback: str | None) -> None: ...


class SilentObserver:
    def stage(self, text: str) -> None: ...
    def jobs_planned(self, total: int, already_done: int) -> None: ...
    def job_started(self, job: Job) -> None: ...
    def job_progress(self, job: Job, message: str | None, completed: float | None, total: float | None) -> None: ...
    def job_finished(self, job: Job, status: str, reason: str | None, traceback: str | None = None) -> None: ...
    def metric_failed(self, job: Job, metric: str, reason: str, traceback: str | None) -> None: ...


@dataclass(frozen=True)
class FinishedRun:
    """What :meth:`Runner.run` leaves: the directory, its leaderboard, and the report (None when
    switched off or when building it failed; the failure is logged and the results stay)."""

    directory: RunDirectory
    leaderboard: lb.Leaderboard
    report: Path | None


class Runner:
    """Executes a :class:`RunPlan` into a run directory (``run_dir``, else the config's ``out``,
    else :meth:`RunPlan.default_directory`)."""

    def __init__(
        self,
        plan: RunPlan,
        registry: Registry,
        run_dir: Path | str | None = None,
        resume: bool = False,
        observer: RunObserver | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.plan = plan
        self.config = plan.config
        self.registry = registry
        self.directory = RunDirectory(run_dir or self.config.out or plan.default_directory())
        self.resume = resume
        self.observer = observer or SilentObserver()
        self.executor = executor or make_executor(self.config, plan.device, len(plan.jobs()), plan.importable(registry))
        self._warnings: dict[JobKey, list[str]] = {}
        self._conditions: dict[str, tuple[int, int]] = {}

    @property
    def run_dir(self) -> Path:
        return self.directory.path

    # -- setup -----------------------------------------------------------------------------
    def _check_run_dir(self) -> None:
        """A new run needs an empty folder; ``--resume`` needs a run (or one killed before it wrote
        run.json, which then starts afresh)."""
        if self.resume:
            if not self.directory.never_started():
                self.directory.read_manifest()
        elif not self.directory.is_empty():
            raise ConfigError(
                f"{self.directory} already exists and is not empty. Pass --resume to finish the run "
                f"in it, or choose another --out."
            )

    def _load_data(self) -> tuple[Split, dict[str, Any]]:
        dataset = self.registry.get("datasets", self.plan.dataset).configure(self.config.dataset_options, self.config.profile)
        self.observer.stage(f"loading dataset {self.plan.dataset}")
        matrix = dataset.load().as_representation(self.config.representation)
        fingerprint = dataset.fingerprint()
        data_split = split(matrix, self.config.seed, self.config.test_fraction)
        for part in (data_split.train, data_split.test):  # no generator or metric may change the real split
            part.X.flags.writeable = False
        info = {
            "name": dataset.name,
            "options": dataset.options_dict(),
            "fingerprint": fingerprint,
            # A simulated cohort saved to .npz and read back by `matrix` stays marked simulated
            # (EHRMatrix.load accepts only true or false there).
            "simulated": bool(dataset.simulated) or matrix.meta.get("simulated") is True,
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
        if self.resume and not self.directory.never_started():
            previous = self.directory.read_manifest()
            stored_fp = previous.get("dataset", {}).get("fingerprint")
            if stored_fp != dataset_info["fingerprint"]:
                raise InputError(
                    f"{self.directory}: the dataset changed since this run started (fingerprint "
                    f"{stored_fp} → {dataset_info['fingerprint']}); resuming would mix results. "
                    f"Start a new run with another --out."
                )
        self.directory.write_manifest(run_manifest(self.plan, self.registry, self.directory, dataset_info,
                                                   data_split, self._n_samples(data_split), self.executor, previous))

    def _n_samples(self, data_split: Split) -> int:
        return self.config.samples or data_split.test.n_patients

    # -- execution -------------------------------------------------------------------------
    def run(self) -> FinishedRun:
        """Run every unfinished job, then write the leaderboards, the reference and the report.

        The whole run holds the directory's lock: a second writer is refused, not run twice.
        """
        self._check_run_dir()
        data_split, dataset_info = self._load_data()
        self._conditions = condition_columns(self.config.conditions, data_split, self.plan.dataset)
        self.directory.create()
        with self.directory.lock():
            self._check_run_dir()  # again, now that no other writer can change the answer
            self.directory.remove_temporaries()
            self._write_manifest(data_split, dataset_info)
            self.directory.store.repair()
            records = self.directory.store.read()
            done = closed_jobs(records)
            jobs = self.plan.jobs()
            self.observer.jobs_planned(len(jobs), sum(1 for j in jobs if (j.generator, j.repeat) in done))
            pending = []
            for job in jobs:
                if (job.generator, job.repeat) in done:
                    continue
                reusable = open_generation(records, (job.generator, job.repeat))
                if reusable is not None and self.directory.sample_path(job.generator, job.repeat).exists():
                    self._score_saved(job, reusable, data_split)
                else:
                    pending.append(self._spec(job, data_split))
            self.executor.run(pending, data_split, _Recorder(self, data_split))
            return self._finish(data_split)

    def _finish(self, data_split: Split) -> FinishedRun:
        self.directory.update_manifest(finished_at=now())
        board = lb.rebuild(self.directory)
        build = self.config.report
        self.observer.stage("writing report.html and figures" if build else
                            f"report skipped; build it with: ehrbench report {self.directory}")
        report = finish_run(self.directory, data_split.test, build=build)  # never raises: errors are logged
        return FinishedRun(self.directory, board, report)

    def _model_dir(self, job: Job) -> Path | None:
        """Where the job's fitted model is cached; None for generators that hold real rows."""
        if self.plan.generator_cls(self.registry, job.generator).releases_real_records:
            return None
        return self.directory.model_dir(job.generator, job.repeat).absolute()

    def _spec(self, job: Job, data_split: Split) -> JobSpec:
        cls = self.plan.generator_cls(self.registry, job.generator)
        task = GenerationTask(
            generator_cls=cls,
            options=self.plan.generator_options(job.generator),
            profile=self.config.profile,
            repeat=job.repeat,
            seed=job.seed,
            device=self.plan.device,
            representation=self.config.representation,
            n_samples=self._n_samples(data_split),
            timeout=self.config.timeout,
            scratch_dir=self.directory.scratch_dir(job.generator, job.repeat).absolute(),  # jobs run elsewhere
            model_dir=self._model_dir(job),
            conditions=self._conditions,
        )
        return JobSpec(job, uuid.uuid4().hex[:12], bool(cls.calibration), task, self.plan.metric_instances,
                       self.config.seed, keep_samples=not cls.releases_real_records)

    def _score_saved(self, job: Job, reusable: dict[str, Any], data_split: Split) -> None:
        """Score a sample saved before an interruption, here in the driver, without refitting."""
        self.observer.job_started(job)
        spec = self._spec(job, data_split)
        spec.attempt = reusable["attempt"]
        self._warnings[(job.generator, job.repeat)] = list(reusable.get("warnings", []))
        samples = EHRMatrix.load(self.directory.sample_path(job.generator, job.repeat)).X
        rows = score(spec, data_split.train, data_split.test, samples, reporter(_Recorder(self, data_split), spec))
        self._record_scores(spec, rows)

    # -- recording (the runner is the only writer of the run directory) -----------------------
    def _record_generation(self, spec: JobSpec, outcome: GenerationOutcome, data_split: Split) -> None:
        """The job's ``cost`` (and ``training``) record and its sample; a failure closes the job."""
        job = spec.job
        cost = {**spec.record(Kind.COST), **outcome.cost, "status": outcome.status, "executor": self.executor.name}
        training = [{**spec.record(Kind.TRAINING), "curves": outcome.training_log}] if outcome.training_log else []
        if outcome.status != Status.OK:
            cost["reason"] = outcome.reason
            closing = {**spec.record(Kind.JOB), "status": Status.FAILED, "reason": outcome.reason}
            if outcome.traceback:
                closing["traceback"] = outcome.traceback
            self.directory.store.append([*training, cost, closing])
            self.observer.job_finished(job, Status.FAILED, outcome.reason, outcome.traceback)
            return
        cost["warnings"] = outcome.warnings
        if spec.keep_samples and outcome.samples is not None:
            path = self.directory.sample_path(job.generator, job.repeat)
            EHRMatrix(outcome.samples, data_split.train.codes).save(path)
            cost["samples_saved"] = True
        else:
            cost["samples_saved"] = False  # real patient rows never go to disk
        self.directory.store.append([*training, cost])  # cost last: it marks the sample usable on resume
        self._warnings[(job.generator, job.repeat)] = list(outcome.warnings)
        for warning in outcome.warnings:
            self.observer.job_progress(job, f"warning: {warning}", None, None)

    def _record_scores(self, spec: JobSpec, rows: list[dict[str, Any]]) -> None:
        """The metric rows and the closing ``job`` record, in one append, under a fresh batch id: a
        torn earlier batch of the same attempt (records.py) never counts beside this one."""
        warnings = self._warnings.pop((spec.job.generator, spec.job.repeat), [])
        batch = uuid.uuid4().hex[:12]
        self.directory.store.append([*({**row, "batch": batch} for row in rows),
                                     {**spec.record(Kind.JOB), "status": Status.OK, "warnings": warnings, "batch": batch}])
        for row in rows:
            if row["type"] == Kind.METRIC_FAILURE:
                self.observer.metric_failed(spec.job, row["metric"], row["reason"], row.get("traceback"))
        self.observer.job_finished(spec.job, Status.OK, None)

    def _record_lost(self, spec: JobSpec, reason: str) -> None:
        """A job that died after its sample was recorded: closed as failed, with the reason."""
        self._warnings.pop((spec.job.generator, spec.job.repeat), None)
        self.directory.store.append([{**spec.record(Kind.JOB), "status": Status.FAILED, "reason": reason}])
        self.observer.job_finished(spec.job, Status.FAILED, reason)


def condition_columns(conditions: list[str], data_split: Split, dataset: str) -> dict[str, tuple[int, int]]:
    """``--condition`` codes → (column, real test records with the code): how many records to ask for.

    A code the dataset lacks, or one no real test record has (nothing to score against), is a ConfigError.
    """
    codes = [str(c) for c in data_split.test.codes]
    index = {c: i for i, c in enumerate(codes)}
    out = {}
    for code in conditions:
        if code not in index:
            near = [c for c in codes if c.startswith(code[:3])][:5]
            hint = f" (codes starting like it: {', '.join(near)})" if near else f" (its codes look like {', '.join(codes[:3])})"
            raise ConfigError(f"condition '{code}': dataset {dataset} has no such code{hint}.")
        n = int((data_split.test.X[:, index[code]] > 0).sum())
        if n == 0:
            raise ConfigError(f"condition '{code}': no real test record has this code, so conditional samples "
                              f"cannot be scored; choose a code that occurs in the test split.")
        out[code] = (index[code], n)
    return out


class _Recorder:
    """The runner's side of :class:`ehrbench.execution.job.JobEvents`: records events as they arrive."""

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
