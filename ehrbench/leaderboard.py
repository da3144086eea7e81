"""Leaderboards: aggregate ``results.jsonl`` alone into mean ± std over repeats and ranks.

``leaderboard.csv`` is long format, one row per (generator, metric) with columns
generator, calibration, category, metric, direction, n, mean, std, rank. Cost columns
come from the runner's cost records (category ``cost``). ``std`` is the sample standard
deviation over repeats (empty with one repeat). Rank 1 is best; generators whose means differ by
less than their repeat spread share the lower rank (``ranking.noise_aware_ranks``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ehrbench.api import Direction
from ehrbench.collapse import flag_kind
from ehrbench.errors import InputError
from ehrbench.provenance import dataset_notice, read_run_manifest
from ehrbench.ranking import noise_aware_ranks
from ehrbench.results import ResultStore, current_records, write_text_atomic

CATEGORY_ORDER = ("fidelity", "utility", "privacy", "cost")
COST_DIRECTIONS: dict[str, Direction | None] = {
    "fit_seconds": Direction(False),
    "sample_seconds": Direction(False),
    "records_per_second": Direction(True),
    "peak_rss_mb": Direction(False),
    "peak_gpu_mb": Direction(False),
    "parameters": None,
}
FLAG_COLUMNS = ["generator", "repeat", "warning"]
CSV_COLUMNS = ["generator", "calibration", "category", "metric", "direction", "n", "mean", "std", "rank"]


@dataclass
class Leaderboard:
    table: pd.DataFrame  # long format, CSV_COLUMNS plus "ranked"
    failures: pd.DataFrame  # generator, repeat, step, reason
    flags: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FLAG_COLUMNS))  # scored, but suspect
    notice: str | None = None  # e.g. "the data is simulated"; every output shows it first

    def generators(self) -> list[str]:
        return list(dict.fromkeys(self.table["generator"]))

    def categories(self) -> list[str]:
        present = set(self.table["category"])
        return [c for c in CATEGORY_ORDER if c in present] + sorted(present - set(CATEGORY_ORDER))

    def wide(self, category: str) -> tuple[list[str], list[list[str]]]:
        """Header and rows of one category's table: ``mean ± std (rank)`` per ranked metric."""
        part = self.table[(self.table["category"] == category) & self.table["ranked"]]
        metrics = list(dict.fromkeys(part["metric"]))
        header = ["generator"] + [f"{m} {_arrow(part, m)}" for m in metrics] + ["mean rank"]
        rows = []
        for gen in self.generators():
            mine = part[part["generator"] == gen].set_index("metric")
            if mine.empty:
                continue
            cells = [gen + (" (calibration)" if bool(mine["calibration"].iloc[0]) else "")]
            for m in metrics:
                cells.append(_cell(mine.loc[m]) if m in mine.index else "—")
            ranks = mine["rank"].dropna()
            cells.append(f"{ranks.mean():.2f}" if len(ranks) else "—")
            rows.append(cells)
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
        lines.append(
            "Cells are mean ± sample std over repeats (rank among generators; 1 is best; generators whose "
            "means differ by less than their repeat spread share a rank). "
            "↑ higher is better, ↓ lower is better, →x closer to x is better. "
            "Calibration rows are the noise floors: train-resample (real rows) and independent-marginals."
        )
        for category in self.categories():
            header, rows = self.wide(category)
            if not rows:
                continue
            lines += ["", f"## {category.capitalize()}", "", _md_row(header), _md_row(["---"] * len(header))]
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
    row = part[part["metric"] == metric].iloc[0]
    return {"higher": "↑", "lower": "↓"}.get(row["direction"], f"→{row['direction'].split()[-1]}")


def _fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    return f"{x:.3g}"


def _cell(row: pd.Series) -> str:
    text = _fmt(row["mean"])
    if not pd.isna(row["std"]):
        text += f" ± {_fmt(row['std'])}"
    if not pd.isna(row["rank"]):
        text += f" ({int(row['rank'])})"
    return text


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _cost_rows(records: list[dict]) -> list[dict]:
    rows = []
    for r in records:
        if r.get("type") != "cost" or r.get("status") != "ok":
            continue
        for key, direction in COST_DIRECTIONS.items():
            if r.get(key) is None:
                continue
            rows.append({
                "generator": r["generator"], "repeat": r["repeat"], "calibration": r.get("calibration", False),
                "category": "cost", "metric": key, "value": float(r[key]), "ranked": direction is not None,
                "higher_is_better": direction.higher_is_better if direction else None,
                "target": direction.target if direction else None,
            })
    return rows


