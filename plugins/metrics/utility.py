"""Utility metrics (DESIGN.md §5): do models trained on the synthetic set S work on real data?

Protocol shared by the three metrics (DESIGN.md §8, "Utility protocol"):

- a target is a code's presence (count > 0); its features are all the other columns, in the
  run's representation (counts or 0/1);
- models are fitted on the real train split T and on S with the *same number of rows*,
  n_fit = min(n_T, n_S, ``max_fit_rows``): seeded subsamples without replacement, so a gap
  measures the data, not the sample size; both are scored by AUROC on the real test split R
  (at most ``max_test_rows`` rows, seeded);
- targets are the most prevalent codes of T (ties: lower column), among codes present in
  some but not all rows of both the T fit rows and the R scoring rows (so the real side is
  always defined); a declared ``target_codes`` list replaces that choice;
- a target that is constant in S cannot train a model: its S-side AUROC is that of a
  constant prediction, 0.5, and the metric counts it (``untrainable``).

The targets' column indices and the sizes used are returned as informational keys, so every
number can be reproduced from the run's seed and ``metric_options``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from ehrbench import INFO, ConfigError, Direction, EHRMatrix, Metric, RunContext, derive_seed, hookimpl
from ehrbench_plugins.metrics import _classifiers, _stats



def _check_limit(name: str, value: int | None, least: int = 1) -> None:
    if value is not None and value < least:
        raise ValueError(f"{name} must be at least {least} (or unset for no limit), got {value}")


class _HeadlineRanked:
    """Metric mixin: only ``value`` ranks (higher is better); every other key is informational."""

    @classmethod
    def direction(cls, key: str) -> Direction | None:
        return Direction(True) if key == "value" else INFO


@dataclass(frozen=True)
class _Sets:
    """The rows the models see: T and S fit rows (equal counts) and R scoring rows, as CSR."""

    real_fit: sparse.csr_matrix
    synthetic_fit: sparse.csr_matrix
    evaluation: sparse.csr_matrix
    train_prevalence: np.ndarray


def _subsample(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(n) if size >= n else np.sort(rng.choice(n, size, replace=False))


def _prepare(
    metric: str,
    train: EHRMatrix,
    test: EHRMatrix,
    synthetic: EHRMatrix,
    max_fit_rows: int | None,
    max_test_rows: int | None,
    ctx: RunContext,
) -> _Sets:
    train.check_same_codes(synthetic, "the real train set", "the synthetic set")
    train.check_same_codes(test, "the real train set", "the real test set")
    for label, m in (("real train", train), ("real test", test), ("synthetic", synthetic)):
        if m.n_patients < 2:
            raise ValueError(f"{metric}: the {label} set has {m.n_patients} row(s); at least 2 are needed.")
    if train.n_codes < 2:
        raise ValueError(f"{metric}: a code is predicted from the others, so at least 2 codes are needed.")
    n_fit = min(train.n_patients, synthetic.n_patients, max_fit_rows or train.n_patients)
    n_eval = min(test.n_patients, max_test_rows or test.n_patients)
    rng = ctx.rng(metric, "rows")
    pick = [
        _subsample(train.n_patients, n_fit, rng),
        _subsample(synthetic.n_patients, n_fit, rng),
        _subsample(test.n_patients, n_eval, rng),
    ]
    csr = [sparse.csr_matrix(m.X[idx]) for m, idx in zip((train, synthetic, test), pick)]
    return _Sets(csr[0], csr[1], csr[2], _stats.prevalence(train.X))


def _present_counts(X: sparse.csr_matrix) -> np.ndarray:
    """Rows with each code present (the CSR holds no explicit zeros: counts are ≥ 0)."""
    return np.bincount(X.indices[X.data > 0], minlength=X.shape[1])


def choose_targets(
    sets: _Sets, codes: np.ndarray, n_targets: int, declared: tuple[str, ...], metric: str
) -> np.ndarray:
    """Column indices of the target codes (see the module docstring for the rule)."""
    fit_counts, eval_counts = _present_counts(sets.real_fit), _present_counts(sets.evaluation)
    eligible = (fit_counts > 0) & (fit_counts < sets.real_fit.shape[0])
    eligible &= (eval_counts > 0) & (eval_counts < sets.evaluation.shape[0])
    if declared:
        position = {c: j for j, c in enumerate(codes)}
        chosen = []
        for code in declared:
            if code not in position:
                raise ConfigError(f"metric '{metric}': target code '{code}' is not a column of the data.")
            if not eligible[position[code]]:
                raise ValueError(
                    f"{metric}: target code '{code}' is present in all or none of the real fit or "
                    f"scoring rows, so its AUROC is undefined."
                )
            chosen.append(position[code])
        return np.asarray(chosen, dtype=np.int64)
    order = np.argsort(-sets.train_prevalence, kind="stable")
    chosen = order[eligible[order]][:n_targets]
    if chosen.size == 0:
        raise ValueError(
            f"{metric}: no code is present in some but not all rows of both the real train and test "
            f"sets, so no target can be scored."
        )
    return chosen.astype(np.int64)


@dataclass(frozen=True)
class _Task:
    """One target's fit and scoring data, the target column left out of the features."""

    real_X: sparse.csr_matrix
    real_y: np.ndarray
    synthetic_X: sparse.csr_matrix
    synthetic_y: np.ndarray
    eval_X: sparse.csr_matrix
    eval_y: np.ndarray


