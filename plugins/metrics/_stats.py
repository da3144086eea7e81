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
    var = np.diag(C).copy()
    const = constant_columns(X) | (var <= 0.0)
    scale = np.sqrt(np.where(const, 1.0, var))
    corr = C / scale[:, None] / scale[None, :]
    np.clip(corr, -1.0, 1.0, out=corr)
    corr[const, :] = 0.0
    corr[:, const] = 0.0
    corr[np.flatnonzero(~const), np.flatnonzero(~const)] = 1.0
    return corr
