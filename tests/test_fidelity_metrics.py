"""Tests of the fidelity metrics (DESIGN.md §5): hand-computed cases, edge cases, determinism."""

from __future__ import annotations

import math
from importlib.metadata import entry_points

import numpy as np
import pluggy
import pytest

from ehrbench import hookspecs
from ehrbench.api import Metric, RunContext, standard_error_key
from ehrbench.errors import ConfigError, InputError
from ehrbench.matrix import EHRMatrix
from ehrbench_plugins.metrics import _stats, fidelity
from ehrbench_plugins.metrics.fidelity import (
    CodesPerRecord,
    DetectionAUC,
    DimensionWiseAverage,
    DimensionWiseProbability,
    LogCluster,
    PairwiseCorrelationDifference,
    PrevalenceCorrelation,
    ehrbench_metrics,
)

EXPECTED = {
    "dimension_wise_probability": False,
    "dimension_wise_average": False,
    "prevalence_correlation": True,
    "pairwise_correlation_difference": False,
    "log_cluster": False,
    "codes_per_record": False,
    "detection_auc": False,
}


def mat(rows) -> EHRMatrix:
    """A matrix with codes c0, c1, … so two calls with the same width share their columns."""
    X = np.asarray(rows, dtype=np.float32)
    return EHRMatrix(X, [f"c{j}" for j in range(X.shape[1])])


def score(cls: type[Metric], R: EHRMatrix, S: EHRMatrix, seed: int = 0, **options) -> dict[str, float]:
    """Run a metric; real_train is R too (fidelity metrics never read it). Its standard errors are
    left out here (tests/test_metric_standard_errors.py checks them)."""
    metric = cls.configure(options)
    errors = {standard_error_key(k) for k in metric.standard_errors}
    return {k: v for k, v in metric.compute(R, R, S, RunContext(seed=seed)).items() if k not in errors}


def value(cls: type[Metric], R: EHRMatrix, S: EHRMatrix, **options) -> float:
    return score(cls, R, S, **options)["value"]


def random_counts(rng: np.random.Generator, n: int, d: int, density: float) -> np.ndarray:
    """Sparse non-negative integer counts with correlated columns and a few constant columns."""
    latent = rng.random((n, 3))
    mix = rng.random((3, d))
    present = rng.random((n, d)) < density * 2 * (latent @ mix) / mix.sum(axis=0)
    X = np.where(present, 1 + rng.poisson(1.0, size=(n, d)), 0).astype(np.float32)
    X[:, 0] = 0  # all-zero column
    X[:, 1] = 1  # all-ones column
    X[:, 2] = 3  # constant non-binary column
    return X


# ---------------------------------------------------------------- registry


def test_hook_lists_all_seven_metrics():
    classes = ehrbench_metrics()
    assert {c.name: c.higher_is_better for c in classes} == EXPECTED
    for cls in classes:
        assert issubclass(cls, Metric)
        assert cls.category == "fidelity"
        assert cls.description and "\n" not in cls.description
    assert DetectionAUC.target == 0.5
    assert DetectionAUC.direction("value").describe() == "toward 0.5"
    assert LogCluster.direction("std") is None
    assert CodesPerRecord.direction("mean_real") is None
    assert PrevalenceCorrelation.direction("spearman").higher_is_better


def test_registered_through_entry_point_and_pluggy():
    (ep,) = [e for e in entry_points(group="ehrbench") if e.name == "fidelity"]
    module = ep.load()
    assert module is fidelity
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(module, name="fidelity")
    (classes,) = pm.hook.ehrbench_metrics()
    assert [c.name for c in classes] == list(EXPECTED)


# ---------------------------------------------------------------- shared edge cases

RNG_DATA = np.random.default_rng(7)
R_RANDOM = mat(random_counts(RNG_DATA, 150, 12, 0.2))
S_RANDOM = mat(random_counts(RNG_DATA, 90, 12, 0.3))


@pytest.mark.parametrize("cls", ehrbench_metrics(), ids=lambda c: c.name)
def test_values_are_finite_python_floats_for_different_sizes(cls):
    result = score(cls, R_RANDOM, S_RANDOM, seed=3)
    expected_keys = {"pearson", "spearman"} if cls is PrevalenceCorrelation else {"value"}
    assert expected_keys <= set(result)
    for key, v in result.items():
        assert type(v) is float, key
        assert math.isfinite(v), key


