"""Leaderboards: aggregate ``results.jsonl`` alone into mean ± std over repeats and ranks.

``leaderboard.csv`` is long format, one row per (generator, metric) with columns
generator, calibration, category, metric, direction, n, mean, std, rank. Cost columns
come from the runner's cost records (category ``cost``). ``std`` is the sample standard
deviation over repeats (empty with one repeat). Rank 1 is best; generators whose means differ by
less than their repeat spread share the lower rank (``ranking.noise_aware_ranks``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ehrbench.api import COST, LEADERBOARD_CATEGORIES, Direction, direction_text, parse_direction
from ehrbench.atomic import write_text_atomic
from ehrbench.errors import InputError
from ehrbench.rundir.directory import RunDirectory
from ehrbench.rundir.records import (Kind, Status, current_records, direction_fields, flag_kind, job_key, of_kind,
                                     ok_jobs, record_direction)
from ehrbench.views.provenance import dataset_notice
from ehrbench.views.ranking import category_mean_ranks, noise_aware_ranks
from ehrbench.views.text import MISSING, arrow, format_mean_std, format_number

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
CSV_COLUMNS = ["generator", "calibration", "category", "metric", "direction", "n", "mean", "std", "rank"]


@dataclass
class Leaderboard:
    table: pd.DataFrame  # long format, CSV_COLUMNS plus "ranked" and "ranked_alone"
    failures: pd.DataFrame  # FAILURE_COLUMNS
    flags: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FLAG_COLUMNS))  # scored, but suspect
    notice: str | None = None  # e.g. "the data is simulated"; every output shows it first

    def generators(self) -> list[str]:
        return list(dict.fromkeys(self.table["generator"]))

    def categories(self) -> list[str]:
        present = set(self.table["category"])
        return [c for c in LEADERBOARD_CATEGORIES if c in present] + sorted(present - set(LEADERBOARD_CATEGORIES))

    def calibration_rows(self) -> list[str]:
        """The calibration generators (noise floors) on this leaderboard, in table order."""
        return list(dict.fromkeys(self.table.loc[self.table["calibration"].astype(bool), "generator"]))

    def wide(self, category: str) -> tuple[list[str], list[list[str]]]:
        """Header and rows of one category's table: ``mean ± std (rank)`` per ranked metric."""
        part = self.table[(self.table["category"] == category) & self.table["ranked"]]
        metrics = list(dict.fromkeys(part["metric"]))
        header = ["generator"] + [f"{m} {_arrow(part, m)}" for m in metrics] + ["mean rank"]
        per_category = category_mean_ranks(part)
        means = per_category[category] if category in per_category else pd.Series(dtype=float)
        rows = []
        for gen in self.generators():
            mine = part[part["generator"] == gen].set_index("metric")
            if mine.empty:
                continue
            cells = [gen + (" (calibration)" if bool(mine["calibration"].iloc[0]) else "")]
            for m in metrics:
                cells.append(_cell(mine.loc[m]) if m in mine.index else MISSING)
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
            rows.append([gen] + [format_mean_std(mine.loc[m, "mean"], mine.loc[m, "std"]) if m in mine.index
                                 and not pd.isna(mine.loc[m, "mean"]) else MISSING
                                 for m in GUARANTEE_METRICS.values()])
        return header, rows

    def by_metric(self, category: str) -> tuple[list[str], list[list[str]]]:
        """The transposed table (a row per metric, a column per generator), for narrow terminals."""
        header, rows = self.wide(category)
        if not rows:
            return header, rows
        columns = [r[0].replace(" (calibration)", "*") for r in rows]
        return ["metric"] + columns, [[h] + [r[i] for r in rows] for i, h in enumerate(header[1:], start=1)]

    def to_csv(self) -> str:
        return self.table[CSV_COLUMNS].to_csv(index=False, float_format="%.10g")

    def to_markdown(self, title: str = "Leaderboard") -> str:
        lines = [f"# {title}", ""]
        if self.notice:
            lines += [f"**{self.notice}**", ""]
        legend = (
            "Cells are mean ± sample std over repeats (rank among generators; 1 is best; generators whose "
            "means differ by less than their repeat spread share a rank). The mean rank counts each metric "
            "once (its headline). "
            "↑ higher is better, ↓ lower is better, →x closer to x is better."
        )
        calibration = self.calibration_rows()
        if calibration:
            legend += f" Calibration rows, the noise floors to read the others against: {', '.join(calibration)}."
        lines.append(legend)
        for category in self.categories():
            header, rows = self.wide(category)
            if not rows:
                continue
            lines += ["", f"## {category.capitalize()}", "", _md_row(header), _md_row(["---"] * len(header))]
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


def _arrow(part: pd.DataFrame, metric: str) -> str:
    return arrow(parse_direction(part.loc[part["metric"] == metric, "direction"].iloc[0]))


