"""``ehrbench simulate``: draw the simulated cohort, describe it, or write it as MIMIC-III tables.

Added to the command line through the ``ehrbench_commands`` hook of the simulated plugin.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from .simulated import SimulatedDataset


@click.command("simulate")
@click.option("--patients", type=int, help="Patients (default: MIMIC-III's 46,520).")
@click.option("--codes", type=int, help="ICD-9 groups (default: MIMIC-III's 1,071).")
@click.option("--seed", type=int, help="Seed (default 0).")
@click.option("--out", type=click.Path(path_type=Path),
              help="Write DIR/ADMISSIONS.csv.gz, DIR/DIAGNOSES_ICD.csv.gz (MIMIC-III v1.4 dialect) and DIR/simulated.npz.")
@click.option("--describe", is_flag=True, help="Print the cohort's statistics next to the MIMIC-III targets (the default without --out).")
def simulate(out: Path | None, describe: bool, **options: Any) -> None:
    """Draw the simulated cohort calibrated to MIMIC-III (simulated data, no real patient)."""
    dataset = SimulatedDataset.configure({k: v for k, v in options.items() if v is not None})
    started = time.perf_counter()
    cohort = dataset.cohort()
    click.echo(f"simulated {cohort.n_patients:,} patients in {time.perf_counter() - started:.1f} s (simulated data)")
    if out is not None:
        admissions, diagnoses = dataset.write_tables(cohort, out)
        matrix = dataset.matrix(cohort)
        matrix.save(out / "simulated.npz")
        click.echo(f"wrote {admissions}, {diagnoses} and {out / 'simulated.npz'}")
        click.echo(f"  ehrbench prepare mimic3 --admissions {admissions} --diagnoses {diagnoses} -o OUT.npz")
    if describe or out is None:
        _print_description(dataset.describe(cohort))


def _print_description(stats: list[tuple[str, float | None, float]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Simulated cohort against MIMIC-III", title_justify="left")
    for col, justify in (("statistic", "left"), ("MIMIC-III target", "right"), ("achieved", "right"), ("difference", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for name, target, value in stats:
        diff = f"{(value - target) / target:+.1%}" if target else ""
        table.add_row(name, "" if target is None else _number(target), _number(value), diff)
    Console().print(table)


def _number(value: float) -> str:
    """Counts with thousands separators, shares and ratios with 4 significant digits."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.4g}"