@pytest.mark.parametrize("cls", ehrbench_metrics(), ids=lambda c: c.name)
def test_same_seed_same_result(cls):
    assert score(cls, R_RANDOM, S_RANDOM, seed=11) == score(cls, R_RANDOM, S_RANDOM, seed=11)


@pytest.mark.parametrize("cls", ehrbench_metrics(), ids=lambda c: c.name)
def test_mismatched_codes_and_empty_sets_are_rejected(cls):
    other = EHRMatrix(S_RANDOM.X, [f"x{j}" for j in range(S_RANDOM.n_codes)])
    with pytest.raises(InputError, match="code columns differ"):
        score(cls, R_RANDOM, other)
    with pytest.raises(ValueError, match="no rows"):
        score(cls, R_RANDOM, mat(np.zeros((0, R_RANDOM.n_codes))))


# ---------------------------------------------------------------- dimension_wise_probability

# Counts: R has 4 rows, S 2; p = share of rows with a count > 0.
R_SMALL = mat([[2, 0], [0, 0], [1, 1], [0, 0]])  # p(R) = [2/4, 1/4], m(R) = [3/4, 1/4]
S_SMALL = mat([[1, 1], [0, 3]])  # p(S) = [1/2, 2/2], m(S) = [1/2, 4/2]


def test_dwp_hand_computed():
    # (|0.5 - 0.5| + |0.25 - 1.0|) / 2 = 0.375
    assert value(DimensionWiseProbability, R_SMALL, S_SMALL) == pytest.approx(0.375)


def test_dwp_constant_columns():
    R = mat([[0, 1, 3], [0, 1, 0], [0, 1, 0]])  # p(R) = [0, 1, 1/3]: all-zero and all-ones columns
    S = mat([[1, 0, 0], [1, 0, 0]])  # p(S) = [1, 0, 0]: all-ones, all-zero, all-zero
    # (|0 - 1| + |1 - 0| + |1/3 - 0|) / 3 = (7/3) / 3 = 7/9
    assert value(DimensionWiseProbability, R, S) == pytest.approx(7 / 9)
    assert value(DimensionWiseProbability, R, R) == 0.0


def test_dwp_same_on_counts_and_binary_view():
    assert value(DimensionWiseProbability, R_RANDOM, S_RANDOM) == pytest.approx(
        value(DimensionWiseProbability, R_RANDOM.binary(), S_RANDOM.binary())
    )


# ---------------------------------------------------------------- dimension_wise_average


def test_dwa_hand_computed():
    # (|0.75 - 0.5| + |0.25 - 2.0|) / 2 = (0.25 + 1.75) / 2 = 1.0
    assert value(DimensionWiseAverage, R_SMALL, S_SMALL) == pytest.approx(1.0)
    # Binary view: m(R) = [0.5, 0.25], m(S) = [0.5, 1.0] -> (0 + 0.75) / 2 = 0.375
    assert value(DimensionWiseAverage, R_SMALL.binary(), S_SMALL.binary()) == pytest.approx(0.375)


def test_dwa_constant_columns():
    R = mat([[0, 1, 6], [0, 1, 0], [0, 1, 0]])  # m(R) = [0, 1, 2]
    S = mat([[2, 0, 3], [2, 0, 3]])  # m(S) = [2, 0, 3]: every column constant
    # (|0 - 2| + |1 - 0| + |2 - 3|) / 3 = 4/3
    assert value(DimensionWiseAverage, R, S) == pytest.approx(4 / 3)


# ---------------------------------------------------------------- prevalence_correlation


