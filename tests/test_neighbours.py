"""The blocked nearest-neighbour search (plugins/metrics/_neighbours.py) against brute force,
compared exactly (``==``) on fixtures full of ties, and its independence from row order."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import _brute
from ehrbench_plugins.metrics import _neighbours

DISTANCES = ("hamming", "l1", "l2")


def tied_counts(rng: np.random.Generator, n: int, d: int, top: int = 3) -> np.ndarray:
    """Few columns and small counts, so equal distances (and equal rows) are everywhere."""
    return ((rng.random((n, d)) < 0.35) * rng.integers(1, top + 1, (n, d))).astype(np.float32)


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_distances_equal_brute_force_exactly(distance, seed):
    rng = np.random.default_rng(seed)
    Q, R = tied_counts(rng, 41, 6), tied_counts(rng, 67, 6)
    R[5] = R[9] = Q[0]  # exact copies: distance 0, tied
    full = _brute.distances(Q, R, distance)
    found = _neighbours.search(Q, R, distance=distance, k=3, reference_min=True)
    assert found.distances.dtype == np.float64
    assert np.array_equal(found.distances, np.sort(full, axis=1)[:, :3])
    assert np.array_equal(found.reference_min, full.min(axis=0))
    # The API's indices: ties to the lower index.
    order = np.lexsort((np.broadcast_to(np.arange(67), full.shape), full), axis=1)[:, :3]
    assert np.array_equal(found.indices, order)
    assert found.indices[0, 0] == 5


@pytest.mark.parametrize("distance", DISTANCES)
def test_leave_one_out_and_skip_own_row(distance):
    rng = np.random.default_rng(3)
    X = tied_counts(rng, 40, 5)
    X[7] = X[3]  # a duplicate patient is at distance 0 from row 3
    assert np.array_equal(_neighbours.nearest_distance(X, distance=distance), _brute.nearest(X, None, distance))
    # Queries that are the first rows of the references leave only themselves out.
    expected = _brute.distances(X[:10], X, distance)
    np.fill_diagonal(expected[:, :10], np.inf)
    assert np.array_equal(_neighbours.nearest_distance(X[:10], X, distance=distance, skip_own_row=True),
                          expected.min(axis=1))
    with pytest.raises(ValueError, match="first of the"):
        _neighbours.search(X, X[:5], skip_own_row=True)


def test_issue_reproduction_sqrt2_ties_are_ties():
    """Every nearest distance is √2: float32 roots (the old CPU path) broke these ties."""
    T = np.array([[0, 0, 1], [1, 1, 1]], dtype=np.float32)
    S = np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float32)
    both = _neighbours.search(T, S, reference_min=True)
    assert both.distances[:, 0].tolist() == [np.sqrt(2.0)] * 2
    assert both.reference_min.tolist() == [np.sqrt(2.0)] * 2
    assert _neighbours.nearest_distance(T).tolist() == [np.sqrt(2.0)] * 2


def test_blocks_threads_and_large_counts_stay_exact(monkeypatch):
    """Many blocks (tiny block size, thread pool) and counts too large for float32 sums."""
    monkeypatch.setattr(_neighbours, "_CPU_BLOCK_VALUES", 64)
    rng = np.random.default_rng(4)
    Q, R = tied_counts(rng, 50, 20) * 1000, tied_counts(rng, 70, 20) * 1000
    for distance in DISTANCES:
        found = _neighbours.search(Q, R, distance=distance, k=2, reference_min=True)
        full = _brute.distances(Q, R, distance)
        assert np.array_equal(found.distances, np.sort(full, axis=1)[:, :2])
        assert np.array_equal(found.reference_min, full.min(axis=0))


def test_dense_references_take_the_blas_path():
    rng = np.random.default_rng(5)
    Q, R = rng.integers(0, 3, (20, 8)).astype(np.float32), rng.integers(1, 3, (30, 8)).astype(np.float32)
    for distance in DISTANCES:
        assert np.array_equal(_neighbours.nearest_distance(Q, R, distance=distance), _brute.nearest(Q, R, distance))


def test_l1_levels_are_the_distinct_counts():
    """One cell of 20,000 adds one level, not 20,000 (DESIGN.md §8); the sum stays exact."""
    rng = np.random.default_rng(6)
    Q, R = tied_counts(rng, 40, 10), tied_counts(rng, 50, 10)
    Q[3, 2], R[7, 2], R[8, 4] = 20000, 19999, 7
    levels, weights = _neighbours._levels("l1", Q, R)
    assert levels == (1.0, 2.0, 3.0, 7.0, 19999.0)  # 20000 is above R's largest value
    assert weights == (1.0, 1.0, 1.0, 4.0, 19992.0)
    assert np.array_equal(_neighbours.search(Q, R, distance="l1", k=2).distances,
                          np.sort(_brute.distances(Q, R, "l1"), axis=1)[:, :2])


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("k", [1, 2, 5])
def test_tie_averaged_equals_brute_force_exactly(distance, k):
    rng = np.random.default_rng(7 + k)
    Q, R = tied_counts(rng, 30, 4), tied_counts(rng, 45, 4)
    V = rng.integers(0, 2, (45, 3))
    sums = _neighbours.tie_averaged(Q, R, V, distance=distance, k=k)
    expected = _brute.tie_averaged_mean(Q, R, V, k, distance)
    assert sums.mean().tolist() == [[float(x) for x in row] for row in expected]
    exact = [[Fraction(int(n), int(d)) for n in row] for row, d in zip(sums.numerator(), sums.denominator()[:, 0])]
    assert exact == expected
    assert (sums.tied_count >= 1).all() and (sums.closer_count < k).all()


@pytest.mark.parametrize("distance", DISTANCES)
def test_tie_averaged_does_not_depend_on_row_order(distance):
    rng = np.random.default_rng(8)
    Q, R = tied_counts(rng, 60, 5), tied_counts(rng, 90, 5)
    V = (rng.random((90, 4)) < 0.4).astype(np.int8)
    first = _neighbours.tie_averaged(Q, R, V, distance=distance, k=3).mean()
    for _ in range(3):
        pr, pq = rng.permutation(90), rng.permutation(60)
        again = _neighbours.tie_averaged(Q[pq], R[pr], V[pr], distance=distance, k=3).mean()
        assert np.array_equal(again, first[pq])


@pytest.mark.parametrize("distance", DISTANCES)
def test_torch_kernels_match_numpy_exactly(distance):
    """The CUDA code paths, run on torch's CPU device (no GPU on CI; see the gpu test below)."""
    pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    Q, R = tied_counts(rng, 33, 6), tied_counts(rng, 45, 6)
    plan = _neighbours._plan(distance, Q, R)
    expected = _neighbours.search(Q, R, distance=distance, k=3, reference_min=True)
    d, idx, rmin = _neighbours._search_torch(Q, R, plan, 3, False, True, "cpu")
    assert np.array_equal(idx, expected.indices)
    assert np.array_equal(_neighbours._finish(distance, d), expected.distances)
    assert np.array_equal(_neighbours._finish(distance, rmin), expected.reference_min)
    _, loo_idx, _ = _neighbours._search_torch(Q, Q, plan, 1, True, False, "cpu")
    assert np.array_equal(loo_idx, _neighbours.search(Q, distance=distance).indices)
    V = rng.integers(0, 2, (45, 3))
    cpu = _neighbours.tie_averaged(Q, R, V, distance=distance, k=2)
    torch_sums = _neighbours._tie_averaged_torch(Q, R, _neighbours.sparse.csr_matrix(V), plan, 2, "cpu")
    assert np.array_equal(torch_sums.mean(), cpu.mean())