def _task(sets: _Sets, column: int) -> _Task:
    keep = np.delete(np.arange(sets.real_fit.shape[1]), column)

    def split(X: sparse.csr_matrix) -> tuple[sparse.csr_matrix, np.ndarray]:
        y = (X[:, [column]].toarray().ravel() > 0).astype(np.int8)
        return X[:, keep], y

    return _Task(*split(sets.real_fit), *split(sets.synthetic_fit), *split(sets.evaluation))


def _target_keys(columns: np.ndarray) -> dict[str, float]:
    return {f"target_{i + 1}_column": float(c) for i, c in enumerate(columns)}


def _size_keys(sets: _Sets, columns: np.ndarray) -> dict[str, float]:
    return {
        "targets": float(columns.size),
        "fit_rows": float(sets.real_fit.shape[0]),
        "test_rows": float(sets.evaluation.shape[0]),
    }


def _info_directions(*keys: str) -> dict[str, Direction | None]:
    return {k: INFO for k in keys}


# ------------------------------------------------------------------ dimension-wise prediction


@dataclass(frozen=True)
class DimensionWisePredictionOptions:
    """K most prevalent codes; row caps for fitting (each side) and for scoring (None: all)."""

    n_codes: int = 20
    max_fit_rows: int | None = None
    max_test_rows: int | None = None

    def __post_init__(self) -> None:
        _check_limit("n_codes", self.n_codes)
        _check_limit("max_fit_rows", self.max_fit_rows, 2)
        _check_limit("max_test_rows", self.max_test_rows, 2)


def retained_lift(real: np.ndarray, synthetic: np.ndarray) -> float:
    """max(Σ_j (B_j − ½), 0) / Σ_j (A_j − ½): the share of the real models' AUROC lift over
    chance that the models trained on S keep (1: all of it; 0: none, as a constant model).
    A sample whose models are no better than chance on average keeps nothing; clipping the sum,
    not each code, keeps a random model's chance highs from counting. 0 when the real models
    have no lift."""
    lift = float(np.sum(np.asarray(real, dtype=np.float64) - 0.5))
    kept = float(np.sum(np.asarray(synthetic, dtype=np.float64) - 0.5))
    return max(kept, 0.0) / lift if lift > 0 else 0.0


class DimensionWisePrediction(Metric):
    """Per code, logistic regression from all other codes, trained on T and on S, AUROC on R.

    ``value`` is the retained lift max(Σ(AUROC_S − ½), 0) / Σ(AUROC_T − ½) over the K codes
    (higher is better, about 1 for S as good as T, 0 for S that trains nothing useful). Models
    that are below chance on average count as no lift: models trained on data without signal
    (a permuted label, independent codes) land *below* chance on real patients (mean AUROC 0.44
    over 10 codes of the default cohort), an estimator artefact that ranked independent-
    marginals below an all-empty sample under the mean absolute gap (``mean_abs_gap``, still
    reported). ``correlation`` is the Pearson correlation of the two AUROC vectors (0 when
    either is constant).
    """

    name = "dimension_wise_prediction"
    category = "utility"
    higher_is_better = True
    description = "Share of the real models' AUROC lift over chance kept by per-code models trained on S."
    Options = DimensionWisePredictionOptions
    profiles = {
        "smoke": {"n_codes": 5, "max_fit_rows": 300, "max_test_rows": 300},
        "quick": {"max_fit_rows": 1000, "max_test_rows": 2000},
    }
    key_directions = _info_directions(
        "correlation", "mean_abs_gap", "untrainable", "auroc_real", "auroc_synthetic", "targets", "fit_rows",
        "test_rows",
    )

    @classmethod
    def direction(cls, key: str) -> Direction | None:
        if key.startswith("target_"):
            return INFO
        return super().direction(key)

    def compute(
        self, real_train: EHRMatrix, real_test: EHRMatrix, synthetic: EHRMatrix, ctx: RunContext
    ) -> dict[str, float]:
        o = self.options
        sets = _prepare(self.name, real_train, real_test, synthetic, o.max_fit_rows, o.max_test_rows, ctx)
        columns = choose_targets(sets, real_train.codes, o.n_codes, (), self.name)
        real, synth, trained = [], [], []
        for rank, column in enumerate(columns):
            task = _task(sets, int(column))
            seed = derive_seed(ctx.seed, self.name, "model", rank)
            a, _ = _classifiers.fit_auroc(
                "logistic_regression", task.real_X, task.real_y, task.eval_X, task.eval_y, seed,
                cache_dir=ctx.cache_dir,
            )
            b, ok = _classifiers.fit_auroc(
                "logistic_regression", task.synthetic_X, task.synthetic_y, task.eval_X, task.eval_y, seed
            )
            real.append(a)
            synth.append(b)
            trained.append(ok)
        A, B = np.asarray(real), np.asarray(synth)
        return {
            "value": retained_lift(A, B),
            "mean_abs_gap": float(np.mean(np.abs(A - B))),
            "correlation": _stats.pearson(A, B),
            "untrainable": float(np.count_nonzero(~np.asarray(trained))),
            "auroc_real": float(A.mean()),
            "auroc_synthetic": float(B.mean()),
            **_size_keys(sets, columns),
            **_target_keys(columns),
        }


