"""Leaderboard exports for ``ehrbench leaderboard RUN_DIR --format csv|md|html|json``.

CSV and Markdown are the leaderboard's own files (Markdown with the overall ranking); JSON and
HTML add the weighted overall ranking with its interval (and its weights), JSON the paired tests
of every metric, and both the simulated-data notice, so no export hides any of them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ehrbench.config import resolve_weights
from ehrbench.rundir.directory import RunDirectory
from ehrbench.rundir.environment import now
from ehrbench.views import html as rh
from ehrbench.views import leaderboard as lb
from ehrbench.views.leaderboard import CSV_COLUMNS, Leaderboard

FORMATS = ("csv", "md", "html", "json")


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf → None, numpy scalars → Python numbers."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _clean(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def to_json(board: Leaderboard, weights: Mapping[str, float], run_name: str) -> str:
    payload = {
        "run": run_name,
        "notice": board.notice,
        "weights": dict(weights),
        "leaderboard": _records(board.table[CSV_COLUMNS]),
        "overall": _records(board.overall(weights)),
        "pairs": _records(board.pairs),
        "flags": _records(board.flags),
        "failures": _records(board.failures),
    }
    return json.dumps(payload, indent=2) + "\n"


def to_html(board: Leaderboard, weights: Mapping[str, float], run_name: str) -> str:
    sections = list(rh.leaderboard_sections(board))
    sections.append(("overall", "Overall ranking", rh.overall_table(board.overall(weights), weights)))
    sections.append(("failures", "Failed jobs and metrics", rh.failures_section(board)))
    anchor, title, body = sections[0]
    sections[0] = (anchor, title, f'<p class="note">{rh.esc(lb.legend(board))}</p>' + body)
    return rh.page(f"ehrbench leaderboard — {run_name}", "mean over repeats [95 % interval] (rank; = shared)",
                   board.notice, sections, rh.ehrbench_version(), now())


def export(board: Leaderboard, fmt: str, weights: Mapping[str, float], run_name: str) -> str:
    """The leaderboard as text in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "csv":
        return board.to_csv()
    if fmt == "md":
        return board.to_markdown(f"Leaderboard — {run_name}")
    if fmt == "html":
        return to_html(board, weights, run_name)
    if fmt == "json":
        return to_json(board, weights, run_name)
    raise ValueError(f"unknown format {fmt!r}")


def run_weights(manifest: Mapping[str, Any] | None, weights: Mapping[str, float] | None = None) -> dict[str, float]:
    """``weights`` when given, else the ones the run's config stored (``run.json``), over the defaults."""
    if weights is None:
        weights = ((manifest or {}).get("config") or {}).get("weights")
    return resolve_weights(weights)


def export_run(run: RunDirectory | Path, fmt: str, weights: Mapping[str, float] | None = None) -> str:
    """A run's leaderboard, rebuilt from its directory, as text in ``fmt``."""
    run = RunDirectory(run)
    board = lb.load(run, weights)
    return export(board, fmt, board.weights, run.name)

