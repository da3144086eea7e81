"""Fidelity metrics (DESIGN.md §5): how closely the synthetic matrix S matches the real test matrix R.

Every metric compares ``synthetic`` with ``real_test`` in the run's representation (counts or
0/1); ``real_train`` is never used here. All of them are vectorised over codes and scale to
50k × 1k on a laptop CPU; the random ones draw only from seeds derived from ``ctx.seed``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.stats import rankdata, wasserstein_distance
from sklearn.cluster import KMeans
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from ehrbench import INFO, EHRMatrix, Metric, RunContext, derive_seed, hookimpl
from ehrbench_plugins.metrics import _stats

# The standard errors these metrics return (Metric.standard_errors) come from a bootstrap over the
# rows of the real test split R, the synthetic sample held fixed: R is the same in every repeat, so
# its noise is the one the spread over repeats never sees (DESIGN.md §8 "Intervals"). The resamples
# come from the metric seed, so every generator of a repeat is scored on the same ones.


def _bootstrap(ctx: RunContext, metric: str, n: int) -> np.ndarray:
    return _stats.bootstrap_counts(ctx.rng(metric, "bootstrap"), n)


def _resampled_means(X: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(B, d) column means of X over each resample of its rows."""
    return _stats.resampled_column_sums(X, counts) / X.shape[0]

def _real_and_synthetic(
    real_test: EHRMatrix, synthetic: EHRMatrix, metric: str
) -> tuple[np.ndarray, np.ndarray]:
    """The two arrays to compare, after checking columns match and neither set is empty."""
    real_test.check_same_codes(synthetic, "the real test set", "the synthetic set")
    for label, m in (("real test", real_test), ("synthetic", synthetic)):
        if m.n_patients == 0:
            raise ValueError(f"{metric}: the {label} set has no rows; at least 1 is needed.")
    return real_test.X, synthetic.X


class DimensionWiseProbability(Metric):
    """Mean absolute difference of code prevalences: the paper's dimension-wise distribution."""

    name = "dimension_wise_probability"
    category = "fidelity"
    conditional = True  # also scored on conditional samples (--condition)
    higher_is_better = False
    description = "Mean |p_j(R) - p_j(S)| over codes, p_j = share of records with code j."
    tradeoff_axis = 2  # the report's trade-off figures prefer the smallest
    standard_errors = frozenset({"value"})

    def compute(
        self, real_train: EHRMatrix, real_test: EHRMatrix, synthetic: EHRMatrix, ctx: RunContext
    ) -> dict[str, float]:
        R, S = _real_and_synthetic(real_test, synthetic, self.name)
        ps = _stats.prevalence(S)
        diff = np.abs(_stats.prevalence(R) - ps)
        replicates = np.abs(_resampled_means(R > 0, _bootstrap(ctx, self.name, R.shape[0])) - ps).mean(axis=1)
        return {"value": float(diff.mean()), "se": _stats.replicate_se(replicates)}


class DimensionWiseAverage(Metric):
    """Mean absolute difference of per-code means, on the values as given (counts or 0/1)."""

    name = "dimension_wise_average"
    category = "fidelity"
    higher_is_better = False
    description = "Mean |m_j(R) - m_j(S)| over codes, m_j = mean value of code j."
    standard_errors = frozenset({"value"})

    def compute(
        self, real_train: EHRMatrix, real_test: EHRMatrix, synthetic: EHRMatrix, ctx: RunContext
    ) -> dict[str, float]:
        R, S = _real_and_synthetic(real_test, synthetic, self.name)
        ms = _stats.column_means(S)
        diff = np.abs(_stats.column_means(R) - ms)
        replicates = np.abs(_resampled_means(R, _bootstrap(ctx, self.name, R.shape[0])) - ms).mean(axis=1)
        return {"value": float(diff.mean()), "se": _stats.replicate_se(replicates)}


class PrevalenceCorrelation(Metric):
    """Correlation over codes of the prevalence vectors p(R) and p(S).

    Returns two ranked numbers and no headline ``value``: ``pearson`` and ``spearman``.
    Convention: a correlation with a constant vector (e.g. an all-zero synthetic set) is
    undefined; it is reported as 0.0 ("no agreement"), never NaN.
    """

    name = "prevalence_correlation"
    category = "fidelity"
    higher_is_better = True
    description = "Pearson and Spearman correlation of code prevalences p(R) and p(S)."
    standard_errors = frozenset({"pearson", "spearman"})

    def compute(
        self, real_train: EHRMatrix, real_test: EHRMatrix, synthetic: EHRMatrix, ctx: RunContext
    ) -> dict[str, float]:
        R, S = _real_and_synthetic(real_test, synthetic, self.name)
        pr, ps = _stats.prevalence(R), _stats.prevalence(S)
        resampled = _resampled_means(R > 0, _bootstrap(ctx, self.name, R.shape[0]))
        pearson = _stats.row_pearson(resampled, ps)
        spearman = _stats.row_pearson(rankdata(resampled, axis=1), rankdata(ps))
        return {"pearson": _stats.pearson(pr, ps), "spearman": _stats.spearman(pr, ps),
                "pearson_se": _stats.replicate_se(pearson), "spearman_se": _stats.replicate_se(spearman)}


