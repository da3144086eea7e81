"""Utility metrics (DESIGN.md §5): SRA on hand-made AUROC vectors, protocol details on small
matrices, the calibration rows on the default dataset, and bad input."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from scipy import sparse

import _brute
from _calibration_data import calibration_sets
from ehrbench.api import Metric, RunContext
from ehrbench.errors import ConfigError, InputError
from ehrbench.matrix import EHRMatrix
from ehrbench.plugins import load_registry
from ehrbench_plugins.metrics import _classifiers, utility
from ehrbench_plugins.metrics.utility import (
    DimensionWisePrediction,
    SyntheticRankingAgreement,
    TstrAUROC,
    synthetic_ranking_agreement,
)


def mat(X) -> EHRMatrix:
    X = np.asarray(X, dtype=np.float32)
    return EHRMatrix(X, [f"c{j}" for j in range(X.shape[1])])


def correlated(rng: np.random.Generator, n: int, d: int = 12) -> np.ndarray:
    """Counts whose first codes follow a latent trait, so they are predictable from the rest."""
    trait = rng.random((n, 1))
    p = np.clip(0.6 * trait * np.linspace(1.0, 0.2, d)[None, :] + 0.05, 0, 1)
    return ((rng.random((n, d)) < p) * rng.integers(1, 3, (n, d))).astype(np.float32)


def score(cls: type[Metric], T, R, S, seed: int = 0, **options) -> dict[str, float]:
    return cls.configure(options).compute(mat(T), mat(R), mat(S), RunContext(seed=seed))


# ---------------------------------------------------------------- SRA by hand


@pytest.mark.parametrize(
    "A, B, expected",
    [
        ([0.9, 0.8, 0.7], [0.6, 0.5, 0.4], 1.0),  # same order
        ([0.9, 0.8, 0.7], [0.4, 0.5, 0.6], 0.0),  # reversed
        ([0.9, 0.8, 0.7], [0.5, 0.6, 0.4], 4 / 6),  # pairs (0,2), (1,2) agree, (0,1) does not
        ([0.9, 0.9, 0.7], [0.6, 0.5, 0.4], 4 / 6),  # a tie in A agrees with nothing
        ([0.7, 0.8], [0.5, 0.5], 0.0),
    ],
)
def test_sra_on_hand_made_auroc_vectors(A, B, expected):
    assert synthetic_ranking_agreement(np.array(A), np.array(B)) == pytest.approx(expected)


def test_sra_needs_two_families_of_one_length():
    with pytest.raises(ValueError, match="at least 2"):
        synthetic_ranking_agreement(np.array([0.5]), np.array([0.5]))
    with pytest.raises(ValueError, match="one length"):
        synthetic_ranking_agreement(np.array([0.5, 0.6]), np.array([0.5]))


# ---------------------------------------------------------------- protocol on small matrices


def test_synthetic_equal_to_train_keeps_all_the_lift():
    rng = np.random.default_rng(0)
    T, R = correlated(rng, 300), correlated(rng, 200)
    out = score(DimensionWisePrediction, T, R, T.copy(), n_codes=4)
    assert out["value"] == 1.0 and out["mean_abs_gap"] == 0.0 and out["correlation"] == pytest.approx(1.0)
    assert out["targets"] == 4 and out["fit_rows"] == 300 and out["test_rows"] == 200
    # Targets: the most prevalent codes of T, most prevalent first.
    prevalence = (T > 0).mean(axis=0)
    chosen = [int(out[f"target_{i}_column"]) for i in range(1, 5)]
    assert chosen == list(np.argsort(-prevalence, kind="stable")[:4])


def test_fit_rows_are_equal_for_both_sides_and_capped():
    rng = np.random.default_rng(1)
    T, R, S = correlated(rng, 300), correlated(rng, 100), correlated(rng, 120)
    assert score(DimensionWisePrediction, T, R, S, n_codes=2)["fit_rows"] == 120
    out = score(DimensionWisePrediction, T, R, S, n_codes=2, max_fit_rows=50, max_test_rows=60)
    assert (out["fit_rows"], out["test_rows"]) == (50, 60)


def test_a_code_missing_from_synthetic_is_counted_not_fatal():
    rng = np.random.default_rng(2)
    T, R = correlated(rng, 300), correlated(rng, 200)
    S = correlated(rng, 300)
    top = np.argsort(-(T > 0).mean(axis=0), kind="stable")[:2]
    S[:, top[0]] = 0  # never occurs
    S[:, top[1]] = 1  # always occurs
    out = score(DimensionWisePrediction, T, R, S, n_codes=3)
    assert out["untrainable"] == 2
    sra = score(SyntheticRankingAgreement, T, R, S, target_codes=(f"c{top[0]}",), families=("logistic_regression", "naive_bayes"))
    assert sra["untrainable"] == 1 and sra["value"] == 0.0  # B = (0.5, 0.5): no pair agrees
    assert sra["auroc_synthetic_naive_bayes"] == 0.5
    tstr = score(TstrAUROC, T, R, S, target_codes=(f"c{top[1]}",), family="logistic_regression")
    assert tstr["value"] == 0.5 and tstr["untrainable"] == 1 and tstr["trtr"] > 0.6


def test_declared_targets_replace_the_prevalence_rule():
    rng = np.random.default_rng(3)
    T, R = correlated(rng, 200), correlated(rng, 150)
    out = score(TstrAUROC, T, R, T.copy(), target_codes=("c3", "c1"), family="naive_bayes")
    assert (out["target_1_column"], out["target_2_column"]) == (3, 1)
    assert out["value"] == pytest.approx(out["trtr"])  # S = T: same rows, same model
    with pytest.raises(ConfigError, match="'c99' is not a column"):
        score(TstrAUROC, T, R, T, target_codes=("c99",))
    T[:, 5] = 0
    with pytest.raises(ValueError, match="'c5' is present in all or none"):
        score(SyntheticRankingAgreement, T, R, T, target_codes=("c5",))


def test_every_family_trains_and_scores():
    rng = np.random.default_rng(4)
    X = correlated(rng, 400)
    y = (X[:, 0] > 0).astype(np.int8)
    Xf, Xe = sparse.csr_matrix(X[:250, 1:]), sparse.csr_matrix(X[250:, 1:])
    for family in _classifiers.FAMILIES:
        auroc, trained = _classifiers.fit_auroc(family, Xf, y[:250], Xe, y[250:], 0)
        assert trained and 0.5 < auroc <= 1.0, family
    assert _classifiers.fit_auroc("mlp", Xf, np.zeros(250), Xe, y[250:], 0) == (0.5, False)


def test_fit_auroc_remembers_answers_by_content():
    """The real side of a repeat is fitted once per process; the memo is keyed by the data itself."""
    rng = np.random.default_rng(14)
    X = correlated(rng, 300)
    y = (X[:, 0] > 0).astype(np.int8)
    Xf, Xe = sparse.csr_matrix(X[:200, 1:]), sparse.csr_matrix(X[200:, 1:])
    _classifiers._MEMO.clear()
    first = _classifiers.fit_auroc("random_forest", Xf, y[:200], Xe, y[200:], 3)
    assert len(_classifiers._MEMO) == 1
    again = _classifiers.fit_auroc("random_forest", Xf.copy(), y[:200].copy(), Xe.copy(), y[200:].copy(), 3)
    assert again == first and len(_classifiers._MEMO) == 1
    assert _classifiers._fit_auroc("random_forest", Xf, y[:200], Xe, y[200:], 3, "cpu") == first  # what it stands for
    flipped = y[:200].copy()
    flipped[0] = 1 - flipped[0]
    _classifiers.fit_auroc("random_forest", Xf, flipped, Xe, y[200:], 3)
    _classifiers.fit_auroc("random_forest", Xf, y[:200], Xe, y[200:], 4)
    assert len(_classifiers._MEMO) == 3


def test_knn_classifier_is_the_share_of_positive_neighbours():
    X = np.array([[0.0], [1.0], [2.0], [10.0], [11.0]])
    y = np.array([0, 0, 1, 1, 1])
    p = _classifiers.NearestNeighbourClassifier(k=3).fit(X, y).predict_proba(np.array([[0.0], [10.5]]))[:, 1]
    assert p.tolist() == [1 / 3, 1.0]


def test_knn_classifier_shares_tied_places_equally():
    """Rows tied at the k-th distance split its places: the expected vote of a random tie-break."""
    X = np.array([[0.0], [2.0], [2.0], [2.0], [5.0]])
    y = np.array([1, 0, 1, 1, 0])
    # k = 2 from 0: row 0, then one place shared by three rows at distance 2 (2/3 positive).
    p = _classifiers.NearestNeighbourClassifier(k=2).fit(X, y).predict_proba(np.array([[0.0]]))[:, 1]
    assert p.tolist() == [float(Fraction(1 + Fraction(2, 3), 2))]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_knn_classifier_equals_brute_force_and_ignores_row_order(seed):
    rng = np.random.default_rng(seed)
    X = ((rng.random((60, 5)) < 0.3) * rng.integers(1, 3, (60, 5))).astype(np.float32)  # many ties
    y = (rng.random(60) < 0.4).astype(np.int8)
    E = ((rng.random((25, 5)) < 0.3) * rng.integers(1, 3, (25, 5))).astype(np.float32)
    p = _classifiers.NearestNeighbourClassifier(k=5).fit(X, y).predict_proba(E)[:, 1]
    assert p.tolist() == [float(row[0]) for row in _brute.tie_averaged_mean(E, X, y[:, None], 5, "l2")]
    order = rng.permutation(60)
    shuffled = _classifiers.NearestNeighbourClassifier(k=5).fit(X[order], y[order]).predict_proba(E)[:, 1]
    assert np.array_equal(shuffled, p)


def test_utility_metrics_are_deterministic_by_seed():
    rng = np.random.default_rng(5)
    T, R, S = correlated(rng, 300), correlated(rng, 200), correlated(rng, 150)
    few = {DimensionWisePrediction: {"n_codes": 2}, SyntheticRankingAgreement: {"n_targets": 1}, TstrAUROC: {"n_targets": 1}}
    for cls, options in few.items():
        a = score(cls, T, R, S, seed=1, max_fit_rows=100, **options)
        assert a == score(cls, T, R, S, seed=1, max_fit_rows=100, **options), cls.name
    assert score(DimensionWisePrediction, T, R, S, seed=1, max_fit_rows=100) != score(
        DimensionWisePrediction, T, R, S, seed=2, max_fit_rows=100)


# ---------------------------------------------------------------- calibration rows (default dataset)


@pytest.fixture(scope="module")
def calibration():
    parts, samples = calibration_sets()
    samples = {**samples, "all-empty": parts.train.with_data(np.zeros((parts.test.n_patients, parts.train.n_codes),
                                                                       dtype=np.float32))}
    return {
        name: {
            cls.name: cls.configure(None, "quick").compute(parts.train, parts.test, synthetic, RunContext(seed=2))
            for cls in utility.METRICS
        }
        for name, synthetic in samples.items()
    }


def test_train_resample_has_near_perfect_utility(calibration):
    tr = calibration["train-resample"]
    assert tr["dimension_wise_prediction"]["value"] > 0.95
    assert tr["dimension_wise_prediction"]["mean_abs_gap"] < 0.04
    assert tr["dimension_wise_prediction"]["correlation"] > 0.9
    assert tr["synthetic_ranking_agreement"]["value"] >= 0.85 and tr["synthetic_ranking_agreement"]["targets"] == 5
    assert tr["tstr_auroc"]["value"] > tr["tstr_auroc"]["trtr"] - 0.03


def test_independent_marginals_has_no_predictive_utility(calibration):
    im, tr = calibration["independent-marginals"], calibration["train-resample"]
    assert im["dimension_wise_prediction"]["value"] < 0.1  # models trained on it keep none of the lift
    assert im["tstr_auroc"]["value"] < im["tstr_auroc"]["trtr"] - 0.1
    assert im["synthetic_ranking_agreement"]["value"] < tr["synthetic_ranking_agreement"]["value"] - 0.2


def test_empty_records_rank_last_on_every_utility_headline(calibration):
    """An all-empty sample trains nothing: the floor of each headline, exactly."""
    empty = calibration["all-empty"]
    assert empty["dimension_wise_prediction"]["value"] == 0.0
    assert empty["synthetic_ranking_agreement"]["value"] == 0.0  # every family ties: no pair agrees
    assert empty["tstr_auroc"]["value"] == 0.5
    assert empty["tstr_auroc"]["untrainable"] == empty["tstr_auroc"]["targets"]
    for name in ("train-resample", "independent-marginals"):
        assert calibration[name]["synthetic_ranking_agreement"]["value"] > 0.0


# ---------------------------------------------------------------- registry, options, bad input


def test_hook_registers_the_utility_metrics():
    assert [c.name for c in utility.ehrbench_metrics()] == [
        "dimension_wise_prediction", "synthetic_ranking_agreement", "tstr_auroc"]
    for cls in utility.ehrbench_metrics():
        assert cls.category == "utility" and cls.description and "\n" not in cls.description
    assert DimensionWisePrediction.direction("value").describe() == "higher"
    assert DimensionWisePrediction.direction("correlation") is None
    assert DimensionWisePrediction.direction("mean_abs_gap") is None
    assert DimensionWisePrediction.direction("target_3_column") is None
    assert SyntheticRankingAgreement.direction("target_1") is None
    assert TstrAUROC.direction("value").describe() == "higher" and TstrAUROC.direction("trtr") is None


def test_all_eight_run_by_default():
    defaults = load_registry().defaults("metrics")
    for name in ("dimension_wise_prediction", "synthetic_ranking_agreement", "tstr_auroc", "membership_inference",
                 "exact_copies", "attribute_inference", "nn_adversarial_accuracy", "distance_to_closest_record"):
        assert name in defaults


@pytest.mark.parametrize(
    "cls, options",
    [(DimensionWisePrediction, {"n_codes": 0}), (DimensionWisePrediction, {"max_fit_rows": 1}),
     (SyntheticRankingAgreement, {"families": ["random_forest"]}),
     (SyntheticRankingAgreement, {"families": ["random_forest", "svm"]}),
     (SyntheticRankingAgreement, {"families": ["mlp", "mlp"]}), (TstrAUROC, {"family": "xgboost"})],
)
def test_bad_options_are_config_errors(cls, options):
    with pytest.raises(ConfigError):
        cls.configure(options)


def test_bad_input_is_a_clear_error():
    rng = np.random.default_rng(6)
    T = mat(correlated(rng, 50))
    other = EHRMatrix(T.X, [f"x{j}" for j in range(T.n_codes)])
    for cls in utility.METRICS:
        with pytest.raises(InputError, match="code columns differ"):
            cls.configure().compute(T, T, other, RunContext(seed=0))
    with pytest.raises(ValueError, match="synthetic set has 1 row"):
        DimensionWisePrediction.configure().compute(T, T, mat(T.X[:1]), RunContext(seed=0))
    with pytest.raises(ValueError, match="no code is present in some but not all"):
        score(DimensionWisePrediction, np.ones((5, 3)), np.ones((5, 3)), np.ones((5, 3)))


# ---------------------------------------------------------------- the real side, shared between processes


@pytest.mark.parametrize("cls", [DimensionWisePrediction, SyntheticRankingAgreement, TstrAUROC])
def test_models_fitted_on_the_real_split_are_shared_through_the_cache_dir(cls, tmp_path, monkeypatch):
    # Jobs in their own processes (the process executor) share the models fitted on T through
    # RunContext.cache_dir: a second process, with an empty memory, fits only the synthetic side
    # and gets the same values, exactly. A damaged cache file is fitted again, not trusted.
    rng = np.random.default_rng(7)
    T, R, S = mat(correlated(rng, 300)), mat(correlated(rng, 200)), mat(correlated(rng, 250))
    options = {"max_fit_rows": 150, "max_test_rows": 150}
    if cls is SyntheticRankingAgreement:
        options["families"] = ("logistic_regression", "knn", "naive_bayes")
    ctx = RunContext(seed=3, cache_dir=tmp_path)
    monkeypatch.setattr(_classifiers, "_MEMO", type(_classifiers._MEMO)())
    first = cls.configure(options).compute(T, R, S, ctx)
    written = sorted(tmp_path.iterdir())
    assert written and not [p for p in written if p.suffix == ".tmp"]

    fits = []
    fit = _classifiers._fit_auroc
    monkeypatch.setattr(_classifiers, "_fit_auroc", lambda *a: fits.append(a[0]) or fit(*a))
    monkeypatch.setattr(_classifiers, "_MEMO", type(_classifiers._MEMO)())  # a fresh process
    assert cls.configure(options).compute(T, R, S, ctx) == first
    assert len(fits) == len(written)  # one per model on S, none on T

    written[0].write_text("not a number")
    monkeypatch.setattr(_classifiers, "_MEMO", type(_classifiers._MEMO)())
    fits.clear()
    assert cls.configure(options).compute(T, R, S, ctx) == first
    assert len(fits) == len(written) + 1