def _cell(row: pd.Series) -> str:
    text = format_mean_std(row["mean"], row["std"])
    if not pd.isna(row["rank"]):
        text += f" ({int(row['rank'])})"
    return text


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


def _guarantee_rows(records: list[dict]) -> list[dict]:
    """``dp_epsilon`` / ``dp_delta`` rows for every scored job, when any job of the run has a guarantee."""
    costs = [r for r in of_kind(records, Kind.COST) if r.get("status") == Status.OK]
    if not any(r.get("epsilon") is not None for r in costs):
        return []
    return [{"generator": r["generator"], "repeat": r["repeat"], "calibration": r.get("calibration", False),
             "category": "privacy", "metric": metric,
             "value": float(r[key]) if r.get(key) is not None else float("nan"), **direction_fields(None)}
            for r in costs for key, metric in GUARANTEE_METRICS.items()]


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
    # Records written before ranked_alone existed (and cost rows) count as not ranked alone.
    alone = long["ranked_alone"] if "ranked_alone" in long else pd.Series(None, index=long.index, dtype=object)
    long["ranked_alone"] = [bool(v) if pd.notna(v) else False for v in alone]
    grouped = long.groupby(["generator", "metric"], sort=False)
    table = grouped.agg(
        calibration=("calibration", "first"), category=("category", "first"),
        higher_is_better=("higher_is_better", "first"), target=("target", "first"),
        ranked=("ranked", "first"), ranked_alone=("ranked_alone", "first"),
        n=("value", "size"), mean=("value", "mean"),
        std=("value", lambda v: v.std(ddof=1) if len(v) > 1 else float("nan")),
    ).reset_index()
    table["direction"] = [direction_text(record_direction(row)) for _, row in table.iterrows()]
    table["rank"] = float("nan")
    for metric, part in table[table["ranked"]].groupby("metric", sort=False):
        direction: Direction = record_direction(part.iloc[0])  # type: ignore[assignment]
        badness = part["mean"].map(direction.badness)
        table.loc[part.index, "rank"] = noise_aware_ranks(badness.to_numpy(), part["std"].to_numpy())
    order = {c: i for i, c in enumerate(LEADERBOARD_CATEGORIES)}
    table["_c"] = table["category"].map(lambda c: order.get(c, len(order)))
    table = table.sort_values(["_c"], kind="stable").drop(columns="_c").reset_index(drop=True)
    table["ranked"] = table["ranked"].astype(bool)
    table["ranked_alone"] = table["ranked_alone"].astype(bool)
    flag_rows = _flag_rows(flags, table)
    if not flag_rows.empty:
        table = pd.concat([table, flag_rows], ignore_index=True)
    return Leaderboard(table, failures, flags)


def _flag_rows(flags: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Informational ``flags`` rows: per generator and flag kind, the share of scored repeats flagged.

    ``metric`` is ``flags.<kind>`` (e.g. ``flags.empty_records``), ``n`` the generator's scored
    repeats, ``mean`` the share of them with that flag; never ranked.
    """
    if flags.empty:
        return pd.DataFrame(columns=table.columns)
    repeats = table[table["category"] != "flags"].groupby("generator")["n"].max()
    calibration = table.groupby("generator")["calibration"].first()
    found = flags.assign(kind=flags["warning"].map(flag_kind)).drop_duplicates(["generator", "repeat", "kind"])
    rows = []
    for (gen, kind), part in found.groupby(["generator", "kind"], sort=False):
        n = int(repeats.get(gen, len(part)))
        rows.append({"generator": gen, "calibration": bool(calibration.get(gen, False)), "category": "flags",
                     "metric": f"flags.{kind.replace(' ', '_')}", "direction": direction_text(None), "ranked": False, "ranked_alone": False, "n": n,
                     "mean": len(part) / n, "std": float("nan"), "rank": float("nan")})
    return pd.DataFrame(rows, columns=table.columns)


def load(run: RunDirectory | Path) -> Leaderboard:
    """The leaderboard of a run directory, from ``results.jsonl`` alone (and ``run.json``'s notice)."""
    run = RunDirectory(run)
    records = run.records()
    manifest = run.read_manifest_if_present()
    try:
        board = build(records, (manifest or {}).get("generators"))
    except InputError as exc:
        raise InputError(f"{run.path}: {exc}") from None
    board.notice = dataset_notice(manifest)
    return board


def rebuild(run: RunDirectory | Path) -> Leaderboard:
    """Rebuild ``leaderboard.csv`` and ``leaderboard.md`` of a run from ``results.jsonl``."""
    run = RunDirectory(run)
    board = load(run)
    write_text_atomic(run.leaderboard_path("csv"), board.to_csv())
    write_text_atomic(run.leaderboard_path("md"), board.to_markdown(f"Leaderboard — {run.name}"))
    return board
