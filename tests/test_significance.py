"""The statistics behind the leaderboard (views/significance.py, DESIGN.md §8 "Intervals and significance").

Hand-computed cases and scipy for each formula; then simulated metric values where the truth is
known. Each generator's per-repeat values have its own noise (sd σ = 1) plus a metric-seed effect
that every generator of a repeat shares (sd 1, which pairing cancels); normal noise, α = 0.05,
4,000 simulated runs per figure (binomial standard error ≤ 0.8 points). Measured:

- identical generators, 3 repeats: declared different in 4.8 % of runs (2 generators, one pair);
  with 5 generators (10 pairs, Holm) some pair is declared different in 5.0 % of runs;
- a generator better by 3σ, 2 generators: declared better in 51.0 % of runs with 3 repeats (the
  paired t-test has 2 degrees of freedom; theory 50.8 %), 79.8 % with 4, 93.7 % with 5, 98.2 % with
  6, and never worse; among 5 generators (4 identical others, Holm over 10 pairs) it beats all 4
  in 0.05 % of runs with 3 repeats, 40.9 % with 6 and 94.6 % with 9;
- the 95 % interval, with a shared noise (sd 0.8) the metric reports beside the repeat spread:
  covers the true mean in 94.4 % of runs with 3 repeats; the repeats alone cover 87.4 %.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ehrbench.views import significance as sig

RUNS = 4_000


# -- formulas ---------------------------------------------------------------------------------
def test_interval_from_repeats_alone_is_the_t_interval():
    interval = sig.mean_interval(np.array([1.0, 2.0, 3.0]))
    low, high = stats.t.interval(0.95, 2, loc=2.0, scale=np.sqrt(1 / 3))
    assert interval.mean == 2.0 and interval.df == 2.0
    assert (interval.low, interval.high) == pytest.approx((low, high), rel=1e-12)
    assert sig.mean_interval(np.array([1.0, np.nan, 3.0, np.nan])).df == 1.0  # NaN repeats are dropped: n = 2


def test_interval_adds_the_shared_error_whole_with_satterthwaite_degrees_of_freedom():
    interval = sig.mean_interval(np.array([1.0, 2.0, 3.0]), np.array([0.5, 0.5, 0.5]))
    variance = 1 / 3 + 0.25  # s²/n + mean se², the shared part not divided by n
    df = variance**2 / ((1 / 3) ** 2 / 2)
    assert interval.se == pytest.approx(np.sqrt(variance), rel=1e-12) and interval.df == pytest.approx(df, rel=1e-12)
    assert interval.high - interval.mean == pytest.approx(stats.t.ppf(0.975, df) * np.sqrt(variance), rel=1e-12)
    # one repeat with an error: a normal interval on the error alone; without one, no interval
    one = sig.mean_interval(np.array([4.0]), np.array([0.1]))
    assert one.df == np.inf and one.high == pytest.approx(4.0 + stats.norm.ppf(0.975) * 0.1, rel=1e-12)
    assert np.isnan(sig.mean_interval(np.array([4.0])).low)
    # identical repeats and nothing shared: a point
    flat = sig.mean_interval(np.array([0.5, 0.5, 0.5]))
    assert flat.low == flat.high == 0.5


def brute_holm(p: np.ndarray) -> np.ndarray:
    m = len(p)
    order = sorted(range(m), key=lambda k: p[k])
    out = np.empty(m)
    for position, k in enumerate(order):
        out[k] = min(1.0, max((m - j) * p[order[j]] for j in range(position + 1)))
    return out


def test_holm_matches_its_definition_and_the_step_down_rule():
    rng = np.random.default_rng(0)
    for _ in range(200):
        p = rng.random(rng.integers(1, 12)) ** 3
        adjusted = sig.holm(p)
        assert adjusted.tolist() == brute_holm(p).tolist()
        order = np.argsort(p)
        k = 0
        while k < p.size and p[order[k]] <= 0.05 / (p.size - k):
            k += 1
        assert set(np.flatnonzero(adjusted <= 0.05)) == set(order[:k].tolist())
    p = np.array([0.01, np.nan, 0.04, 0.03])
    assert np.isnan(sig.holm(p)[1]) and sig.holm(p)[[0, 2, 3]].tolist() == brute_holm(p[[0, 2, 3]]).tolist()
    columns = rng.random((6, 5))
    assert np.array_equal(sig.holm(columns), np.stack([sig.holm(c) for c in columns.T], axis=1))


def test_paired_p_values_are_scipys_paired_t_test():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 50, 4))
    d = a - b
    p = sig.paired_p_values(d.mean(axis=1), d.std(axis=1, ddof=1), np.full(50, 4))
    assert p == pytest.approx(stats.ttest_rel(a, b, axis=1).pvalue, rel=1e-10)
    # agreement without spread is certain; no difference at all is not one; one repeat is no test
    assert sig.paired_p_values(np.array([0.2, 0.0, 0.2]), np.array([0.0, 0.0, np.nan]), np.array([3, 3, 1])).tolist()[:2] \
        == [0.0, 1.0]
    assert np.isnan(sig.paired_p_values(np.array([0.2]), np.array([np.nan]), np.array([1]))[0])


def test_welch_p_values_are_scipys():
    p = sig.two_sample_p_values(np.array([1.0, 2.0]), np.array([0.5, 0.1]), 3, np.array([2.0, 2.0]),
                                np.array([0.7, 0.0]), 4)
    expected = stats.ttest_ind_from_stats(1.0, 0.5, 3, 2.0, 0.7, 4, equal_var=False).pvalue
    assert p[0] == pytest.approx(expected, rel=1e-12) and p[1] == pytest.approx(
        stats.ttest_ind_from_stats(2.0, 0.1, 3, 2.0, 0.0, 4, equal_var=False).pvalue)
    assert sig.two_sample_p_values(1.0, 0.0, 3, 2.0, 0.0, 3)[()] == 0.0


def test_ranks_follow_the_means_and_tie_only_what_the_test_cannot_separate():
    # a clearly best, b and c indistinguishable from each other, both clearly worse than a
    badness = np.array([[0.0, 0.0, 0.0, 0.0], [5.0, 5.1, 4.9, 5.0], [5.05, 5.0, 5.0, 4.95]])
    tests = sig.pair_tests(badness)
    assert tests.verdict.tolist() == [-1, -1, 0]  # pairs (a, b), (a, c), (b, c)
    assert sig.significance_ranks(badness, tests).tolist() == [1.0, 2.0, 2.0]
    # a generator without values gets no rank and takes part in no test
    badness[1] = np.nan
    tests = sig.pair_tests(badness)
    assert np.isnan(tests.p[[0, 2]]).all() and np.isnan(sig.significance_ranks(badness, tests)[1])


def test_a_wide_spread_never_buys_a_better_rank():
    """Noise must not win: the worst mean with a huge spread (nothing separates it from anyone) ranks
    with the group above it, never above a better mean."""
    badness = np.array([[1.0, 1.1, 0.9], [3.0, 3.1, 2.9], [9.0, -20.0, 40.0]])
    tests = sig.pair_tests(badness)
    assert tests.verdict.tolist() == [-1, 0, 0]  # only a vs b is told apart
    assert sig.significance_ranks(badness, tests).tolist() == [1.0, 2.0, 2.0]


def test_ranks_never_contradict_the_means_or_a_verdict():
    rng = np.random.default_rng(5)
    for _ in range(300):
        g = int(rng.integers(2, 7))
        badness = rng.normal(rng.normal(0, 2, g)[:, None], rng.uniform(0.01, 2, g)[:, None], size=(g, 3))
        tests = sig.pair_tests(badness)
        ranks = sig.significance_ranks(badness, tests)
        means = badness.mean(axis=1)
        order = np.argsort(means, kind="stable")
        assert np.all(np.diff(ranks[order]) >= 0)  # a worse mean never ranks better
        for a, b, v in zip(tests.i, tests.j, tests.verdict):
            if v:  # the one the test finds better ranks strictly better
                better, worse = (a, b) if v < 0 else (b, a)
                assert ranks[better] < ranks[worse]
        many = sig.grouped_ranks(np.repeat(means[:, None], 4, axis=1), tests.i, tests.j,
                                 np.repeat(tests.verdict[:, None], 4, axis=1))
        assert np.array_equal(many, np.repeat(ranks[:, None], 4, axis=1))  # the replicates' path agrees


def test_repeats_needed_reach_the_power_they_promise():
    for effect in (0.5, 1.0, 2.0):
        n = sig.repeats_needed(np.array([effect]), np.array([1.0]), pairs=3)[0]
        crit = stats.t.ppf(1 - 0.05 / 6, n - 1)
        power = stats.nct.sf(crit, n - 1, effect * np.sqrt(n))
        assert 0.78 <= power and stats.nct.sf(stats.t.ppf(1 - 0.05 / 6, n - 3), n - 3, effect * np.sqrt(n - 2)) < 0.8
    assert sig.repeats_needed(np.array([0.0]), np.array([1.0]), 1)[0] == np.inf


def test_friedman_and_nemenyi_match_demsar():
    # Demšar (2006), table 5(a): q_0.05 of the Nemenyi test for k = 2 … 10 classifiers
    table = [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]
    for k, q in zip(range(2, 11), table):
        assert stats.studentized_range.ppf(0.95, k, np.inf) / np.sqrt(2) == pytest.approx(q, abs=1.5e-3)
    # 4 blocks ranking 3 generators alike: χ²_F = 12/(N k (k+1)) Σ R_j² − 3 N (k+1) = 8
    result = sig.friedman_nemenyi(np.tile([1.0, 2.0, 3.0], (4, 1)), ["a", "b", "c"])
    assert result.statistic == pytest.approx(8.0) and result.average_ranks.tolist() == [1.0, 2.0, 3.0]
    assert result.critical_difference == pytest.approx(2.343 * np.sqrt(3 * 4 / 24), abs=1e-3)
    assert result.p == pytest.approx(stats.chi2.sf(8.0, 2))
    assert sig.friedman_nemenyi(np.array([[1.0, 2.0], [2.0, 1.0]]), ["a", "b"]) is None  # 2 generators: no test
    ties = sig.friedman_nemenyi(np.full((3, 3), 2.0), ["a", "b", "c"])
    assert ties.p == 1.0 and ties.statistic == 0.0


# -- simulated metric values where the truth is known ----------------------------------------
def simulate(rng: np.random.Generator, gaps: list[float], repeats: int, shared: float = 1.0) -> np.ndarray:
    """Badness of len(gaps) generators over ``repeats``: each repeat adds one metric-seed effect every
    generator shares (sd ``shared``) and each generator's own noise (sd 1); generator g is ``gaps[g]`` worse."""
    common = rng.normal(0.0, shared, size=repeats)
    return np.array(gaps)[:, None] + common[None, :] + rng.normal(size=(len(gaps), repeats))


