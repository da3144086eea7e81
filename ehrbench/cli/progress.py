"""A run's progress: bars on a terminal, plain lines elsewhere, and everything in ``run.log``.

Every event of a run is a record of the ``ehrbench.run`` logger: a stage, a job started or
finished (with its time), a failure (its reason, then its full traceback at DEBUG level), a
metric that failed, and, when nothing else was said for a while, a heartbeat naming what runs.
:func:`run_logging` sends those records to ``run.log`` in the run directory (all of them) and to
stderr: on a terminal only warnings (failures) above the bars, since the bars show the rest;
without a terminal (a pipe, a file, CI) every line but the tracebacks; with ``--verbose`` all.

On a terminal, :class:`ProgressObserver` also draws two bars: the jobs, and the current step of the
current job. Each step is a task of its own, so a step without a total never shows the previous
step's total.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from ehrbench.cli.console import err
from ehrbench.execution.job import Job

log = logging.getLogger("ehrbench.run")
HEARTBEAT_SECONDS = 30.0
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(message)s"


class ProgressObserver:
    """Receives the runner's events (:class:`ehrbench.execution.runner.RunObserver`): logs each one,
    draws bars when ``display`` (a terminal), and says what is running every ``heartbeat`` seconds
    of silence otherwise."""

    def __init__(self, display: bool | None = None, heartbeat: float = HEARTBEAT_SECONDS) -> None:
        self.display = err.is_terminal if display is None else display
        self.heartbeat = heartbeat
        self.progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=err, transient=False,
        )
        self.jobs = self.progress.add_task("jobs", total=None)
        self.step = self.progress.add_task("", total=None)
        self.running: dict[Job, float] = {}  # more than one under --executor ray; value: start time
        self.steps: dict[Job, str] = {}
        self.total = 0
        self.finished = 0
        self.failed = 0
        self._said = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> ProgressObserver:
        if self.display:
            self.progress.start()
        elif self.heartbeat > 0:
            self._beat = threading.Thread(target=self._heartbeat, name="ehrbench-heartbeat", daemon=True)
            self._beat.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        if self.display:
            self.progress.update(self.step, visible=False)
            self.progress.stop()

    # -- the runner's events ----------------------------------------------------------------------
    def stage(self, text: str) -> None:
        self._say(logging.INFO, text)
        self._new_step(text)

    def jobs_planned(self, total: int, already_done: int) -> None:
        self.total, self.finished = total, already_done
        self.progress.update(self.jobs, total=total, completed=already_done)
        if already_done:
            self._say(logging.INFO, f"resuming: {already_done} of {total} jobs already finished")
        else:
            self._say(logging.INFO, f"{total} jobs to run")

    def job_started(self, job: Job) -> None:
        with self._lock:
            self.running[job] = time.monotonic()
            self.steps[job] = "starting"
        self._count()
        self._new_step(f"{job.label}: starting")
        self._say(logging.INFO, f"{job.label}: started (job {self.finished + len(self.running)} of {self.total})")

    def job_progress(self, job: Job, message: str | None, completed: float | None, total: float | None) -> None:
        if message is not None:
            with self._lock:
                self.steps[job] = message
            if message.startswith("warning:"):
                self._say(logging.WARNING, f"{job.label}: {message}")
            else:
                log.debug("%s: %s", job.label, message)
            self._new_step(f"{job.label}: {message}", total, completed or 0)
            return
        update: dict = {}
        if total is not None:
            update["total"] = total
        if completed is not None:
            update["completed"] = completed
        if update:
            self.progress.update(self.step, **update)

    def metric_failed(self, job: Job, metric: str, reason: str, traceback: str | None) -> None:
        self._say(logging.WARNING, f"{job.label}: metric {metric} failed: {reason}")
        if traceback:
            log.debug("%s: metric %s: %s", job.label, metric, traceback.rstrip())

    def job_finished(self, job: Job, status: str, reason: str | None, traceback: str | None = None) -> None:
        with self._lock:
            began = self.running.pop(job, None)
            self.steps.pop(job, None)
            self.finished += 1
            self.failed += status != "ok"
        took = f" after {time.monotonic() - began:.1f} s" if began is not None else ""
        self._count()
        self.progress.advance(self.jobs)
        if len(self.running) > 1:
            self._new_step(f"running: {', '.join(j.label for j in self.running)}")
        if status == "ok":
            self._say(logging.INFO, f"{job.label}: finished{took} ({self._tally()})")
            return
        self._say(logging.WARNING, f"{job.label}: FAILED{took}: {reason} ({self._tally()})")
        if traceback:
            log.debug("%s: %s", job.label, traceback.rstrip())

    # -- helpers ------------------------------------------------------------------------------
    def _tally(self) -> str:
        failed = f", {self.failed} failed" if self.failed else ""
        return f"{self.finished} of {self.total} jobs finished{failed}"

    def _count(self) -> None:
        self.progress.update(self.jobs, description=f"jobs ({len(self.running)} running, {self.failed} failed)")

    def _new_step(self, description: str, total: float | None = None, completed: float = 0) -> None:
        """Show a new step: a task of its own, so it never keeps the previous step's total."""
        self.progress.remove_task(self.step)
        self.step = self.progress.add_task(description, total=total, completed=completed)

    def _say(self, level: int, message: str) -> None:
        self._said = time.monotonic()
        log.log(level, message)

    def _heartbeat(self) -> None:
        while not self._stop.wait(min(1.0, self.heartbeat)):
            if time.monotonic() - self._said < self.heartbeat:
                continue
            with self._lock:
                running = [f"{job.label} ({self.steps.get(job, 'running')})" for job in self.running]
            doing = f"running {', '.join(running)}" if running else "working"
            self._say(logging.INFO, f"still {doing}; {self._tally()}")


class _RunLogFile(logging.Handler):
    """Appends records to ``run.log``, holding them until the run directory exists (the runner makes it)."""

    def __init__(self, path: Path) -> None:
        super().__init__(logging.DEBUG)
        self.path = path
        self.pending: list[str] = []
        self.setFormatter(logging.Formatter(LOG_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.pending.append(self.format(record) + "\n")
            if not self.path.parent.is_dir():
                return
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.writelines(self.pending)
            self.pending.clear()
        except OSError:  # a full or read-only disk: the run's own writes report it, once and clearly
            self.pending.clear()
        except Exception:  # the log must never stop a run
            self.handleError(record)


class _Stderr(logging.Handler):
    """Plain lines on stderr, through the console the bars use (so they print above them)."""

    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.start = time.monotonic()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            elapsed = int(time.monotonic() - self.start)
            stamp = f"[{elapsed // 3600:d}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}] "
            style = "red" if record.levelno >= logging.WARNING and "FAILED" in record.getMessage() else None
            err.print(Text(stamp + record.getMessage(), style=style or ""), soft_wrap=True)
        except Exception:
            self.handleError(record)


@contextmanager
def run_logging(log_path: Path, verbose: bool, display: bool) -> Iterator[None]:
    """Route the ``ehrbench`` loggers to ``log_path`` and stderr for the length of a run."""
    root = logging.getLogger("ehrbench")
    file_handler = _RunLogFile(log_path)
    level = logging.DEBUG if verbose else logging.WARNING if display else logging.INFO
    stderr_handler = _Stderr(level)
    saved = (root.level, root.propagate)
    root.setLevel(logging.DEBUG)
    root.propagate = False
    root.addHandler(file_handler)
    root.addHandler(stderr_handler)
    try:
        yield
    finally:
        root.removeHandler(file_handler)
        root.removeHandler(stderr_handler)
        root.setLevel(saved[0])
        root.propagate = saved[1]
