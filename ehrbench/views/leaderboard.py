"""Leaderboards: aggregate ``results.jsonl`` alone into means with intervals, tested ranks, noise floors.

``leaderboard.csv`` is long format, one row per (generator, metric) with columns
generator, calibration, category, metric, direction, n, mean, std, rank, ci_low, ci_high,
shared_se, noise_floor. Cost columns come from the runner's cost records (category ``cost``).
``std`` is the sample standard deviation over repeats (empty with one repeat); ``ci_low`` and
``ci_high`` the 95 % interval of the mean (``significance.mean_interval``), ``shared_se`` the
standard error the metric reported for the noise every repeat shares (empty when it reports
none). Rank 1 is best, among the generators that are not calibration rows; generators that paired
tests cannot tell apart share one (``significance.significance_ranks``). ``noise_floor`` places a
generator against the two ends of the calibration rows' band (:func:`noise_floor_marks`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ehrbench.api import COST, LEADERBOARD_CATEGORIES, Direction, direction_text, parse_direction
from ehrbench.atomic import write_text_atomic
from ehrbench.config import resolve_weights
from ehrbench.errors import InputError
from ehrbench.rundir.directory import RunDirectory
from ehrbench.rundir.records import (Kind, Status, current_records, direction_fields, flag_kind, job_key, of_kind,
                                     ok_jobs, record_direction)
from ehrbench.views import significance as sig
from ehrbench.views.provenance import dataset_notice
from ehrbench.views.ranking import badness_matrix, category_mean_ranks, overall_with_interval
from ehrbench.views.text import (AS_GOOD_AS, FLOOR_MARKS, MISSING, NO_BETTER_THAN, arrow, floor_legend,
                                 format_estimate, format_mean_std, format_number, weights_text)

COST_DIRECTIONS: dict[str, Direction | None] = {
    "fit_seconds": Direction(False),
    "sample_seconds": Direction(False),
    "fit_cpu_seconds": Direction(False),  # user + system of the job's own process (execution/cost.py)
    "sample_cpu_seconds": Direction(False),
    "records_per_second": Direction(True),
    "peak_rss_mb": Direction(False),
    "peak_gpu_mb": Direction(False),
    "parameters": None,
    "gpu_seconds": None,  # CUDA jobs: fit + sample on the device's clock (CUDA events)
    "gpu_utilization": None,  # CUDA jobs: mean % of that time a kernel ran (NVML)
}
# A generator's formal differential-privacy guarantee (Generator.privacy_guarantee, in its cost record):
# informational privacy rows, never ranked; empty (NaN) for a generator without one, never 0.
GUARANTEE_METRICS = {"epsilon": "dp_epsilon", "delta": "dp_delta"}
FLAG_COLUMNS = ["generator", "repeat", "warning"]
# A failure's traceback (when Python raised) marks the plugin's own frame; views show it on demand.
FAILURE_COLUMNS = ["generator", "repeat", "step", "reason", "traceback"]
GUARANTEE_NOTE = ("Formal (ε, δ)-differential privacy of the training, from the generator's own accountant "
                  f"(informational, never ranked); {MISSING} where a generator has no guarantee.")
CSV_COLUMNS = ["generator", "calibration", "category", "metric", "direction", "n", "mean", "std", "rank",
               "ci_low", "ci_high", "shared_se", "noise_floor"]
VALUE_COLUMNS = ["generator", "repeat", "metric", "value", "standard_error"]
PAIR_COLUMNS = ["metric", "category", "a", "b", "n", "mean_difference", "std_difference", "p", "p_holm", "verdict",
                "repeats_needed"]
TIE = "not distinguishable"


@dataclass
class Leaderboard:
    table: pd.DataFrame  # long format, CSV_COLUMNS plus "ranked", "ranked_alone", "higher_is_better", "target"
    failures: pd.DataFrame  # FAILURE_COLUMNS
    flags: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FLAG_COLUMNS))  # scored, but suspect
    notice: str | None = None  # e.g. "the data is simulated"; every output shows it first
    values: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=VALUE_COLUMNS))  # one per repeat
    pairs: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PAIR_COLUMNS))  # the paired tests
    weights: dict[str, float] = field(default_factory=lambda: resolve_weights(None))  # for the overall ranking
    _overall: dict[tuple, pd.DataFrame] = field(default_factory=dict, repr=False)  # by weights: a bootstrap each

    def generators(self) -> list[str]:
        return list(dict.fromkeys(self.table["generator"]))

    def categories(self) -> list[str]:
        present = set(self.table["category"])
        return [c for c in LEADERBOARD_CATEGORIES if c in present] + sorted(present - set(LEADERBOARD_CATEGORIES))

    def calibration_rows(self) -> list[str]:
        """The calibration generators (noise floors) on this leaderboard, in table order."""
        return list(dict.fromkeys(self.table.loc[self.table["calibration"].astype(bool), "generator"]))

    def ranked_metrics(self, category: str) -> list[str]:
        part = self.table[(self.table["category"] == category) & self.table["ranked"]]
        return list(dict.fromkeys(part["metric"]))

    def row(self, generator: str, metric: str) -> pd.Series | None:
        match = self.table[(self.table["generator"] == generator) & (self.table["metric"] == metric)]
        return None if match.empty else match.iloc[0]

    def header(self, metric: str) -> str:
        """A ranked metric's column title: its name and direction arrow."""
        return f"{metric} {arrow(parse_direction(self.table.loc[self.table['metric'] == metric, 'direction'].iloc[0]))}"

    def wide(self, category: str) -> tuple[list[str], list[list[str]]]:
        """Header and rows of one category's table: ``mean [CI] (rank) marks`` per ranked metric."""
        metrics = self.ranked_metrics(category)
        header = ["generator"] + [self.header(m) for m in metrics] + ["mean rank"]
        means = category_mean_ranks(self.table[self.table["category"] == category])
        means = means[category] if category in means else pd.Series(dtype=float)
        indexed = self.table[self.table["category"] == category].set_index(["generator", "metric"])
        tied = tied_cells(self.table)
        rows = []
        for gen in self.generators():
            if not any((gen, m) in indexed.index for m in metrics):
                continue
            calibration = bool(self.table.loc[self.table["generator"] == gen, "calibration"].iloc[0])
            cells = [gen + (" (calibration)" if calibration else "")]
            for m in metrics:
                if (gen, m) not in indexed.index:
                    cells.append(MISSING)
                    continue
                row = indexed.loc[(gen, m)]
                cells.append(" ".join(filter(None, [format_estimate(row["mean"], row["ci_low"], row["ci_high"]),
                                                    rank_text(row["rank"], (gen, m) in tied),
                                                    marks_text(row["noise_floor"])])))
            mean_rank = means.get(gen, float("nan"))
            cells.append(MISSING if pd.isna(mean_rank) else format_number(mean_rank))
            rows.append(cells)
        return header, rows

    def guarantees(self) -> tuple[list[str], list[list[str]]]:
        """Header and rows of the privacy-guarantee table (ε, δ per generator); no rows when no
        generator of the run has a guarantee. A generator without one shows an empty cell."""
        part = self.table[self.table["metric"].isin(GUARANTEE_METRICS.values())]
        header = ["generator", "ε (dp_epsilon)", "δ (dp_delta)"]
        rows = []
        for gen in self.generators():
            mine = part[part["generator"] == gen].set_index("metric")
            if mine.empty:
                continue
            rows.append([gen] + [_guarantee_cell(mine.loc[m]) if m in mine.index else MISSING
                                 for m in GUARANTEE_METRICS.values()])
        return header, rows

    def overall(self, weights: Mapping[str, float] | None = None) -> pd.DataFrame:
        """The weighted overall ranking (``ranking.overall_ranking``) with its bootstrap interval."""
        resolved = resolve_weights(weights if weights is not None else self.weights)
        key = tuple(sorted(resolved.items()))
        if key not in self._overall:
            self._overall[key] = overall_with_interval(self, resolved)
        return self._overall[key].copy()

    def to_csv(self) -> str:
        return self.table[CSV_COLUMNS].to_csv(index=False, float_format="%.10g")

    def to_markdown(self, title: str = "Leaderboard") -> str:
        lines = [f"# {title}", ""]
        if self.notice:
            lines += [f"**{self.notice}**", ""]
        lines.append(legend(self))
        for category in self.categories():
            header, rows = self.wide(category)
            if not rows:
                continue
            lines += ["", f"## {category.capitalize()}", "", _md_row(header), _md_row(["---"] * len(header))]
            lines += [_md_row(r) for r in rows]
        overall = self.overall()
        if not overall.empty:
            header, rows = overall_rows(overall, self.weights)
            lines += ["", "## Overall ranking", "", overall_legend(self.weights), "", _md_row(header),
                      _md_row(["---"] * len(header))]
            lines += [_md_row(r) for r in rows]
        header, rows = self.guarantees()
        if rows:
            lines += ["", "## Privacy guarantee", "", GUARANTEE_NOTE, "", _md_row(header), _md_row(["---"] * len(header))]
            lines += [_md_row(r) for r in rows]
        if not self.flags.empty:
            lines += ["", "## Flags", "", "Jobs whose samples look degenerate; their numbers are scored but suspect.", "",
                      _md_row(FLAG_COLUMNS), _md_row(["---"] * 3)]
            for f in self.flags.itertuples():
                lines.append(_md_row([f.generator, str(f.repeat), str(f.warning).replace("|", "\\|")]))
        if not self.failures.empty:
            lines += ["", "## Failures", "", _md_row(["generator", "repeat", "step", "reason"]), _md_row(["---"] * 4)]
            for f in self.failures.itertuples():
                lines.append(_md_row([f.generator, str(f.repeat), f.step, str(f.reason).replace("|", "\\|")]))
        return "\n".join(lines) + "\n"