def test_prevalence_correlation_hand_computed():
    R = mat([[0, 1, 1], [0, 0, 2]])  # p(R) = [0, 0.5, 1]; column 0 all zero, column 2 always present
    S = mat([[1, 1, 1], [0, 0, 1], [1, 1, 1]])  # p(S) = [2/3, 2/3, 1]
    # Pearson: centred p(R) = [-1/2, 0, 1/2], centred p(S) = [-1/9, -1/9, 2/9]
    #   dot = 1/18 + 0 + 1/9 = 1/6; |a|^2 = 1/2; |b|^2 = 6/81 -> r = (1/6) / sqrt(3/81) = sqrt(3)/2
    # Spearman: ranks [1, 2, 3] and [1.5, 1.5, 3]; centred [-1, 0, 1] and [-1/2, -1/2, 1]
    #   dot = 3/2; |a|^2 = 2; |b|^2 = 3/2 -> r = (3/2) / sqrt(3) = sqrt(3)/2
    result = score(PrevalenceCorrelation, R, S)
    assert set(result) == {"pearson", "spearman"}
    assert result["pearson"] == pytest.approx(math.sqrt(3) / 2)
    assert result["spearman"] == pytest.approx(math.sqrt(3) / 2)


def test_prevalence_correlation_reversed_order_is_minus_one():
    R = mat([[0, 1, 1], [0, 0, 2]])  # p(R) = [0, 0.5, 1]
    S = mat([[1, 1, 0], [1, 0, 0]])  # p(S) = [1, 0.5, 0] = 1 - p(R)
    result = score(PrevalenceCorrelation, R, S)
    assert result["pearson"] == pytest.approx(-1.0)
    assert result["spearman"] == pytest.approx(-1.0)


@pytest.mark.parametrize("fill", [0, 1, 4], ids=["all-zero", "all-ones", "all-fours"])
def test_prevalence_correlation_constant_prevalence_is_zero_not_nan(fill):
    S = mat(np.full((5, R_RANDOM.n_codes), fill))  # p(S) is constant: correlation undefined -> 0.0
    result = score(PrevalenceCorrelation, R_RANDOM, S)
    assert result == {"pearson": 0.0, "spearman": 0.0}
    assert score(PrevalenceCorrelation, S, S) == {"pearson": 0.0, "spearman": 0.0}


# ---------------------------------------------------------------- pairwise_correlation_difference


def test_pcd_hand_computed():
    R = mat([[0, 0], [1, 1], [0, 0], [1, 1]])  # corr(R) = [[1, 1], [1, 1]]
    S = mat([[0, 1], [1, 0], [0, 1], [1, 0]])  # column 1 = 1 - column 0: corr(S) = [[1, -1], [-1, 1]]
    # corr(R) - corr(S) = [[0, 2], [2, 0]] -> sqrt(2^2 + 2^2) = 2 sqrt(2)
    assert value(PairwiseCorrelationDifference, R, S) == pytest.approx(2 * math.sqrt(2))


def test_pcd_constant_columns_count_as_zero():
    R = mat([[0, 1], [1, 1], [0, 1], [1, 1]])  # column 1 all ones: corr(R) = [[1, 0], [0, 0]]
    S = mat([[0, 0], [1, 1], [1, 1]])  # corr(S) = [[1, 1], [1, 1]]
    # difference [[0, -1], [-1, -1]] -> sqrt(3)
    assert value(PairwiseCorrelationDifference, R, S) == pytest.approx(math.sqrt(3))
    # Column 1 constant in both (all ones in R, all zeros in S): corr = [[1, 0], [0, 0]] twice -> 0
    assert value(PairwiseCorrelationDifference, R, mat([[0, 0], [2, 0], [1, 0]])) == 0.0
    # Everything constant on one side: the other side's diagonal (2 ones) and off-diagonal (2 ones)
    assert value(PairwiseCorrelationDifference, mat(np.zeros((3, 2))), S) == pytest.approx(2.0)


