"""``ehrbench evaluate``: score a synthetic matrix against real train/test matrices, without a run.

The three files are read by the dataset plugin that declares a ``file_option`` (the built-in
``matrix`` dataset: ``.npz``, ``.npy``, ``.csv``, ``.csv.gz``), so evaluate reads every format a
run's matrix dataset reads. An informational metric key that holds a column index
(``target_1_column``) is shown as the code at that column (``target_1_code``).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import click

from ehrbench.api import PROFILES, REPRESENTATIONS, direction_text
from ehrbench.cli import flags as f
from ehrbench.errors import ConfigError, EhrbenchError

COLUMN_SUFFIX, CODE_SUFFIX = "_column", "_code"


@click.command()
@click.option("--train", "train_path", required=True, type=click.Path(path_type=Path),
              help="Real training matrix (.npz, .npy, .csv or .csv.gz).")
@click.option("--test", "test_path", required=True, type=click.Path(path_type=Path), help="Real held-out matrix.")
@click.option("--synthetic", "synthetic_path", required=True, type=click.Path(path_type=Path), help="Synthetic matrix.")
@click.option("--metrics", help="Comma-separated metric names (default: every available default metric).")
@click.option("--representation", type=click.Choice(REPRESENTATIONS), default="count", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--profile", type=click.Choice(PROFILES), default="paper", show_default=True,
              help="Metric profile: paper is the full protocol; smoke/quick subsample where a metric allows.")
@click.option("--reader", help="Dataset plugin that reads the files (default: the one that reads a file, `matrix`).")
@click.option("--reader-option", "reader_option", multiple=True, metavar="KEY=VALUE",
              help="An option of the reader for all three files, e.g. id_column=SUBJECT_ID for CSVs (repeatable).")
@click.option("--report", "report", type=click.Path(path_type=Path),
              help="Also write a self-contained report.html of the synthetic set here, beside calibration rows "
                   "(noise floors) fitted on --train on the spot.")
@click.option("--name", default="synthetic", show_default=True, help="The synthetic set's row in the report.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: metric[.submetric] → number (or code).")
@f.plugin_option
def evaluate(train_path: Path, test_path: Path, synthetic_path: Path, metrics: str | None, representation: str,
             seed: int, profile: str, reader: str | None, reader_option: tuple[str, ...], report: Path | None,
             name: str, as_json: bool, plugins: tuple[Path, ...]) -> None:
    """Score your own synthetic matrix against real train/test matrices, without a plugin."""
    from ehrbench.execution.scoring import score_rows
    from ehrbench.rundir.records import Kind

    registry = f.registry(plugins)
    names = f.split_names(metrics) or registry.defaults("metrics")
    instances = {n: registry.get("metrics", n).configure(None, profile) for n in names}
    reader_cls = _reader(registry, reader)
    options = f.key_values(reader_option, "--reader-option") or {}
    train, test, synthetic = (
        _read(reader_cls, options, path, flag).as_representation(representation)
        for path, flag in ((train_path, "--train"), (test_path, "--test"), (synthetic_path, "--synthetic"))
    )
    train.check_same_codes(test, f"--train {train_path}", f"--test {test_path}")
    train.check_same_codes(synthetic, f"--train {train_path}", f"--synthetic {synthetic_path}")
    # The metric seeds of repeat 0 of a run with this seed: the same numbers a run would record.
    rows = score_rows(instances, {"repeat": 0}, seed, "cpu", representation, profile, train, test, synthetic)
    scores = [_named_by_code(r, list(train.codes)) for r in rows if r["type"] == Kind.METRIC]
    if as_json:
        click.echo(json.dumps({r["metric"]: _json_value(r["value"]) for r in scores}))
    else:
        _print_scores(scores)
    failures = [r for r in rows if r["type"] == Kind.METRIC_FAILURE]
    for r in failures:
        click.echo(f"error: metric {r['metric']} failed: {r['reason']}", err=True)
    if report is not None:
        from ehrbench.library.handed import write_report

        sources = {"train": str(train_path), "test": str(test_path), "synthetic": str(synthetic_path)}
        written = write_report(train, test, synthetic, report, registry, names, name=name, profile=profile,
                               seed=seed, representation=representation, sources=sources)
        click.echo(f"Wrote {written}", err=as_json)  # stdout stays one JSON object under --json
    if failures:
        sys.exit(1)


def _reader(registry: Any, name: str | None) -> type:
    """The dataset class that reads the files: ``name``, else the one available that reads a file."""
    if name is not None:
        cls = registry.get("datasets", name)
        if not getattr(cls, "file_option", None):
            raise ConfigError(f"--reader {name}: dataset '{name}' does not read a matrix file (it declares no "
                              f"file_option).")
        return cls
    readers = [n for n in registry.names("datasets", available_only=True)
               if getattr(registry.get("datasets", n), "file_option", None)]
    if len(readers) != 1:
        found = ", ".join(readers) if readers else "none is installed"
        raise ConfigError(f"evaluate reads its files through a dataset that reads a matrix file ({found}); "
                          f"name one with --reader.")
    return registry.get("datasets", readers[0])


def _read(cls: Any, options: dict[str, str], path: Path, flag: str) -> Any:
    try:
        return cls.configure({**options, cls.file_option: str(path)}).load()
    except EhrbenchError as exc:
        raise type(exc)(f"{flag}: {exc}") from None


def _named_by_code(row: dict[str, Any], codes: list[str]) -> dict[str, Any]:
    """An informational ``…_column`` value (a column index) as ``…_code``: the code at that column."""
    from ehrbench.rundir.records import record_direction

    name, value = row["metric"], row["value"]
    if not name.endswith(COLUMN_SUFFIX) or record_direction(row) is not None or not math.isfinite(value):
        return row
    if not float(value).is_integer() or not 0 <= int(value) < len(codes):
        return row
    return {**row, "metric": name[: -len(COLUMN_SUFFIX)] + CODE_SUFFIX, "value": codes[int(value)]}


def _json_value(value: Any) -> Any:
    if isinstance(value, str):
        return value
    return value if math.isfinite(value) else None


def _print_scores(scores: list[dict]) -> None:
    from rich.table import Table

    from ehrbench.cli.console import out
    from ehrbench.rundir.records import record_direction
    from ehrbench.views.text import format_number

    table = Table(title="Scores", title_justify="left")
    for col in ("metric", "category", "direction", "value"):
        table.add_column(col, overflow="fold")  # wrap a long name, never cut it
    for r in scores:
        value = r["value"] if isinstance(r["value"], str) else format_number(r["value"], 6)
        table.add_row(r["metric"], r["category"], direction_text(record_direction(r)), value)
    out.print(table)