def legend(board: Leaderboard) -> str:
    """What a cell says, for every view of the leaderboard."""
    text = (
        "Cells: mean over repeats [95 % confidence interval] (rank). The interval combines the spread over "
        "repeats with the noise the metric reports for the real test rows every repeat shares. Rank 1 is best, "
        "among the generators that are not calibration rows, by mean; walking down, a generator shares the rank "
        "of the group above when a paired t-test (by repeat, Holm-corrected over the metric's pairs, 5 % "
        "family-wise) separates it from none of that group (=), so a rank is never better than the test allows. "
        "↑ higher is better, ↓ lower is better, →x closer to x is better."
    )
    if not board.values.empty and board.values.groupby(["generator", "metric"]).size().max() < 2:
        text += " With one repeat no pair can be tested, so every generator shares rank 1: run 3 or more repeats."
    calibration = board.calibration_rows()
    if calibration:
        text += (f" Calibration rows ({', '.join(calibration)}) are the scale, not contestants: they are shown but "
                 f"never ranked. {floor_legend()}")
    return text


def overall_legend(weights: Mapping[str, float]) -> str:
    return (f"Score: the weighted mean of each category's mean rank (weights {weights_text(weights)}); lower is "
            f"better. The interval is the 2.5–97.5 % range over 1,000 bootstrap draws of the repeats and of the "
            f"metrics within each category.")


