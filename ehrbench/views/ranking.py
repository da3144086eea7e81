"""The weighted overall ranking, its bootstrap interval, and the Friedman test across metrics.

Per metric, generators are ranked by paired tests (``significance``), among the generators that
are not calibration rows. The overall ranking averages a generator's per-metric ranks within
each category (each metric once: its headline), then takes the weighted mean of the category
averages with the use-case weights of the run config (DESIGN.md §8 "Overall ranking").
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from contextlib import contextmanager
from typing import Protocol

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from ehrbench.api import LEADERBOARD_CATEGORIES, Direction
from ehrbench.config import resolve_weights
from ehrbench.rundir.records import record_direction
from ehrbench.views import significance as sig


class Leaderboard(Protocol):
    """What the overall ranking reads of a ``views.leaderboard.Leaderboard`` (which imports this module)."""

    table: pd.DataFrame  # one row per (generator, metric): calibration, category, ranked, direction fields, mean, rank
    values: pd.DataFrame  # one row per repeat: generator, repeat, metric, value
    weights: dict[str, float]


BOOTSTRAP_REPLICATES = 1000
BOOTSTRAP_SEED = 0  # the interval is a property of the run's results: the same every time it is rebuilt


@contextmanager
def _quiet():
    """nanmean of all-NaN slices (a generator without a value) is NaN, said without a warning."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def entry_names(table: pd.DataFrame) -> pd.Series:
    """For each ranked row of ``table``, the category entry it counts in (NaN: it does not count).

    A metric's entry is its headline (the bare metric name); a metric without a headline counts
    once, under its name, by the mean rank of its ranked keys; a sub-key counts on its own only
    when its metric declared it (``ranked_alone``).
    """
    ranked = table[table["ranked"].astype(bool)]
    metric = ranked["metric"].astype(str)
    base = metric.str.split(".", n=1).str[0]
    headline = ~metric.str.contains(".", regex=False)
    if "ranked_alone" in ranked.columns:
        alone = pd.Series([bool(v) if pd.notna(v) else False for v in ranked["ranked_alone"]], index=ranked.index)
    else:  # a table built before ranked_alone existed
        alone = pd.Series(False, index=ranked.index)
    with_headline = set(base[headline])
    return metric.where(headline | alone, base.where(~base.isin(with_headline)))


def category_entries(table: pd.DataFrame) -> pd.DataFrame:
    """The ranks a category's mean is taken over: one entry per metric (DESIGN.md §8).

    Returns columns generator, category, entry, rank (rows without a rank are left out).
    """
    columns = ["generator", "category", "entry", "rank"]
    ranked = table[table["ranked"].astype(bool) & table["rank"].notna()]
    if ranked.empty:
        return pd.DataFrame(columns=columns)
    out = ranked.assign(entry=entry_names(table).reindex(ranked.index)).dropna(subset=["entry"])
    return out.groupby(["generator", "category", "entry"], sort=False)["rank"].mean().reset_index()[columns]


def category_mean_ranks(table: pd.DataFrame) -> pd.DataFrame:
    """Generators × categories: the mean over a category's entries (:func:`category_entries`)."""
    entries = category_entries(table)
    if entries.empty:
        return pd.DataFrame()
    return entries.pivot_table(index="generator", columns="category", values="rank", aggfunc="mean")


def _weighted(per_cat: pd.DataFrame, weights: Mapping[str, float]) -> tuple[pd.Series, pd.DataFrame]:
    weight_row = pd.Series(weights).reindex(per_cat.columns).fillna(0.0)
    present = per_cat.notna() & (weight_row > 0)
    weighted = per_cat.fillna(0.0).mul(weight_row, axis=1).where(present, 0.0).sum(axis=1)
    total = present.mul(weight_row, axis=1).sum(axis=1)
    return weighted / total.where(total > 0), present


