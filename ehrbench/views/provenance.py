"""What a run's numbers may be read as: the data behind them, and published values beside them.

Every leaderboard output (terminal, ``leaderboard.md``, ``report.html``, exports) says plainly
when the data is simulated. Published results come from the dataset plugin that knows them
(``Dataset.published``, stored in ``run.json``) and are shown only for runs on real data, always
in their own clearly labelled column.
"""

from __future__ import annotations

from typing import Any

from ehrbench.api import PublishedResults


def _dataset(manifest: dict[str, Any] | None) -> dict[str, Any]:
    return (manifest or {}).get("dataset") or {}


def dataset_notice(manifest: dict[str, Any] | None) -> str | None:
    """A plain sentence when the run's data is simulated; None for real (or unknown) data."""
    dataset = _dataset(manifest)
    if not dataset.get("simulated"):
        return None
    size = ""
    if dataset.get("n_patients") and dataset.get("n_codes"):
        size = f" ({dataset['n_patients']:,} patients × {dataset['n_codes']:,} codes)"
    return (
        f"SIMULATED DATA: this run used the dataset '{dataset.get('name', '?')}'{size}, a simulated "
        f"cohort. It contains no real patients, and these numbers are not results on real patient data."
    )


def published_results(manifest: dict[str, Any] | None) -> list[PublishedResults]:
    """The published results to show beside a run's own: its dataset's, unless the data is simulated."""
    dataset = _dataset(manifest)
    if dataset.get("simulated"):
        return []
    return [PublishedResults.from_dict(p) for p in dataset.get("published") or []]
