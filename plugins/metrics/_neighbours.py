"""Blocked nearest-neighbour search for the privacy and utility metrics (DESIGN.md §5, §8).

Every distance comes from one matrix product per block of query rows (per count level for
L1), never a Python loop over rows and never a full queries × references matrix:

- ``hamming``: |q| + |r| − 2 q·r on the 0/1 views (count > 0);
- ``l2``:      ‖q‖² + ‖r‖² − 2 q·r, square-rooted in float64 at the end;
- ``l1``:      Σq + Σr − 2 Σ_i (v_i − v_{i−1}) (q ≥ v_i)·(r ≥ v_i) over the distinct positive
  values v_1 < v_2 < … of both matrices (v_0 = 0): min(a, b) telescopes to that sum when a
  and b are among the v_i. One sparse product per *distinct* level, so one cell of 20,000
  adds one product, not 20,000 (on 0/1 data this is hamming).

EHR rows are integer counts, so each term is an exact integer (float32 on the CPU while the
products stay below 2^24, float64 otherwise and on CUDA, where it also avoids TF32 rounding).
Distances leave this module in float64, so equal distances compare equal wherever they were
computed. Two ways to use neighbours, both independent of row order:

- :func:`search` returns distances (and, for API users, indices with ties to the lower index);
  the metrics use only its distances.
- :func:`tie_averaged` returns, per query, the mean of a value over its k nearest references
  where the references tied at the k-th distance share the remaining places equally: the
  expected value under a uniformly random tie-break, as exact integer sums.

On the CPU, sparse references (the usual case: ~1 % dense) are multiplied as CSR against a
dense block of queries, which beats dense BLAS about 7× on MIMIC-shaped data; blocks run on a
small thread pool (scipy's sparse kernels release the GIL). With ``device="cuda"`` the same
products run in torch, imported only then.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import sparse

from ehrbench import usable_cores
from ehrbench_plugins.metrics import _stats

Distance = Literal["hamming", "l1", "l2"]
DISTANCES: tuple[str, ...] = ("hamming", "l1", "l2")

# Distance values held per block: ~8 M on the CPU (32 MiB float32), ~128 M on a GPU.
_CPU_BLOCK_VALUES = 1 << 23
_GPU_BLOCK_VALUES = 1 << 27
_FLOAT32_EXACT = float(1 << 24)


@dataclass(frozen=True)
class Neighbours:
    """The ``k`` nearest references of each query, nearest first (float64 distances).

    ``distances`` and ``indices`` have shape (queries, k). ``reference_min`` (shape
    (references,)) is each reference's distance to its nearest query, when asked for: one
    pass then serves both directions (e.g. real → synthetic and synthetic → real).
    """

    distances: np.ndarray
    indices: np.ndarray
    reference_min: np.ndarray | None = None


@dataclass(frozen=True)
class TieAveraged:
    """Per query, the k nearest references as sums that stay exact integers.

    ``closer_count`` (c) references lie strictly nearer than the k-th distance and
    ``tied_count`` (t ≥ 1) exactly at it; ``closer_sum`` and ``tied_sum`` (queries × values)
    add the references' values over each group. The k nearest, ties shared equally, average
    to (t·closer_sum + (k − c)·tied_sum) / (k·t): see :meth:`numerator` and :meth:`denominator`.
    """

    k: int
    closer_count: np.ndarray
    tied_count: np.ndarray
    closer_sum: np.ndarray
    tied_sum: np.ndarray

    def numerator(self) -> np.ndarray:
        """t·Σ_closer + (k − c)·Σ_tied per (query, value): an integer in float64."""
        t = self.tied_count[:, None].astype(np.float64)
        rest = (self.k - self.closer_count)[:, None].astype(np.float64)
        return t * self.closer_sum + rest * self.tied_sum

    def denominator(self) -> np.ndarray:
        """k·t per query (shape (queries, 1)), an integer in float64."""
        return (self.k * self.tied_count.astype(np.float64))[:, None]

    def mean(self) -> np.ndarray:
        """The tie-averaged mean of each value over the k nearest: one correctly rounded division."""
        return self.numerator() / self.denominator()


def _check(
    queries: np.ndarray, references: np.ndarray | None, distance: str, k: int, skip_own_row: bool = False
) -> tuple[np.ndarray, np.ndarray, bool]:
    if distance not in DISTANCES:
        raise ValueError(f"unknown distance {distance!r}; expected one of {', '.join(DISTANCES)}")
    leave_one_out = references is None or skip_own_row
    Q = np.asarray(queries)
    Rf = Q if references is None else np.asarray(references)
    if Q.ndim != 2 or Rf.ndim != 2 or Q.shape[1] != Rf.shape[1]:
        raise ValueError(f"queries {Q.shape} and references {Rf.shape} must be 2-D with equal widths")
    if skip_own_row and Q.shape[0] > Rf.shape[0]:
        raise ValueError(f"skip_own_row: the {Q.shape[0]} queries must be the first of the {Rf.shape[0]} references")
    n_ref = Rf.shape[0] - (1 if leave_one_out else 0)
    if not 1 <= k <= n_ref:
        raise ValueError(f"k = {k} nearest neighbours needs between 1 and {n_ref} reference rows")
    return Q, Rf, leave_one_out


def search(
    queries: np.ndarray,
    references: np.ndarray | None = None,
    *,
    distance: Distance = "l2",
    k: int = 1,
    reference_min: bool = False,
    device: str = "cpu",
    skip_own_row: bool = False,
) -> Neighbours:
    """The ``k`` nearest rows of ``references`` for every row of ``queries``.

    ``references=None`` searches ``queries`` against itself, leaving each row out (its own
    index, not rows that merely equal it: a duplicate patient is at distance 0);
    ``skip_own_row=True`` does the same when the queries are the first rows of
    ``references`` (query i is reference i). Values must
    be non-negative integers (counts or 0/1), as every EHRMatrix holds. Among equally near
    references the lower index comes first; metrics that use neighbours' values call
    :func:`tie_averaged` instead, which does not depend on row order.
    """
    Q, Rf, leave_one_out = _check(queries, references, distance, k, skip_own_row)
    if Q.shape[0] == 0:
        empty = np.empty((0, k))
        return Neighbours(empty, empty.astype(np.int64), np.full(Rf.shape[0], np.inf) if reference_min else None)
    plan = _plan(distance, Q, Rf)
    if str(device).startswith("cuda"):
        d2, idx, rmin = _search_torch(Q, Rf, plan, k, leave_one_out, reference_min, device)
    else:
        d2, idx, rmin = _search_cpu(Q, Rf, plan, k, leave_one_out, reference_min)
    return Neighbours(_finish(distance, d2), idx, _finish(distance, rmin) if rmin is not None else None)


def nearest_distance(
    queries: np.ndarray,
    references: np.ndarray | None = None,
    *,
    distance: Distance = "l2",
    device: str = "cpu",
    skip_own_row: bool = False,
) -> np.ndarray:
    """Distance of every query row to its nearest reference row (or other query row), float64."""
    return search(queries, references, distance=distance, device=device, skip_own_row=skip_own_row).distances[:, 0]


def tie_averaged(
    queries: np.ndarray,
    references: np.ndarray,
    values: np.ndarray | sparse.spmatrix,
    *,
    distance: Distance = "l2",
    k: int = 1,
    device: str = "cpu",
) -> TieAveraged:
    """Sums of ``values`` (one row per reference, non-negative integers) over each query's k nearest.

    References tied at the k-th distance are all kept, with counts, so the caller averages
    them equally (:meth:`TieAveraged.mean`): the answer is the expectation over a uniformly
    random tie-break, the same for any order of the rows.
    """
    Q, Rf, _ = _check(queries, references, distance, k)
    V = sparse.csr_matrix(values) if not sparse.issparse(values) else values.tocsr()
    if V.shape[0] != Rf.shape[0]:
        raise ValueError(f"values have {V.shape[0]} rows for {Rf.shape[0]} references")
    if Q.shape[0] == 0:
        z = np.zeros(0, dtype=np.int64)
        return TieAveraged(k, z, z, np.zeros((0, V.shape[1])), np.zeros((0, V.shape[1])))
    plan = _plan(distance, Q, Rf)
    if str(device).startswith("cuda"):
        return _tie_averaged_torch(Q, Rf, V, plan, k, device)
    value_dtype = np.float32 if float(V.sum()) < _FLOAT32_EXACT else np.float64
    # Mask × values: sparse values (the usual EHR case) by scipy, dense ones by BLAS.
    sparse_values = V.nnz < _stats.SPARSE_DENSITY * V.shape[0] * V.shape[1]
    Vd = V.astype(value_dtype) if sparse_values else V.toarray().astype(value_dtype)

    def reduce(E: np.ndarray, q_norm: np.ndarray) -> tuple[np.ndarray, ...]:
        kth = np.partition(E, k - 1, axis=1)[:, k - 1 : k]
        closer = E < kth
        tied = E == kth
        closer_sum = np.asarray(closer.astype(value_dtype) @ Vd, dtype=np.float64)
        tied_sum = np.asarray(tied.astype(value_dtype) @ Vd, dtype=np.float64)
        return closer.sum(axis=1), tied.sum(axis=1), closer_sum, tied_sum

    parts = _map_cpu_blocks(Q, Rf, plan, False, reduce)
    c, t, cs, ts = (np.concatenate([p[i] for p in parts], axis=0) for i in range(4))
    return TieAveraged(k, c.astype(np.int64), t.astype(np.int64), cs, ts)


def _finish(distance: str, d2: np.ndarray) -> np.ndarray:
    """Squared-l2 or integer distances → float64 distances (l2: square root in float64)."""
    d = np.maximum(np.asarray(d2, dtype=np.float64), 0.0)
    return np.sqrt(d) if distance == "l2" else d


@dataclass(frozen=True)
class _Plan:
    """How one search computes: the distance, its product levels and weights, the exact float type."""

    distance: str
    levels: tuple[float, ...]
    dtype: type
    weights: tuple[float, ...] = ()

    def level_weights(self) -> tuple[float, ...]:
        return self.weights or tuple(1.0 for _ in self.levels)

    def operand(self, X: np.ndarray, t: float) -> np.ndarray:
        """What one product multiplies: the 0/1 view (hamming), X ≥ t (l1 level t), or X (l2)."""
        if self.distance == "hamming":
            X = X > 0
        elif self.distance == "l1":
            X = X >= t
        return np.asarray(X, dtype=self.dtype)

    def norms(self, X: np.ndarray) -> np.ndarray:
        """The per-row term of raw rows X: |x > 0| (hamming), Σx (l1) or ‖x‖² (l2), in float64."""
        if self.distance == "hamming":
            return np.count_nonzero(X, axis=1).astype(np.float64)
        if self.distance == "l2":
            return np.einsum("ij,ij->i", X, X, dtype=np.float64)
        return X.sum(axis=1, dtype=np.float64)


def _plan(distance: str, Q: np.ndarray, Rf: np.ndarray) -> _Plan:
    q_top, r_top = float(Q.max(initial=0)), float(Rf.max(initial=0))
    levels, weights = _levels(distance, Q, Rf)
    return _Plan(distance, levels, _exact_dtype(max(q_top, r_top), Q.shape[1]), weights)


def _levels(distance: str, Q: np.ndarray, Rf: np.ndarray | None = None) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """L1's count levels v_i and weights v_i − v_{i−1}: the distinct positive values of Q and R
    up to the smaller of their maxima (above it one side is always below the level). Else one pass."""
    if distance != "l1":
        return (0.0,), (1.0,)
    Rf = Q if Rf is None else Rf
    top = min(float(Q.max(initial=0)), float(Rf.max(initial=0)))
    values = np.union1d(_positive_values(Q), _positive_values(Rf))
    values = values[values <= top]
    if values.size == 0:
        return (1.0,), (1.0,)
    weights = np.diff(values, prepend=0.0)
    return tuple(float(v) for v in values), tuple(float(w) for w in weights)


def _positive_values(X: np.ndarray) -> np.ndarray:
    if sparse.issparse(X):
        data = X.data
    else:
        data = X[X > 0]
    return np.unique(np.asarray(data, dtype=np.float64))


def _exact_dtype(peak: float, width: int) -> type:
    """float32 while every term (|q·r|, norms, ‖r‖ − 2 q·r) is an exact integer in it, else float64."""
    return np.float32 if 2.0 * peak * peak * width < _FLOAT32_EXACT else np.float64


def _sparse_operands(Rf: np.ndarray, plan: _Plan) -> tuple[list[sparse.csc_matrix], np.ndarray]:
    """The references as transposed CSR per level, and their norms, from one CSR build."""
    base = sparse.csr_matrix(Rf, dtype=plan.dtype)  # stores the non-zeros only
    ops = []
    for t in plan.levels:
        if plan.distance == "l2":
            ops.append(base.T)
            continue
        m = base.copy()
        m.data = (m.data > 0 if plan.distance == "hamming" else m.data >= t).astype(plan.dtype)
        m.eliminate_zeros()
        ops.append(m.T)
    data = base.data.astype(np.float64)
    per_nnz = {"hamming": np.ones_like(data), "l2": data * data, "l1": data}[plan.distance]
    rows = np.repeat(np.arange(base.shape[0]), np.diff(base.indptr))
    return ops, np.bincount(rows, weights=per_nnz, minlength=base.shape[0])


def _map_cpu_blocks(
    Q: np.ndarray,
    Rf: np.ndarray,
    plan: _Plan,
    leave_one_out: bool,
    reduce: Callable[[np.ndarray, np.ndarray], Any],
) -> list[Any]:
    """``reduce(E, q_norm)`` on every block of queries, in order.

    E (block × references, ``plan.dtype``) holds ‖r‖ − 2 q·r (or its hamming / l1 analogue):
    the distance less the query's own term ``q_norm`` (float64), so a row of E orders and ties
    exactly as the distances do. Leave-one-out sets a query's own entry to +inf.
    Each block is dense queries × sparse references (CSR, transposed view): the product comes
    back in the (queries × references) layout that row-wise reductions read fastest.
    """
    use_sparse = _stats.use_sparse(Rf)
    if use_sparse:
        ref_ops, r_norm = _sparse_operands(Rf, plan)
    else:
        ref_ops = [plan.operand(Rf, t).T for t in plan.levels]
        r_norm = plan.norms(Rf)
    r_term = r_norm.astype(plan.dtype)[None, :]
    weights = plan.level_weights()
    n_q, n_r = Q.shape[0], Rf.shape[0]
    rows = int(np.clip(_CPU_BLOCK_VALUES // max(n_r, 1), 1, n_q))
    starts = list(range(0, n_q, rows))

    def block(start: int) -> Any:
        stop = min(n_q, start + rows)
        Qb = Q[start:stop]
        E = None
        for t, w, op in zip(plan.levels, weights, ref_ops):
            product = np.asarray(plan.operand(Qb, t) @ op)  # exact integer sums
            if w != 1.0:
                product *= w
            E = product if E is None else E + product
        # E = ‖r‖ − 2 q·r, in place: the query's own term is the same for every reference.
        E *= -2.0
        E += r_term
        if leave_one_out:
            span = np.arange(stop - start)
            E[span, span + start] = np.inf
        return reduce(E, plan.norms(Qb))

    # Sparse kernels are single-threaded, so blocks share the cores; dense BLAS threads itself.
    if use_sparse and len(starts) > 1 and usable_cores() > 1:
        with ThreadPoolExecutor(max_workers=min(usable_cores(), len(starts))) as pool:
            return list(pool.map(block, starts))
    return [block(s) for s in starts]


def _search_cpu(
    Q: np.ndarray, Rf: np.ndarray, plan: _Plan, k: int, leave_one_out: bool, want_rmin: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Blocks of queries against all references; returns squared-l2 / integer distances in float64."""

    def reduce(E: np.ndarray, q_norm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        # E + q_norm is an exact integer in plan.dtype (the same bound covers it).
        rmin = (E + q_norm[:, None].astype(plan.dtype)).min(axis=0).astype(np.float64) if want_rmin else None
        dist, idx = _k_smallest(E, k)
        return dist + q_norm[:, None], idx, rmin

    parts = _map_cpu_blocks(Q, Rf, plan, leave_one_out, reduce)
    dist = np.concatenate([p[0] for p in parts], axis=0)
    idx = np.concatenate([p[1] for p in parts], axis=0)
    rmin = np.min(np.stack([p[2] for p in parts]), axis=0) if want_rmin else None
    return dist, idx, rmin


def _k_smallest(E: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of E (queries × references): the k smallest values (float64) and their columns.

    Ties go to the lower reference index: E holds exact integers, so E·n + index is an exact
    float64 key that orders by distance, then index.
    """
    rows = np.arange(E.shape[0])
    if k == 1:
        idx = np.argmin(E, axis=1)  # first minimum = lowest index
        return E[rows, idx].astype(np.float64)[:, None], idx[:, None].astype(np.int64)
    n_r = E.shape[1]
    key = E.astype(np.float64) * n_r + np.arange(n_r, dtype=np.float64)[None, :]
    part = np.argpartition(key, k - 1, axis=1)[:, :k]
    order = np.argsort(np.take_along_axis(key, part, axis=1), axis=1)
    idx = np.take_along_axis(part, order, axis=1)
    return np.take_along_axis(E, idx, axis=1).astype(np.float64), idx.astype(np.int64)


# ------------------------------------------------------------------ torch (CUDA) path


def _torch_blocks(Q: np.ndarray, Rf: np.ndarray, plan: _Plan, leave_one_out: bool, device: str):
    """Yield (E, q_norm) per block, as :func:`_map_cpu_blocks` does, in float64 torch tensors."""
    import torch

    dev = torch.device(device)
    Qt = torch.from_numpy(np.ascontiguousarray(Q, dtype=np.float64)).to(dev)
    Rt = Qt if Rf is Q else torch.from_numpy(np.ascontiguousarray(Rf, dtype=np.float64)).to(dev)

    def operand(X: "torch.Tensor", t: float) -> "torch.Tensor":
        if plan.distance == "hamming":
            return (X > 0).to(torch.float64)
        return (X >= t).to(torch.float64) if plan.distance == "l1" else X

    def norms(X: "torch.Tensor") -> "torch.Tensor":
        if plan.distance == "hamming":
            return (X > 0).sum(dim=1).to(torch.float64)
        return (X * X).sum(dim=1) if plan.distance == "l2" else X.sum(dim=1)

    r_norm = norms(Rt)
    ref_ops = [operand(Rt, t).T.contiguous() for t in plan.levels]
    n_q, n_r = Qt.shape[0], Rt.shape[0]
    rows = int(np.clip(_GPU_BLOCK_VALUES // max(n_r, 1), 1, n_q))
    for start in range(0, n_q, rows):
        stop = min(n_q, start + rows)
        Qb = Qt[start:stop]
        E = torch.zeros((stop - start, n_r), dtype=torch.float64, device=dev)
        for t, w, op in zip(plan.levels, plan.level_weights(), ref_ops):
            E += w * (operand(Qb, t) @ op)
        E = r_norm[None, :] - 2.0 * E
        if leave_one_out:
            span = torch.arange(stop - start, device=dev)
            E[span, span + start] = float("inf")
        yield E, norms(Qb)[:, None]


def _search_torch(
    Q: np.ndarray, Rf: np.ndarray, plan: _Plan, k: int, leave_one_out: bool, want_rmin: bool, device: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The same blocked search in torch (used for CUDA), in float64: exact, and no TF32 rounding."""
    import torch

    n_r = Rf.shape[0]
    ref_index = torch.arange(n_r, device=torch.device(device), dtype=torch.float64)[None, :]
    dists, idxs, rmin = [], [], None
    for E, q_norm in _torch_blocks(Q, Rf, plan, leave_one_out, device):
        if k == 1:
            val, idx = torch.min(E, dim=1, keepdim=True)  # first minimum = lowest index
        else:
            key = torch.where(torch.isinf(E), E, E * n_r + ref_index)
            _, idx = torch.topk(key, k, dim=1, largest=False, sorted=True)
            val = torch.gather(E, 1, idx)
        dists.append((val + q_norm).cpu().numpy())
        idxs.append(idx.cpu().numpy().astype(np.int64))
        if want_rmin:
            block_min = (E + q_norm).min(dim=0).values
            rmin = block_min if rmin is None else torch.minimum(rmin, block_min)
    return (
        np.concatenate(dists, axis=0),
        np.concatenate(idxs, axis=0),
        rmin.cpu().numpy() if rmin is not None else None,
    )


def _tie_averaged_torch(
    Q: np.ndarray, Rf: np.ndarray, V: sparse.csr_matrix, plan: _Plan, k: int, device: str
) -> TieAveraged:
    """:func:`tie_averaged` in torch float64 (exact integer sums below 2^53)."""
    import torch

    Vt = torch.from_numpy(np.ascontiguousarray(V.toarray(), dtype=np.float64)).to(torch.device(device))
    parts = []
    for E, _ in _torch_blocks(Q, Rf, plan, False, device):
        kth = torch.kthvalue(E, k, dim=1, keepdim=True).values
        closer = (E < kth).to(torch.float64)
        tied = (E == kth).to(torch.float64)
        parts.append(tuple(x.cpu().numpy() for x in (closer.sum(1), tied.sum(1), closer @ Vt, tied @ Vt)))
    c, t, cs, ts = (np.concatenate([p[i] for p in parts], axis=0) for i in range(4))
    return TieAveraged(k, c.astype(np.int64), t.astype(np.int64), cs, ts)
