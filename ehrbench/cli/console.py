"""Terminal output: the two consoles and the leaderboard's rich tables (the run's progress: progress.py).

Both consoles read no markup, emoji codes or highlighting in what they print: failure reasons,
a job's last output, plugin errors, paths and names are user or plugin text, and ``[/data]`` in
a reason must print as written. Styles are given as ``style=`` or :class:`rich.text.Text`.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ehrbench.views.leaderboard import Leaderboard

out = Console(markup=False, emoji=False, highlight=False)
err = Console(stderr=True, markup=False, emoji=False, highlight=False)


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
    header, rows = board.guarantees()
    if rows:
        table = Table(title="Privacy guarantee (differential privacy; informational)", title_justify="left")
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