def _direction_text(higher: object, target: object, ranked: bool) -> str:
    if not ranked:
        return "info"
    if target is not None and not pd.isna(target):
        return f"toward {float(target):g}"
    return "higher" if higher else "lower"


def build(records: list[dict]) -> Leaderboard:
    """Aggregate result records (as read from ``results.jsonl``) into a leaderboard."""
    current = current_records(records)
    ok_jobs = {(r["generator"], r["repeat"]) for r in current if r.get("type") == "job" and r.get("status") == "ok"}
    rows = [r for r in current if r.get("type") == "metric" and (r["generator"], r["repeat"]) in ok_jobs]
    rows += [r for r in _cost_rows(current) if (r["generator"], r["repeat"]) in ok_jobs]
    failures = pd.DataFrame(
        [{"generator": r["generator"], "repeat": r["repeat"], "step": "generate", "reason": r.get("reason")}
         for r in current if r.get("type") == "job" and r.get("status") == "failed"]
        + [{"generator": r["generator"], "repeat": r["repeat"], "step": f"metric {r['metric']}", "reason": r.get("reason")}
           for r in current if r.get("type") == "metric_failure"],
        columns=["generator", "repeat", "step", "reason"],
    )
    flags = pd.DataFrame(
        [{"generator": r["generator"], "repeat": r["repeat"], "warning": w}
         for r in current if r.get("type") == "job" and r.get("status") == "ok" for w in r.get("warnings", [])],
        columns=FLAG_COLUMNS,
    )
    if not rows:
        return Leaderboard(pd.DataFrame(columns=CSV_COLUMNS + ["ranked"]), failures, flags)
    long = pd.DataFrame(rows)
    long["value"] = long["value"].astype(float)
    grouped = long.groupby(["generator", "metric"], sort=False)
    table = grouped.agg(
        calibration=("calibration", "first"), category=("category", "first"),
        higher_is_better=("higher_is_better", "first"), target=("target", "first"),
        ranked=("ranked", "first"), n=("value", "size"), mean=("value", "mean"),
        std=("value", lambda v: v.std(ddof=1) if len(v) > 1 else float("nan")),
    ).reset_index()
    table["direction"] = [
        _direction_text(h, t, r) for h, t, r in zip(table["higher_is_better"], table["target"], table["ranked"])
    ]
    table["rank"] = float("nan")
    for metric, part in table[table["ranked"]].groupby("metric", sort=False):
        first = part.iloc[0]
        target = None if first["target"] is None or pd.isna(first["target"]) else float(first["target"])
        direction = Direction(bool(first["higher_is_better"]), target)
        badness = part["mean"].map(direction.badness)
        table.loc[part.index, "rank"] = noise_aware_ranks(badness.to_numpy(), part["std"].to_numpy())
    order = {c: i for i, c in enumerate(CATEGORY_ORDER)}
    table["_c"] = table["category"].map(lambda c: order.get(c, len(order)))
    table = table.sort_values(["_c"], kind="stable").drop(columns="_c").reset_index(drop=True)
    table["ranked"] = table["ranked"].astype(bool)
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
                     "metric": f"flags.{kind.replace(' ', '_')}", "direction": "info", "ranked": False, "n": n,
                     "mean": len(part) / n, "std": float("nan"), "rank": float("nan")})
    return pd.DataFrame(rows, columns=table.columns)


def rebuild(run_dir: Path) -> Leaderboard:
    """Rebuild ``leaderboard.csv`` and ``leaderboard.md`` of a run from ``results.jsonl``."""
    run_dir = Path(run_dir)
    store = ResultStore(run_dir)
    if not store.path.exists():
        raise InputError(f"{run_dir}: no results.jsonl here; is this an ehrbench run directory?")
    board = build(store.read())
    board.notice = dataset_notice(read_run_manifest(run_dir, required=False))
    write_text_atomic(run_dir / "leaderboard.csv", board.to_csv())
    write_text_atomic(run_dir / "leaderboard.md", board.to_markdown(f"Leaderboard — {run_dir.name}"))
    return board
