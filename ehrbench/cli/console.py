"""Terminal output: rich tables for leaderboards and listings, and the run's progress display."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ehrbench.views.leaderboard import Leaderboard
from ehrbench.execution.job import Job

out = Console()
err = Console(stderr=True)


def leaderboard_tables(board: Leaderboard) -> list[Table]:
    tables = []
    for category in board.categories():
        header, rows = board.by_metric(category)
        if not rows:
            continue
        table = Table(title=category.capitalize(), title_justify="left", caption="* calibration row", caption_justify="left")
        for i, h in enumerate(header):
            table.add_column(h, no_wrap=i == 0, justify="left" if i == 0 else "right")
        for r in rows:
            table.add_row(*r)
        tables.append(table)
    if not board.flags.empty:
        table = Table(title="Flags (scored, but the samples look degenerate)", title_justify="left", style="yellow")
        for h in ("generator", "repeat", "warning"):
            table.add_column(h)
        for f in board.flags.itertuples():
            table.add_row(f.generator, str(f.repeat), f.warning)
        tables.append(table)
    if not board.failures.empty:
        table = Table(title="Failures", title_justify="left", style="red")
        for h in ("generator", "repeat", "step", "reason"):
            table.add_column(h)
        for f in board.failures.itertuples():
            table.add_row(f.generator, str(f.repeat), f.step, str(f.reason))
        tables.append(table)
    return tables


def print_leaderboard(board: Leaderboard) -> None:
    if board.table.empty and board.failures.empty:
        out.print("No results yet.")
    for table in leaderboard_tables(board):
        out.print(table)
    if board.notice:
        out.print(Text(board.notice, style="bold yellow"))


class ProgressObserver:
    """Draws the run: an overall job bar and a line for the current step of the current job."""

    def __init__(self) -> None:
        self.progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=err, transient=False,
        )
        self.jobs = self.progress.add_task("jobs", total=None)
        self.step = self.progress.add_task("", total=None)
        self.running: list[Job] = []  # more than one under --executor ray
        self.failed = 0

    def _count(self) -> None:
        self.progress.update(self.jobs, description=f"jobs ({len(self.running)} running, {self.failed} failed)")

    def __enter__(self) -> ProgressObserver:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.update(self.step, visible=False)
        self.progress.stop()

    def stage(self, text: str) -> None:
        self.progress.update(self.step, description=text, total=None, completed=0)

    def jobs_planned(self, total: int, already_done: int) -> None:
        self.progress.update(self.jobs, total=total, completed=already_done)
        if already_done:
            err.print(f"resuming: {already_done} of {total} jobs already finished")

    def job_started(self, job: Job) -> None:
        self.running.append(job)
        self._count()
        self.progress.update(self.step, description=f"{job.label}: starting", total=None, completed=0)

    def job_progress(self, job: Job, message: str | None, completed: float | None, total: float | None) -> None:
        update: dict = {}
        if message is not None:
            update.update(description=f"{job.label}: {message}", total=None, completed=0)
        if total is not None:
            update["total"] = total
        if completed is not None:
            update["completed"] = completed
        self.progress.update(self.step, **update)

    def job_finished(self, job: Job, status: str, reason: str | None) -> None:
        if job in self.running:
            self.running.remove(job)
        self.failed += status != "ok"
        self._count()
        self.progress.advance(self.jobs)
        if len(self.running) > 1:
            self.progress.update(self.step, description=f"running: {', '.join(j.label for j in self.running)}",
                                 total=None, completed=0)
        if status != "ok":
            self.progress.console.print(f"[red]failed[/red] {job.label}: {reason}")
