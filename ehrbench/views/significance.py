"""The statistics behind every ranked number: intervals, paired tests, ranks, and repeats needed.

All of it is plain arithmetic on the per-repeat values of a run (``results.jsonl``); the
distributions come from scipy.stats. DESIGN.md §8 "Intervals and significance" states the model
and its assumptions; in short:

- **Interval** of a (generator, metric): the mean over repeats ± t·SE, with
  SE² = s²/n + ū: s² the sample variance over the n repeats (a new fit, sample and metric seed
  each), ū the mean squared standard error the metric reported for the noise every repeat
  shares (its bootstrap over the real test rows; 0 when it reports none). Degrees of freedom
  by Welch–Satterthwaite, counting the reported errors as known.
- **Pairwise test** per metric, among the generators it ranks: a paired t-test on the per-repeat
  differences in badness (repeat k of every generator shares its metric seed), two-sided, with
  Holm's correction over all pairs of the metric (family-wise error ≤ ``ALPHA``).
- **Rank**: generators sorted by mean; walking from the best, one joins the current group when the
  test separates it from none of its members, else it starts a new group ranked by its position.
- **Repeats needed** for a pair the test cannot separate: the repeats at which a paired t-test at
  the Bonferroni level would separate them with 80 % power if the observed mean difference and
  spread held (Guenther's normal approximation to the noncentral t).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05  # family-wise error per metric; intervals are 1 − ALPHA
POWER = 0.8  # for the repeats a close pair would need
MAX_REPEATS = 1000  # "more than this" beyond it


@dataclass(frozen=True)
class Interval:
    """A mean with its confidence interval; ``se`` and ``df`` are those of the mean."""

    mean: float
    low: float
    high: float
    se: float
    df: float


def mean_interval(values: np.ndarray, standard_errors: np.ndarray | None = None, alpha: float = ALPHA) -> Interval:
    """The (1 − alpha) interval of the mean of ``values`` (one per repeat; NaN ignored).

    ``standard_errors`` (one per repeat, NaN where none) are the metric's own errors of the noise
    every repeat shares: their mean square is added whole, not divided by n, because averaging
    repeats does not reduce it. With one repeat and no error there is no interval (NaN).
    """
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    n = values.size
    if n == 0:
        return Interval(float("nan"), float("nan"), float("nan"), float("nan"), float("nan"))
    mean = float(values.mean())
    errors = np.asarray(standard_errors if standard_errors is not None else [], dtype=float)
    errors = errors[np.isfinite(errors)]
    shared = float(np.mean(errors**2)) if errors.size else 0.0
    between = float(values.var(ddof=1)) / n if n > 1 else float("nan")
    if n == 1 and not errors.size:
        return Interval(mean, float("nan"), float("nan"), float("nan"), float("nan"))
    variance = (between if n > 1 else 0.0) + shared
    if n > 1 and between > 0:
        df = variance**2 / (between**2 / (n - 1))  # Welch–Satterthwaite; the shared part is known
    else:
        df = float("inf")
    se = float(np.sqrt(variance))
    half = float(stats.t.ppf(1 - alpha / 2, df)) * se if se > 0 else 0.0
    return Interval(mean, mean - half, mean + half, se, float(df))


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values along axis 0 (each column of a 2-d array is one family).

    NaN (no test) stays NaN and does not count in the family.
    """
    p = np.asarray(p, dtype=float)
    flat = p.ndim == 1
    p2 = p[:, None] if flat else p
    finite = np.isfinite(p2)
    m = finite.sum(axis=0)
    order = np.argsort(np.where(finite, p2, np.inf), axis=0, kind="stable")
    ranked = np.take_along_axis(p2, order, axis=0)
    multiplier = m[None, :] - np.arange(p2.shape[0])[:, None]
    with np.errstate(invalid="ignore"):
        adjusted = np.minimum(1.0, np.maximum.accumulate(np.where(multiplier > 0, multiplier * ranked, -np.inf), axis=0))
    adjusted[multiplier <= 0] = np.nan
    out = np.empty_like(p2)
    np.put_along_axis(out, order, adjusted, axis=0)
    return out[:, 0] if flat else out


@dataclass(frozen=True)
class PairTests:
    """Every pair (i < j) of one metric's generators: index arrays ``i``, ``j`` and per pair the
    repeats both have (``n``), the mean and std of badness_i − badness_j over them, the
    two-sided p-value, Holm's adjusted p and the verdict: −1 i better, +1 j better, 0 tied."""

    i: np.ndarray
    j: np.ndarray
    n: np.ndarray
    mean_difference: np.ndarray
    std_difference: np.ndarray
    p: np.ndarray
    p_holm: np.ndarray
    verdict: np.ndarray