@pytest.mark.gpu
def test_cuda_search_matches_cpu():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    rng = np.random.default_rng(10)
    Q, R = tied_counts(rng, 3000, 200), tied_counts(rng, 5000, 200)
    V = (rng.random((5000, 7)) < 0.3).astype(np.int8)
    for distance in DISTANCES:
        cpu = _neighbours.search(Q, R, distance=distance, k=2, reference_min=True)
        gpu = _neighbours.search(Q, R, distance=distance, k=2, reference_min=True, device="cuda")
        assert np.array_equal(cpu.indices, gpu.indices)
        assert np.array_equal(cpu.distances, gpu.distances) and np.array_equal(cpu.reference_min, gpu.reference_min)
        assert np.array_equal(_neighbours.tie_averaged(Q, R, V, distance=distance, k=5).mean(),
                              _neighbours.tie_averaged(Q, R, V, distance=distance, k=5, device="cuda").mean())


def test_search_rejects_bad_arguments():
    Q = np.zeros((3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="equal widths"):
        _neighbours.search(Q, np.zeros((3, 5)))
    with pytest.raises(ValueError, match="between 1 and 2"):
        _neighbours.search(Q, k=3)  # leave-one-out: only 2 other rows
    with pytest.raises(ValueError, match="unknown distance"):
        _neighbours.search(Q, Q, distance="cosine")
    with pytest.raises(ValueError, match="values have 2 rows"):
        _neighbours.tie_averaged(Q, Q, np.zeros((2, 1)))