# ------------------------------------------------------------------ synthetic ranking agreement


def synthetic_ranking_agreement(A: np.ndarray, B: np.ndarray) -> float:
    """SRA = 1/(L(L−1)) Σ_{j≠k} 1[(A_j − A_k)(B_j − B_k) > 0] (a tie in A or B agrees with nothing)."""
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    if A.shape != B.shape or A.ndim != 1:
        raise ValueError(f"SRA needs two AUROC vectors of one length, got shapes {A.shape} and {B.shape}")
    L = A.size
    if L < 2:
        raise ValueError(f"SRA ranks at least 2 classifier families, got {L}")
    agree = (A[:, None] - A[None, :]) * (B[:, None] - B[None, :]) > 0
    return float(np.count_nonzero(agree)) / (L * (L - 1))  # the diagonal is 0, never > 0


def _check_families(families: tuple[str, ...], least: int) -> None:
    unknown = [f for f in families if f not in _classifiers.FAMILIES]
    if unknown:
        raise ValueError(
            f"unknown classifier family '{unknown[0]}'; expected some of {', '.join(_classifiers.FAMILIES)}"
        )
    if len(set(families)) != len(families):
        raise ValueError(f"families lists a family twice: {', '.join(families)}")
    if len(families) < least:
        raise ValueError(f"at least {least} classifier families are needed, got {len(families)}")


@dataclass(frozen=True)
class RankingOptions:
    """Targets (the n most prevalent, or declared code names), families and row caps."""

    n_targets: int = 5
    target_codes: tuple[str, ...] = ()
    families: tuple[str, ...] = _classifiers.FAMILIES
    max_fit_rows: int | None = None
    max_test_rows: int | None = None

    def __post_init__(self) -> None:
        _check_limit("n_targets", self.n_targets)
        _check_families(self.families, 2)
        _check_limit("max_fit_rows", self.max_fit_rows, 2)
        _check_limit("max_test_rows", self.max_test_rows, 2)


