"""Shared column statistics for the metric plugins: prevalence, means, correlations.

Everything here is vectorised over codes and accumulates in float64, so a
50k × 1k matrix takes well under a second and no d × d Python loop ever runs.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.stats import rankdata

# Below this share of non-zero entries a sparse product beats dense BLAS by a wide
# margin (EHR matrices are ~1 % dense); above it dense BLAS wins.
SPARSE_DENSITY = 0.05
# Rows per block of the dense Gram product: ~8 M float64 values (64 MiB) per block.
_BLOCK_VALUES = 1 << 23


def density(*arrays: np.ndarray) -> float:
    """Share of non-zero entries over all ``arrays`` (1.0 when empty, so never 'sparse')."""
    size = sum(a.size for a in arrays)
    return float(sum(np.count_nonzero(a) for a in arrays)) / size if size else 1.0


def use_sparse(*arrays: np.ndarray) -> bool:
    """Whether sparse products are the faster route for ``arrays`` taken together."""
    return density(*arrays) < SPARSE_DENSITY


def prevalence(X: np.ndarray) -> np.ndarray:
    """p_j: the share of rows with a value above 0 in column j (float64)."""
    return np.count_nonzero(X > 0, axis=0) / X.shape[0]


def column_means(X: np.ndarray) -> np.ndarray:
    """m_j: the mean of column j, summed in float64."""
    return X.mean(axis=0, dtype=np.float64)


def codes_per_row(X: np.ndarray) -> np.ndarray:
    """Number of distinct codes (entries above 0) in each row."""
    return np.count_nonzero(X > 0, axis=1)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two vectors; 0.0 when either is constant (undefined there)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size == 0 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    a = a - a.mean()
    b = b - b.mean()
    denom = np.sqrt(np.dot(a, a) * np.dot(b, b))
    if denom == 0.0:
        return 0.0
    return float(np.clip(np.dot(a, b) / denom, -1.0, 1.0))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (Pearson of average ranks); 0.0 when either is constant."""
    return pearson(rankdata(a), rankdata(b))


def gram(X: np.ndarray, sparse_path: bool | None = None) -> np.ndarray:
    """XᵀX in float64, through scipy.sparse for sparse data or row-blocked dense BLAS."""
    if sparse_path is None:
        sparse_path = use_sparse(X)
    if sparse_path:
        Xs = sparse.csr_matrix(X, dtype=np.float64)
        return np.asarray((Xs.T @ Xs).toarray(), dtype=np.float64)
    n, d = X.shape
    rows = max(1, _BLOCK_VALUES // max(d, 1))
    G = np.zeros((d, d), dtype=np.float64)
    for start in range(0, n, rows):
        block = np.asarray(X[start : start + rows], dtype=np.float64)
        G += block.T @ block
    return G


def constant_columns(X: np.ndarray) -> np.ndarray:
    """Mask of columns whose values are all equal (their correlations are undefined)."""
    if X.shape[0] == 0:
        return np.ones(X.shape[1], dtype=bool)
    return X.max(axis=0) == X.min(axis=0)


def correlation_matrix(X: np.ndarray, sparse_path: bool | None = None) -> np.ndarray:
    """The d × d Pearson matrix of the columns; entries of constant columns are 0.

    Uses C = n·XᵀX − s sᵀ (s = column sums), which is n² times the covariance and is
    exact in float64 for integer counts, so no centring (which would densify) is needed.
    """
    n = X.shape[0]
    s = X.sum(axis=0, dtype=np.float64)
    C = n * gram(X, sparse_path) - np.outer(s, s)
    return _scaled(C, constant_columns(X))


def _scaled(C: np.ndarray, const: np.ndarray) -> np.ndarray:
    """The Pearson matrix from C (n² times the covariance); constant columns' entries are 0."""
    var = np.diag(C).copy()
    const = const | (var <= 0.0)
    scale = np.sqrt(np.where(const, 1.0, var))
    corr = C / scale[:, None] / scale[None, :]
    np.clip(corr, -1.0, 1.0, out=corr)
    corr[const, :] = 0.0
    corr[:, const] = 0.0
    corr[np.flatnonzero(~const), np.flatnonzero(~const)] = 1.0
    return corr


def resampled_correlation_matrix(X: sparse.csr_matrix, counts: np.ndarray) -> np.ndarray:
    """:func:`correlation_matrix` of the rows of X drawn ``counts`` times each (a bootstrap resample).

    Exact in float64 for integer data, like the unweighted one: a column is constant in the
    resample exactly when its variance there is 0.
    """
    w = counts.astype(np.float64)
    n = w.sum()
    s = np.asarray(X.T @ w).ravel()
    G = np.asarray((X.T @ X.multiply(w[:, None]).tocsr()).toarray(), dtype=np.float64)
    return _scaled(n * G - np.outer(s, s), np.zeros(X.shape[1], dtype=bool))


# -- the bootstrap over the real test rows (Metric.standard_errors) ---------------------------------
# Replicates per standard error: the SE's own relative error is about 1/sqrt(2(B-1)), 10 % here.
BOOTSTRAP_REPLICATES = 50


def bootstrap_counts(rng: np.random.Generator, n: int, replicates: int = BOOTSTRAP_REPLICATES) -> np.ndarray:
    """(replicates, n) draw counts: how often each of n rows is drawn when n are drawn with replacement."""
    draws = rng.integers(0, n, size=(replicates, n)) + (np.arange(replicates) * n)[:, None]
    return np.bincount(draws.ravel(), minlength=replicates * n).reshape(replicates, n)


def resampled_column_sums(X: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(B, d) column sums of X over each bootstrap resample of its rows (``counts``: (B, n)), float64."""
    weights = counts.astype(np.float64)
    if use_sparse(X):
        return np.asarray(sparse.csr_matrix(X, dtype=np.float64).T @ weights.T).T
    return weights @ np.asarray(X, dtype=np.float64)


def row_pearson(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of A with the vector b; 0.0 where either is constant (as :func:`pearson`)."""
    A = np.asarray(A, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if b.size == 0 or np.ptp(b) == 0:
        return np.zeros(A.shape[0])
    Ac = A - A.mean(axis=1, keepdims=True)
    bc = b - b.mean()
    denom = np.sqrt((Ac * Ac).sum(axis=1) * np.dot(bc, bc))
    constant = (np.ptp(A, axis=1) == 0) | (denom == 0)
    out = (Ac @ bc) / np.where(constant, 1.0, denom)
    return np.where(constant, 0.0, np.clip(out, -1.0, 1.0))


def replicate_se(values: np.ndarray) -> float:
    """The bootstrap standard error: the sample std of the finite replicate values (NaN below 2)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.std(ddof=1)) if values.size > 1 else float("nan")
