"""What a run's numbers may be read as: the data behind them, and published values beside them.

Every leaderboard output (terminal, ``leaderboard.md``, ``report.html``, exports) says plainly
when the data is simulated. The ScoEHR paper's published MIMIC-III numbers are shown only for
runs on the real ``mimic3`` dataset, always in their own clearly labelled column.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ehrbench.errors import InputError

REAL_MIMIC3 = "mimic3"
PUBLISHED_SOURCE = (
    "Naseer et al., \"ScoEHR: Generating Synthetic Electronic Health Records using Continuous-time "
    "Diffusion Models\", MLHC 2023 — MIMIC-III, binary ICD-9 groups"
)
PUBLISHED_METRICS = (
    "dimension_wise_probability",
    "pairwise_correlation_difference",
    "log_cluster",
    "synthetic_ranking_agreement",
)
# Values as printed in the paper (DWP, PCD, log-cluster, SRA); never computed here.
PUBLISHED: dict[str, dict[str, float]] = {
    "medgan": dict(zip(PUBLISHED_METRICS, (0.0019, 120.0, -2.9, 0.83))),
    "medbgan": dict(zip(PUBLISHED_METRICS, (0.0016, 146.0, -3.2, 0.86))),
    "medwgan": dict(zip(PUBLISHED_METRICS, (0.0025, 22.1, -5.4, 0.81))),
    "scoehr": dict(zip(PUBLISHED_METRICS, (0.0029, 21.8, -6.0, 0.87))),
}


def read_run_manifest(run_dir: Path, required: bool = True) -> dict[str, Any] | None:
    """``run.json`` of a run directory; absent → InputError (or None when not ``required``)."""
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        if required:
            raise InputError(f"{run_dir}: no run.json here; is this an ehrbench run directory?")
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc}).") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object, got {type(data).__name__}.")
    return data


def dataset_notice(manifest: dict[str, Any] | None) -> str | None:
    """A plain sentence when the run's data is simulated; None for real (or unknown) data."""
    dataset = (manifest or {}).get("dataset") or {}
    if not dataset.get("simulated"):
        return None
    size = ""
    if dataset.get("n_patients") and dataset.get("n_codes"):
        size = f" ({dataset['n_patients']:,} patients × {dataset['n_codes']:,} codes)"
    return (
        f"SIMULATED DATA: this run used the dataset '{dataset.get('name', '?')}'{size}, a seeded cohort "
        f"generated to resemble MIMIC-III. It contains no real patients, and these numbers are not "
        f"results on MIMIC-III."
    )


def shows_published(manifest: dict[str, Any] | None) -> bool:
    """Published values sit beside measured ones only for runs on the real MIMIC-III dataset."""
    dataset = (manifest or {}).get("dataset") or {}
    return dataset.get("name") == REAL_MIMIC3 and not dataset.get("simulated")