class PairwiseCorrelationDifference(Metric):
    """Frobenius norm of the difference of the code-code Pearson matrices of R and S.

    Entries involving a constant column (its diagonal entry included) count as 0, so a
    code constant in one set but not the other contributes its full row of correlations.
    That is often most of a generator's PCD: ``constant_codes`` counts the codes that vary in R
    but are constant in S (usually codes S never produces), and ``constant_share`` is the part
    of the squared norm in their rows and columns, so a reader can tell missing codes from
    wrong correlations.
    """

    name = "pairwise_correlation_difference"
    category = "fidelity"
    conditional = True  # also scored on conditional samples (--condition)
    higher_is_better = False
    description = "||corr(R) - corr(S)||_F over code-code Pearson matrices (constant columns: 0)."
    tradeoff_axis = 1  # the report's trade-off figures prefer the smallest
    key_directions = {"constant_codes": INFO, "constant_share": INFO}
    standard_errors = frozenset({"value"})
    # Each replicate is a new d × d correlation matrix (~35 ms at 14k × 1,071), so fewer of them.
    bootstrap_replicates = 10

    def compute(
        self, real_train: EHRMatrix, real_test: EHRMatrix, synthetic: EHRMatrix, ctx: RunContext
    ) -> dict[str, float]:
        R, S = _real_and_synthetic(real_test, synthetic, self.name)
        corr_r, corr_s = _stats.correlation_matrix(R), _stats.correlation_matrix(S)
        squared = np.square(corr_r - corr_s)
        total = float(squared.sum())
        # correlation_matrix puts 1 on the diagonal of a varying column and 0 on a constant one.
        lost = (np.diag(corr_r) == 1.0) & (np.diag(corr_s) == 0.0)
        in_lost = squared[lost[:, None] | lost[None, :]].sum()
        return {
            "value": math.sqrt(total),
            "constant_codes": float(lost.sum()),
            "constant_share": float(in_lost / total) if total > 0 else 0.0,
            "se": self._standard_error(R, corr_s, ctx),
        }

    def _standard_error(self, R: np.ndarray, corr_s: np.ndarray, ctx: RunContext) -> float:
        Rs = sparse.csr_matrix(R, dtype=np.float64)
        counts = _stats.bootstrap_counts(ctx.rng(self.name, "bootstrap"), R.shape[0], self.bootstrap_replicates)
        values = [math.sqrt(float(np.square(_stats.resampled_correlation_matrix(Rs, c) - corr_s).sum())) for c in counts]
        return _stats.replicate_se(np.array(values))


@dataclass(frozen=True)
class LogClusterOptions:
    """k-means clusters G and the number of k-means seeds averaged."""

    clusters: int = 20
    seeds: int = 3

    def __post_init__(self) -> None:
        if self.clusters < 1:
            raise ValueError(f"clusters must be at least 1, got {self.clusters}")
        if self.seeds < 1:
            raise ValueError(f"seeds must be at least 1, got {self.seeds}")


class LogCluster(Metric):
    """Log-cluster metric: how unevenly real and synthetic rows share k-means clusters.

    U = log((1/G) Σ_j (n_j^R/n_j − c)²), c = n_R/(n_R+n_S), over the G non-empty clusters
    of one k-means run on R ∪ S. ``value`` is the mean of U over ``seeds`` runs (seeds derived
    from ctx.seed), ``std`` their spread. Conventions: empty clusters are left out; G is
    capped at the number of rows; when every cluster holds exactly the share c the mean is 0
    and U = −inf, which is returned as float("-inf") (``std`` is then 0.0 if every seed gave
    −inf, and inf if only some did).
    """

    name = "log_cluster"
    category = "fidelity"
    higher_is_better = False
    description = "log of the mean squared deviation of clusters' real share from n_R/(n_R+n_S)."
    Options = LogClusterOptions
    key_directions = {"std": INFO}

    def compute(
        self, real_train: EHRMatrix, real_test: EHRMatrix, synthetic: EHRMatrix, ctx: RunContext
    ) -> dict[str, float]:
        R, S = _real_and_synthetic(real_test, synthetic, self.name)
        data = _stack(R, S)
        values = [
            self._one_run(data, R.shape[0], derive_seed(ctx.seed, self.name, k))
            for k in range(self.options.seeds)
        ]
        return {"value": _mean_with_inf(values), "std": _std_with_inf(values)}

    def _one_run(self, data: np.ndarray | sparse.csr_matrix, n_real: int, seed: int) -> float:
        """U for one k-means run; rows [0, n_real) of ``data`` are the real ones."""
        n = data.shape[0]
        k = min(self.options.clusters, n)
        with warnings.catch_warnings():
            # Fewer distinct rows than clusters leaves clusters empty; they are dropped below.
            warnings.simplefilter("ignore", ConvergenceWarning)
            labels = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(data).labels_
        return log_cluster_value(labels, n_real, k)


