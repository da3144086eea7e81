"""Nearest-neighbour adversarial accuracy (Yale et al. 2020), ranked on fidelity (DESIGN.md §5).

AA asks whether a 1-nearest-neighbour rule can tell S from a real set: 0.5 when the two
interleave like samples of one population, 1 when they do not mix at all. That is resemblance,
so the headline is AA against the holdout R and the metric ranks on fidelity. Yale et al.'s
privacy loss AA_test − AA_train is reported beside it, informational: it is a pure leakage
difference that any release independent of T scores 0 on (noise exactly, since its AA is pinned
at 1 on both sets), and the privacy category ranks closeness to T against the holdout through
``distance_to_closest_record`` and ``exact_copies``, on which noise loses.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import numpy as np

from ehrbench import INFO, EHRMatrix, Metric, RunContext, hookimpl
from ehrbench_plugins.metrics import _neighbours


def beyond_count(far: np.ndarray, near: np.ndarray) -> int:
    """Σ 2·1[far > near] + 1[far = near]: twice the count of "far beyond near", ties ½."""
    far = np.asarray(far, dtype=np.float64)
    near = np.asarray(near, dtype=np.float64)
    return int(np.sum(2 * (far > near) + (far == near), dtype=np.int64))


def beyond_share(far: np.ndarray, near: np.ndarray) -> float:
    """Mean of 1[far > near] with ties counted ½ (integer distances tie often)."""
    return beyond_count(far, near) / (2 * np.asarray(far).size)


def _adversarial_fraction(d_ts: np.ndarray, d_tt: np.ndarray, d_st: np.ndarray, d_ss: np.ndarray) -> Fraction:
    return (Fraction(beyond_count(d_ts, d_tt), 2 * d_ts.size) + Fraction(beyond_count(d_st, d_ss), 2 * d_st.size)) / 2


def adversarial_accuracy(d_ts: np.ndarray, d_tt: np.ndarray, d_st: np.ndarray, d_ss: np.ndarray) -> float:
    """Yale et al.'s AA_TS = ½(mean 1[d_TS > d_TT] + mean 1[d_ST > d_SS]), ties ½ (exact, rounded once).

    d_TS: each target row to its nearest synthetic row; d_TT: to its nearest other target row;
    d_ST, d_SS likewise for each synthetic row.
    """
    return float(_adversarial_fraction(*(np.asarray(d, dtype=np.float64) for d in (d_ts, d_tt, d_st, d_ss))))


@dataclass(frozen=True)
class AdversarialOptions:
    """Query rows per set (None: all n) and the distance (in the run's representation)."""

    max_rows: int | None = None
    distance: Literal["l2", "l1", "hamming"] = "l2"

    def __post_init__(self) -> None:
        if self.max_rows is not None and self.max_rows < 2:
            raise ValueError(f"max_rows must be at least 2 (or unset for no limit), got {self.max_rows}")


class NNAdversarialAccuracy(Metric):
    """Nearest-neighbour adversarial accuracy of S against the holdout R (and T, informational).

    T, R and S are each cut to n = min(n_T, n_R, n_S) seeded rows, so every nearest-neighbour
    set has the same size, as AA requires; AA is then estimated on m = min(n, ``max_rows``)
    query rows of each (the first m of the n). ``value`` is AA_test (R as the target set):
    0.5 when S and R interleave like two samples of one population. ``train`` is AA_train (T as
    the target set) and ``privacy_loss`` = AA_test − AA_train (Yale et al.'s; a copier makes
    AA_train small), both informational.
    """

    name = "nn_adversarial_accuracy"
    category = "fidelity"
    higher_is_better = False
    target = 0.5
    description = "Nearest-neighbour adversarial accuracy AA of S against the holdout R (Yale et al.; ideal 0.5)."
    Options = AdversarialOptions
    profiles = {"smoke": {"max_rows": 300}, "quick": {"max_rows": 1000}}
    key_directions = {
        "train": INFO,
        "privacy_loss": INFO,
        "test_real_side": INFO,
        "test_synthetic_side": INFO,
        "reference_rows": INFO,
        "rows": INFO,
    }

    def compute(
        self, real_train: EHRMatrix, real_test: EHRMatrix, synthetic: EHRMatrix, ctx: RunContext
    ) -> dict[str, float]:
        o = self.options
        real_train.check_same_codes(synthetic, "the real train set", "the synthetic set")
        real_train.check_same_codes(real_test, "the real train set", "the real test set")
        for label, m_ in (("real train", real_train), ("real test", real_test), ("synthetic", synthetic)):
            if m_.n_patients < 2:
                raise ValueError(f"{self.name}: the {label} set has {m_.n_patients} row(s); at least 2 needed.")
        n = min(real_train.n_patients, real_test.n_patients, synthetic.n_patients)
        m = min(n, o.max_rows or n)
        rng = ctx.rng(self.name, "rows")
        # A seeded order of n rows per set; its first m rows are the queries.
        T, R, S = (m_.X[rng.permutation(m_.n_patients)[:n]] for m_ in (real_train, real_test, synthetic))
        search = dict(distance=o.distance, device=ctx.device)
        d_ss = _neighbours.nearest_distance(S[:m], S, skip_own_row=True, **search)
        d_xs = _neighbours.nearest_distance(np.vstack([T[:m], R[:m]]), S, **search)
        aa: dict[str, Fraction] = {}
        for label, target, d_ts in (("train", T, d_xs[:m]), ("test", R, d_xs[m:])):
            d_tt = _neighbours.nearest_distance(target[:m], target, skip_own_row=True, **search)
            d_st = _neighbours.nearest_distance(S[:m], target, **search)
            aa[label] = _adversarial_fraction(d_ts, d_tt, d_st, d_ss)
            if label == "test":
                sides = (beyond_share(d_ts, d_tt), beyond_share(d_st, d_ss))
        return {
            "value": float(aa["test"]),
            "train": float(aa["train"]),
            "privacy_loss": float(aa["test"] - aa["train"]),
            "test_real_side": sides[0],
            "test_synthetic_side": sides[1],
            "reference_rows": float(n),
            "rows": float(m),
        }


METRICS: list[type[Metric]] = [NNAdversarialAccuracy]


@hookimpl
def ehrbench_metrics() -> list[type[Metric]]:
    """Nearest-neighbour adversarial accuracy."""
    return list(METRICS)