def overall_rows(overall: pd.DataFrame, weights: Mapping[str, float]) -> tuple[list[str], list[list[str]]]:
    """Header and text rows of the overall ranking (categories with weight 0 are left out)."""
    categories = [c for c in LEADERBOARD_CATEGORIES if weights.get(c, 0) > 0]
    header = ["rank", "generator", "score [95 % CI]", *categories]
    rows = []
    for r in overall.itertuples():
        if r.calibration:
            rank, score = "cal.", "not ranked"
        else:
            rank = MISSING if pd.isna(r.overall_rank) else str(int(r.overall_rank))
            score = format_estimate(r.score, r.score_low, r.score_high)
        rows.append([rank, r.generator, score, *(format_number(float(getattr(r, c))) for c in categories)])
    return header, rows


def rank_text(rank: float, tied: bool) -> str:
    """``(3)`` or ``(=3)`` when shared; nothing for an unranked row."""
    return "" if pd.isna(rank) else f"({'=' if tied else ''}{int(rank)})"


def marks_text(noise_floor: object) -> str:
    """The noise-floor marks of a cell (▲ ▼), from the ``noise_floor`` column."""
    if not isinstance(noise_floor, str) or not noise_floor:
        return ""
    kinds = [part.split(":", 1)[0] for part in noise_floor.split(";")]
    return "".join(FLOOR_MARKS[k] for k in (AS_GOOD_AS, NO_BETTER_THAN) if k in kinds)


def tied_cells(table: pd.DataFrame) -> set[tuple[str, str]]:
    """(generator, metric) pairs whose rank another generator shares."""
    ranked = table[table["rank"].notna()]
    shared = ranked.groupby(["metric", "rank"])["generator"].transform("size") > 1
    return set(zip(ranked.loc[shared, "generator"], ranked.loc[shared, "metric"]))


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _cost_rows(records: list[dict]) -> list[dict]:
    rows = []
    for r in of_kind(records, Kind.COST):
        if r.get("status") != Status.OK:
            continue
        for key, direction in COST_DIRECTIONS.items():
            if r.get(key) is None:
                continue
            rows.append({
                "generator": r["generator"], "repeat": r["repeat"], "calibration": r.get("calibration", False),
                "category": COST, "metric": key, "value": float(r[key]), **direction_fields(direction),
            })
    return rows