def paired_p_values(mean: np.ndarray, std: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Two-sided paired t-test p-values from the mean and sample std of the differences over n repeats.

    No spread with a difference: the repeats all agree, p = 0; no difference at all: p = 1;
    fewer than 2 repeats: NaN (no test).
    """
    mean, std, n = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (mean, std, n)))
    p = np.full(mean.shape, np.nan)
    testable = (n >= 2) & np.isfinite(mean)
    flat = testable & (std == 0)
    p[flat] = np.where(mean[flat] == 0, 1.0, 0.0)
    spread = testable & (std > 0)
    t = np.abs(mean[spread]) / (std[spread] / np.sqrt(n[spread]))
    p[spread] = 2 * stats.t.sf(t, n[spread] - 1)
    return p


def pair_tests(badness: np.ndarray, alpha: float = ALPHA) -> PairTests:
    """Paired tests of every pair of rows of ``badness`` (generators × repeats, NaN where missing).

    Repeat k of every generator is scored with the same metric seed, so pairs are compared
    repeat by repeat, on the repeats both have.
    """
    badness = np.asarray(badness, dtype=float)
    i, j = np.triu_indices(badness.shape[0], k=1)
    diff = badness[i] - badness[j]
    both = np.isfinite(diff)
    n = both.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, np.where(both, diff, 0.0).sum(axis=1) / np.maximum(n, 1), np.nan)
        squares = np.where(both, (diff - mean[:, None]) ** 2, 0.0).sum(axis=1)
        std = np.where(n > 1, np.sqrt(squares / np.maximum(n - 1, 1)), np.nan)
    p = paired_p_values(mean, std, n)
    adjusted = holm(p)
    return PairTests(i, j, n, mean, std, p, adjusted, verdicts(mean, adjusted, alpha))


def verdicts(mean_difference: np.ndarray, p_holm: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """−1 (the first of the pair better), +1 (the second better) or 0 (not distinguishable)."""
    with np.errstate(invalid="ignore"):
        out = np.where(np.isfinite(p_holm) & (p_holm <= alpha), np.sign(np.nan_to_num(mean_difference)), 0.0)
    return out.astype(int)


def significance_ranks(badness: np.ndarray, tests: PairTests) -> np.ndarray:
    """The ranks of one metric's generators (rows of ``badness``: generators × repeats) from their tests.

    Generators are sorted by mean badness; walking from the best, one joins the current group when
    the test separates it from none of the group's members, else it starts a new group, ranked by
    its position (1 is best). So a rank never contradicts the means or a verdict: a generator the
    test finds better always ranks above, and a worse mean never ranks above a better one, however
    wide its spread. Generators without a value get NaN.
    """
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.nanmean(np.asarray(badness, dtype=float), axis=1)
    return grouped_ranks(means[:, None], tests.i, tests.j, tests.verdict[:, None])[:, 0]


def grouped_ranks(means: np.ndarray, i: np.ndarray, j: np.ndarray, verdict: np.ndarray) -> np.ndarray:
    """:func:`significance_ranks` for many replicates at once: ``means`` is generators × replicates,
    ``verdict`` pairs × replicates (pairs ``i`` < ``j``; nonzero where the test separates them)."""
    means = np.asarray(means, dtype=float)
    count, replicates = means.shape
    separated = np.zeros((replicates, count, count), dtype=bool)
    hit = (np.asarray(verdict) != 0).T  # replicates × pairs
    separated[:, i, j] = hit
    separated[:, j, i] = hit
    order = np.argsort(np.where(np.isfinite(means), means, np.inf), axis=0, kind="stable").T  # replicates × generators
    valid = np.take_along_axis(np.isfinite(means).T, order, axis=1)
    ranks = np.full((replicates, count), np.nan)
    columns = np.arange(replicates)
    members = np.zeros((replicates, count), dtype=bool)  # the current group, by generator
    group_rank = np.ones(replicates)
    for position in range(count):
        candidate = order[:, position]
        apart = (separated[columns, candidate] & members).any(axis=1)
        members[apart] = False
        group_rank = np.where(apart, position + 1.0, group_rank)
        members[columns, candidate] = valid[:, position]
        ranks[columns, candidate] = np.where(valid[:, position], group_rank, np.nan)
    return ranks.T


def repeats_needed(mean_difference: np.ndarray, std_difference: np.ndarray, pairs: int,
                   alpha: float = ALPHA, power: float = POWER) -> np.ndarray:
    """Repeats at which a paired t-test would separate a pair with ``power``, if the observed mean
    difference and its spread held; at the Bonferroni level alpha/pairs. A rough figure: with
    few repeats the spread itself is uncertain. inf where there is no difference to find."""
    mean = np.abs(np.asarray(mean_difference, dtype=float))
    std = np.asarray(std_difference, dtype=float)
    z_a = stats.norm.ppf(1 - alpha / (2 * max(pairs, 1)))
    z_b = stats.norm.ppf(power)
    with np.errstate(divide="ignore", invalid="ignore"):
        effect = mean / std
        n = ((z_a + z_b) / effect) ** 2 + z_a**2 / 2  # Guenther (1981): the t-test's extra repeats
    n = np.where(mean == 0, np.inf, np.where(std == 0, 2.0, n))
    return np.where(np.isfinite(n), np.maximum(2.0, np.ceil(n)), n)


def two_sample_p_values(mean_a: np.ndarray, std_a: np.ndarray, n_a: np.ndarray, mean_b: np.ndarray,
                        std_b: np.ndarray, n_b: np.ndarray) -> np.ndarray:
    """Welch's two-sided t-test (scipy's ``ttest_ind_from_stats``) for two independent runs.

    Neither run with a spread: p = 0 when the means differ, 1 when equal; a run with fewer than
    2 repeats: NaN (no test).
    """
    args = [np.asarray(a, dtype=float) for a in (mean_a, std_a, n_a, mean_b, std_b, n_b)]
    mean_a, std_a, n_a, mean_b, std_b, n_b = np.broadcast_arrays(*args)
    p = np.full(mean_a.shape, np.nan)
    testable = (n_a >= 2) & (n_b >= 2) & np.isfinite(mean_a) & np.isfinite(mean_b)
    flat = testable & (std_a == 0) & (std_b == 0)
    p[flat] = np.where(mean_a[flat] == mean_b[flat], 1.0, 0.0)
    spread = testable & ~flat
    if spread.any():
        p[spread] = stats.ttest_ind_from_stats(mean_a[spread], std_a[spread], n_a[spread], mean_b[spread],
                                               std_b[spread], n_b[spread], equal_var=False).pvalue
    return p


def two_sample_repeats_needed(difference: np.ndarray, std_a: np.ndarray, std_b: np.ndarray, family: int,
                              alpha: float = ALPHA, power: float = POWER) -> np.ndarray:
    """Repeats per run at which Welch's test would separate two runs with ``power`` (Bonferroni level
    over ``family`` comparisons), if the observed difference and spreads held; rough, like
    :func:`repeats_needed`."""
    spread = np.sqrt((np.asarray(std_a, dtype=float) ** 2 + np.asarray(std_b, dtype=float) ** 2))
    return repeats_needed(difference, spread, family, alpha, power)


@dataclass(frozen=True)
class Friedman:
    """Friedman's test over blocks (ranked metrics) and Nemenyi's critical difference (Demšar 2006)."""

    names: list[str]
    average_ranks: np.ndarray
    blocks: int
    statistic: float
    p: float
    critical_difference: float


def friedman_nemenyi(ranks: np.ndarray, names: list[str], alpha: float = ALPHA) -> Friedman | None:
    """``ranks``: blocks × generators, each row a ranking (1 best, ties averaged); rows with a NaN
    are left out. None when fewer than 3 generators or 2 complete blocks remain."""
    ranks = np.asarray(ranks, dtype=float)
    complete = ranks[np.isfinite(ranks).all(axis=1)] if ranks.size else ranks
    k = ranks.shape[1] if ranks.ndim == 2 else 0
    if k < 3 or complete.shape[0] < 2:
        return None
    n = complete.shape[0]
    if np.all(complete == complete[:, :1]):  # every block ties every generator: nothing to test
        statistic, p = 0.0, 1.0
    else:
        statistic, p = stats.friedmanchisquare(*complete.T)
    q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / np.sqrt(2)
    cd = float(q * np.sqrt(k * (k + 1) / (6 * n)))
    return Friedman(list(names), complete.mean(axis=0), n, float(statistic), float(p), cd)