def log_cluster_value(labels: np.ndarray, n_real: int, clusters: int) -> float:
    """U from cluster labels of R ∪ S (real rows first); −inf when every cluster is balanced."""
    sizes = np.bincount(labels, minlength=clusters)
    real = np.bincount(labels[:n_real], minlength=clusters)
    keep = sizes > 0
    c = n_real / labels.shape[0]
    inner = float(np.mean((real[keep] / sizes[keep] - c) ** 2))
    return math.log(inner) if inner > 0.0 else float("-inf")


def _stack(R: np.ndarray, S: np.ndarray) -> np.ndarray | sparse.csr_matrix:
    """R above S, as CSR when R ∪ S is sparse (k-means is much faster on CSR) else dense."""
    if _stats.use_sparse(R, S):
        return sparse.vstack([sparse.csr_matrix(R), sparse.csr_matrix(S)], format="csr")
    return np.vstack([R, S])


def _mean_with_inf(values: list[float]) -> float:
    return float("-inf") if any(math.isinf(v) for v in values) else float(np.mean(values))


def _std_with_inf(values: list[float]) -> float:
    if all(v == values[0] for v in values):
        return 0.0
    return float("inf") if any(math.isinf(v) for v in values) else float(np.std(values))


class CodesPerRecord(Metric):
    """Wasserstein-1 distance between the distributions of distinct codes per record."""

    name = "codes_per_record"
    category = "fidelity"
    conditional = True  # also scored on conditional samples (--condition)
    higher_is_better = False
    description = "Wasserstein-1 distance between the numbers of distinct codes per record in R and S."
    key_directions = {"mean_real": INFO, "mean_synthetic": INFO}
    standard_errors = frozenset({"value"})

    def compute(
        self, real_train: EHRMatrix, real_test: EHRMatrix, synthetic: EHRMatrix, ctx: RunContext
    ) -> dict[str, float]:
        R, S = _real_and_synthetic(real_test, synthetic, self.name)
        kr, ks = _stats.codes_per_row(R), _stats.codes_per_row(S)
        return {
            "value": float(wasserstein_distance(kr, ks)),
            "mean_real": float(kr.mean()),
            "mean_synthetic": float(ks.mean()),
            "se": _stats.replicate_se(integer_wasserstein(kr, ks, _bootstrap(ctx, self.name, kr.size))),
        }


