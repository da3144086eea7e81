"""Every default generator's smoke profile, on a small cohort with strong correlations (issue 17).

The cohort: 1,200 patients × 200 codes; 10 latent conditions (each in 20 % of patients) switch on
a block of 15 codes with probability 0.6, 50 codes are background noise (1 %), and a present code
counts 1 + Poisson(0.3). Its first 900 rows train, the last 300 are the real side of PCD; each
generator draws 600 rows with seed 0. Per generator and representation the test checks: no
degeneracy flag (ehrbench/collapse.py); distinct codes per record within 50 % of the real rows';
and, where the generator learns the blocks at this profile, PCD below independent-marginals'.

Margins measured over seeds 0–4 (PCD of independent-marginals: 24.08–24.22 on counts,
26.92–27.02 on binary; PCD of the generator; codes per record over real):

    scoehr         counts 15.75–18.37, 0.83–1.25      binary 19.12–20.27, 0.97–1.12
    medwgan        counts 21.22–21.80, 0.96–1.01      binary 17.68–19.08, 1.21–1.30
    raw-diffusion  counts 23.47–23.86, 1.22–1.34      binary 26.51–26.76, 1.07–1.11
    medgan         counts 23.50–23.73, 0.74–0.85      binary 46.5–52.5,   1.20–1.83
    medbgan        counts 23.15–23.32, 0.72–0.92      binary 44.0–55.3,   1.66–2.07

medgan and medbgan's non-Wasserstein losses do not settle on 900 binary rows within the smoke
profile's second (their quick profile on the default dataset does: benchmarks/RESULTS.md), so on
binary data only the absence of flags is asserted for them. raw-diffusion's margin is small (its
network barely moves the marginal prior at this size) but held for every seed. tvae (SDV, not a
default generator; skipped without the sdv extra) starts its decoder at the marginals
(decoder_bias = marginal) and in its one smoke epoch stays there: codes per record 1.06–1.10 of
the real, PCD 24.16–24.18 (counts) and 27.02–27.07 (binary), level with independent-marginals, so
only flags and codes per record are asserted for it (with ctgan's own initialisation it made
3–6× the real codes per record).
"""

from __future__ import annotations

import numpy as np
import pytest

from ehrbench.api import RunContext
from ehrbench.execution.collapse import sample_warnings
from ehrbench.matrix import EHRMatrix
from ehrbench.plugins import load_registry

GENERATORS = ("scoehr", "raw-diffusion", "medgan", "medwgan", "medbgan", "tvae")
REPRESENTATIONS = ("count", "binary")
NOT_CLAIMED = {("medgan", "binary"), ("medbgan", "binary")}  # see the module docstring
NO_CORRELATIONS = {"tvae"}  # at smoke, its decoder barely leaves the marginals it starts from
SEED, N_SAMPLES = 0, 600


def correlated_cohort(n: int = 1200, blocks: int = 10, width: int = 15, noise_codes: int = 50) -> np.ndarray:
    rng = np.random.default_rng(0)
    d = blocks * width + noise_codes
    condition = rng.random((n, blocks)) < 0.2
    p = np.full((n, d), 0.01)
    for b in range(blocks):
        p[condition[:, b], b * width : (b + 1) * width] = 0.6
    present = rng.random((n, d)) < p
    return (present * (1 + rng.poisson(0.3, (n, d)))).astype(np.float32)


@pytest.fixture(scope="module")
def registry():
    return load_registry()


@pytest.fixture(scope="module")
def cohort():
    X = correlated_cohort()
    codes = [f"c{j}" for j in range(X.shape[1])]
    out = {}
    for rep in REPRESENTATIONS:
        view = X if rep == "count" else (X > 0).astype(np.float32)
        out[rep] = (EHRMatrix(view[:900], codes), EHRMatrix(view[900:], codes))
    return out


@pytest.fixture(scope="module")
def samples(registry, cohort):
    """Fit each (generator, representation) once, lazily, and keep its smoke sample."""
    cache: dict[tuple[str, str], np.ndarray] = {}

    def get(name: str, rep: str) -> np.ndarray:
        if (name, rep) not in cache:
            generator = registry.get("generators", name).configure("smoke")
            ctx = RunContext(seed=SEED, representation=rep)
            generator.fit(cohort[rep][0].X, ctx)
            cache[name, rep] = generator.sample(N_SAMPLES, ctx)
        return cache[name, rep]

    return get


def _pcd(registry, cohort, rep: str, sample: np.ndarray) -> float:
    train, test = cohort[rep]
    metric = registry.get("metrics", "pairwise_correlation_difference").configure(None, "smoke")
    return metric.compute(train, test, EHRMatrix(sample, train.codes), RunContext(seed=1, representation=rep))["value"]


@pytest.mark.parametrize("rep", REPRESENTATIONS)
@pytest.mark.parametrize("name", GENERATORS)
def test_smoke_samples_are_healthy_and_learn_the_correlations(name, rep, registry, cohort, samples):
    if name == "tvae":
        pytest.importorskip("sdv", reason="tvae needs the sdv extra")
    train, test = cohort[rep]
    sample = samples(name, rep)
    assert sample.shape == (N_SAMPLES, train.n_codes)
    assert sample_warnings(sample, train.X, binary=rep == "binary") == []
    if (name, rep) in NOT_CLAIMED:
        return
    ratio = (sample > 0).sum(axis=1).mean() / (test.X > 0).sum(axis=1).mean()
    assert 0.5 <= ratio <= 1.5, f"{name} ({rep}): {ratio:.2f}× the real codes per record"
    if name in NO_CORRELATIONS:
        return
    baseline = samples("independent-marginals", rep)
    assert _pcd(registry, cohort, rep, sample) < _pcd(registry, cohort, rep, baseline)