def _guarantee_cell(row: pd.Series) -> str:
    """ε or δ over repeats: the mean, with the spread only when the repeats differ (the same settings
    give the same guarantee, up to rounding)."""
    if pd.isna(row["mean"]):
        return MISSING
    spread = row["std"] if pd.notna(row["std"]) and row["std"] > 1e-9 * abs(row["mean"]) else float("nan")
    return format_mean_std(row["mean"], spread)


def _guarantee_rows(records: list[dict]) -> list[dict]:
    """``dp_epsilon`` / ``dp_delta`` rows for every scored job, when any job of the run has a guarantee."""
    costs = [r for r in of_kind(records, Kind.COST) if r.get("status") == Status.OK]
    if not any(r.get("epsilon") is not None for r in costs):
        return []
    return [{"generator": r["generator"], "repeat": r["repeat"], "calibration": r.get("calibration", False),
             "category": "privacy", "metric": metric,
             "value": float(r[key]) if r.get(key) is not None else float("nan"), **direction_fields(None)}
            for r in costs for key, metric in GUARANTEE_METRICS.items()]


# -- intervals, tests, ranks, noise floors ---------------------------------------------------------
def badness_interval(direction: Direction, low: float, high: float) -> tuple[float, float]:
    """The interval of badness (smaller is better) that a value interval [low, high] maps to."""
    if direction.target is not None:
        ends = sorted((abs(low - direction.target), abs(high - direction.target)))
        return (0.0 if low <= direction.target <= high else ends[0], ends[1])
    return (-high, -low) if direction.higher_is_better else (low, high)


def noise_floor_marks(part: pd.DataFrame, direction: Direction) -> dict[str, str]:
    """Per generator of one metric: where its interval sits against the calibration rows' band.

    The band runs from the calibration row with the best mean to the one with the worst (two or
    more must have a value). ``as_good_as:<best>`` when the generator's interval reaches the best
    row's interval or beyond (not clearly worse: on fidelity, as good as real data);
    ``no_better_than:<worst>`` when it does not lie wholly on the better side of the worst row's
    interval (on fidelity, no better than ignoring correlations). Each names, comma-separated,
    every calibration row whose interval overlaps that end's, so a band inside the noise (the
    rows cannot be told apart) names them all. A missing interval counts as the mean alone.
    """
    spans = {}
    for _, row in part.iterrows():
        if pd.isna(row["mean"]):
            continue
        low, high = (row["ci_low"], row["ci_high"]) if pd.notna(row["ci_low"]) else (row["mean"], row["mean"])
        spans[row["generator"]] = (direction.badness(row["mean"]), *badness_interval(direction, low, high))
    calibration = [g for g in part.loc[part["calibration"].astype(bool), "generator"] if g in spans]
    if len(calibration) < 2:
        return {}
    best = min(calibration, key=lambda g: spans[g][0])
    worst = max(calibration, key=lambda g: spans[g][0])

    def overlapping(end: str) -> str:
        return ",".join(g for g in calibration if spans[g][1] <= spans[end][2] and spans[end][1] <= spans[g][2])

    marks = {}
    for gen in part.loc[~part["calibration"].astype(bool), "generator"]:
        if gen not in spans:
            continue
        _, low, high = spans[gen]
        found = []
        if low <= spans[best][2]:
            found.append(f"{AS_GOOD_AS}:{overlapping(best)}")
        if high >= spans[worst][1]:
            found.append(f"{NO_BETTER_THAN}:{overlapping(worst)}")
        if found:
            marks[gen] = ";".join(found)
    return marks


