"""Terminal output: the two consoles and the leaderboard's rich tables (the run's progress: progress.py).

Both consoles read no markup, emoji codes or highlighting in what they print: failure reasons,
a job's last output, plugin errors, paths and names are user or plugin text, and ``[/data]`` in
a reason must print as written. Styles are given as ``style=`` or :class:`rich.text.Text`.
"""

from __future__ import annotations

import re

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from ehrbench.views.leaderboard import Leaderboard

out = Console(markup=False, emoji=False, highlight=False)
err = Console(stderr=True, markup=False, emoji=False, highlight=False)


def wrap_title(title: str, width: int) -> str:
    """A metric's title broken at underscores and dots into lines of at most ``width`` characters."""
    words = re.split(r"(?<=[_.])", title)
    lines, line = [], ""
    for word in words:
        if line and len(line) + len(word) > width:
            lines.append(line)
            line = ""
        line += word
    return "\n".join(lines + [line])


def _metric_cells(board: Leaderboard, metric: str, generators: list[str]) -> list[str]:
    """Each generator's cell of one metric: ``mean (rank) marks`` over its ``[interval]``."""
    from ehrbench.views.leaderboard import marks_text, rank_text, tied_cells
    from ehrbench.views.text import MISSING, format_interval, format_number

    tied = tied_cells(board.table)
    cells = []
    for gen in generators:
        row = board.row(gen, metric)
        if row is None or row["mean"] != row["mean"]:
            cells.append(MISSING)
            continue
        first = " ".join(filter(None, [format_number(row["mean"]), rank_text(row["rank"], (gen, metric) in tied),
                                      marks_text(row["noise_floor"])]))
        interval = format_interval(row["ci_low"], row["ci_high"])
        cells.append(first + (f"\n{interval}" if interval else ""))
    return cells


def _category_tables(board: Leaderboard, category: str, width: int) -> list[Table]:
    """One category, generators in rows, its ranked metrics in as many tables as the width needs."""
    metrics = board.ranked_metrics(category)
    part = board.table[board.table["category"] == category]
    generators = [g for g in board.generators() if g in set(part["generator"])]
    if not metrics or not generators:
        return []
    calibration = set(board.calibration_rows())
    names = [g + ("*" if g in calibration else "") for g in generators]
    columns = []
    for m in metrics:
        cells = _metric_cells(board, m, generators)
        content = max(len(line) for c in cells for line in c.split("\n"))
        title = board.header(m)
        columns.append((wrap_title(title, max(content, 12)), cells))

    def table(chunk: list[tuple[str, list[str]]], first: bool) -> Table:
        title = category.capitalize() + ("" if first else " (continued)")
        t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        t.add_column("generator", no_wrap=True, overflow="fold", min_width=max(map(len, names)))
        for header, _ in chunk:
            t.add_column(header, justify="right", overflow="fold")
        for k, name in enumerate(names):
            t.add_row(name, *(cells[k] for _, cells in chunk))
        return t

    unbounded = out.options.update_width(10**6)  # a table's natural width, not the console's

    tables, chunk = [], []
    for column in columns:
        if chunk and Measurement.get(out, unbounded, table(chunk + [column], not tables)).maximum > width:
            tables.append(table(chunk, not tables))
            chunk = []
        chunk.append(column)
    tables.append(table(chunk, not tables))
    return tables


def overall_table(board: Leaderboard) -> Table | None:
    """The weighted overall ranking: rank, generator, score with its interval, category mean ranks."""
    from ehrbench.views.leaderboard import overall_rows

    overall = board.overall()
    if overall.empty:
        return None
    header, rows = overall_rows(overall, board.weights)
    t = Table(title="Overall ranking", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for i, h in enumerate(header):
        t.add_column(h, justify="left" if i < 2 else "right", no_wrap=i < 2, overflow="fold")
    for r in rows:
        t.add_row(*r)
    return t


def leaderboard_tables(board: Leaderboard, width: int | None = None) -> list[Table | Text]:
    """What the terminal shows of a leaderboard, fitted to ``width`` (the console's): per category,
    generators in rows and as many metric columns per table as fit; the overall ranking; a legend.
    Names and numbers are never cut: titles wrap at underscores, tables split."""
    from ehrbench.views.leaderboard import legend, overall_legend

    width = width or out.width
    tables: list[Table | Text] = []
    for category in board.categories():
        tables += _category_tables(board, category, width)
    overall = overall_table(board)
    if overall is not None:
        tables.append(overall)
    header, rows = board.guarantees()
    if rows:
        table = Table(title="Privacy guarantee (differential privacy; informational)", title_justify="left",
                      box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        for i, h in enumerate(header):
            table.add_column(h, no_wrap=i == 0, justify="left" if i == 0 else "right", overflow="fold")
        for r in rows:
            table.add_row(*r)
        tables.append(table)
    if not board.flags.empty:
        table = Table(title="Flags (scored, but the samples look degenerate)", title_justify="left", style="yellow")
        for h in ("generator", "repeat", "warning"):
            table.add_column(h, overflow="fold")
        for f in board.flags.itertuples():
            table.add_row(f.generator, str(f.repeat), f.warning)
        tables.append(table)
    if not board.failures.empty:
        table = Table(title="Failures", title_justify="left", style="red")
        for h in ("generator", "repeat", "step", "reason"):
            table.add_column(h, overflow="fold")
        for f in board.failures.itertuples():
            table.add_row(f.generator, str(f.repeat), f.step, str(f.reason))
        tables.append(table)
    if not board.table.empty:
        text = legend(board) + " * calibration row."
        if overall is not None:
            text += " " + overall_legend(board.weights)
        tables.append(Text(text, style="dim"))
    return tables


def print_leaderboard(board: Leaderboard) -> None:
    if board.table.empty and board.failures.empty:
        out.print("No results yet.")
    for table in leaderboard_tables(board):
        out.print(table)
    if board.notice:
        out.print(Text(board.notice, style="bold yellow"))