def test_pcd_splits_out_codes_constant_in_synthetic():
    R = mat([[0, 0, 0], [1, 1, 1], [0, 0, 1], [1, 1, 0]])  # corr(R) = [[1, 1, 0], [1, 1, 0], [0, 0, 1]]
    S = mat([[0, 0, 0], [1, 1, 0], [0, 1, 0], [1, 0, 0]])  # code 2 never produced: [[1, 0, 0], [0, 1, 0], [0, 0, 0]]
    # difference [[0, 1, 0], [1, 0, 0], [0, 0, 1]]: squared norm 3, of which code 2's row and column hold 1
    result = score(PairwiseCorrelationDifference, R, S)
    assert result == pytest.approx({"value": math.sqrt(3), "constant_codes": 1, "constant_share": 1 / 3})
    # A code constant in R but varying in S is not "lost": nothing to split out.
    swapped = score(PairwiseCorrelationDifference, S, R)
    assert swapped["constant_codes"] == 0 and swapped["constant_share"] == 0.0
    # Identical sets: PCD 0 and a share of 0, not a division by zero.
    assert score(PairwiseCorrelationDifference, R, R) == {"value": 0.0, "constant_codes": 0, "constant_share": 0.0}
    assert PairwiseCorrelationDifference.direction("constant_share") is None  # reported, never ranked


