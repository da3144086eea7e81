"""Rankings that are honest about noise, and the weighted overall ranking.

Per metric, generators are ranked by their mean over repeats, but a difference smaller
than the repeat spread is a tie, not a ranking (DESIGN.md §8 "Noise-aware ranks"). The
overall ranking averages a generator's per-metric ranks within each category (each metric
once: its headline), then takes the weighted mean of the category averages with the
use-case weights of the run config.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ehrbench.api import LEADERBOARD_CATEGORIES
from ehrbench.config import resolve_weights


def noise_aware_ranks(badness: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """Competition ranks (1 is best) of ``badness`` (smaller is better) where close values tie.

    Walking from the best value, a generator shares the rank of the current group's leader
    when its distance to the leader is smaller than the larger of their two repeat spreads
    (sample std; NaN, as with one repeat, counts as 0, leaving only exact ties). Otherwise it
    leads a new group whose rank is its position. Leader-anchored groups keep ties
    transitive. NaN badness gets a NaN rank.
    """
    badness = np.asarray(badness, dtype=float)
    spread = np.nan_to_num(np.asarray(spread, dtype=float), nan=0.0)
    ranks = np.full(badness.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(badness))
    order = valid[np.argsort(badness[valid], kind="stable")]
    leader = -1
    for position, i in enumerate(order, start=1):  # one step per generator, never per row or code
        if leader >= 0 and (
            badness[i] == badness[leader] or badness[i] - badness[leader] < max(spread[i], spread[leader])
        ):
            ranks[i] = ranks[leader]
        else:
            leader = i
            ranks[i] = position
    return ranks


def category_entries(table: pd.DataFrame) -> pd.DataFrame:
    """The ranks a category's mean is taken over: one entry per metric (DESIGN.md §8).

    A metric's entry is its headline's rank (the bare metric name); a metric without a headline
    counts once, by the mean rank of its ranked keys; a sub-key counts on its own only when its
    metric declared it (``ranked_alone`` in the table, from ``Metric.ranked_alone``). Returns
    columns generator, category, entry, rank.
    """
    columns = ["generator", "category", "entry", "rank"]
    ranked = table[table["ranked"].astype(bool) & table["rank"].notna()]
    if ranked.empty:
        return pd.DataFrame(columns=columns)
    metric = ranked["metric"].astype(str)
    base = metric.str.split(".", n=1).str[0]
    headline = ~metric.str.contains(".", regex=False)
    if "ranked_alone" in ranked.columns:
        alone = pd.Series([bool(v) if pd.notna(v) else False for v in ranked["ranked_alone"]], index=ranked.index)
    else:  # a table built before ranked_alone existed
        alone = pd.Series(False, index=ranked.index)
    with_headline = set(base[headline])
    entry = metric.where(headline | alone, base.where(~base.isin(with_headline)))
    out = ranked.assign(entry=entry).dropna(subset=["entry"])
    return out.groupby(["generator", "category", "entry"], sort=False)["rank"].mean().reset_index()[columns]


def category_mean_ranks(table: pd.DataFrame) -> pd.DataFrame:
    """Generators × categories: the mean over a category's entries (:func:`category_entries`)."""
    entries = category_entries(table)
    if entries.empty:
        return pd.DataFrame()
    return entries.pivot_table(index="generator", columns="category", values="rank", aggfunc="mean")


def overall_ranking(table: pd.DataFrame, weights: Mapping[str, float] | None = None) -> pd.DataFrame:
    """One row per generator: mean rank per category, the weighted score, and the overall rank.

    ``table`` is a leaderboard's long table (columns generator, calibration, category, metric,
    ranked, rank, and optionally ranked_alone). A category's mean is over its metrics, each
    counted once (:func:`category_entries`). A category a generator has no ranked metric in is
    left out of its weighted mean; ``categories_used`` says which ones counted. Lower score is
    better; ties share the lower rank.
    """
    w = resolve_weights(weights)
    columns = ["generator", "calibration", *LEADERBOARD_CATEGORIES, "score", "overall_rank", "categories_used"]
    per_cat = category_mean_ranks(table)
    if per_cat.empty:
        return pd.DataFrame(columns=columns)
    per_cat = per_cat.reindex(columns=list(LEADERBOARD_CATEGORIES))
    weight_row = pd.Series(w).reindex(per_cat.columns).fillna(0.0)
    present = per_cat.notna() & (weight_row > 0)
    weighted = per_cat.fillna(0.0).mul(weight_row, axis=1).where(present, 0.0).sum(axis=1)
    total = present.mul(weight_row, axis=1).sum(axis=1)
    out = per_cat.reset_index()
    out["score"] = (weighted / total.where(total > 0)).to_numpy()
    out["overall_rank"] = out["score"].rank(method="min", na_option="keep")
    out["categories_used"] = [",".join(c for c in per_cat.columns if present.loc[g, c]) for g in per_cat.index]
    calibration = table.groupby("generator", sort=False)["calibration"].first()
    out["calibration"] = out["generator"].map(calibration).astype(bool)
    order = {g: i for i, g in enumerate(dict.fromkeys(table["generator"]))}
    out = out.sort_values(["overall_rank", "generator"], key=lambda s: s.map(order) if s.name == "generator" else s,
                          na_position="last")
    return out[columns].reset_index(drop=True)
