"""The leaderboard as people read it: generators in rows, intervals, ranks and the overall ranking in the
terminal and Markdown, and nothing cut at 80 columns (issue 16, item 4; issue 19)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from _report_run import shared_run
from rich.console import Console
from rich.table import Table

from ehrbench.cli.console import leaderboard_tables
from ehrbench.views import leaderboard as lb
from ehrbench.views.text import format_interval


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return shared_run(tmp_path_factory)


def rendered(board: lb.Leaderboard, width: int) -> tuple[str, list]:
    console = Console(record=True, width=width, color_system=None)
    tables = leaderboard_tables(board, width=width)
    for table in tables:
        console.print(table)
    return console.export_text(), tables


@pytest.mark.parametrize("width", [80, 120])
def test_at_any_width_every_name_and_number_is_printed_whole(run_dir, width):
    board = lb.load(run_dir)
    text, tables = rendered(board, width)
    lines = text.splitlines()
    assert max(map(len, lines)) <= width and "…" not in text
    category_tables = [t for t in tables if isinstance(t, Table) and t.columns and t.columns[0].header == "generator"]
    headers = [str(c.header) for t in category_tables for c in t.columns[1:]]
    ranked = [m for c in board.categories() for m in board.ranked_metrics(c)]
    assert sorted(h.replace("\n", "") for h in headers) == sorted(board.header(m) for m in ranked)  # each metric once
    for header in headers:  # a title wraps only at underscores and dots, and each piece is printed as it is
        assert all(any(piece in line for line in lines) for piece in header.split("\n")), header
    for gen in board.generators():
        assert any(line.lstrip().startswith(gen) for line in lines), gen  # generators in rows, names whole
    for row in board.table[board.table["ranked"]].itertuples():
        interval = format_interval(row.ci_low, row.ci_high)
        assert not interval or interval in text, (row.generator, row.metric, interval)
    assert "Overall ranking" in text and "score [95 % CI]" in text and "calibration row" in text


def test_command_in_a_pipe_at_80_columns_cuts_nothing(run_dir):
    env = {**os.environ, "COLUMNS": "80", "TERM": "dumb"}
    command = Path(sys.executable).parent / "ehrbench"
    proc = subprocess.run([command, "leaderboard", str(run_dir)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert max(map(len, lines)) <= 80 and "…" not in proc.stdout
    for name in ("independent-marginals*", "train-resample*", "cacheable", "train-copy", "train-copy-perturbed"):
        assert any(line.split() and line.split()[0] == name for line in lines), name
    overall = proc.stdout.split("Overall ranking")[1]
    assert "not ranked" in overall and "1 [1, 1]" in overall.replace("  ", " ")


def test_markdown_has_generators_in_rows_intervals_and_the_overall_ranking(run_dir):
    board = lb.load(run_dir)
    md = board.to_markdown()
    fidelity = md.split("## Fidelity")[1].split("##")[0]
    rows = [line for line in fidelity.splitlines() if line.startswith("| ") and "---" not in line]
    assert [r.split(" | ")[0][2:] for r in rows[1:]] == [
        "independent-marginals (calibration)", "train-resample (calibration)", "cacheable", "train-copy",
        "train-copy-perturbed"]
    assert rows[0].startswith("| generator | dimension_wise_probability ↓ | pairwise_correlation_difference ↓")
    dwp = board.row("cacheable", "dimension_wise_probability")
    assert f"{format_interval(dwp['ci_low'], dwp['ci_high'])} (=1)" in rows[3]
    overall = md.split("## Overall ranking")[1]
    assert "| rank | generator | score [95 % CI] | fidelity | utility | privacy |" in overall
    assert "| cal. | train-resample | not ranked |" in overall
    assert "▲" in md and "no better than ignoring correlations" in md


def test_noise_floor_marks_follow_the_calibration_band():
    """Badness intervals (lower is better): the calibration rows sit at [0, 1] (best) and [4, 5] (worst)."""
    table = pd.DataFrame({
        "generator": ["real", "marginals", "good", "middle", "bad", "unknown"],
        "calibration": [True, True, False, False, False, False],
        "mean": [0.5, 4.5, 1.5, 2.5, 4.2, float("nan")],
        "ci_low": [0.0, 4.0, 0.9, 2.0, 3.0, float("nan")],
        "ci_high": [1.0, 5.0, 2.0, 3.0, 6.0, float("nan")],
    })
    from ehrbench.api import Direction

    marks = lb.noise_floor_marks(table, Direction(False))
    assert marks == {"good": "as_good_as:real", "bad": "no_better_than:marginals"}
    # higher is better flips the band; an interval that reaches both ends gets both marks
    flipped = table.assign(mean=-table["mean"], ci_low=-table["ci_high"], ci_high=-table["ci_low"])
    assert lb.noise_floor_marks(flipped, Direction(True)) == marks
    wide = table.assign(ci_low=[0.0, 4.0, 0.5, 2.0, 0.5, None], ci_high=[1.0, 5.0, 2.0, 3.0, 6.0, None])
    assert lb.noise_floor_marks(wide, Direction(False))["bad"] == "as_good_as:real;no_better_than:marginals"
    # calibration rows inside each other's noise: each end names both
    close = table.assign(mean=[0.5, 0.7, 1.5, 2.5, 4.2, None], ci_low=[0.0, 0.2, 0.9, 2.0, 3.0, None],
                         ci_high=[1.0, 1.2, 2.0, 3.0, 6.0, None])
    assert lb.noise_floor_marks(close, Direction(False))["bad"] == "no_better_than:real,marginals"
    # toward a target: the distance to it
    toward = table.assign(mean=[0.5, 0.1, 0.45, 0.3, 0.2, None], ci_low=[0.48, 0.05, 0.4, 0.25, 0.1, None],
                          ci_high=[0.52, 0.15, 0.55, 0.35, 0.3, None])
    assert lb.noise_floor_marks(toward, Direction(False, 0.5)) == {"good": "as_good_as:real",
                                                                   "bad": "no_better_than:marginals"}
