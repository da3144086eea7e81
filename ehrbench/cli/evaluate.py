"""``ehrbench evaluate``: score a synthetic matrix against real train/test matrices, without a run."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import click

from ehrbench.api import PROFILES, REPRESENTATIONS, direction_text
from ehrbench.cli import flags as f


@click.command()
@click.option("--train", "train_path", required=True, type=click.Path(path_type=Path), help="Real training matrix (.npz).")
@click.option("--test", "test_path", required=True, type=click.Path(path_type=Path), help="Real held-out matrix (.npz).")
@click.option("--synthetic", "synthetic_path", required=True, type=click.Path(path_type=Path), help="Synthetic matrix (.npz).")
@click.option("--metrics", help="Comma-separated metric names (default: every available default metric).")
@click.option("--representation", type=click.Choice(REPRESENTATIONS), default="count", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--profile", type=click.Choice(PROFILES), default="paper", show_default=True,
              help="Metric profile: paper is the full protocol; smoke/quick subsample where a metric allows.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: metric[.submetric] → number.")
@f.plugin_option
def evaluate(train_path: Path, test_path: Path, synthetic_path: Path, metrics: str | None,
             representation: str, seed: int, profile: str, as_json: bool, plugins: tuple[Path, ...]) -> None:
    """Score your own synthetic matrix against real train/test matrices, without a plugin."""
    from ehrbench.execution.scoring import score_rows
    from ehrbench.matrix import EHRMatrix
    from ehrbench.rundir.records import Kind

    registry = f.registry(plugins)
    names = f.split_names(metrics) or registry.defaults("metrics")
    instances = {n: registry.get("metrics", n).configure(None, profile) for n in names}
    train, test, synthetic = (
        EHRMatrix.load(p).as_representation(representation) for p in (train_path, test_path, synthetic_path)
    )
    train.check_same_codes(test, f"--train {train_path}", f"--test {test_path}")
    train.check_same_codes(synthetic, f"--train {train_path}", f"--synthetic {synthetic_path}")
    # The metric seeds of repeat 0 of a run with this seed: the same numbers a run would record.
    rows = score_rows(instances, {"repeat": 0}, seed, "cpu", representation, profile, train, test, synthetic)
    scores = [r for r in rows if r["type"] == Kind.METRIC]
    if as_json:
        click.echo(json.dumps({r["metric"]: (r["value"] if math.isfinite(r["value"]) else None) for r in scores}))
    else:
        _print_scores(scores)
    failures = [r for r in rows if r["type"] == Kind.METRIC_FAILURE]
    for r in failures:
        click.echo(f"error: metric {r['metric']} failed: {r['reason']}", err=True)
    if failures:
        sys.exit(1)


def _print_scores(scores: list[dict]) -> None:
    from rich.table import Table

    from ehrbench.cli.console import out
    from ehrbench.rundir.records import record_direction
    from ehrbench.views.text import format_number

    table = Table(title="Scores", title_justify="left")
    for col in ("metric", "category", "direction", "value"):
        table.add_column(col)
    for r in scores:
        table.add_row(r["metric"], r["category"], direction_text(record_direction(r)), format_number(r["value"], 6))
    out.print(table)
