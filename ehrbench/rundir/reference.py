"""Aggregates of a matrix that the report's figures draw: never a row, only summaries.

The runner writes the real test split's aggregates to ``reference.npz`` when a run finishes
(DESIGN.md §4: no real patient row enters a run directory), so ``ehrbench report RUN_DIR``
can rebuild every figure offline from the run directory alone. Synthetic samples are
summarised the same way, over the same most-prevalent codes.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ehrbench.atomic import atomic_open
from ehrbench.errors import InputError
from ehrbench.matrix import MIN_SPLIT_PATIENTS

TOP_CODES = 30  # codes in the correlation-difference matrix: readable as a heatmap
_ROW_BLOCK = 8192


@dataclass
class Aggregates:
    """Per-code prevalence, the codes-per-record histogram and the top codes' correlations."""

    n_rows: int
    prevalence: np.ndarray  # (d,) share of rows with the code present
    codes_per_record: np.ndarray  # (max + 1,) number of rows with k distinct codes
    top_corr: np.ndarray  # (K, K) Pearson correlations of the reference's top-K codes


@dataclass
class Reference:
    """The real test split's aggregates and which codes the correlation matrix covers."""

    codes: np.ndarray
    top_index: np.ndarray
    real: Aggregates


def _presence_stats(X: np.ndarray, top_index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column presence counts, distinct codes per row and the top columns' presence, in row blocks."""
    present_count = np.zeros(X.shape[1], dtype=np.int64)
    per_row = np.empty(X.shape[0], dtype=np.int64)
    top = np.empty((X.shape[0], len(top_index)), dtype=np.float64)
    for start in range(0, X.shape[0], _ROW_BLOCK):
        block = np.asarray(X[start : start + _ROW_BLOCK]) > 0
        present_count += block.sum(axis=0)
        per_row[start : start + len(block)] = block.sum(axis=1)
        top[start : start + len(block)] = block[:, top_index]
    return present_count, per_row, top


def correlation(columns: np.ndarray) -> np.ndarray:
    """Pearson correlation of the columns; a pair with a constant column counts as 0 (DESIGN §8)."""
    centred = columns - columns.mean(axis=0)
    norms = np.sqrt((centred**2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = (centred.T @ centred) / np.outer(norms, norms)
    corr[~np.isfinite(corr)] = 0.0
    return corr


def aggregate(X: np.ndarray, top_index: np.ndarray) -> Aggregates:
    """Aggregates of ``X`` (patients × codes) over the presence view, correlations on ``top_index``."""
    n = X.shape[0]
    if n == 0:
        raise InputError("cannot summarise a matrix with no rows.")
    present_count, per_row, top = _presence_stats(X, top_index)
    return Aggregates(
        n_rows=n,
        prevalence=present_count / n,
        codes_per_record=np.bincount(per_row),
        top_corr=correlation(top),
    )


def top_codes(prevalence: np.ndarray, k: int = TOP_CODES) -> np.ndarray:
    """Indices of the ``k`` most prevalent codes (ties by column order), most prevalent first."""
    order = np.argsort(-prevalence, kind="stable")
    return order[: min(k, len(prevalence))]


def build_reference(X_test: np.ndarray, codes: np.ndarray, k: int = TOP_CODES) -> Reference:
    prevalence = _presence_stats(X_test, np.arange(0))[0] / max(X_test.shape[0], 1)
    index = top_codes(prevalence, k)
    return Reference(np.asarray(codes, dtype=str), index, aggregate(X_test, index))


def write_reference(path: Path, reference: Reference) -> Path:
    """Write ``reference`` to ``path`` (a run's ``RunDirectory.reference_path``), atomically.

    Refused for a split so small that its aggregates would give its rows away (the split itself
    refuses such a dataset first: matrix.MIN_SPLIT_PATIENTS).
    """
    r = reference.real
    if r.n_rows < MIN_SPLIT_PATIENTS:
        raise InputError(f"the test split has {r.n_rows} patient(s); aggregates of fewer than "
                         f"{MIN_SPLIT_PATIENTS} would reveal their rows, so {path.name} is not written.")
    with atomic_open(path, "wb") as fh:
        np.savez_compressed(
            fh, codes=reference.codes, top_index=reference.top_index, n_rows=np.int64(r.n_rows),
            prevalence=r.prevalence, codes_per_record=r.codes_per_record, top_corr=r.top_corr,
        )
    return path


def read_reference(path: Path) -> Reference | None:
    """A run's real-data aggregates; None when the run has none (e.g. it never finished)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            real = Aggregates(int(npz["n_rows"]), npz["prevalence"], npz["codes_per_record"], npz["top_corr"])
            return Reference(npz["codes"], npz["top_index"], real)
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: not a readable reference file ({exc}); rerun to rewrite it.") from None
