"""Differences between two runs, per generator and metric, with a test of each and its spread.

``ehrbench compare RUN_A RUN_B`` reads both leaderboards from their ``results.jsonl``. The runs
are independent samples of repeats, so each difference is tested with Welch's t-test on the
per-repeat distances from the ideal (badness), Holm-corrected over the generators of each
metric (5 % family-wise). A difference the test cannot confirm is "within noise", with roughly
how many repeats per run would confirm it at the observed spread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ehrbench.api import INFO_TEXT, LEADERBOARD_CATEGORIES, parse_direction
from ehrbench.rundir.directory import RunDirectory
from ehrbench.views import leaderboard as lb
from ehrbench.views import significance as sig
from ehrbench.views.text import format_mean_std, format_number

COLUMNS = ["generator", "category", "metric", "direction", "mean_a", "std_a", "n_a", "mean_b", "std_b", "n_b",
           "difference", "verdict", "p_holm", "repeats_needed"]
WITHIN_NOISE = "within noise"


def _badness_stats(board: lb.Leaderboard) -> pd.DataFrame:
    """Per (generator, metric) of the ranked rows: mean, sample std and count of badness over repeats."""
    ranked = board.table[board.table["ranked"]][["generator", "metric", "direction"]]
    values = board.values.merge(ranked, on=["generator", "metric"])
    if values.empty:
        return pd.DataFrame(columns=["generator", "metric", "bad_mean", "bad_std", "bad_n"])
    values["bad"] = [parse_direction(d).badness(v) if np.isfinite(v) else np.nan  # type: ignore[union-attr]
                     for d, v in zip(values["direction"], values["value"])]
    grouped = values.dropna(subset=["bad"]).groupby(["generator", "metric"], sort=False)["bad"]
    return grouped.agg(bad_mean="mean", bad_std=lambda v: v.std(ddof=1) if len(v) > 1 else np.nan,
                       bad_n="size").reset_index()


def _verdict(row: pd.Series) -> str:
    """B better / B worse (in the metric's direction, when the test confirms it), within noise, or only in one run."""
    if pd.isna(row["mean_a"]):
        return "only in B"
    if pd.isna(row["mean_b"]):
        return "only in A"
    if parse_direction(row["direction"]) is None:
        return INFO_TEXT
    if not np.isfinite(row["p_holm"]) or row["p_holm"] > sig.ALPHA:
        return WITHIN_NOISE
    return "B better" if row["bad_mean_b"] < row["bad_mean_a"] else "B worse"


def compare_runs(run_a: Path, run_b: Path) -> tuple[pd.DataFrame, list[str]]:
    """The per-(generator, metric) comparison of two runs and warnings on what makes them differ.

    ``difference`` is mean_B − mean_A; ``std_*`` are the sample stds over each run's repeats;
    ``p_holm`` is Welch's p on the distances from the ideal, Holm-corrected per metric;
    ``repeats_needed`` (rows within noise) roughly how many repeats per run would separate them.
    """
    a, b = (lb.build(RunDirectory(run).records()) for run in (run_a, run_b))
    keys = ["generator", "metric"]
    cols = keys + ["category", "direction", "mean", "std", "n"]
    merged = a.table[cols].merge(b.table[cols], on=keys, how="outer", suffixes=("_a", "_b"), sort=False)
    if merged.empty:
        return pd.DataFrame(columns=COLUMNS), _warnings(run_a, run_b)
    stats_a, stats_b = _badness_stats(a), _badness_stats(b)
    merged = merged.merge(stats_a, on=keys, how="left").merge(stats_b, on=keys, how="left", suffixes=("_a", "_b"))
    merged["category"] = merged["category_a"].fillna(merged["category_b"])
    merged["direction"] = merged["direction_a"].fillna(merged["direction_b"])
    merged["difference"] = merged["mean_b"] - merged["mean_a"]
    merged["p"] = sig.two_sample_p_values(merged["bad_mean_a"], merged["bad_std_a"], merged["bad_n_a"],
                                          merged["bad_mean_b"], merged["bad_std_b"], merged["bad_n_b"])
    merged["p_holm"] = np.nan
    merged["repeats_needed"] = np.nan
    for _, part in merged.groupby("metric", sort=False):
        merged.loc[part.index, "p_holm"] = sig.holm(part["p"].to_numpy())
        family = int(np.isfinite(part["p"]).sum())
        needed = sig.two_sample_repeats_needed(part["bad_mean_b"] - part["bad_mean_a"], part["bad_std_a"],
                                               part["bad_std_b"], family)
        merged.loc[part.index, "repeats_needed"] = needed
    merged["verdict"] = merged.apply(_verdict, axis=1)
    merged.loc[(merged["verdict"] != WITHIN_NOISE) | merged["p"].isna(), "repeats_needed"] = np.nan
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


HEADER = ["generator", "metric", "direction", "A mean ± std", "B mean ± std", "difference", "verdict",
          "repeats needed"]
DIGITS = 4  # a difference needs one digit more than a leaderboard cell


def repeats_text(value: float) -> str:
    """Roughly how many repeats per run would separate a pair within noise; empty for the others."""
    if pd.isna(value):
        return ""
    if not np.isfinite(value):
        return "never (no difference)"
    return f"more than {sig.MAX_REPEATS}" if value > sig.MAX_REPEATS else f"≈ {int(value)}"


def cells(row: Any) -> list[str]:
    """One comparison row (a ``compare_runs`` tuple) as the text of :data:`HEADER`'s columns."""
    return [row.generator, row.metric, row.direction, format_mean_std(row.mean_a, row.std_a, DIGITS),
            format_mean_std(row.mean_b, row.std_b, DIGITS), format_number(row.difference, DIGITS), row.verdict,
            repeats_text(row.repeats_needed)]


LEGEND = ("difference = mean B − mean A; std is the sample std over each run's repeats. A difference is B better or "
          "worse when Welch's t-test on the distances from the ideal confirms it (Holm-corrected over the "
          "generators of each metric, 5 % family-wise); otherwise it is within noise, and 'repeats needed' is "
          "roughly how many repeats per run would confirm it with 80 % power if the observed difference and spreads "
          "held.")


def to_markdown(table: pd.DataFrame, run_a: Path, run_b: Path, warnings: list[str]) -> str:
    lines = [f"# Comparison: {Path(run_b).name} (B) against {Path(run_a).name} (A)", "", LEGEND, ""]
    lines += [f"- warning: {w}" for w in warnings]
    if warnings:
        lines.append("")
    lines += ["| " + " | ".join(HEADER) + " |", "| " + " | ".join(["---"] * len(HEADER)) + " |"]
    lines += ["| " + " | ".join(cells(r)) + " |" for r in table.itertuples()]
    return "\n".join(lines) + "\n"