def declared(gaps: list[float], repeats: int, seed: int) -> np.ndarray:
    """Verdicts of the first generator against each other one, over RUNS simulated runs."""
    rng = np.random.default_rng(seed)
    out = np.empty((RUNS, len(gaps) - 1), dtype=int)
    for run in range(RUNS):
        tests = sig.pair_tests(simulate(rng, gaps, repeats))
        out[run] = tests.verdict[tests.i == 0]
    return out


def test_identical_generators_tie_at_no_more_than_the_nominal_rate():
    limit = 0.05 + 3 * np.sqrt(0.05 * 0.95 / RUNS)  # the nominal rate plus three binomial standard errors
    two = declared([0.0, 0.0], repeats=3, seed=10)
    assert (two != 0).mean() <= limit  # measured 4.8 %
    rng = np.random.default_rng(11)
    any_pair = np.mean([(sig.pair_tests(simulate(rng, [0.0] * 5, 3)).verdict != 0).any() for _ in range(RUNS)])
    assert any_pair <= limit  # Holm keeps the family-wise rate: measured 5.0 %


def test_a_generator_better_by_three_standard_deviations_is_declared_better():
    # σ is the standard deviation of a generator's own per-repeat values (the shared effect cancels in pairs)
    three = declared([0.0, 3.0], repeats=3, seed=20)
    assert 0.47 <= (three == -1).mean() <= 0.55 and (three == 1).sum() == 0  # measured 51.0 %: 2 df are few
    six = declared([0.0, 3.0], repeats=6, seed=21)
    assert (six == -1).mean() >= 0.95  # measured 98.2 %
    nine = declared([0.0, 3.0, 3.0, 3.0, 3.0], repeats=9, seed=22)
    assert (nine == -1).all(axis=1).mean() >= 0.93  # beats all 4 others: measured 94.6 %


def test_the_interval_covers_the_truth_when_the_shared_noise_is_reported():
    rng = np.random.default_rng(30)
    covered = alone = 0
    for _ in range(RUNS):
        shared_error = 0.8  # the real test rows' noise: one draw for all repeats, reported by the metric
        values = 2.0 + rng.normal(0, shared_error) + rng.normal(0, 1.0, size=3)
        interval = sig.mean_interval(values, np.full(3, shared_error))
        covered += interval.low <= 2.0 <= interval.high
        naive = sig.mean_interval(values)
        alone += naive.low <= 2.0 <= naive.high
    assert 0.93 <= covered / RUNS <= 0.97  # measured 94.4 % (Satterthwaite runs a little short)
    assert alone / RUNS < 0.9  # the repeats alone miss the shared noise: measured 87.4 %
