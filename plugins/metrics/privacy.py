"""Privacy metrics (DESIGN.md §5): attacks that use the real train split T as members and the
real test split R as non-members against the synthetic set S.

Every nearest-neighbour search is the blocked matrix-product search of ``_neighbours`` (on
the GPU when the run is on CUDA). Rows are subsampled only where an option caps them
(``max_rows``; the ``quick`` and ``smoke`` profiles do), seeded from ``ctx.seed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from sklearn.metrics import roc_auc_score

from ehrbench.api import INFO, Direction, Metric, RunContext
from ehrbench.hookspecs import hookimpl
from ehrbench.matrix import EHRMatrix
from ehrbench_plugins.metrics import _neighbours

TOWARD_HALF = Direction(higher_is_better=False, target=0.5)
LOWER = Direction(higher_is_better=False)


def _check_max_rows(value: int | None) -> None:
    if value is not None and value < 2:
        raise ValueError(f"max_rows must be at least 2 (or unset for no limit), got {value}")


def _check_sets(metric: str, train: EHRMatrix, test: EHRMatrix, synthetic: EHRMatrix, least: int = 1) -> None:
    train.check_same_codes(synthetic, "the real train set", "the synthetic set")
    train.check_same_codes(test, "the real train set", "the real test set")
    for label, m in (("real train", train), ("real test", test), ("synthetic", synthetic)):
        if m.n_patients < least:
            raise ValueError(f"{metric}: the {label} set has {m.n_patients} row(s); at least {least} needed.")


def _sample_rows(X: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` rows of X without replacement (all of them, in order, when size ≥ rows)."""
    if size >= X.shape[0]:
        return X
    return X[np.sort(rng.choice(X.shape[0], size, replace=False))]


def _members_and_non_members(
    metric: str, train: EHRMatrix, test: EHRMatrix, max_rows: int | None, ctx: RunContext
) -> tuple[np.ndarray, np.ndarray]:
    """Equal numbers m = min(n_T, n_R, max_rows) of member (T) and non-member (R) rows."""
    m = min(train.n_patients, test.n_patients, max_rows or train.n_patients)
    rng = ctx.rng(metric, "rows")
    return _sample_rows(train.X, m, rng), _sample_rows(test.X, m, rng)


# ------------------------------------------------------------------ membership inference


def attack_auroc_and_accuracy(member_distance: np.ndarray, non_member_distance: np.ndarray) -> tuple[float, float]:
    """A distance attack that calls a row a member when it is close to S.

    Returns its AUROC (score = −distance; ties count ½) and its best accuracy over thresholds
    t of the rule "member iff distance ≤ t" (t = −∞ included: every row a non-member), on the
    pooled rows. Both are 0.5 for an attack that learns nothing.
    """
    dm = np.asarray(member_distance, dtype=np.float64)
    dn = np.asarray(non_member_distance, dtype=np.float64)
    if dm.size == 0 or dn.size == 0:
        raise ValueError("the attack needs at least one member and one non-member row")
    y = np.concatenate([np.ones(dm.size), np.zeros(dn.size)])
    auroc = float(roc_auc_score(y, -np.concatenate([dm, dn])))
    thresholds = np.unique(np.concatenate([dm, dn]))
    members_within = np.searchsorted(np.sort(dm), thresholds, side="right")
    non_members_within = np.searchsorted(np.sort(dn), thresholds, side="right")
    correct = members_within + (dn.size - non_members_within)
    best = max(float(dn.size), float(correct.max()))
    return auroc, best / (dm.size + dn.size)


