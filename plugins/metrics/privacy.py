"""Privacy metrics (DESIGN.md §5): attacks that use the real train split T as members and the
real test split R as non-members against the synthetic set S.

Every nearest-neighbour search is the blocked matrix-product search of ``_neighbours`` (on
the GPU when the run is on CUDA). Rows are subsampled only where an option caps them
(``max_rows``; the ``quick`` and ``smoke`` profiles do), seeded from ``ctx.seed``.

Each headline is bounded, has an ideal that the holdout R defines (what a fresh sample of
patients would score), and is ranked toward it (DESIGN.md §5). Every value is an exact
rational of integer counts (distances are exact integers or their square roots, ties are
counted, never broken by row order), rounded once to a float: shuffling rows changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import numpy as np

from ehrbench import INFO, EHRMatrix, Metric, RunContext, hookimpl
from ehrbench_plugins.metrics import _neighbours

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


def size_strata(holdout_sizes: np.ndarray, strata: int) -> np.ndarray:
    """Lower edges of record-size strata, each holding at least ⌈n/strata⌉ of the given rows.

    Distinct sizes are merged in order until a stratum is full; a short last stratum joins the
    one before it. A record belongs to the last stratum whose lower edge it reaches (sizes
    below the first edge go to the first stratum).
    """
    sizes, counts = np.unique(holdout_sizes, return_counts=True)
    least = -(-holdout_sizes.size // max(1, strata))
    edges, filled = [sizes[0]], 0
    for size, count in zip(sizes, counts):
        if filled >= least:
            edges.append(size)
            filled = 0
        filled += count
    if len(edges) > 1 and filled < least:
        edges.pop()
    return np.asarray(edges)


# ------------------------------------------------------------------ membership inference


def pair_order_count(low: np.ndarray, high: np.ndarray) -> int:
    """Σ over all pairs (a in low, b in high) of 2·1[a < b] + 1[a = b]: twice the Mann–Whitney U."""
    a = np.asarray(low, dtype=np.float64)
    b = np.sort(np.asarray(high, dtype=np.float64))
    above = b.size - np.searchsorted(b, a, side="right")
    equal = np.searchsorted(b, a, side="right") - np.searchsorted(b, a, side="left")
    return int(np.sum(2 * above + equal, dtype=np.int64))


def attack_auroc_and_accuracy(member_distance: np.ndarray, non_member_distance: np.ndarray) -> tuple[float, float]:
    """A distance attack that calls a row a member when it is close to S.

    Returns its AUROC (score = −distance: P(d_member < d_non-member), ties ½) and its best
    accuracy over thresholds t of the rule "member iff distance ≤ t" (t = −∞ included: every
    row a non-member), on the pooled rows. Both are 0.5 for an attack that learns nothing, and
    both are exact rationals rounded once.
    """
    dm = np.asarray(member_distance, dtype=np.float64)
    dn = np.asarray(non_member_distance, dtype=np.float64)
    if dm.size == 0 or dn.size == 0:
        raise ValueError("the attack needs at least one member and one non-member row")
    auroc = pair_order_count(dm, dn) / (2 * dm.size * dn.size)
    thresholds = np.unique(np.concatenate([dm, dn]))
    members_within = np.searchsorted(np.sort(dm), thresholds, side="right")
    non_members_within = np.searchsorted(np.sort(dn), thresholds, side="right")
    correct = members_within + (dn.size - non_members_within)
    best = max(int(dn.size), int(correct.max()))
    return float(auroc), best / (dm.size + dn.size)


def _row_hashes(X: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """A 64-bit hash per row: Σ_j x_j·w_j in unsigned (wrap-around, exact) arithmetic."""
    out = np.empty(X.shape[0], dtype=np.uint64)
    for start in range(0, X.shape[0], _BLOCK_ROWS):  # blocks of rows bound the integer copy
        out[start : start + _BLOCK_ROWS] = X[start : start + _BLOCK_ROWS].astype(np.uint64) @ weights
    return out


_BLOCK_ROWS = 4096


def row_ids(*matrices: np.ndarray) -> list[np.ndarray]:
    """One integer id per row of each matrix, equal exactly when the rows are equal value for value.

    Rows are grouped by a 64-bit integer hash and every row is confirmed against its group's
    first row. Should two different rows share a hash (odds ~n²/2⁶⁴), the ids come from an
    exact sort of all rows instead, so they are exact either way.
    """
    width = matrices[0].shape[1]
    weights = np.random.default_rng(0x5EED).integers(1, np.iinfo(np.int64).max, size=width).astype(np.uint64)
    hashes = [_row_hashes(M, weights) for M in matrices]
    offsets = np.cumsum([0] + [M.shape[0] for M in matrices])
    _, first, inverse = np.unique(np.concatenate(hashes), return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    ids = [inverse[offsets[i] : offsets[i + 1]] for i in range(len(matrices))]
    for i, M in enumerate(matrices):
        for start in range(0, M.shape[0], _BLOCK_ROWS):
            block = M[start : start + _BLOCK_ROWS]
            representative = first[ids[i][start : start + _BLOCK_ROWS]]
            source = np.searchsorted(offsets, representative, side="right") - 1
            for j in np.unique(source):
                mask = source == j
                if not np.array_equal(block[mask], matrices[j][representative[mask] - offsets[j]]):
                    return _row_ids_by_sorting(matrices)
    return ids


def _row_ids_by_sorting(matrices: tuple[np.ndarray, ...]) -> list[np.ndarray]:
    stacked = np.vstack(matrices)
    _, inverse = np.unique(stacked, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    offsets = np.cumsum([0] + [M.shape[0] for M in matrices])
    return [inverse[offsets[i] : offsets[i + 1]] for i in range(len(matrices))]


def exact_copy_share(synthetic: np.ndarray, train: np.ndarray) -> float:
    """Share of synthetic rows equal, value for value, to some training row."""
    if synthetic.shape[0] == 0 or train.shape[0] == 0:
        return 0.0
    ids_s, ids_t = row_ids(synthetic, train)
    return float(np.count_nonzero(np.isin(ids_s, ids_t))) / synthetic.shape[0]


@dataclass(frozen=True)
class CopyShares:
    """Shares of records that equal a training record no (other) holdout record equals.

    ``synthetic``: of S, equal to a row of T and to no row of R. ``holdout``: of R, equal to a
    row of T and to no other row of R: what a fresh patient does by chance. ``train_copies``:
    of S, equal to any row of T (common records included); ``holdout_train_copies``: the same for R.
    ``excess`` is synthetic − holdout, exact, rounded once.
    """

    synthetic: float
    holdout: float
    train_copies: float
    holdout_train_copies: float
    excess: float


def copy_shares(synthetic: np.ndarray, train: np.ndarray, holdout: np.ndarray) -> CopyShares:
    """:class:`CopyShares` of S against T and R, exact (see :func:`row_ids`)."""
    ids_s, ids_t, ids_r = row_ids(synthetic, train, holdout)
    in_train_s, in_train_r = np.isin(ids_s, ids_t), np.isin(ids_r, ids_t)
    in_holdout_s = np.isin(ids_s, ids_r)
    _, position, count = np.unique(ids_r, return_inverse=True, return_counts=True)
    repeated_in_holdout = count[position.ravel()] > 1
    n_s, n_r = max(synthetic.shape[0], 1), max(holdout.shape[0], 1)
    copies_s = Fraction(int(np.count_nonzero(in_train_s & ~in_holdout_s)), n_s)
    copies_r = Fraction(int(np.count_nonzero(in_train_r & ~repeated_in_holdout)), n_r)
    return CopyShares(
        synthetic=float(copies_s),
        holdout=float(copies_r),
        train_copies=float(Fraction(int(np.count_nonzero(in_train_s)), n_s)),
        holdout_train_copies=float(Fraction(int(np.count_nonzero(in_train_r)), n_r)),
        excess=float(copies_s - copies_r),
    )


def stratified_auroc(member_distance: np.ndarray, non_member_distance: np.ndarray, member_sizes: np.ndarray,
                     non_member_sizes: np.ndarray, strata: int) -> float:
    """P(d_member < d_non-member) + ½ P(=) over (member, non-member) pairs of one record-size stratum.

    Strata are consecutive record sizes holding ⌈2m/strata⌉ of the pooled rows each
    (:func:`size_strata`). Exact: integer pair counts over integer pair totals, rounded once.
    """
    edges = size_strata(np.concatenate([member_sizes, non_member_sizes]), strata)
    place_m = np.clip(np.searchsorted(edges, member_sizes, side="right") - 1, 0, edges.size - 1)
    place_n = np.clip(np.searchsorted(edges, non_member_sizes, side="right") - 1, 0, edges.size - 1)
    ordered = pairs = 0
    for b in range(edges.size):
        dm, dn = member_distance[place_m == b], non_member_distance[place_n == b]
        ordered += pair_order_count(dm, dn)
        pairs += 2 * dm.size * dn.size
    return float(Fraction(ordered, pairs)) if pairs else 0.5


@dataclass(frozen=True)
class MembershipOptions:
    """Cap on the member (and non-member) rows (None: m = min(n_T, n_R)); record-size strata."""

    max_rows: int | None = None
    strata: int = 10

    def __post_init__(self) -> None:
        _check_max_rows(self.max_rows)
        if self.strata < 1:
            raise ValueError(f"strata must be at least 1, got {self.strata}")


class MembershipInference(Metric):
    """Distance-to-closest-synthetic-row membership attack on the 0/1 view.

    m members (rows of T) and m non-members (rows of R) are scored by their Hamming distance
    to the nearest row of S. ``value``: the attack's AUROC over member/non-member pairs of the
    same record-size stratum (0.5: S says nothing about who was trained on; below 0.5, S sits
    on the non-members, which is no better). Within a stratum, because a record's distance to
    anything grows with its length: pooled over all pairs, a draw of members a little shorter
    than the non-members moved every realistic generator's AUROC by the same 0.02 while an
    all-empty or all-ones sample, whose distances are record lengths, sat at the draw's own
    offset. ``unstratified`` is the plain AUROC, ``best_accuracy`` the plain attack's best
    accuracy over thresholds (both informational).
    """

    name = "membership_inference"
    category = "privacy"
    higher_is_better = False
    target = 0.5
    description = "AUROC of a nearest-synthetic-row (Hamming) membership attack, members T vs non-members R."
    tradeoff_axis = 1  # the report's trade-off figures prefer the smallest
    Options = MembershipOptions
    profiles = {"smoke": {"max_rows": 300}, "quick": {"max_rows": 1000}}
    key_directions = {"unstratified": INFO, "best_accuracy": INFO, "rows": INFO}

    def compute(
        self, real_train: EHRMatrix, real_test: EHRMatrix, synthetic: EHRMatrix, ctx: RunContext
    ) -> dict[str, float]:
        _check_sets(self.name, real_train, real_test, synthetic)
        members, non_members = _members_and_non_members(self.name, real_train, real_test, self.options.max_rows, ctx)
        d = _neighbours.nearest_distance(
            np.vstack([members, non_members]), synthetic.X, distance="hamming", device=ctx.device
        )
        dm, dn = d[: members.shape[0]], d[members.shape[0]:]
        auroc, accuracy = attack_auroc_and_accuracy(dm, dn)
        sizes = [np.count_nonzero(X > 0, axis=1) for X in (members, non_members)]
        return {
            "value": stratified_auroc(dm, dn, sizes[0], sizes[1], self.options.strata),
            "unstratified": auroc,
            "best_accuracy": accuracy,
            "rows": float(members.shape[0]),
        }


# ------------------------------------------------------------------ exact copies


class ExactCopies(Metric):
    """Copies of training records that no holdout patient shares, against the holdout's own rate.

    ``value`` = share of S equal to a row of T and to no row of R, minus the share of R equal
    to a row of T and to no other row of R. A record many patients share (an empty record, a
    lone common code) is in R too, so copying it counts for nothing; a fresh patient matches
    a training-only record now and then, which the holdout term measures. 0 is the ideal; a
    copier of T scores about 1 − (share of T's records also in R); a generator that never
    reproduces such a record scores −holdout. All rows of S, T and R, exact (64-bit hashes
    confirmed on the rows).
    """

    name = "exact_copies"
    category = "privacy"
    higher_is_better = False
    target = 0.0
    description = "Share of S copying a training-only record, minus the holdout's own share (ideal 0)."
    tradeoff_axis = 3  # the report's trade-off figures prefer the smallest
    key_directions = {"synthetic": INFO, "holdout": INFO, "train_copies": INFO, "holdout_train_copies": INFO}

    def compute(
        self, real_train: EHRMatrix, real_test: EHRMatrix, synthetic: EHRMatrix, ctx: RunContext
    ) -> dict[str, float]:
        _check_sets(self.name, real_train, real_test, synthetic)
        shares = copy_shares(synthetic.X, real_train.X, real_test.X)
        return {
            "value": shares.excess,
            "synthetic": shares.synthetic,
            "holdout": shares.holdout,
            "train_copies": shares.train_copies,
            "holdout_train_copies": shares.holdout_train_copies,
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
    """Known codes (at most K, at most half of d), neighbours k, the applicability floor, member-row cap."""

    known_codes: int = 256
    neighbours: int = 1
    min_attacked_codes: int = 10
    max_rows: int | None = None

    def __post_init__(self) -> None:
        if self.known_codes < 1:
            raise ValueError(f"known_codes must be at least 1, got {self.known_codes}")
        if self.neighbours < 1:
            raise ValueError(f"neighbours must be at least 1, got {self.neighbours}")
        if self.min_attacked_codes < 1:
            raise ValueError(f"min_attacked_codes must be at least 1, got {self.min_attacked_codes}")
        _check_max_rows(self.max_rows)


def known_code_count(requested: int, d: int) -> int:
    """K = min(requested, ⌊d/2⌋, d − 1), at least 1: half the codes or more stay to be attacked."""
    return max(1, min(requested, d // 2, d - 1))


def split_known_codes(
    member_rows: np.ndarray, non_member_rows: np.ndarray, n_known: int
) -> tuple[np.ndarray, np.ndarray]:
    """(known, attacked) column indices: the n_known codes most prevalent over the attacked rows,
    members and non-members pooled (ties: lower column), and the rest.

    Pooling equal numbers of both keeps the choice symmetric: ranking codes by their prevalence
    in T alone picked codes that are (by chance) commoner in T than in R, and gave an ideal
    generator a member advantage of 0.05 on a 2,400-patient cohort.
    """
    prevalence = np.count_nonzero(member_rows, axis=0) + np.count_nonzero(non_member_rows, axis=0)
    order = np.argsort(-prevalence, kind="stable")
    return np.sort(order[:n_known]), np.sort(order[n_known:])


def infer_attributes(known_rows: np.ndarray, synthetic_known: np.ndarray, synthetic_attacked: np.ndarray,
                     k: int, device: str) -> np.ndarray:
    """Predicted 0/1 attacked codes: present when more than half of the k nearest synthetic rows
    (Hamming on the known codes; rows tied at the k-th distance share its places equally) have it.

    The test 2·(t·Σ_closer + (k − c)·Σ_tied) > k·t is on exact integers, so it is the same for
    any order of the synthetic rows.
    """
    sums = _neighbours.tie_averaged(known_rows, synthetic_known, synthetic_attacked, distance="hamming", k=k,
                                    device=device)
    return 2.0 * sums.numerator() > sums.denominator()


class AttributeInference(Metric):
    """An attacker who knows a patient's K most prevalent codes infers the others from S.

    The known codes are the K most prevalent over the attacked rows (m members and m
    non-members pooled); the others are attacked.
    Each attacked row's known codes (0/1 view) are matched to its k nearest synthetic rows by
    Hamming distance on those codes (ties at the k-th distance averaged); every attacked code
    (the d − K others) is predicted present when more than half of the neighbours have it. F1
    is over all (row, attacked code) cells. ``value`` is F1 on members minus F1 on non-members
    (ideal 0: S reveals no more about its training patients than about anyone; below 0 it
    sits on the non-members). K = min(``known_codes``, ⌊d/2⌋). When fewer than
    ``min_attacked_codes`` attacked codes occur both in the attacked rows and in S, the attack
    has nothing to infer and ``value`` is NaN (not applicable); ``attacked_codes`` says how many.
    """

    name = "attribute_inference"
    category = "privacy"
    higher_is_better = False
    target = 0.0
    description = "F1 of k-NN attribute inference from the K most prevalent codes: members minus non-members (ideal 0)."
    tradeoff_axis = 4  # the report's trade-off figures prefer the smallest
    Options = AttributeOptions
    profiles = {"smoke": {"max_rows": 300}, "quick": {"max_rows": 1000}}
    key_directions = {
        "f1_members": INFO, "f1_non_members": INFO, "known": INFO, "attacked_codes": INFO, "rows": INFO,
    }

    def compute(
        self, real_train: EHRMatrix, real_test: EHRMatrix, synthetic: EHRMatrix, ctx: RunContext
    ) -> dict[str, float]:
        o = self.options
        _check_sets(self.name, real_train, real_test, synthetic)
        d = real_train.n_codes
        if d < 2:
            raise ValueError(f"{self.name}: needs at least 2 codes (known and attacked), got {d}.")
        if o.neighbours > synthetic.n_patients:
            raise ValueError(
                f"{self.name}: {o.neighbours} neighbours asked for, but the synthetic set has "
                f"{synthetic.n_patients} rows."
            )
        n_known = known_code_count(o.known_codes, d)
        members, non_members = _members_and_non_members(self.name, real_train, real_test, o.max_rows, ctx)
        member_rows, non_member_rows = members > 0, non_members > 0
        known, attacked = split_known_codes(member_rows, non_member_rows, n_known)
        S = synthetic.X > 0
        S_attacked = S[:, attacked]
        present = (member_rows[:, attacked].any(axis=0) | non_member_rows[:, attacked].any(axis=0))
        usable = int(np.count_nonzero(present & S_attacked.any(axis=0)))
        out = {"known": float(n_known), "attacked_codes": float(usable), "rows": float(members.shape[0])}
        if usable < o.min_attacked_codes:
            return {"value": float("nan"), "f1_members": float("nan"), "f1_non_members": float("nan"), **out}
        f1 = []
        for rows in (member_rows, non_member_rows):
            predicted = infer_attributes(rows[:, known], S[:, known], S_attacked, o.neighbours, ctx.device)
            f1.append(micro_f1(rows[:, attacked], predicted))
        return {"value": f1[0] - f1[1], "f1_members": f1[0], "f1_non_members": f1[1], **out}


# ------------------------------------------------------------------ distance to closest record


@dataclass(frozen=True)
class DistanceOptions:
    """Query rows per set (None: all) and the distance (in the run's representation)."""

    max_rows: int | None = None
    distance: Literal["l2", "l1", "hamming"] = "l2"

    def __post_init__(self) -> None:
        _check_max_rows(self.max_rows)


@dataclass(frozen=True)
class ClosenessScore:
    """The DCR comparison of S with the holdout, within record-size strata (see the metric)."""

    closer_share: float  # mean over S of P(d_R > d_S) + ½ P(d_R = d_S), holdout rows of its stratum
    copy_share: float  # the same if every synthetic record were at distance 0
    value: float  # calibrated: 0.5 ideal, 1 = as close as copies, 0 = farther than every holdout record


def closeness_score(d_synthetic: np.ndarray, size_synthetic: np.ndarray, d_holdout: np.ndarray,
                    size_holdout: np.ndarray, strata: int) -> ClosenessScore:
    """Compare each synthetic record's distance to T with holdout records of its size stratum.

    Per stratum b (n_b holdout rows) each synthetic record s adds [2·#(d_R > d_s) + #(d_R = d_s)]
    / (2 n_b): integer counts, combined as exact fractions and rounded once, so the result is
    the same for any order of the rows. A record whose size is outside the holdout's range adds
    0 (farther than every holdout record) unless it is at distance 0.
    """
    edges = size_strata(size_holdout, strata)
    place_s = np.clip(np.searchsorted(edges, size_synthetic, side="right") - 1, 0, edges.size - 1)
    place_r = np.clip(np.searchsorted(edges, size_holdout, side="right") - 1, 0, edges.size - 1)
    # A record of a size no holdout patient has is unlike any patient: farther than all of
    # them, unless it is a training record itself (distance 0), which its nearest stratum judges.
    unmatched = ((size_synthetic < size_holdout.min()) | (size_synthetic > size_holdout.max())) & (d_synthetic > 0)
    closer = at_zero = Fraction(0)
    for b in range(edges.size):
        here = place_s == b
        if not here.any():
            continue
        mine = d_synthetic[here & ~unmatched]
        ref = d_holdout[place_r == b]
        zero = int(np.count_nonzero(ref <= 0.0))
        closer += Fraction(pair_order_count(mine, ref), 2 * ref.size)
        at_zero += Fraction(int(np.count_nonzero(here)) * (2 * ref.size - zero), 2 * ref.size)
    closer_share, copy_share = closer / d_synthetic.size, at_zero / d_synthetic.size
    half = Fraction(1, 2)
    if closer_share > half:
        value = half + half * min(Fraction(1), (closer_share - half) / (copy_share - half))
    else:
        value = closer_share
    return ClosenessScore(float(closer_share), float(copy_share), float(value))


@dataclass(frozen=True)
class DCROptions(DistanceOptions):
    """Query rows (None: all), the distance, and the number of record-size strata."""

    strata: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.strata < 1:
            raise ValueError(f"strata must be at least 1, got {self.strata}")


class DistanceToClosestRecord(Metric):
    """Are synthetic records closer to the training patients than fresh patients are?

    Up to ``max_rows`` rows each of S and R (seeded) get their distance to the closest row of
    all of T (DCR).
    Each synthetic record is compared with the holdout records of its own size stratum
    (number of codes; ``strata`` strata with equal holdout counts), because a short record
    sits near some training record whoever made it: closer_share = mean over S of
    P(d_R > d_S) + ½ P(d_R = d_S). An ideal S has 0.5. ``value`` calibrates it to [0, 1]:
    below 0.5 it is closer_share (0: every synthetic record farther from T than every holdout
    record of its size, as noise is); above, 0.5 + ½·(closer_share − ½)/(copy_share − ½), where
    copy_share is what S would score at distance 0, so a copier of T scores exactly 1.
    Both ends are as bad: far is not private, it is unlike any patient.
    """

    name = "distance_to_closest_record"
    category = "privacy"
    higher_is_better = False
    target = 0.5
    description = "Synthetic records' distance to T against holdout records of the same size (calibrated, ideal 0.5)."
    tradeoff_axis = 2  # the report's trade-off figures prefer the smallest
    Options = DCROptions
    profiles = {"smoke": {"max_rows": 300}, "quick": {"max_rows": 1000}}
    key_directions = {
        "closer_share": INFO, "copy_share": INFO, "synthetic_median": INFO, "holdout_median": INFO,
        "holdout_zero_share": INFO, "strata": INFO, "rows": INFO, "holdout_rows": INFO,
    }

    def compute(
        self, real_train: EHRMatrix, real_test: EHRMatrix, synthetic: EHRMatrix, ctx: RunContext
    ) -> dict[str, float]:
        o = self.options
        _check_sets(self.name, real_train, real_test, synthetic)
        rng = ctx.rng(self.name, "rows")
        S = _sample_rows(synthetic.X, min(synthetic.n_patients, o.max_rows or synthetic.n_patients), rng)
        R = _sample_rows(real_test.X, min(real_test.n_patients, o.max_rows or real_test.n_patients), rng)
        d = _neighbours.nearest_distance(np.vstack([S, R]), real_train.X, distance=o.distance, device=ctx.device)
        d_s, d_r = d[: S.shape[0]], d[S.shape[0]:]
        sizes_s, sizes_r = np.count_nonzero(S > 0, axis=1), np.count_nonzero(R > 0, axis=1)
        score = closeness_score(d_s, sizes_s, d_r, sizes_r, o.strata)
        return {
            "value": score.value,
            "closer_share": score.closer_share,
            "copy_share": score.copy_share,
            "synthetic_median": float(np.median(d_s)),
            "holdout_median": float(np.median(d_r)),
            "holdout_zero_share": float(np.mean(d_r == 0.0)),
            "strata": float(size_strata(sizes_r, o.strata).size),
            "rows": float(S.shape[0]),
            "holdout_rows": float(R.shape[0]),
        }


METRICS: list[type[Metric]] = [
    MembershipInference,
    ExactCopies,
    AttributeInference,
    DistanceToClosestRecord,
]


@hookimpl
def ehrbench_metrics() -> list[type[Metric]]:
    """The built-in privacy metrics."""
    return list(METRICS)
