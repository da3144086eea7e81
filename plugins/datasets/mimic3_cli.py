"""``ehrbench prepare`` and ``ehrbench simulate``: build matrices and MIMIC-III-format tables.

Both look their dataset plugin up in the registry (``mimic3``, ``simulated``), like ``run``
does, so the host names no plugin module. A dataset's ``meta["summary"]`` (patients,
admissions, rows used and dropped, codes) is printed and saved with the matrix.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import click

from ehrbench.errors import ConfigError
from ehrbench.plugins import load_registry


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The human-readable form of a dataset's ``meta["summary"]``."""
    if not summary:
        return []
    dropped = summary.get("rows_dropped", {})
    reasons = {
        "empty_icd9_code": "empty ICD9_CODE",
        "hadm_id_not_in_admissions": "HADM_ID not in ADMISSIONS",
        "subject_id_differs_from_admission": "SUBJECT_ID differs from the admission's",
    }
    lines = [
        f"patients {summary['patients']:,} · admissions {summary['admissions']:,} "
        f"({summary['admissions_without_diagnoses']:,} without diagnosis rows) · "
        f"codes {summary['codes']:,}",
        f"diagnosis rows {summary['diagnosis_rows']:,}: used {summary['rows_used']:,}, dropped "
        f"{sum(dropped.values()):,} ("
        + "; ".join(f"{reasons.get(k, k)} {v:,}" for k, v in dropped.items())
        + ")",
    ]
    if summary.get("patients_without_diagnoses"):
        lines.append(f"patients with no diagnosis row (rows of zeros): {summary['patients_without_diagnoses']:,}")
    if "codes_without_title" in summary:
        titled = summary["codes"] - summary["codes_without_title"]
        lines.append(f"titles attached for {titled:,} of {summary['codes']:,} codes")
    return lines


def _dataset(name: str, options: dict[str, Any], plugins: tuple[Path, ...]) -> Any:
    registry = load_registry(list(plugins))
    return registry.get("datasets", name).configure({k: v for k, v in options.items() if v is not None})


def _plugin_option(func: Any) -> Any:
    return click.option(
        "--plugin", "plugins", multiple=True, type=click.Path(path_type=Path),
        help="Load a plugin module from this Python file (repeatable).",
    )(func)


@click.group()
def prepare() -> None:
    """Build an ehrbench matrix (.npz) from raw data files."""


@prepare.command("mimic3")
@click.option("--admissions", type=click.Path(path_type=Path), help="ADMISSIONS.csv or .csv.gz (either dialect).")
@click.option("--diagnoses", type=click.Path(path_type=Path), help="DIAGNOSES_ICD.csv or .csv.gz.")
@click.option("--binary", is_flag=True, help="Presence (0/1) instead of one count per diagnosis row.")
@click.option("--titles", type=click.Path(path_type=Path), help="D_ICD_DIAGNOSES.csv[.gz]: attach group titles for reports.")
@click.option("--matrix", type=click.Path(path_type=Path), help="medGAN's pickled .matrix instead of the CSVs (needs --allow-pickle).")
@click.option("--types", type=click.Path(path_type=Path), help="medGAN's pickled .types (code → column) for --matrix.")
@click.option("--allow-pickle", is_flag=True, help="Allow unpickling --matrix/--types (unpickling can run code).")
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Output .npz.")
@_plugin_option
def mimic3(out: Path, plugins: tuple[Path, ...], **options: Any) -> None:
    """The MIMIC-III patient × ICD-9 group matrix (Choi et al. 2017) from your files."""
    if out.suffix.lower() != ".npz":
        raise ConfigError(f"-o/--out {out}: the matrix is written as .npz; give a path ending in .npz.")
    options["binary"] = options["binary"] or None
    options["allow_pickle"] = options["allow_pickle"] or None
    dataset = _dataset("mimic3", options, plugins)
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        matrix = dataset.load()
    for w in caught:
        click.echo(f"warning: {w.message}", err=True)
    seconds = time.perf_counter() - started
    matrix.save(out)
    for line in summary_lines(matrix.meta.get("summary", {})):
        click.echo(line)
    click.echo(
        f"wrote {out}: {matrix.n_patients:,} patients × {matrix.n_codes:,} codes "
        f"({matrix.meta.get('representation', 'count')}), prepared in {seconds:.1f} s"
    )


@click.command()
@click.option("--patients", type=int, help="Patients (default: MIMIC-III's 46,520).")
@click.option("--codes", type=int, help="ICD-9 groups (default: MIMIC-III's 1,071).")
@click.option("--seed", type=int, help="Seed (default 0).")
@click.option("--out", type=click.Path(path_type=Path),
              help="Write DIR/ADMISSIONS.csv.gz, DIR/DIAGNOSES_ICD.csv.gz (MIMIC-III v1.4 dialect) and DIR/simulated.npz.")
@click.option("--describe", is_flag=True, help="Print the cohort's statistics next to the MIMIC-III targets (the default without --out).")
@_plugin_option
def simulate(out: Path | None, describe: bool, plugins: tuple[Path, ...], **options: Any) -> None:
    """Draw the simulated cohort calibrated to MIMIC-III (simulated data, no real patient)."""
    dataset = _dataset("simulated", options, plugins)
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
    from rich.table import Table

    from ehrbench.cli.console import out

    table = Table(title="Simulated cohort against MIMIC-III", title_justify="left")
    for col, justify in (("statistic", "left"), ("MIMIC-III target", "right"), ("achieved", "right"), ("difference", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for name, target, value in stats:
        diff = f"{(value - target) / target:+.1%}" if target else ""
        table.add_row(name, "" if target is None else _number(target), _number(value), diff)
    out.print(table)


def _number(value: float) -> str:
    """Counts with thousands separators, shares and ratios with 4 significant digits."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.4g}"