class SyntheticRankingAgreement(_HeadlineRanked, Metric):
    """How often S ranks each pair of classifier families the way T does, averaged over targets.

    For each target, every family is trained on T (AUROC A_l on R) and on S (B_l); SRA is the
    share of ordered family pairs whose AUROC order agrees. ``target_i`` is target i's SRA,
    ``auroc_real_<family>`` / ``auroc_synthetic_<family>`` the family's mean AUROCs.
    """

    name = "synthetic_ranking_agreement"
    category = "utility"
    higher_is_better = True
    description = "Share of classifier-family pairs ranked by AUROC the same when trained on S as on T."
    Options = RankingOptions
    profiles = {
        # smoke (tests, CI): the three families that fit in milliseconds.
        "smoke": {"n_targets": 3, "families": ("logistic_regression", "knn", "naive_bayes"),
                  "max_fit_rows": 300, "max_test_rows": 300},
        # quick: 5 targets (as paper) on 1,000 fit rows; 1 target moved SRA by 0.08–0.14 between seeds.
        "quick": {"n_targets": 5, "max_fit_rows": 1000, "max_test_rows": 2000},
    }

    def compute(
        self, real_train: EHRMatrix, real_test: EHRMatrix, synthetic: EHRMatrix, ctx: RunContext
    ) -> dict[str, float]:
        o = self.options
        sets = _prepare(self.name, real_train, real_test, synthetic, o.max_fit_rows, o.max_test_rows, ctx)
        columns = choose_targets(sets, real_train.codes, o.n_targets, o.target_codes, self.name)
        A = np.empty((columns.size, len(o.families)))
        B = np.empty_like(A)
        untrainable = 0
        for t, column in enumerate(columns):
            task = _task(sets, int(column))
            for f, family in enumerate(o.families):
                seed = derive_seed(ctx.seed, self.name, "model", family, t)
                A[t, f], _ = _classifiers.fit_auroc(
                    family, task.real_X, task.real_y, task.eval_X, task.eval_y, seed, ctx.device, ctx.cache_dir
                )
                B[t, f], ok = _classifiers.fit_auroc(
                    family, task.synthetic_X, task.synthetic_y, task.eval_X, task.eval_y, seed, ctx.device
                )
            untrainable += not ok  # one class in S: every family is untrainable alike
        per_target = [synthetic_ranking_agreement(A[t], B[t]) for t in range(columns.size)]
        out = {"value": float(np.mean(per_target)), "untrainable": float(untrainable)}
        out.update({f"target_{t + 1}": v for t, v in enumerate(per_target)})
        out.update({f"auroc_real_{f}": float(A[:, i].mean()) for i, f in enumerate(o.families)})
        out.update({f"auroc_synthetic_{f}": float(B[:, i].mean()) for i, f in enumerate(o.families)})
        return {**out, **_size_keys(sets, columns), **_target_keys(columns)}


# ------------------------------------------------------------------ train on synthetic, test on real


@dataclass(frozen=True)
class TstrOptions:
    """Targets (as for SRA), the model family and row caps."""

    n_targets: int = 5
    target_codes: tuple[str, ...] = ()
    family: str = "gradient_boosting"
    max_fit_rows: int | None = None
    max_test_rows: int | None = None

    def __post_init__(self) -> None:
        _check_limit("n_targets", self.n_targets)
        _check_families((self.family,), 1)
        _check_limit("max_fit_rows", self.max_fit_rows, 2)
        _check_limit("max_test_rows", self.max_test_rows, 2)


class TstrAUROC(_HeadlineRanked, Metric):
    """Train on synthetic, test on real: mean AUROC on R of a model fitted on S, per target.

    ``trtr`` is the same model fitted on T (same rows count, same seed): the ceiling to read
    ``value`` against. Per target: ``target_i`` (TSTR) and ``target_i_trtr``.
    """

    name = "tstr_auroc"
    category = "utility"
    higher_is_better = True
    description = "AUROC on real test rows of a gradient-boosting model trained on S (beside trained on T)."
    Options = TstrOptions
    profiles = {
        "smoke": {"n_targets": 1, "max_fit_rows": 300, "max_test_rows": 300},
        "quick": {"n_targets": 2, "max_fit_rows": 1000, "max_test_rows": 2000},
    }

    def compute(
        self, real_train: EHRMatrix, real_test: EHRMatrix, synthetic: EHRMatrix, ctx: RunContext
    ) -> dict[str, float]:
        o = self.options
        sets = _prepare(self.name, real_train, real_test, synthetic, o.max_fit_rows, o.max_test_rows, ctx)
        columns = choose_targets(sets, real_train.codes, o.n_targets, o.target_codes, self.name)
        tstr, trtr, untrainable = [], [], 0
        for t, column in enumerate(columns):
            task = _task(sets, int(column))
            seed = derive_seed(ctx.seed, self.name, "model", t)
            a, _ = _classifiers.fit_auroc(
                o.family, task.real_X, task.real_y, task.eval_X, task.eval_y, seed, ctx.device, ctx.cache_dir
            )
            b, ok = _classifiers.fit_auroc(
                o.family, task.synthetic_X, task.synthetic_y, task.eval_X, task.eval_y, seed, ctx.device
            )
            trtr.append(a)
            tstr.append(b)
            untrainable += not ok
        out = {"value": float(np.mean(tstr)), "trtr": float(np.mean(trtr)), "untrainable": float(untrainable)}
        for t in range(columns.size):
            out[f"target_{t + 1}"] = tstr[t]
            out[f"target_{t + 1}_trtr"] = trtr[t]
        return {**out, **_size_keys(sets, columns), **_target_keys(columns)}


METRICS: list[type[Metric]] = [DimensionWisePrediction, SyntheticRankingAgreement, TstrAUROC]


@hookimpl
def ehrbench_metrics() -> list[type[Metric]]:
    """The built-in utility metrics."""
    return list(METRICS)
