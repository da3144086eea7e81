"""Differences between two runs, per generator and metric, each with its repeat spread.

``ehrbench compare RUN_A RUN_B`` reads both leaderboards from their ``results.jsonl``. A
difference smaller than the larger of the two spreads is marked as within noise, the same
rule the leaderboard ranks with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ehrbench.api import INFO_TEXT, LEADERBOARD_CATEGORIES, parse_direction
from ehrbench.rundir.directory import RunDirectory
from ehrbench.views import leaderboard as lb
from ehrbench.views.text import format_mean_std, format_number

COLUMNS = ["generator", "category", "metric", "direction", "mean_a", "std_a", "n_a", "mean_b", "std_b", "n_b",
           "difference", "verdict"]


def _verdict(row: pd.Series) -> str:
    """better / worse (B against A, in the metric's direction), within noise, or only in one run."""
    if pd.isna(row["mean_a"]):
        return "only in B"
    if pd.isna(row["mean_b"]):
        return "only in A"
    direction = parse_direction(row["direction"])
    if direction is None:
        return INFO_TEXT
    spread = np.nanmax([row["std_a"], row["std_b"], 0.0])
    if abs(row["difference"]) < spread or row["difference"] == 0:
        return "within noise"
    better = direction.badness(row["mean_b"]) < direction.badness(row["mean_a"])
    return "B better" if better else "B worse"


def compare_runs(run_a: Path, run_b: Path) -> tuple[pd.DataFrame, list[str]]:
    """The per-(generator, metric) comparison of two runs and warnings on what makes them differ.

    ``difference`` is mean_B − mean_A; ``std_*`` are the sample stds over each run's repeats.
    """
    a, b = (lb.build(RunDirectory(run).records()) for run in (run_a, run_b))
    keys = ["generator", "metric"]
    cols = keys + ["category", "direction", "mean", "std", "n"]
    merged = a.table[cols].merge(b.table[cols], on=keys, how="outer", suffixes=("_a", "_b"), sort=False)
    if merged.empty:
        return pd.DataFrame(columns=COLUMNS), _warnings(run_a, run_b)
    merged["category"] = merged["category_a"].fillna(merged["category_b"])
    merged["direction"] = merged["direction_a"].fillna(merged["direction_b"])
    merged["difference"] = merged["mean_b"] - merged["mean_a"]
    merged["verdict"] = merged.apply(_verdict, axis=1)
    order = {c: i for i, c in enumerate(LEADERBOARD_CATEGORIES)}
    merged["_c"] = merged["category"].map(lambda c: order.get(c, len(order)))
    merged = merged.sort_values(["_c"], kind="stable").drop(columns="_c")
    return merged[COLUMNS].reset_index(drop=True), _warnings(run_a, run_b)


def _warnings(run_a: Path, run_b: Path) -> list[str]:
    """Settings that differ between the runs, so differences may not be the generators' doing."""
    ma, mb = (RunDirectory(run).read_manifest_if_present() or {} for run in (run_a, run_b))
    out = []
    checks = [
        ("dataset", lambda m: (m.get("dataset") or {}).get("name")),
        ("dataset fingerprint", lambda m: (m.get("dataset") or {}).get("fingerprint")),
        ("representation", lambda m: (m.get("dataset") or {}).get("representation")),
        ("profile", lambda m: (m.get("config") or {}).get("profile")),
        ("synthetic records per repeat", lambda m: m.get("n_samples")),
        ("split", lambda m: m.get("split")),
        ("metric options", lambda m: m.get("metric_options")),
        ("device", lambda m: (m.get("device") or {}).get("device")),
    ]
    for label, get in checks:
        va, vb = get(ma), get(mb)
        if va != vb:
            out.append(f"{label} differs: A {va!r}, B {vb!r}")
    return out


def to_csv(table: pd.DataFrame) -> str:
    return table.to_csv(index=False, float_format="%.10g")


HEADER = ["generator", "metric", "direction", "A mean ± std", "B mean ± std", "difference", "verdict"]
DIGITS = 4  # a difference needs one digit more than a leaderboard cell


def cells(row: Any) -> list[str]:
    """One comparison row (a ``compare_runs`` tuple) as the text of :data:`HEADER`'s columns."""
    return [row.generator, row.metric, row.direction, format_mean_std(row.mean_a, row.std_a, DIGITS),
            format_mean_std(row.mean_b, row.std_b, DIGITS), format_number(row.difference, DIGITS), row.verdict]


def to_markdown(table: pd.DataFrame, run_a: Path, run_b: Path, warnings: list[str]) -> str:
    lines = [f"# Comparison: {Path(run_b).name} (B) against {Path(run_a).name} (A)", "",
             "difference = mean B − mean A; std is the sample std over each run's repeats; a difference "
             "smaller than the larger std is within noise.", ""]
    lines += [f"- warning: {w}" for w in warnings]
    if warnings:
        lines.append("")
    lines += ["| " + " | ".join(HEADER) + " |", "| " + " | ".join(["---"] * len(HEADER)) + " |"]
    lines += ["| " + " | ".join(cells(r)) + " |" for r in table.itertuples()]
    return "\n".join(lines) + "\n"