def overall_ranking(table: pd.DataFrame, weights: Mapping[str, float] | None = None) -> pd.DataFrame:
    """One row per generator: mean rank per category, the weighted score, and the overall rank.

    ``table`` is a leaderboard's long table (columns generator, calibration, category, metric,
    ranked, rank, and optionally ranked_alone). A category's mean is over its metrics, each
    counted once (:func:`category_entries`). A category a generator has no ranked metric in is
    left out of its weighted mean; ``categories_used`` says which ones counted. Lower score is
    better; ties share the lower rank. Calibration rows have no ranks, so no score: they are
    listed last, for reference.
    """
    w = resolve_weights(weights)
    columns = ["generator", "calibration", *LEADERBOARD_CATEGORIES, "score", "overall_rank", "categories_used"]
    per_cat = category_mean_ranks(table)
    if per_cat.empty:
        return pd.DataFrame(columns=columns)
    generators = list(dict.fromkeys(table["generator"]))
    per_cat = per_cat.reindex(index=generators, columns=list(LEADERBOARD_CATEGORIES))
    score, present = _weighted(per_cat, w)
    out = per_cat.reset_index().rename(columns={"index": "generator"})
    out["score"] = score.to_numpy()
    out["overall_rank"] = out["score"].rank(method="min", na_option="keep")
    out["categories_used"] = [",".join(c for c in per_cat.columns if present.loc[g, c]) for g in per_cat.index]
    calibration = table.groupby("generator", sort=False)["calibration"].first()
    out["calibration"] = out["generator"].map(calibration).astype(bool)
    order = {g: i for i, g in enumerate(generators)}
    out = out.sort_values(["overall_rank", "generator"], key=lambda s: s.map(order) if s.name == "generator" else s,
                          na_position="last")
    return out[columns].reset_index(drop=True)


def badness_matrix(values: pd.DataFrame, metric: str, generators: list[str], direction: Direction,
                   repeats: list[int]) -> np.ndarray:
    """Generators × repeats of one metric's badness (smaller is better; NaN where a repeat is missing)."""
    part = values[values["metric"] == metric]
    wide = part.pivot_table(index="generator", columns="repeat", values="value", aggfunc="first", dropna=False)
    raw = wide.reindex(index=generators, columns=repeats).to_numpy(dtype=float)
    if direction.target is not None:
        return np.abs(raw - direction.target)
    return -raw if direction.higher_is_better else raw


def _contenders(board: Leaderboard) -> list[str]:
    table = board.table
    return list(dict.fromkeys(table.loc[~table["calibration"].astype(bool), "generator"]))


def _ranked_keys(board: Leaderboard, weights: Mapping[str, float]) -> pd.DataFrame:
    """The ranked rows of the weighted categories, with the entry each counts in."""
    table = board.table
    ranked = table[table["ranked"].astype(bool)]
    ranked = ranked.assign(entry=entry_names(table).reindex(ranked.index)).dropna(subset=["entry"])
    weighted = ranked["category"].map(lambda c: weights.get(c, 0) > 0).astype(bool)  # bool even when empty
    return ranked.loc[weighted]


def replicate_ranks(badness: np.ndarray, draws: np.ndarray, alpha: float = sig.ALPHA) -> np.ndarray:
    """Generators × replicates: the leaderboard's ranks when the repeats are redrawn (``draws``:
    replicates × repeats, column indices of ``badness``), each pair's spread held at its observed one."""
    tests = sig.pair_tests(badness, alpha)
    with _quiet():
        means = np.nanmean(badness[:, draws], axis=2)  # generators × replicates
        differences = np.nanmean((badness[tests.i] - badness[tests.j])[:, draws], axis=2)  # pairs × replicates
    p = sig.paired_p_values(differences, tests.std_difference[:, None], tests.n[:, None])
    verdict = sig.verdicts(differences, sig.holm(p), alpha)
    return sig.grouped_ranks(means, tests.i, tests.j, verdict)