def _row_hashes(X: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """A 64-bit hash per row: Σ_j x_j·w_j in unsigned (wrap-around, exact) arithmetic."""
    out = np.empty(X.shape[0], dtype=np.uint64)
    for start in range(0, X.shape[0], 4096):  # blocks of rows bound the integer copy
        out[start : start + 4096] = X[start : start + 4096].astype(np.uint64) @ weights
    return out


def exact_copy_share(synthetic: np.ndarray, train: np.ndarray) -> float:
    """Share of synthetic rows equal, value for value, to some training row.

    Rows are matched by a 64-bit integer hash and every match is confirmed on the rows
    themselves. Should two different training rows share a hash (odds ~n²/2⁶⁴), the answer
    comes from an exact sort of all rows instead, so it is exact either way.
    """
    if synthetic.shape[0] == 0 or train.shape[0] == 0:
        return 0.0
    weights = np.random.default_rng(0x5EED).integers(1, np.iinfo(np.int64).max, size=train.shape[1]).astype(np.uint64)
    ht, hs = _row_hashes(train, weights), _row_hashes(synthetic, weights)
    order = np.argsort(ht, kind="stable")
    sorted_hashes = ht[order]
    twins = np.flatnonzero(sorted_hashes[1:] == sorted_hashes[:-1])
    if twins.size and not np.all(train[order[twins]] == train[order[twins + 1]]):
        return _exact_copy_share_by_sorting(synthetic, train)
    pos = np.minimum(np.searchsorted(sorted_hashes, hs), sorted_hashes.size - 1)
    found = sorted_hashes[pos] == hs
    same = np.all(synthetic[found] == train[order[pos[found]]], axis=1)
    return float(np.count_nonzero(same)) / synthetic.shape[0]


def _exact_copy_share_by_sorting(synthetic: np.ndarray, train: np.ndarray) -> float:
    _, inverse = np.unique(np.vstack([train, synthetic]), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    copied = np.isin(inverse[train.shape[0]:], inverse[: train.shape[0]])
    return float(np.count_nonzero(copied)) / synthetic.shape[0]


@dataclass(frozen=True)
class MembershipOptions:
    """Cap on the member (and non-member) rows; None: m = min(n_T, n_R)."""

    max_rows: int | None = None

    def __post_init__(self) -> None:
        _check_max_rows(self.max_rows)


class MembershipInference(Metric):
    """Distance-to-closest-synthetic-row membership attack on the 0/1 view.

    m members (rows of T) and m non-members (rows of R) are scored by their Hamming distance
    to the nearest row of S. ``value``: the attack's AUROC; ``best_accuracy``: its best
    accuracy over thresholds; ``exact_copies``: the share of S that copies a row of T exactly.
    """

    name = "membership_inference"
    category = "privacy"
    higher_is_better = False
    target = 0.5
    description = "AUROC of a nearest-synthetic-row (Hamming) membership attack, members T vs non-members R."
    tradeoff_axis = 1  # the report's trade-off figures prefer the smallest
    Options = MembershipOptions
    profiles = {"smoke": {"max_rows": 300}, "quick": {"max_rows": 1000}}
    key_directions = {"best_accuracy": TOWARD_HALF, "exact_copies": LOWER, "rows": INFO}

    def compute(
        self, real_train: EHRMatrix, real_test: EHRMatrix, synthetic: EHRMatrix, ctx: RunContext
    ) -> dict[str, float]:
        _check_sets(self.name, real_train, real_test, synthetic)
        members, non_members = _members_and_non_members(self.name, real_train, real_test, self.options.max_rows, ctx)
        d = _neighbours.nearest_distance(
            np.vstack([members, non_members]), synthetic.X, distance="hamming", device=ctx.device
        )
        auroc, accuracy = attack_auroc_and_accuracy(d[: members.shape[0]], d[members.shape[0]:])
        return {
            "value": auroc,
            "best_accuracy": accuracy,
            "exact_copies": exact_copy_share(synthetic.X, real_train.X),
            "rows": float(members.shape[0]),
        }


# ------------------------------------------------------------------ attribute inference


def micro_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    """F1 over all (row, code) cells of two 0/1 arrays; 0.0 when neither has a positive."""
    t = np.asarray(truth, dtype=bool)
    p = np.asarray(predicted, dtype=bool)
    tp = np.count_nonzero(t & p)
    denominator = np.count_nonzero(t) + np.count_nonzero(p)
    return 2.0 * float(tp) / float(denominator) if denominator else 0.0


@dataclass(frozen=True)
class AttributeOptions:
    """Known codes K (the K most prevalent in T), neighbours k, and the member-row cap."""

    known_codes: int = 256
    neighbours: int = 1
    max_rows: int | None = None

    def __post_init__(self) -> None:
        if self.known_codes < 1:
            raise ValueError(f"known_codes must be at least 1, got {self.known_codes}")
        if self.neighbours < 1:
            raise ValueError(f"neighbours must be at least 1, got {self.neighbours}")
        _check_max_rows(self.max_rows)


class AttributeInference(Metric):
    """An attacker who knows a patient's K most prevalent codes infers the others from S.

    Each attacked row's known codes (0/1 view) are matched to the k nearest synthetic rows by
    Hamming distance on those codes; every other code is predicted present when more than
    half of the k neighbours have it. F1 is over all (row, unknown code) cells. ``value`` is
    F1 on members minus F1 on non-members: what S reveals about its training patients beyond
    what it reveals about the population. K is capped at d − 1 (``known`` records it).
    """

    name = "attribute_inference"
    category = "privacy"
    higher_is_better = False
    description = "F1 of k-NN attribute inference from the K most prevalent codes: members minus non-members."
    tradeoff_axis = 4  # the report's trade-off figures prefer the smallest
    Options = AttributeOptions
    profiles = {"smoke": {"max_rows": 300}, "quick": {"max_rows": 1000}}
    key_directions = {"f1_members": INFO, "f1_non_members": INFO, "known": INFO, "rows": INFO}

    def compute(
        self, real_train: EHRMatrix, real_test: EHRMatrix, synthetic: EHRMatrix, ctx: RunContext
    ) -> dict[str, float]:
        o = self.options
        _check_sets(self.name, real_train, real_test, synthetic)
        d = real_train.n_codes
        if d < 2:
            raise ValueError(f"{self.name}: needs at least 2 codes (known and unknown), got {d}.")
        if o.neighbours > synthetic.n_patients:
            raise ValueError(
                f"{self.name}: {o.neighbours} neighbours asked for, but the synthetic set has "
                f"{synthetic.n_patients} rows."
            )
        n_known = min(o.known_codes, d - 1)
        order = np.argsort(-(real_train.X > 0).mean(axis=0), kind="stable")
        known, unknown = np.sort(order[:n_known]), np.sort(order[n_known:])
        members, non_members = _members_and_non_members(self.name, real_train, real_test, o.max_rows, ctx)
        S = synthetic.X > 0
        f1 = []
        for rows in (members > 0, non_members > 0):
            nn = _neighbours.search(rows[:, known], S[:, known], distance="hamming", k=o.neighbours, device=ctx.device)
            votes = S[:, unknown][nn.indices].sum(axis=1)  # (rows, unknown codes)
            f1.append(micro_f1(rows[:, unknown], votes * 2 > o.neighbours))
        return {
            "value": f1[0] - f1[1],
            "f1_members": f1[0],
            "f1_non_members": f1[1],
            "known": float(n_known),
            "rows": float(members.shape[0]),
        }


# ------------------------------------------------------------------ nearest-neighbour adversarial accuracy


def beyond_share(far: np.ndarray, near: np.ndarray) -> float:
    """Mean of 1[far > near] with ties counted ½ (integer distances tie often)."""
    far = np.asarray(far, dtype=np.float64)
    near = np.asarray(near, dtype=np.float64)
    return float(np.mean((far > near) + 0.5 * (far == near)))


def adversarial_accuracy(d_ts: np.ndarray, d_tt: np.ndarray, d_st: np.ndarray, d_ss: np.ndarray) -> float:
    """Yale et al.'s AA_TS = ½(mean 1[d_TS > d_TT] + mean 1[d_ST > d_SS]), ties ½.

    d_TS: each target row to its nearest synthetic row; d_TT: to its nearest other target row;
    d_ST, d_SS likewise for each synthetic row.
    """
    return 0.5 * (beyond_share(d_ts, d_tt) + beyond_share(d_st, d_ss))


@dataclass(frozen=True)
class DistanceOptions:
    """Rows per set n (None: min(n_T, n_R, n_S)) and the distance (in the run's representation)."""

    max_rows: int | None = None
    distance: Literal["l2", "l1", "hamming"] = "l2"

    def __post_init__(self) -> None:
        _check_max_rows(self.max_rows)


class NNAdversarialAccuracy(Metric):
    """Nearest-neighbour adversarial accuracy (Yale et al. 2020), on train and on test targets.

    n rows each of T, R and S (seeded). ``value`` is AA_TS with T as the target set (0.5:
    S is as far from T as T is from itself), ``test`` the same with R, and ``privacy_loss``
    = AA_test − AA_train (near 0 unless S sits closer to its training rows than to fresh
    patients). ``train_real_side`` / ``train_synthetic_side`` are AA_train's two halves.
    """

    name = "nn_adversarial_accuracy"
    category = "privacy"
    higher_is_better = False
    target = 0.5
    description = "Nearest-neighbour adversarial accuracy AA_TS of S against T (Yale et al.), and its privacy loss."
    tradeoff_axis = 2  # the report's trade-off figures prefer the smallest
    Options = DistanceOptions
    profiles = {"smoke": {"max_rows": 300}, "quick": {"max_rows": 1000}}
    key_directions = {
        "test": TOWARD_HALF,
        "privacy_loss": LOWER,
        "train_real_side": INFO,
        "train_synthetic_side": INFO,
        "rows": INFO,
    }

    def compute(
        self, real_train: EHRMatrix, real_test: EHRMatrix, synthetic: EHRMatrix, ctx: RunContext
    ) -> dict[str, float]:
        o = self.options
        _check_sets(self.name, real_train, real_test, synthetic, least=2)
        n = min(real_train.n_patients, real_test.n_patients, synthetic.n_patients, o.max_rows or real_train.n_patients)
        rng = ctx.rng(self.name, "rows")
        T, R, S = (_sample_rows(m.X, n, rng) for m in (real_train, real_test, synthetic))
        search = dict(distance=o.distance, device=ctx.device)
        d_ss = _neighbours.nearest_distance(S, **search)
        out = {}
        for label, target in (("train", T), ("test", R)):
            both = _neighbours.search(target, S, reference_min=True, **search)
            d_tt = _neighbours.nearest_distance(target, **search)
            d_ts, d_st = both.distances[:, 0], both.reference_min
            out[label] = adversarial_accuracy(d_ts, d_tt, d_st, d_ss)
            if label == "train":
                out["train_real_side"] = beyond_share(d_ts, d_tt)
                out["train_synthetic_side"] = beyond_share(d_st, d_ss)
        return {
            "value": out["train"],
            "test": out["test"],
            "privacy_loss": out["test"] - out["train"],
            "train_real_side": out["train_real_side"],
            "train_synthetic_side": out["train_synthetic_side"],
            "rows": float(n),
        }


# ------------------------------------------------------------------ distance to closest record


def median_ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, with 0/0 = 1 (both sets equally close) and x/0 = inf."""
    if denominator == 0.0:
        return 1.0 if numerator == 0.0 else float("inf")
    return numerator / denominator


class DistanceToClosestRecord(Metric):
    """Median distance of synthetic rows to their closest training row, against real test rows'.

    ``value`` = median DCR(S → T) / median DCR(R → T): below 1, synthetic rows sit closer to
    the training patients than fresh patients do. Both medians are returned (informational).
    Up to ``max_rows`` rows each of S and R are the queries; all of T is searched.
    """

    name = "distance_to_closest_record"
    category = "privacy"
    higher_is_better = True
    description = "Median DCR of synthetic rows to T over the median DCR of real test rows to T."
    tradeoff_axis = 3  # the report's trade-off figures prefer the smallest
    Options = DistanceOptions
    profiles = {"smoke": {"max_rows": 300}, "quick": {"max_rows": 1000}}
    key_directions = {"synthetic": INFO, "holdout": INFO, "rows": INFO}

    def compute(
        self, real_train: EHRMatrix, real_test: EHRMatrix, synthetic: EHRMatrix, ctx: RunContext
    ) -> dict[str, float]:
        o = self.options
        _check_sets(self.name, real_train, real_test, synthetic)
        m = min(real_test.n_patients, synthetic.n_patients, o.max_rows or real_test.n_patients)
        rng = ctx.rng(self.name, "rows")
        S, R = _sample_rows(synthetic.X, m, rng), _sample_rows(real_test.X, m, rng)
        d = _neighbours.nearest_distance(np.vstack([S, R]), real_train.X, distance=o.distance, device=ctx.device)
        synthetic_median, holdout_median = float(np.median(d[:m])), float(np.median(d[m:]))
        return {
            "value": median_ratio(synthetic_median, holdout_median),
            "synthetic": synthetic_median,
            "holdout": holdout_median,
            "rows": float(m),
        }


METRICS: list[type[Metric]] = [
    MembershipInference,
    AttributeInference,
    NNAdversarialAccuracy,
    DistanceToClosestRecord,
]


@hookimpl
def ehrbench_metrics() -> list[type[Metric]]:
    """The built-in privacy metrics."""
    return list(METRICS)
