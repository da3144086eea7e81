"""The ``simulated`` dataset: a seeded, MIMIC-III-like patient × ICD-9-group count matrix.

It lets ``ehrbench run`` work without credentialed data. The model, per patient i and code j:

- frailty ``z_i ~ Gamma(2, 1/2)`` (mean 1) makes some patients much sicker than others;
- admissions ``a_i = 1 + Poisson(0.25 · z_i · g_i)`` with ``g_i ~ Gamma(0.5, 2)``: most
  patients have one admission, a few have many; exposure ``e_i = z_i · a_i^0.6``;
- 40 latent conditions (comorbidity clusters), condition k with base prevalence ρ_k,
  carried with probability ``1 − (1 − ρ_k)^{z_i}``; each raises a few dozen codes;
- a code is present by a noisy-OR of a background rate b_j (heavy-tailed over codes:
  hypertension-like codes near 30 %, most codes rare, some almost never seen) and the
  carried conditions: ``P(absent) = (1 − b_j)^{e_i} · Π_k (1 − w_kj)``; a patient left
  with no code gets one drawn from the background rates (every EHR patient has one);
- a present code's count is ``1 + Binomial(a_i − 1, r_j)`` with r_j the code's chance to
  recur at a later admission (high for chronic codes).

Column order: numeric 3-digit groups ascending ("001"…"999"), then V-codes ("V01"…"V91"),
then E-codes ("E800"…"E999"). Code names depend only on ``codes``; everything drawn depends
only on ``seed``. Rows are drawn in chunks of 4,096 patients, each from its own child seed,
so memory stays bounded and the first chunks do not change when ``patients`` grows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ehrbench.api import Dataset
from ehrbench.hookspecs import hookimpl
from ehrbench.matrix import EHRMatrix

GENERATOR_VERSION = "ehrbench simulated v1"
N_CONDITIONS = 40
CONDITION_LOAD = 1.4  # expected number of conditions carried by a patient of frailty 1
CHUNK_ROWS = 4096
BACKGROUND_TOP = 0.18  # background rate of the most common code
# Condition size and lift: tight clusters of 8–19 codes, each lifted by ~0.57 on average, so
# comorbidity correlations stand well above the sampling noise of a MIMIC-sized cohort.
CONDITION_SIZE = (8, 20)
LIFT_BETA = (4.0, 2.0)
LIFT_SCALE = 0.85

# Frequent MIMIC-III 3-digit groups, most frequent first: they take the top prevalence ranks.
COMMON_CODES: tuple[str, ...] = (
    "401", "428", "427", "276", "414", "272", "250", "518", "584", "285",
    "V45", "599", "530", "038", "585", "403", "995", "V58", "244", "305",
    "E878", "496", "287", "486", "V15", "E849", "780", "998", "V10", "424",
    "311", "997", "410", "507", "300", "707", "E879", "493", "458", "571",
)
# Chronic conditions recur at most later admissions.
CHRONIC_CODES: frozenset[str] = frozenset(
    {"401", "428", "414", "272", "250", "585", "403", "244", "496", "V45", "V58", "V10",
     "V15", "311", "300", "493", "571", "424"}
)


def code_pool() -> list[str]:
    """Every available ICD-9 group name, in column order: numeric, then V, then E."""
    numeric = [f"{k:03d}" for k in range(1, 1000)]
    v_codes = [f"V{k:02d}" for k in range(1, 92)]
    e_codes = [f"E{k}" for k in range(800, 1000)]
    return numeric + v_codes + e_codes


POOL_SIZE = len(code_pool())


def code_names(d: int) -> list[str]:
    """``d`` unique code names: the common groups first, the rest evenly spread over the pool.

    Spreading keeps the numeric/V/E proportions of the pool; the result is in pool order.
    """
    pool = code_pool()
    chosen = set(COMMON_CODES[:d])
    rest = [c for c in pool if c not in chosen]
    m = d - len(chosen)
    if m > 0:
        chosen.update(rest[k] for k in (np.arange(m) * len(rest)) // m)
    return [c for c in pool if c in chosen]


@dataclass(frozen=True)
class SimulatedOptions:
    """Size and seed of the simulated cohort."""

    patients: int = 46520  # MIMIC-III size: sampling noise must not swamp correlations
    codes: int = 1071
    seed: int = 0

    def __post_init__(self) -> None:
        if self.patients < 1:
            raise ValueError(f"option 'patients' must be at least 1, got {self.patients}")
        if not 1 <= self.codes <= POOL_SIZE:
            raise ValueError(
                f"option 'codes' must be between 1 and {POOL_SIZE} (the number of distinct "
                f"3-digit ICD-9 groups: 999 numeric, 91 V-codes, 200 E-codes), got {self.codes}"
            )
        if self.seed < 0:
            raise ValueError(f"option 'seed' must be non-negative, got {self.seed}")


@dataclass(frozen=True)
class Population:
    """The per-code and per-condition parameters shared by every patient."""

    log_absent: np.ndarray  # (d,) log(1 − b_j), background rate per unit exposure
    condition_prev: np.ndarray  # (K,) ρ_k
    condition_log_absent: np.ndarray  # (K, d) log(1 − w_kj)
    recurrence: np.ndarray  # (d,) r_j


def _background_rates(rng: np.random.Generator, names: list[str]) -> np.ndarray:
    """Heavy-tailed b_j: common groups on top, then a steep decline to near-zero rates."""
    d = len(names)
    rank = np.empty(d, dtype=float)
    common = [names.index(c) for c in COMMON_CODES if c in names]
    others = np.setdiff1d(np.arange(d), common)
    rank[common] = np.arange(len(common))
    rank[rng.permutation(others)] = np.arange(len(common), d)
    # Smooth rank curve: 0.26 at the top, ~2e-4 at rank 1000; jitter breaks the pattern.
    curve = BACKGROUND_TOP * (1.0 + rank / 15.0) ** -1.75
    jitter = np.exp(rng.normal(0.0, 0.25, size=d))
    jitter[common] = 1.0
    return np.clip(curve * jitter, 1e-7, 0.6)


def _conditions(
    rng: np.random.Generator, background: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Latent comorbidity clusters: prevalences and each one's lift on its member codes."""
    d = background.size
    # Log-normal prevalences rescaled to a fixed total, so every seed gives a similar load.
    prevalence = np.exp(rng.normal(0.0, 0.8, size=N_CONDITIONS))
    prevalence = np.clip(prevalence * CONDITION_LOAD / prevalence.sum(), 0.003, 0.2)
    weights = np.zeros((N_CONDITIONS, d))
    # Members favour codes that are already common, so rare codes stay rare.
    p_member = background**0.3 / (background**0.3).sum()
    for k in range(N_CONDITIONS):
        size = min(d, int(rng.integers(*CONDITION_SIZE)))
        members = rng.choice(d, size=size, replace=False, p=p_member)
        weights[k, members] = rng.beta(*LIFT_BETA, size=size) * LIFT_SCALE
    return prevalence, np.log1p(-weights)