def overall_with_interval(board: Leaderboard, weights: Mapping[str, float] | None = None,
                          replicates: int = BOOTSTRAP_REPLICATES, seed: int = BOOTSTRAP_SEED) -> pd.DataFrame:
    """:func:`overall_ranking` plus ``score_low`` and ``score_high``: the 2.5–97.5 % range of the score
    over bootstrap replicates that redraw the repeats (one draw for every generator, keeping the
    pairing) and, within each category, its metric entries, and rank as the leaderboard does."""
    w = resolve_weights(weights)
    overall = overall_ranking(board.table, w)
    overall["score_low"] = np.nan
    overall["score_high"] = np.nan
    names = _contenders(board)
    keys = _ranked_keys(board, w)
    if overall.empty or not names or keys.empty or board.values.empty:
        return overall
    repeats = sorted(board.values["repeat"].unique().tolist())
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(repeats), size=(replicates, len(repeats)))
    key_ranks = {}
    for metric, part in keys.groupby("metric", sort=False):
        direction: Direction = record_direction(part.iloc[0])  # type: ignore[assignment]
        bad = badness_matrix(board.values, metric, names, direction, repeats)
        means = part.set_index("generator")["mean"].reindex(names)
        bad[means.isna().to_numpy()] = np.nan
        key_ranks[metric] = replicate_ranks(bad, draws)
    per_category = {}
    for category, part in keys.groupby("category", sort=False):
        entries = []
        for _, rows in part.groupby("entry", sort=False):
            with _quiet():
                entries.append(np.nanmean([key_ranks[m] for m in dict.fromkeys(rows["metric"])], axis=0))
        stacked = np.stack(entries)  # entries × generators × replicates
        pick = rng.integers(0, len(entries), size=(len(entries), replicates))
        drawn = np.take_along_axis(stacked, np.repeat(pick[:, None, :], len(names), axis=1), axis=0)
        with _quiet():
            per_category[category] = np.nanmean(drawn, axis=0)  # generators × replicates
    weight = np.array([w.get(c, 0.0) for c in per_category])
    means = np.stack(list(per_category.values()))  # categories × generators × replicates
    present = np.isfinite(means)
    total = (present * weight[:, None, None]).sum(axis=0)
    with _quiet():
        score = (np.where(present, means, 0.0) * weight[:, None, None]).sum(axis=0) / np.where(total > 0, total, np.nan)
        low, high = np.nanpercentile(score, [2.5, 97.5], axis=1)  # per generator; NaN for one without a score
    index = {g: k for k, g in enumerate(names)}
    for row, gen in enumerate(overall["generator"]):
        if gen in index:
            overall.loc[row, "score_low"] = low[index[gen]]
            overall.loc[row, "score_high"] = high[index[gen]]
    return overall


def friedman_ranks(board: Leaderboard, weights: Mapping[str, float] | None = None) -> tuple[np.ndarray, list[str], list[str]]:
    """Blocks × generators for Friedman's test: per ranked metric entry of a weighted category, the
    generators (not calibration rows) ranked by mean (1 best, ties averaged); an entry of several
    keys ranks the mean of its keys' ranks. Returns the ranks, the generators and the entries."""
    w = resolve_weights(weights if weights is not None else board.weights)
    names = _contenders(board)
    keys = _ranked_keys(board, w)
    keys = keys[keys["generator"].isin(names)]
    rows, labels = [], []
    for entry, part in keys.groupby("entry", sort=False):
        per_key = []
        for metric, rows_ in part.groupby("metric", sort=False):
            direction: Direction = record_direction(rows_.iloc[0])  # type: ignore[assignment]
            bad = rows_.set_index("generator")["mean"].reindex(names).map(direction.badness).to_numpy(dtype=float)
            per_key.append(rankdata(bad) if np.isfinite(bad).all() else np.full(len(names), np.nan))
        mean = np.mean(per_key, axis=0)
        rows.append(rankdata(mean) if np.isfinite(mean).all() else mean)
        labels.append(str(entry))
    return np.array(rows, dtype=float).reshape(len(rows), len(names)), names, labels


def friedman_test(board: Leaderboard, weights: Mapping[str, float] | None = None) -> sig.Friedman | None:
    """Friedman's test over the ranked metric entries and Nemenyi's critical difference (Demšar 2006)."""
    ranks, names, _ = friedman_ranks(board, weights)
    return sig.friedman_nemenyi(ranks, names)
