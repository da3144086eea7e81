"""The fidelity metrics' standard errors (``Metric.standard_errors``): a bootstrap over the real test
rows, checked against the same resamples materialised row by row; and the contract's plumbing."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from ehrbench.api import Metric, RunContext, standard_error_key
from ehrbench.execution.scoring import score_rows
from ehrbench.matrix import EHRMatrix
from ehrbench.plugins import load_registry
from ehrbench_plugins.metrics import _stats
from ehrbench_plugins.metrics.fidelity import integer_wasserstein

CTX = RunContext(seed=7)


@pytest.fixture(scope="module")
def sets():
    rng = np.random.default_rng(3)
    codes = np.array([f"c{j}" for j in range(12)])
    real = (rng.random((80, 12)) < np.linspace(0.05, 0.6, 12)) * rng.integers(1, 4, size=(80, 12))
    synthetic = (rng.random((60, 12)) < np.linspace(0.5, 0.02, 12)) * rng.integers(1, 3, size=(60, 12))
    real[:, 3] = 0  # a constant column, whose correlations count as 0
    return (EHRMatrix(real.astype(np.float32), codes), EHRMatrix(synthetic.astype(np.float32), codes))


def resamples(metric: str, n: int, replicates: int = _stats.BOOTSTRAP_REPLICATES) -> list[np.ndarray]:
    """The row indices of each resample the metric draws (the same seed stream it uses)."""
    counts = _stats.bootstrap_counts(CTX.rng(metric, "bootstrap"), n, replicates)
    return [np.repeat(np.arange(n), c) for c in counts]


@pytest.mark.parametrize("name, key", [("dimension_wise_probability", "value"), ("dimension_wise_average", "value"),
                                       ("prevalence_correlation", "pearson"), ("prevalence_correlation", "spearman"),
                                       ("codes_per_record", "value"), ("pairwise_correlation_difference", "value")])
def test_standard_error_is_the_spread_of_the_metric_over_resampled_real_rows(sets, name, key):
    real, synthetic = sets
    metric = load_registry().get("metrics", name).configure()
    assert key in metric.standard_errors
    values = metric.compute(real, real, synthetic, CTX)
    replicates = getattr(metric, "bootstrap_replicates", _stats.BOOTSTRAP_REPLICATES)
    brute = [metric.compute(real, real.rows(rows), synthetic, RunContext(seed=CTX.seed))[key]
             for rows in resamples(name, real.n_patients, replicates)]
    assert values[standard_error_key(key)] == pytest.approx(np.std(brute, ddof=1), rel=1e-9)
    assert metric.direction(standard_error_key(key)) is None  # never ranked


def test_resampled_correlation_matrix_is_the_matrix_of_the_resampled_rows(sets):
    from scipy import sparse

    real, _ = sets
    X = sparse.csr_matrix(real.X, dtype=np.float64)
    assert np.array_equal(_stats.resampled_correlation_matrix(X, np.ones(real.n_patients, dtype=int)),
                          _stats.correlation_matrix(real.X))
    counts = _stats.bootstrap_counts(np.random.default_rng(0), real.n_patients, 1)[0]
    rows = np.repeat(np.arange(real.n_patients), counts)
    assert np.array_equal(_stats.resampled_correlation_matrix(X, counts), _stats.correlation_matrix(real.X[rows]))


def test_integer_wasserstein_is_scipys_on_the_resampled_integers():
    rng = np.random.default_rng(1)
    real, synthetic = rng.integers(0, 9, 50), rng.integers(2, 12, 40)
    counts = _stats.bootstrap_counts(rng, 50, 5)
    expected = [wasserstein_distance(np.repeat(real, c), synthetic) for c in counts]
    assert integer_wasserstein(real, synthetic, counts) == pytest.approx(expected, rel=1e-12)


def test_a_declared_standard_error_travels_on_its_keys_record(sets):
    real, synthetic = sets

    class WithError(Metric):
        name = "with_error"
        category = "fidelity"
        higher_is_better = False
        standard_errors = frozenset({"value", "part"})

        def compute(self, real_train, real_test, synthetic, ctx):
            return {"value": 1.0, "se": 0.25, "part": 2.0, "part_se": float("nan"), "other": 3.0}

    class Without(WithError):
        name = "without"
        standard_errors = frozenset()

        def compute(self, real_train, real_test, synthetic, ctx):
            return {"value": 1.0, "se": 0.25}

    rows = score_rows({"with_error": WithError(), "without": Without()}, {"generator": "g", "repeat": 0}, 0, "cpu",
                      "count", "smoke", real, real, synthetic)
    by_metric = {r["metric"]: r for r in rows}
    assert set(by_metric) == {"with_error", "with_error.part", "with_error.other", "without", "without.se"}
    assert by_metric["with_error"]["standard_error"] == 0.25
    assert by_metric["with_error.part"]["standard_error"] is None  # not finite: no error
    assert "standard_error" not in by_metric["with_error.other"] and "standard_error" not in by_metric["without"]
    assert by_metric["without.se"]["ranked"]  # undeclared, "se" is just a key like any other
