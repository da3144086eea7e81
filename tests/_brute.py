"""Brute-force references for the neighbour-based metrics: full distance matrices from
scipy.spatial.distance, Python loops and exact fractions. Written from the definitions in
DESIGN.md §5, independently of plugins/metrics, so tests can compare with ``==``."""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

import numpy as np
from scipy.spatial.distance import cdist


def distances(Q: np.ndarray, R: np.ndarray, distance: str) -> np.ndarray:
    """Full queries × references matrix: Hamming on the 0/1 views, L1 or L2 (float64)."""
    Q, R = np.asarray(Q, dtype=np.float64), np.asarray(R, dtype=np.float64)
    if distance == "hamming":
        return cdist(Q > 0, R > 0, "cityblock")
    return cdist(Q, R, "cityblock" if distance == "l1" else "euclidean")


def nearest(Q: np.ndarray, R: np.ndarray | None, distance: str) -> np.ndarray:
    """Distance to the nearest reference (R None: the nearest other row of Q)."""
    if R is None:
        D = distances(Q, Q, distance)
        np.fill_diagonal(D, np.inf)
    else:
        D = distances(Q, R, distance)
    return D.min(axis=1)


def tie_averaged_mean(Q: np.ndarray, R: np.ndarray, V: np.ndarray, k: int, distance: str) -> list[list[Fraction]]:
    """Per query and value column: the mean over the k nearest, references tied at the k-th
    distance sharing its remaining places equally (exact)."""
    D = distances(Q, R, distance)
    out = []
    for row in D:
        kth = np.sort(row)[k - 1]
        closer, tied = row < kth, row == kth
        c, t = int(closer.sum()), int(tied.sum())
        out.append([(Fraction(int(V[closer, j].sum())) + Fraction(k - c, t) * int(V[tied, j].sum())) / k
                    for j in range(V.shape[1])])
    return out


def pair_share(low: np.ndarray, high: np.ndarray) -> Fraction:
    """P(a < b) + ½ P(a = b) over all pairs (a in low, b in high)."""
    total = sum(2 * (a < b) + (a == b) for a in low for b in high)
    return Fraction(int(total), 2 * len(low) * len(high))


def membership(members: np.ndarray, non_members: np.ndarray, S: np.ndarray, strata: int) -> tuple[float, float, float]:
    """(size-stratified AUROC, plain AUROC, best accuracy) of the Hamming nearest-synthetic-row attack."""
    dm, dn = nearest(members, S, "hamming"), nearest(non_members, S, "hamming")
    best = len(dn)  # t = −∞: everyone a non-member
    for t in set(dm) | set(dn):
        best = max(best, int((dm <= t).sum() + (dn > t).sum()))
    size_m, size_n = (members > 0).sum(axis=1), (non_members > 0).sum(axis=1)
    edges = strata_edges(np.concatenate([size_m, size_n]), strata)

    def stratum(size: int) -> int:
        return max([i for i, e in enumerate(edges) if size >= e], default=0)

    ordered = pairs = 0
    for a, sa in zip(dm, size_m):
        for b, sb in zip(dn, size_n):
            if stratum(sa) == stratum(sb):
                ordered += 2 * (a < b) + (a == b)
                pairs += 2
    return float(Fraction(int(ordered), pairs)), float(pair_share(dm, dn)), float(Fraction(best, len(dm) + len(dn)))


def beyond(far: np.ndarray, near: np.ndarray) -> Fraction:
    return Fraction(int(sum(2 * (f > n) + (f == n) for f, n in zip(far, near))), 2 * len(far))


def adversarial_accuracy(target: np.ndarray, S: np.ndarray, distance: str) -> Fraction:
    """Yale et al.'s AA on full, equally sized sets, ties ½."""
    d_ts, d_tt = nearest(target, S, distance), nearest(target, None, distance)
    d_st, d_ss = nearest(S, target, distance), nearest(S, None, distance)
    return (beyond(d_ts, d_tt) + beyond(d_st, d_ss)) / 2


def f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    tp = int(np.logical_and(truth, predicted).sum())
    denominator = int(truth.sum() + predicted.sum())
    return float(Fraction(2 * tp, denominator)) if denominator else 0.0


def known_and_attacked(members: np.ndarray, non_members: np.ndarray, n_known: int) -> tuple[np.ndarray, np.ndarray]:
    """The n_known codes most present over the attacked rows pooled (ties: lower column), and the rest."""
    present = [int((members[:, j] > 0).sum() + (non_members[:, j] > 0).sum()) for j in range(members.shape[1])]
    ranked = sorted(range(members.shape[1]), key=lambda j: (-present[j], j))
    return np.array(sorted(ranked[:n_known])), np.array(sorted(ranked[n_known:]))


def attribute_f1(rows: np.ndarray, S: np.ndarray, known: np.ndarray, attacked: np.ndarray, k: int) -> float:
    """F1 of the attack: attacked codes present where over half the tie-averaged k nearest have them."""
    rows, S = rows > 0, S > 0
    means = tie_averaged_mean(rows[:, known], S[:, known], S[:, attacked].astype(int), k, "hamming")
    predicted = np.array([[m > Fraction(1, 2) for m in row] for row in means], dtype=bool)
    return f1(rows[:, attacked], predicted)


def copy_shares(S: np.ndarray, T: np.ndarray, R: np.ndarray) -> tuple[Fraction, Fraction]:
    """(share of S equal to a row of T and no row of R, share of R equal to a row of T and no other row of R)."""
    t = {tuple(r) for r in T}
    r_count = Counter(tuple(r) for r in R)
    synthetic = sum(tuple(s) in t and r_count[tuple(s)] == 0 for s in S)
    holdout = sum(tuple(r) in t and r_count[tuple(r)] == 1 for r in R)
    return Fraction(synthetic, len(S)), Fraction(holdout, len(R))


def strata_edges(sizes: np.ndarray, strata: int) -> list[int]:
    """Lower edges: walk the sorted distinct sizes, opening a stratum once the last holds ⌈n/strata⌉ rows."""
    least = -(-len(sizes) // strata)
    edges, filled = [], 0
    for size in sorted(set(int(x) for x in sizes)):
        if not edges or filled >= least:
            edges.append(size)
            filled = 0
        filled += int((sizes == size).sum())
    if len(edges) > 1 and filled < least:
        edges.pop()
    return edges


def dcr(S: np.ndarray, R: np.ndarray, T: np.ndarray, distance: str, strata: int) -> tuple[float, float]:
    """(closer_share, calibrated value) of the stratified DCR comparison, exact."""
    d_s, d_r = nearest(S, T, distance), nearest(R, T, distance)
    size_s, size_r = (S > 0).sum(axis=1), (R > 0).sum(axis=1)
    edges = strata_edges(size_r, strata)

    def stratum(size: int) -> int:
        return max([i for i, e in enumerate(edges) if size >= e], default=0)

    place_r = np.array([stratum(x) for x in size_r])
    closer = at_zero = Fraction(0)
    for d, size in zip(d_s, size_s):
        ref = d_r[place_r == stratum(size)]
        if d == 0 or size_r.min() <= size <= size_r.max():  # else: no patient of its size, farther than all
            closer += pair_share(np.array([d]), ref)
        at_zero += pair_share(np.array([0.0]), ref)
    closer, at_zero = closer / len(S), at_zero / len(S)
    half = Fraction(1, 2)
    value = closer if closer <= half else half + half * min(Fraction(1), (closer - half) / (at_zero - half))
    return float(closer), float(value)