def build_population(rng: np.random.Generator, names: list[str]) -> Population:
    """Draw the cohort-level parameters once; patients are then drawn independently."""
    background = _background_rates(rng, names)
    prevalence, cond_log_absent = _conditions(rng, background)
    recurrence = rng.beta(1.5, 4.0, size=len(names))
    chronic = np.isin(names, list(CHRONIC_CODES))
    recurrence[chronic] = rng.uniform(0.6, 0.9, size=int(chronic.sum()))
    return Population(np.log1p(-background), prevalence, cond_log_absent, recurrence)


def _give_every_patient_a_code(
    rng: np.random.Generator, pop: Population, present: np.ndarray
) -> None:
    """A patient in an EHR extract has at least one diagnosis: draw one from the background."""
    empty = np.flatnonzero(~present.any(axis=1))
    if empty.size:
        rates = -np.expm1(pop.log_absent)
        present[empty, rng.choice(rates.size, size=empty.size, p=rates / rates.sum())] = True


def simulate_patients(rng: np.random.Generator, pop: Population, n: int) -> np.ndarray:
    """``n`` patients' count rows (float32) under the population ``pop``."""
    frailty = rng.gamma(2.0, 0.5, size=n)
    admissions = 1 + rng.poisson(0.25 * frailty * rng.gamma(0.5, 2.0, size=n))
    exposure = frailty * admissions**0.6
    carried = rng.random((n, pop.condition_prev.size)) < -np.expm1(
        frailty[:, None] * np.log1p(-pop.condition_prev)[None, :]
    )
    log_absent = exposure[:, None] * pop.log_absent[None, :] + carried @ pop.condition_log_absent
    present = rng.random(log_absent.shape) < -np.expm1(log_absent)
    _give_every_patient_a_code(rng, pop, present)
    rows, cols = np.nonzero(present)
    counts = 1 + rng.binomial(admissions[rows] - 1, pop.recurrence[cols])
    X = np.zeros(present.shape, dtype=np.float32)
    X[rows, cols] = counts
    return X


class SimulatedDataset(Dataset):
    """A seeded stand-in for MIMIC-III: sparse, heavy-tailed, correlated ICD-9 group counts."""

    name = "simulated"
    description = "seeded MIMIC-III-like patient × ICD-9 group counts (no data needed)"
    simulated = True
    Options = SimulatedOptions

    def load(self) -> EHRMatrix:
        opts = self.options
        names = code_names(opts.codes)
        root = np.random.SeedSequence(opts.seed)
        population_seed, patients_seed = root.spawn(2)
        pop = build_population(np.random.default_rng(population_seed), names)
        n_chunks = -(-opts.patients // CHUNK_ROWS)
        X = np.empty((opts.patients, opts.codes), dtype=np.float32)
        for c, chunk_seed in enumerate(patients_seed.spawn(n_chunks)):
            start = c * CHUNK_ROWS
            stop = min(opts.patients, start + CHUNK_ROWS)
            X[start:stop] = simulate_patients(np.random.default_rng(chunk_seed), pop, stop - start)
        ids = np.arange(1, opts.patients + 1, dtype=np.int64)
        meta = {
            "simulated": True,
            "generator": GENERATOR_VERSION,
            "seed": opts.seed,
            "latent_conditions": N_CONDITIONS,
            "column_order": "numeric ascending, then V-codes, then E-codes",
        }
        return EHRMatrix(X, names, ids, meta)


@hookimpl
def ehrbench_datasets() -> list[type]:
    return [SimulatedDataset]