def _rank_metric(table: pd.DataFrame, values: pd.DataFrame, repeats: list[int]) -> list[dict]:
    """Rank every ranked metric among the generators that are not calibration rows; collect the pairs."""
    pairs = []
    for metric, part in table[table["ranked"]].groupby("metric", sort=False):
        direction: Direction = record_direction(part.iloc[0])  # type: ignore[assignment]
        contenders = part[~part["calibration"].astype(bool)]
        names = contenders["generator"].tolist()
        if not names:
            continue
        bad = badness_matrix(values, metric, names, direction, repeats)
        valid = contenders["mean"].notna().to_numpy()
        bad[~valid] = np.nan
        tests = sig.pair_tests(bad)
        table.loc[contenders.index, "rank"] = sig.significance_ranks(bad, tests)
        family = int(np.isfinite(tests.p).sum())
        needed = sig.repeats_needed(tests.mean_difference, tests.std_difference, family)
        for k in range(tests.i.size):
            a, b = names[tests.i[k]], names[tests.j[k]]
            if not (valid[tests.i[k]] and valid[tests.j[k]]):
                continue
            verdict = {-1: f"{a} better", 1: f"{b} better"}.get(int(tests.verdict[k]), TIE)
            pairs.append({"metric": metric, "category": part["category"].iloc[0], "a": a, "b": b,
                          "n": int(tests.n[k]), "mean_difference": tests.mean_difference[k],
                          "std_difference": tests.std_difference[k], "p": tests.p[k], "p_holm": tests.p_holm[k],
                          "verdict": verdict, "repeats_needed": needed[k] if verdict == TIE else np.nan})
    return pairs


def _intervals(table: pd.DataFrame, values: pd.DataFrame) -> None:
    grouped = {key: part for key, part in values.groupby(["generator", "metric"], sort=False)}
    low, high, shared = [], [], []
    for gen, metric in zip(table["generator"], table["metric"]):
        part = grouped[(gen, metric)]
        interval = sig.mean_interval(part["value"].to_numpy(), part["standard_error"].to_numpy(dtype=float))
        low.append(interval.low)
        high.append(interval.high)
        errors = part["standard_error"].to_numpy(dtype=float)
        errors = errors[np.isfinite(errors)]
        shared.append(float(np.sqrt(np.mean(errors**2))) if errors.size else float("nan"))
    table["ci_low"], table["ci_high"], table["shared_se"] = low, high, shared


def build(records: list[dict], generator_order: list[str] | None = None) -> Leaderboard:
    """Aggregate result records (as read from ``results.jsonl``) into a leaderboard.

    Generators are listed in ``generator_order`` (run.json's, the plan's order) when given, so the
    leaderboard does not depend on the order in which concurrent jobs finished; others follow in
    order of appearance. More than one counted value for a (generator, repeat, metric) is an
    error: averaging it would silently weigh one repeat twice.
    """
    current = current_records(records)
    ok = set(ok_jobs(current))
    rows = [r for r in of_kind(current, Kind.METRIC) if job_key(r) in ok]
    rows += [r for r in _cost_rows(current) + _guarantee_rows(current) if job_key(r) in ok]
    jobs = of_kind(current, Kind.JOB)
    failures = pd.DataFrame(
        [{"generator": r["generator"], "repeat": r["repeat"], "step": "generate", "reason": r.get("reason"),
          "traceback": r.get("traceback")}
         for r in jobs if r.get("status") == Status.FAILED]
        + [{"generator": r["generator"], "repeat": r["repeat"], "step": f"metric {r['metric']}", "reason": r.get("reason"),
            "traceback": r.get("traceback")}
           for r in of_kind(current, Kind.METRIC_FAILURE)],
        columns=FAILURE_COLUMNS,
    )
    flags = pd.DataFrame(
        [{"generator": r["generator"], "repeat": r["repeat"], "warning": w}
         for r in jobs if r.get("status") == Status.OK for w in r.get("warnings", [])],
        columns=FLAG_COLUMNS,
    )
    if not rows:
        return Leaderboard(pd.DataFrame(columns=CSV_COLUMNS + ["ranked", "ranked_alone"]), failures, flags)
    long = pd.DataFrame(rows)
    key = ["generator", "repeat", "metric"]
    twice = long.duplicated(key, keep=False)
    if twice.any():
        generator, repeat, metric = long.loc[twice, key].iloc[0]
        count = int(((long["generator"] == generator) & (long["repeat"] == repeat) & (long["metric"] == metric)).sum())
        raise InputError(
            f"results.jsonl counts {count} values for generator '{generator}', repeat {repeat}, metric "
            f"'{metric}'; a leaderboard takes one per repeat. The file is inconsistent (edited by hand, or "
            f"written by two processes at once)."
        )
    if generator_order:
        rank = {g: i for i, g in enumerate(generator_order)}
        position = long["generator"].map(lambda g: rank.get(g, len(rank))).to_numpy()
        long = long.iloc[np.argsort(position, kind="stable")].reset_index(drop=True)
    long["value"] = long["value"].astype(float)
    # Records written before a field existed (and cost rows) have none: not ranked alone, no standard error.
    alone = long["ranked_alone"] if "ranked_alone" in long else pd.Series(None, index=long.index, dtype=object)
    long["ranked_alone"] = [bool(v) if pd.notna(v) else False for v in alone]
    errors = long["standard_error"] if "standard_error" in long else pd.Series(np.nan, index=long.index)
    long["standard_error"] = pd.to_numeric(errors, errors="coerce").astype(float)
    long["repeat"] = long["repeat"].astype(int)
    grouped = long.groupby(["generator", "metric"], sort=False)
    table = grouped.agg(
        calibration=("calibration", "first"), category=("category", "first"),
        higher_is_better=("higher_is_better", "first"), target=("target", "first"),
        ranked=("ranked", "first"), ranked_alone=("ranked_alone", "first"),
        n=("value", "size"), mean=("value", "mean"),
        std=("value", lambda v: v.std(ddof=1) if len(v) > 1 else float("nan")),
    ).reset_index()
    table["calibration"] = table["calibration"].astype(bool)
    table["ranked"] = table["ranked"].astype(bool)
    table["direction"] = [direction_text(record_direction(row)) for _, row in table.iterrows()]
    values = long[VALUE_COLUMNS]
    _intervals(table, values)
    table["rank"] = float("nan")
    pairs = _rank_metric(table, values, sorted(values["repeat"].unique().tolist()))
    table["noise_floor"] = ""
    for metric, part in table[table["ranked"] & (table["category"] != COST)].groupby("metric", sort=False):
        marks = noise_floor_marks(part, record_direction(part.iloc[0]))  # type: ignore[arg-type]
        table.loc[part.index, "noise_floor"] = part["generator"].map(marks).fillna("")
    order = {c: i for i, c in enumerate(LEADERBOARD_CATEGORIES)}
    table["_c"] = table["category"].map(lambda c: order.get(c, len(order)))
    table = table.sort_values(["_c"], kind="stable").drop(columns="_c").reset_index(drop=True)
    table["ranked_alone"] = table["ranked_alone"].astype(bool)
    flag_rows = _flag_rows(flags, table)
    if not flag_rows.empty:
        table = pd.concat([table, flag_rows], ignore_index=True)
    return Leaderboard(table, failures, flags, values=values, pairs=pd.DataFrame(pairs, columns=PAIR_COLUMNS))