def integer_wasserstein(real: np.ndarray, synthetic: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """W1 between each resample of the integers ``real`` (``counts``: (B, n) draw counts) and ``synthetic``.

    On integers W1 is the sum over k of |F(k) − G(k)|: the CDFs are constant between integers.
    """
    top = int(max(real.max(initial=0), synthetic.max(initial=0))) + 1
    g = np.cumsum(np.bincount(synthetic, minlength=top)) / synthetic.size
    onehot = sparse.csr_matrix((np.ones(real.size), (np.arange(real.size), real)), shape=(real.size, top))
    f = np.cumsum(np.asarray(onehot.T @ counts.T.astype(np.float64)).T, axis=1) / real.size
    return np.abs(f - g).sum(axis=1)


@dataclass(frozen=True)
class DetectionOptions:
    """Rows per class, cross-validation folds and boosting iterations of the detector."""

    max_rows_per_class: int = 5000
    folds: int = 3
    max_iter: int = 100

    def __post_init__(self) -> None:
        if self.folds < 2:
            raise ValueError(f"folds must be at least 2, got {self.folds}")
        if self.max_rows_per_class < self.folds:
            raise ValueError(
                f"max_rows_per_class ({self.max_rows_per_class}) must be at least folds ({self.folds})"
            )
        if self.max_iter < 1:
            raise ValueError(f"max_iter must be at least 1, got {self.max_iter}")


class DetectionAUC(Metric):
    """Cross-validated AUROC of a classifier telling real (1) from synthetic (0) rows.

    Both sets are subsampled (seeded, without replacement) to the same number of rows,
    min(n_R, n_S, max_rows_per_class). The detector is a HistGradientBoostingClassifier with
    a fixed number of iterations (early stopping off, so the definition does not change
    with the sample size). 0.5 means indistinguishable.
    """

    name = "detection_auc"
    category = "fidelity"
    higher_is_better = False
    target = 0.5
    description = "Cross-validated AUROC of a real-vs-synthetic gradient-boosting classifier (0.5 is best)."
    tradeoff_axis = 3  # the report's trade-off figures prefer the smallest
    Options = DetectionOptions
    key_directions = {"std": INFO}
    # The default run scores every job with this detector; at the paper protocol's size it
    # dominates the metric cost (~19 s a job), so smoke/quick use a smaller, recorded protocol.
    profiles = {
        "smoke": {"max_rows_per_class": 500, "max_iter": 20},
        "quick": {"max_rows_per_class": 1500, "max_iter": 40},
    }

    def compute(
        self, real_train: EHRMatrix, real_test: EHRMatrix, synthetic: EHRMatrix, ctx: RunContext
    ) -> dict[str, float]:
        R, S = _real_and_synthetic(real_test, synthetic, self.name)
        X, y = self._balanced_sample(R, S, ctx)
        folds = StratifiedKFold(
            n_splits=self.options.folds, shuffle=True, random_state=derive_seed(ctx.seed, self.name, "folds")
        )
        aucs = [
            self._fold_auc(X, y, train, test, derive_seed(ctx.seed, self.name, "model", i))
            for i, (train, test) in enumerate(folds.split(X, y))
        ]
        return {"value": float(np.mean(aucs)), "std": float(np.std(aucs))}

    def _balanced_sample(
        self, R: np.ndarray, S: np.ndarray, ctx: RunContext
    ) -> tuple[np.ndarray, np.ndarray]:
        """Equal-sized seeded subsamples of R (label 1) and S (label 0)."""
        folds = self.options.folds
        if min(R.shape[0], S.shape[0]) < folds:
            raise ValueError(
                f"{self.name} with {folds}-fold cross-validation needs at least {folds} rows in both "
                f"the real test set and the synthetic set; got {R.shape[0]} real and {S.shape[0]} synthetic."
            )
        m = min(R.shape[0], S.shape[0], self.options.max_rows_per_class)
        rng = ctx.rng(self.name, "subsample")
        real = R[np.sort(rng.choice(R.shape[0], m, replace=False))]
        synth = S[np.sort(rng.choice(S.shape[0], m, replace=False))]
        X = np.vstack([real, synth]).astype(np.float32, copy=False)
        y = np.concatenate([np.ones(m, dtype=np.int8), np.zeros(m, dtype=np.int8)])
        return X, y

    def _fold_auc(
        self, X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, seed: int
    ) -> float:
        """AUROC on one held-out fold.

        Boosting runs on one OpenMP thread: its many short parallel regions spin at barriers,
        and when the cores are shared (parallel jobs) a 2-thread fit measured 35× slower
        (178 s against 5 s), while on an idle 2-core machine 2 threads save only ~30 %.
        A column constant over the fold's training rows has one bin and never splits a node, so
        leaving it out gives the same trees and scores (tested) at a quarter less time on the
        default cohort, where a fifth of the codes are absent from a few thousand rows.
        """
        model = HistGradientBoostingClassifier(
            max_iter=self.options.max_iter, early_stopping=False, random_state=seed
        )
        fit_rows = X[train]
        varying = fit_rows.max(axis=0) != fit_rows.min(axis=0)
        varying[0] |= not varying.any()  # nothing varies: one constant column, a constant model, AUROC ½
        with threadpool_limits(limits=1, user_api="openmp"):
            model.fit(fit_rows[:, varying], y[train])
            scores = model.predict_proba(X[test][:, varying])[:, 1]
        return float(roc_auc_score(y[test], scores))


METRICS: list[type[Metric]] = [
    DimensionWiseProbability,
    DimensionWiseAverage,
    PrevalenceCorrelation,
    PairwiseCorrelationDifference,
    LogCluster,
    CodesPerRecord,
    DetectionAUC,
]


@hookimpl
def ehrbench_metrics() -> list[type[Metric]]:
    """The built-in fidelity metrics."""
    return list(METRICS)

