"""``ehrbench prepare mimic3``: the MIMIC-III matrix from your files, written once as ``.npz``.

Added to the command line through the ``ehrbench_prepare_commands`` hook of the mimic3 plugin.
The dataset's ``meta["summary"]`` (patients, admissions, rows used and dropped, codes) is
printed and saved with the matrix.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import click

from ehrbench import ConfigError

from .mimic3 import Mimic3Dataset

DROP_REASONS = {
    "empty_icd9_code": "empty ICD9_CODE",
    "hadm_id_not_in_admissions": "HADM_ID not in ADMISSIONS",
    "subject_id_differs_from_admission": "SUBJECT_ID differs from the admission's",
}


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The human-readable form of the dataset's ``meta["summary"]``."""
    if not summary:
        return []
    dropped = summary.get("rows_dropped", {})
    lines = [
        f"patients {summary['patients']:,} · admissions {summary['admissions']:,} "
        f"({summary['admissions_without_diagnoses']:,} without diagnosis rows) · "
        f"codes {summary['codes']:,}",
        f"diagnosis rows {summary['diagnosis_rows']:,}: used {summary['rows_used']:,}, dropped "
        f"{sum(dropped.values()):,} ("
        + "; ".join(f"{DROP_REASONS.get(k, k)} {v:,}" for k, v in dropped.items())
        + ")",
    ]
    if summary.get("patients_without_diagnoses"):
        lines.append(f"patients with no diagnosis row (rows of zeros): {summary['patients_without_diagnoses']:,}")
    if "codes_without_title" in summary:
        titled = summary["codes"] - summary["codes_without_title"]
        lines.append(f"titles attached for {titled:,} of {summary['codes']:,} codes")
    return lines


@click.command("mimic3")
@click.option("--admissions", type=click.Path(path_type=Path), help="ADMISSIONS.csv or .csv.gz (either dialect).")
@click.option("--diagnoses", type=click.Path(path_type=Path), help="DIAGNOSES_ICD.csv or .csv.gz.")
@click.option("--binary", is_flag=True, help="Presence (0/1) instead of one count per diagnosis row.")
@click.option("--titles", type=click.Path(path_type=Path), help="D_ICD_DIAGNOSES.csv[.gz]: attach group titles for reports.")
@click.option("--matrix", type=click.Path(path_type=Path), help="medGAN's pickled .matrix instead of the CSVs (needs --allow-pickle).")
@click.option("--types", type=click.Path(path_type=Path), help="medGAN's pickled .types (code → column) for --matrix.")
@click.option("--allow-pickle", is_flag=True, help="Allow unpickling --matrix/--types (unpickling can run code).")
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Output .npz.")
def prepare_mimic3(out: Path, **options: Any) -> None:
    """The MIMIC-III patient × ICD-9 group matrix (Choi et al. 2017) from your files."""
    if out.suffix.lower() != ".npz":
        raise ConfigError(f"-o/--out {out}: the matrix is written as .npz; give a path ending in .npz.")
    options["binary"] = options["binary"] or None
    options["allow_pickle"] = options["allow_pickle"] or None
    dataset = Mimic3Dataset.configure({k: v for k, v in options.items() if v is not None})
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