def _flag_rows(flags: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Informational ``flags`` rows: per generator and flag kind, the share of scored repeats flagged.

    ``metric`` is ``flags.<kind>`` (e.g. ``flags.empty_records``), ``n`` the generator's scored
    repeats, ``mean`` the share of them with that flag; never ranked, no interval.
    """
    if flags.empty:
        return pd.DataFrame(columns=table.columns)
    repeats = table.groupby("generator")["n"].max()
    calibration = table.groupby("generator")["calibration"].first()
    found = flags.assign(kind=flags["warning"].map(flag_kind)).drop_duplicates(["generator", "repeat", "kind"])
    rows = []
    for (gen, kind), part in found.groupby(["generator", "kind"], sort=False):
        n = int(repeats.get(gen, len(part)))
        rows.append({"generator": gen, "calibration": bool(calibration.get(gen, False)), "category": "flags",
                     "metric": f"flags.{kind.replace(' ', '_')}", "direction": direction_text(None),
                     "ranked": False, "ranked_alone": False, "n": n, "mean": len(part) / n, "std": float("nan"),
                     "rank": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"),
                     "shared_se": float("nan"), "noise_floor": ""})
    return pd.DataFrame(rows, columns=table.columns)


def load(run: RunDirectory | Path, weights: Mapping[str, float] | None = None) -> Leaderboard:
    """The leaderboard of a run directory, from ``results.jsonl`` alone (and ``run.json``'s notice and weights)."""
    run = RunDirectory(run)
    records = run.records()
    manifest = run.read_manifest_if_present()
    try:
        board = build(records, (manifest or {}).get("generators"))
    except InputError as exc:
        raise InputError(f"{run.path}: {exc}") from None
    board.notice = dataset_notice(manifest)
    if weights is None:
        weights = ((manifest or {}).get("config") or {}).get("weights")
    board.weights = resolve_weights(weights)
    return board


def rebuild(run: RunDirectory | Path) -> Leaderboard:
    """Rebuild ``leaderboard.csv`` and ``leaderboard.md`` of a run from ``results.jsonl``."""
    run = RunDirectory(run)
    board = load(run)
    write_text_atomic(run.leaderboard_path("csv"), board.to_csv())
    write_text_atomic(run.leaderboard_path("md"), board.to_markdown(f"Leaderboard — {run.name}"))
    return board