def brute_force_pcd(R: np.ndarray, S: np.ndarray) -> float:
    """Reference: np.corrcoef in float64 with NaN (constant-column) entries set to 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        cr = np.nan_to_num(np.corrcoef(R.astype(np.float64), rowvar=False), nan=0.0)
        cs = np.nan_to_num(np.corrcoef(S.astype(np.float64), rowvar=False), nan=0.0)
    return float(np.linalg.norm(cr - cs))


@pytest.mark.parametrize("sparse_path", [True, False], ids=["sparse", "dense"])
def test_correlation_matrix_matches_corrcoef(sparse_path):
    X = random_counts(np.random.default_rng(1), 3000, 60, 0.03)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = np.nan_to_num(np.corrcoef(X.astype(np.float64), rowvar=False), nan=0.0)
    got = _stats.correlation_matrix(X, sparse_path=sparse_path)
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_dense_gram_uses_several_blocks(monkeypatch):
    monkeypatch.setattr(_stats, "_BLOCK_VALUES", 7 * 60)  # 7-row blocks
    X = random_counts(np.random.default_rng(2), 500, 60, 0.1)
    np.testing.assert_allclose(_stats.gram(X, sparse_path=False), X.astype(np.float64).T @ X, rtol=1e-13)


@pytest.mark.parametrize("density", [0.01, 0.3], ids=["sparse-data", "dense-data"])
def test_pcd_matches_brute_force(density):
    rng = np.random.default_rng(5)
    R = random_counts(rng, 4000, 80, density)
    S = random_counts(rng, 1500, 80, density)
    S[:, 3] = 0  # constant in S only
    assert _stats.use_sparse(R) == (density < 0.05)
    got = value(PairwiseCorrelationDifference, mat(R), mat(S))
    assert got == pytest.approx(brute_force_pcd(R, S), rel=1e-10)


# ---------------------------------------------------------------- log_cluster

# Two well separated groups (A near the origin, B near (10, 10)); column 2 is all zero and
# column 3 all ones, so k-means with G = 2 puts each group in its own cluster.
A = [[0, 0, 0, 1], [1, 0, 0, 1], [0, 1, 0, 1]]
B = [[10, 10, 0, 1], [11, 10, 0, 1], [10, 11, 0, 1]]


def test_log_cluster_hand_computed_two_clusters():
    R = mat([A[0], A[1], A[2], B[0]])  # 3 in A, 1 in B
    S = mat([A[0], B[0], B[1], B[2], B[0], B[1]])  # 1 in A, 5 in B
    # c = 4 / 10 = 0.4; cluster A: 3 real of 4 -> (0.75 - 0.4)^2 = 0.35^2 = 0.1225
    # cluster B: 1 real of 6 -> (1/6 - 0.4)^2 = (7/30)^2 = 49/900 = 0.054444…
    # U = log((0.1225 + 0.054444) / 2) = log(0.0884722) = -2.425067
    for seed in range(4):
        result = score(LogCluster, R, S, seed=seed, clusters=2)
        assert result["value"] == pytest.approx(math.log((0.1225 + 49 / 900) / 2), abs=1e-12)
        assert result["value"] == pytest.approx(-2.425067, abs=1e-6)
        assert result["std"] == 0.0


def test_log_cluster_leaves_empty_clusters_out():
    R = mat([[1, 0]] * 3)
    S = mat([[1, 0], [0, 5]])
    # Two distinct rows, G = 3 asked: one cluster stays empty and is left out of the mean.
    # c = 3/5; cluster [1, 0]: 3 real of 4 -> (0.75 - 0.6)^2 = 0.0225; cluster [0, 5]: 0 of 1 -> 0.36
    # U = log((0.0225 + 0.36) / 2) = log(0.19125) = -1.65418
    assert value(LogCluster, R, S, clusters=3) == pytest.approx(-1.65418, abs=1e-5)


def test_log_cluster_value_from_labels():
    # Labels of R ∪ S, real rows first: n_R = 2, n_S = 4 -> c = 1/3.
    # cluster 0 = {R, R, S}: (2/3 - 1/3)^2 = 1/9; cluster 1 = {S, S, S}: (0 - 1/3)^2 = 1/9; cluster 2 empty
    labels = np.array([0, 0, 0, 1, 1, 1])
    assert fidelity.log_cluster_value(labels, 2, 3) == pytest.approx(math.log(1 / 9))


def test_log_cluster_exact_copies_give_minus_infinity():
    # Every cluster holds identical rows in equal numbers from R and S: the mean is 0 -> log = -inf.
    result = score(LogCluster, R_RANDOM, mat(R_RANDOM.X.copy()), clusters=5)
    assert result == {"value": float("-inf"), "std": 0.0}


def test_log_cluster_summary_over_seeds_with_minus_infinity():
    inf = float("inf")
    assert (fidelity._mean_with_inf([-inf, -inf]), fidelity._std_with_inf([-inf, -inf])) == (-inf, 0.0)
    assert (fidelity._mean_with_inf([-inf, -2.0]), fidelity._std_with_inf([-inf, -2.0])) == (-inf, inf)
    # Finite seeds: mean and population std of -1 and -3 are -2 and 1.
    assert (fidelity._mean_with_inf([-1.0, -3.0]), fidelity._std_with_inf([-1.0, -3.0])) == (-2.0, 1.0)


def test_log_cluster_more_clusters_than_rows():
    assert math.isfinite(value(LogCluster, mat([A[0], B[0]]), mat([B[1]]), clusters=20))


def bernoulli(rng: np.random.Generator, n: int, p: np.ndarray) -> EHRMatrix:
    return mat((rng.random((n, p.size)) < p).astype(np.float32))


def test_log_cluster_low_for_same_distribution_high_for_different():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.05, 0.5, size=15)
    R = bernoulli(rng, 2000, p)
    same = value(LogCluster, R, bernoulli(rng, 1500, p))
    different = value(LogCluster, R, bernoulli(rng, 1500, 0.5 - p))
    # Same distribution: cluster shares deviate from c only by sampling noise (U about -6);
    # swapped prevalences leave whole clusters mostly real or mostly synthetic (U about -2).
    assert same < -4.5
    assert different > -3.0


def test_log_cluster_rejects_bad_options():
    with pytest.raises(ConfigError, match="clusters"):
        LogCluster.configure({"clusters": 0})


# ---------------------------------------------------------------- codes_per_record


def test_codes_per_record_hand_computed():
    R = mat([[2, 1, 0], [0, 0, 0], [0, 0, 3]])  # distinct codes per record: 2, 0, 1
    S = mat([[1, 1, 1], [1, 1, 0]])  # 3, 2
    # CDFs: R steps 1/3, 2/3, 1 at 0, 1, 2; S steps 1/2, 1 at 2, 3
    # W1 = ∫|F_R - F_S| = 1/3 (on [0,1)) + 2/3 (on [1,2)) + 1/2 (on [2,3)) = 1.5
    assert score(CodesPerRecord, R, S) == {"value": 1.5, "mean_real": 1.0, "mean_synthetic": 2.5}
    assert score(CodesPerRecord, R.binary(), S.binary()) == score(CodesPerRecord, R, S)


def test_codes_per_record_constant_columns():
    R = mat([[2, 1, 0, 0], [0, 0, 0, 0], [0, 0, 3, 0]])  # all-zero column 3: counts 2, 0, 1
    S = mat([[1, 1, 1, 1], [1, 1, 0, 1]])  # all-ones column 3: counts 4, 3
    # S lies entirely above R, so W1 = mean difference = 3.5 - 1 = 2.5
    assert score(CodesPerRecord, R, S) == {"value": 2.5, "mean_real": 1.0, "mean_synthetic": 3.5}


# ---------------------------------------------------------------- detection_auc


def test_detection_auc_perfectly_separable_is_one():
    # Column 0 is 5 in every real row and 0 in every synthetic row; column 1 is all ones, column 2
    # all zeros. 60 rows per class (S is subsampled from 90), 3 folds: each fold trains on 40 + 40
    # rows, enough for one split with min_samples_leaf = 20, and ranks every real test row above
    # every synthetic one: AUROC 1 in each fold.
    R = mat([[5, 1, 0]] * 60)
    S = mat([[0, 1, 0]] * 90)
    assert score(DetectionAUC, R, S) == {"value": 1.0, "std": 0.0}


def test_detection_auc_identical_rows_is_one_half():
    # All rows identical: every row gets the same score, and a tie scores AUROC 0.5 in each fold.
    R = mat([[1, 0, 1]] * 30)
    S = mat([[1, 0, 1]] * 40)
    assert score(DetectionAUC, R, S) == {"value": 0.5, "std": 0.0}


def test_detection_auc_same_distribution_near_half_different_near_one():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.05, 0.5, size=20)
    R = bernoulli(rng, 900, p)
    same = score(DetectionAUC, R, bernoulli(rng, 600, p), max_iter=50)
    different = score(DetectionAUC, R, bernoulli(rng, 600, 1 - p), max_iter=50)
    assert abs(same["value"] - 0.5) < 0.07
    assert different["value"] > 0.99


def test_detection_auc_ignores_constant_columns_exactly():
    # A constant column never splits a tree, so the detector leaves out the columns that are
    # constant over a fold's training rows; adding constant columns changes nothing, exactly.
    rng = np.random.default_rng(3)
    R, S = rng.poisson(0.4, (200, 12)), rng.poisson(0.6, (180, 12))
    padded = [np.hstack([np.zeros((len(X), 3)), X[:, :6], np.ones((len(X), 2)), X[:, 6:]]) for X in (R, S)]
    assert score(DetectionAUC, mat(R), mat(S), max_iter=10) == score(
        DetectionAUC, mat(padded[0]), mat(padded[1]), max_iter=10)


def test_histogram_boosting_gives_the_same_scores_without_constant_columns():
    # What the detector relies on (a guard against a change in scikit-learn).
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(4)
    X = rng.poisson(0.5, (300, 10)).astype(np.float32)
    X[:, [2, 7]] = 0
    X[:, 5] = 3
    y = (X[:, 0] + rng.random(300) > 1).astype(int)
    varying = X.max(axis=0) != X.min(axis=0)
    full = HistGradientBoostingClassifier(max_iter=15, early_stopping=False, random_state=0).fit(X, y)
    reduced = HistGradientBoostingClassifier(max_iter=15, early_stopping=False, random_state=0).fit(X[:, varying], y)
    np.testing.assert_array_equal(full.predict_proba(X), reduced.predict_proba(X[:, varying]))


def test_detection_auc_needs_rows_for_every_fold():
    with pytest.raises(ValueError, match="at least 4 rows.*got 10 real and 3 synthetic"):
        score(DetectionAUC, mat(np.ones((10, 2))), mat(np.ones((3, 2))), folds=4)


def test_detection_auc_rejects_bad_options():
    with pytest.raises(ConfigError, match="folds"):
        DetectionAUC.configure({"folds": 1})
    with pytest.raises(ConfigError, match="max_rows_per_class"):
        DetectionAUC.configure({"max_rows_per_class": 2})


def test_detection_auc_caps_rows_per_class(monkeypatch):
    seen = []
    fit = fidelity.HistGradientBoostingClassifier.fit

    def spy(self, X, y):
        seen.append((len(y), int(y.sum())))
        return fit(self, X, y)

    monkeypatch.setattr(fidelity.HistGradientBoostingClassifier, "fit", spy)
    score(DetectionAUC, R_RANDOM, S_RANDOM, max_rows_per_class=30, max_iter=5)
    # 30 rows per class, 3 folds: each model trains on 40 rows, 20 of them real.
    assert seen == [(40, 20)] * 3
