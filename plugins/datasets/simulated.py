"""The ``simulated`` dataset: a seeded cohort of patients, admissions and diagnosis rows calibrated to MIMIC-III.

It lets ``ehrbench run`` work without credentialed data, and writes MIMIC-III-format tables
(:func:`write_mimic3_tables`) so the MIMIC-III path can be exercised at full scale. Its matrix is
built exactly as ``mimic3`` builds one (:mod:`.icd9` grouping and column order, +1 per row).

The model (targets and profiles in :mod:`.simulated_profiles`):

- a patient is a neonate (17 %) or an adult; an adult has a frailty ``z`` (one of 8 equally
  likely levels approximating Gamma(2, 1/2), mean 1) and carries each adult profile k with
  probability ``1 − (1 − π_k)^z``; a neonate is a singleton or a twin and may be preterm;
- admissions: ``1 + B·G`` with ``B ~ Bernoulli(m_i)``, ``G`` geometric (mean 1.69); ``m_i`` grows
  with frailty and the profiles carried, scaled so that 16 % of patients have more than one;
- each admission has a coding intensity ``g · z`` with ``g ~ Gamma(3, 1/3)`` (frail patients get
  more codes of every kind); group j is coded in it with probability
  ``1 − exp(−g · z · θ_j · h_ij)``, where ``h_ij`` is the patient's population background plus
  the lifts of the profiles carried. ``θ_j`` is solved per group (safeguarded Newton on the
  closed form of the patient-level presence probability over the distinct configurations of a
  calibration cohort) so that group j's patient prevalence hits its target;
- a coded group gives one diagnosis row with a full ICD-9 code of that group (from the bundled
  D_ICD_DIAGNOSES), and a second row with another full code with chance 0.12·(1 − 1/leaves);
- an admission has at least one row and at most 39 (MIMIC-III's largest SEQ_NUM), and every
  column occurs at least once (as in MIMIC-III, whose columns are the groups that occur).

Draws are made as Poisson events per (admission, source), never per (admission, code), so
1M patients take about half a minute and the matrix is built sparse. Patients are drawn in chunks of
4,096, each from its own child seed: the first chunks do not change when ``patients`` grows.
Columns depend only on ``codes`` (the ``codes`` most prevalent real groups, in column order).
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.stats import gamma as gamma_dist

from ehrbench import Dataset, EHRMatrix, hookimpl

from . import mimic3_csv
from . import simulated_profiles as P
from .icd9 import CODE_PATTERN, column_order, groups_of, sort_groups
from .mimic3 import DEMO_FILES, GROUPING

GENERATOR_VERSION = "ehrbench simulated v2 (calibrated to MIMIC-III)"
SIMULATED_NOTICE = "Simulated data: a seeded cohort calibrated to MIMIC-III statistics; no real patient."
CHUNK_ROWS = 4096
CALIBRATION_PATIENTS = 10000
CALIBRATION_STEPS = 6  # safeguarded Newton steps on log θ (5 reach a relative error of 1e-9)
RANK_SEED = 20170000  # fixes which real groups form the tail, so columns depend only on `codes`
MAX_RATE = 30.0  # cap on θ_j · h_ij (a code that cannot reach its target saturates instead)
FIRST_SUBJECT_ID, FIRST_HADM_ID = 1, 100001


# --------------------------------------------------------------------------- ICD-9 groups


@dataclass(frozen=True)
class Icd9Table:
    """Every real ICD-9 group (column order) with its full codes, from the bundled dictionary."""

    groups: list[str]
    codes: np.ndarray  # full codes, grouped by group in column order
    start: np.ndarray  # (groups,) index of a group's first full code
    count: np.ndarray  # (groups,) number of full codes


@lru_cache(maxsize=1)
def icd9_table() -> Icd9Table:
    frame = mimic3_csv.read_table(DEMO_FILES["titles"], ("icd9_code",), "D_ICD_DIAGNOSES")
    codes = frame["icd9_code"].drop_duplicates()
    codes = codes[codes.str.fullmatch(CODE_PATTERN.pattern)]
    groups = groups_of(codes).to_numpy(dtype=str)
    text = codes.to_numpy(dtype=str)
    rank = _rank(groups)
    order = np.lexsort((text, rank))
    _, start, count = np.unique(rank[order], return_index=True, return_counts=True)
    return Icd9Table([str(g) for g in groups[order][start]], text[order], start, count)


def _rank(groups: np.ndarray) -> np.ndarray:
    """Each group's position in the column order of the distinct groups."""
    uniq = np.unique(groups)
    rank = np.empty(uniq.size, dtype=np.int64)
    rank[column_order(list(uniq))] = np.arange(uniq.size)
    return rank[np.searchsorted(uniq, groups)]


@lru_cache(maxsize=1)
def ranked_groups() -> tuple[tuple[str, ...], np.ndarray]:
    """All real groups, most prevalent first, with their target patient prevalence."""
    real = icd9_table().groups
    listed = {**P.ESTIMATED, **P.NEONATAL, **P.LEADING}
    unknown = sorted(set(listed) - set(real))
    if unknown:
        raise RuntimeError(f"calibration table names groups absent from D_ICD_DIAGNOSES: {unknown}")
    head = sorted(listed, key=lambda g: -listed[g])
    rest = [g for g in real if g not in listed]
    tail = [rest[k] for k in np.random.default_rng(RANK_SEED).permutation(len(rest))]
    x = np.arange(len(tail)) / max(1, len(tail) - 1)
    tail_prev = P.TAIL_START * (P.TAIL_END / P.TAIL_START) ** (x**P.TAIL_SHAPE)
    return tuple(head + tail), np.concatenate([[listed[g] for g in head], tail_prev])


def pool_size() -> int:
    """How many distinct real ICD-9 groups the ``codes`` option can take."""
    return len(icd9_table().groups)


def code_names(d: int) -> list[str]:
    """The ``d`` most prevalent real groups, in column order (numeric, V, E)."""
    return sort_groups(ranked_groups()[0][:d])


def target_prevalence(names: list[str]) -> np.ndarray:
    order, prev = ranked_groups()
    where = {g: k for k, g in enumerate(order)}
    return prev[[where[g] for g in names]]


def is_neonatal_family(names: list[str]) -> np.ndarray:
    return np.array([n.startswith(P.NEONATAL_FAMILY_PREFIXES) for n in names])


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class Model:
    """Cohort-level parameters: sources (2 backgrounds + profiles) × codes, and their calibration."""

    names: list[str]
    sources: list[str]
    population: np.ndarray  # (S,) "adult" / "neonate" / "any" per source
    prevalence: np.ndarray  # (S,) carriage probability within the population
    readmission: np.ndarray  # (S,) readmission factor
    weights: np.ndarray  # (S, d) h contributions
    theta: np.ndarray  # (d,) calibrated scale per code
    multi: dict[str, float]  # base readmission probability per population
    leaves_start: np.ndarray  # (d,) into icd9_table().codes
    leaves_count: np.ndarray  # (d,)

    @property
    def rates(self) -> np.ndarray:
        """(S, d) per-admission event rate of each code from each source, at intensity 1."""
        return self.weights * self.theta[None, :]


def _lifts(text: str) -> dict[str, float]:
    return {c: float(w) for c, w in (item.split(":") for item in text.split())}


def _weights(rng: np.random.Generator, names: list[str]) -> tuple[list[str], list[str], np.ndarray, np.ndarray, np.ndarray]:
    d = len(names)
    col = {n: j for j, n in enumerate(names)}
    family = is_neonatal_family(names)
    sources = ["adult background", "neonatal background", *P.PROFILES]
    population = ["adult", "neonate", *(v[0] for v in P.PROFILES.values())]
    W = np.zeros((len(sources), d))
    W[0, ~family] = 1.0
    W[1, ~family] = P.NEONATAL_LEAK
    for code, w in P.NEONATAL_BACKGROUND.items():
        if code in col:
            W[1, col[code]] = w
    for k, (_, _, _, lifts) in enumerate(P.PROFILES.values(), start=2):
        for code, lift in _lifts(lifts).items():
            if code in col:
                W[k, col[code]] = lift
    listed = {**P.ESTIMATED, **P.NEONATAL, **P.LEADING}
    adult_profiles = [k for k, pop in enumerate(population) if pop == "adult" and k >= 2]
    for j in np.flatnonzero(~family):
        if names[j] in listed:
            continue
        joined = rng.choice(adult_profiles, size=rng.binomial(2, P.TAIL_PROFILE_P), replace=False)
        W[joined, j] = rng.uniform(*P.TAIL_LIFT, size=joined.size)
    profiled = ~family & (W[2:][np.asarray(population[2:]) == "adult"] > 0).any(axis=0)
    W[0, profiled] = P.BACKGROUND_IF_PROFILED
    orphans = family & (W.sum(axis=0) == 0)
    W[1, orphans] = 0.05
    prevalence = np.array([1.0, 1.0, *(v[1] for v in P.PROFILES.values())])
    readmission = np.array([1.0, 1.0, *(v[2] for v in P.PROFILES.values())])
    return sources, population, W, prevalence, readmission


def frailty_levels() -> np.ndarray:
    """An adult's frailty takes one of K equally likely values: the midpoint quantiles of
    Gamma(shape, 1/shape), rescaled to mean 1; index K is the neonates' level, 1.0. Discrete
    levels keep the calibration's configurations few."""
    k = P.FRAILTY_LEVELS
    values = gamma_dist.ppf((np.arange(k) + 0.5) / k, P.FRAILTY_SHAPE, scale=1.0 / P.FRAILTY_SHAPE)
    return np.append(values / values.mean(), 1.0)


def _carriers(
    rng: np.random.Generator, n: int, population: np.ndarray, prevalence: np.ndarray, sources: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(neonate flags (n,), frailty level (n,), carried sources (n, S)) for ``n`` new patients."""
    neonate = rng.random(n) < P.NEONATAL_SHARE
    level = np.where(neonate, P.FRAILTY_LEVELS, rng.integers(0, P.FRAILTY_LEVELS, size=n))
    frailty = frailty_levels()[level]
    p_adult = -np.expm1(frailty[:, None] * np.log1p(-np.minimum(prevalence, 0.999))[None, :])
    u = rng.random((n, len(sources)))
    C = np.zeros((n, len(sources)), dtype=bool)
    adult_cols = population == "adult"
    C[:, adult_cols] = (u[:, adult_cols] < p_adult[:, adult_cols]) & ~neonate[:, None]
    C[:, 0] = ~neonate
    C[:, 1] = neonate
    twin_col, single_col = sources.index(P.TWIN), sources.index(P.SINGLETON)
    pre_col = sources.index("preterm")
    twin = neonate & (u[:, twin_col] < prevalence[twin_col])
    C[:, twin_col] = twin
    C[:, single_col] = neonate & ~twin
    p_pre = np.where(twin, P.PRETERM_IF_TWIN, prevalence[pre_col])
    C[:, pre_col] = neonate & (u[:, pre_col] < p_pre)
    return neonate, level, C


def _readmission_factor(C: np.ndarray, level: np.ndarray, readmission: np.ndarray) -> np.ndarray:
    return np.exp(C @ np.log(readmission)) * frailty_levels()[level] ** P.READMISSION_FRAILTY_POWER


def _intensity(level: np.ndarray) -> np.ndarray:
    """A patient's coding intensity: frailer adults are coded with more of everything."""
    return frailty_levels()[level] ** P.INTENSITY_FRAILTY_POWER


def _multi_probability(neonate: np.ndarray, factor: np.ndarray, multi: dict[str, float]) -> np.ndarray:
    base = np.where(neonate, multi["neonate"], multi["adult"])
    return np.minimum(0.95, base * factor)


def _solve_base(factor: np.ndarray, weight: np.ndarray, target: float) -> float:
    """Base probability m0 with mean(min(0.95, m0 · factor)) = target (bisection)."""
    lo, hi = 0.0, 1.0
    for _ in range(50):
        mid = (lo + hi) / 2
        if np.average(np.minimum(0.95, mid * factor), weights=weight) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


GEOMETRIC_P = 1.0 / P.EXTRA_ADMISSIONS_MEAN


def _absence(x: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """E[x^A] and its derivative in x, for A = 1 + B·G (B ~ Bernoulli(m), G ≥ 1 geometric).

    E[x^A] is the chance that a code is absent at every admission of a patient.
    """
    p = GEOMETRIC_P
    q = 1.0 / (1.0 - (1.0 - p) * x)
    mp = m * p
    value = x * (1.0 - m) + mp * x * x * q
    slope = (1.0 - m) + mp * x * (2.0 - (1.0 - p) * x) * q * q
    return value, slope


def _calibrate(
    H: np.ndarray, weight: np.ndarray, m: np.ndarray, target: np.ndarray
) -> np.ndarray:
    """θ (d,) such that the weighted mean over configurations of P(present) equals ``target``.

    ``H`` (configs, d) is each configuration's h; presence is ``1 − E[x^A]`` with
    ``x = (1 + θh/α)^(−α)`` (the gamma-mixed per-admission absence). It is monotone in
    u = log θ, so a safeguarded Newton iteration (a step leaving the bracket bisects
    instead) converges for every code at once, from a Poisson-approximation start.
    """
    alpha = P.ADMISSION_SHAPE
    w = weight / weight.sum()
    hmax = H.max(axis=0)
    reachable = hmax > 0
    lo = np.full(H.shape[1], -30.0)
    hi = np.log(MAX_RATE / np.where(reachable, hmax, 1.0))
    mean_h = np.maximum(w @ H, 1e-300)
    u = np.clip(np.log(-np.log1p(-target) / (mean_h * (1.0 + 1.6875 * m.mean()))), lo, hi)
    H_alpha = H / alpha
    m_col = m[:, None]
    for _ in range(CALIBRATION_STEPS):
        y = 1.0 + H_alpha * np.exp(u)[None, :]
        x = 1.0 / (y * y * y) if alpha == 3 else y ** -alpha
        value, slope = _absence(x, m_col)
        f = 1.0 - w @ value - target
        df = w @ (slope * alpha * x * (1.0 - 1.0 / y))
        lo = np.where(f < 0, u, lo)
        hi = np.where(f < 0, hi, u)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = u - f / df
        newton = (step >= lo) & (step <= hi)
        done = np.abs(f) <= 1e-9 * target  # converged: a bisection from here would only move away
        u = np.where(done, u, np.where(newton, step, (lo + hi) / 2))
    return np.where(reachable, np.exp(u), 0.0)


@lru_cache(maxsize=8)
def build_model(codes: int, seed: int) -> Model:
    """The cohort-level parameters for ``codes`` columns and ``seed`` (cached: loads repeat)."""
    names = code_names(codes)
    root = np.random.SeedSequence([seed, 1])
    weights_seed, calibration_seed = root.spawn(2)
    sources, population, W, prevalence, readmission = _weights(np.random.default_rng(weights_seed), names)
    population = np.asarray(population)
    rng = np.random.default_rng(calibration_seed)
    neonate, level, C = _carriers(rng, CALIBRATION_PATIENTS, population, prevalence, sources)
    configs, counts = np.unique(np.column_stack([neonate, level, C]), axis=0, return_counts=True)
    cfg_neonate, cfg_level, cfg_C = configs[:, 0].astype(bool), configs[:, 1], configs[:, 2:].astype(bool)
    factor = _readmission_factor(cfg_C, cfg_level, readmission)
    adult_share, neonatal_share = 1 - P.NEONATAL_SHARE, P.NEONATAL_SHARE
    adult_target = (P.MULTI_ADMISSION_SHARE - neonatal_share * P.NEONATAL_MULTI_SHARE) / adult_share
    multi = {
        "adult": _solve_base(factor[~cfg_neonate], counts[~cfg_neonate], adult_target),
        "neonate": _solve_base(factor[cfg_neonate], counts[cfg_neonate], P.NEONATAL_MULTI_SHARE),
    }
    m = _multi_probability(cfg_neonate, factor, multi)
    H = (cfg_C.astype(float) @ W) * _intensity(cfg_level)[:, None]
    theta = _calibrate(H, counts.astype(float), m, target_prevalence(names))
    table = icd9_table()
    where = {g: k for k, g in enumerate(table.groups)}
    idx = np.array([where[n] for n in names])
    return Model(names, sources, population, prevalence, readmission, W, theta, multi,
                 table.start[idx], table.count[idx])


# --------------------------------------------------------------------------- drawing


@dataclass
class Cohort:
    """Patients, admissions and diagnosis rows (indices), the simulator's whole output."""

    names: list[str]
    neonate: np.ndarray  # (patients,) bool
    adm_patient: np.ndarray  # (admissions,) patient index, non-decreasing
    dx_adm: np.ndarray  # (rows,) admission index, non-decreasing
    dx_group: np.ndarray  # (rows,) column index
    dx_code: np.ndarray  # (rows,) index into icd9_table().codes

    @property
    def n_patients(self) -> int:
        return int(self.neonate.size)

    def counts(self) -> sp.csr_matrix:
        """Patients × codes, +1 per diagnosis row: exactly what ``mimic3`` builds from the tables."""
        X = sp.csr_matrix(
            (np.ones(self.dx_adm.size, dtype=np.float32), (self.adm_patient[self.dx_adm], self.dx_group)),
            shape=(self.n_patients, len(self.names)),
        )
        X.sum_duplicates()
        return X


def _draw_chunk(rng: np.random.Generator, model: Model, n: int) -> dict[str, np.ndarray]:
    d = len(model.names)
    neonate, level, C = _carriers(rng, n, model.population, model.prevalence, model.sources)
    m = _multi_probability(neonate, _readmission_factor(C, level, model.readmission), model.multi)
    n_adm = 1 + (rng.random(n) < m) * rng.geometric(GEOMETRIC_P, size=n)
    adm_patient = np.repeat(np.arange(n), n_adm)
    intensity = rng.gamma(P.ADMISSION_SHAPE, 1.0 / P.ADMISSION_SHAPE, size=adm_patient.size)
    intensity *= _intensity(level)[adm_patient]
    rates = model.rates
    total = rates.sum(axis=1)
    # Poisson events per (admission, carried source); each event names one code.
    a_idx, s_idx = np.nonzero(C[adm_patient])
    events = rng.poisson(intensity[a_idx] * total[s_idx])
    ev_adm = np.repeat(a_idx, events)
    ev_src = np.repeat(s_idx, events)
    coded = np.zeros(adm_patient.size, dtype=bool)
    coded[ev_adm] = True
    empty = np.flatnonzero(~coded)  # every admission has a diagnosis: one from its background
    ev_adm = np.concatenate([ev_adm, empty])
    ev_src = np.concatenate([ev_src, neonate[adm_patient[empty]].astype(np.int64)])
    with np.errstate(invalid="ignore", divide="ignore"):
        cdf = np.cumsum(rates, axis=1) / total[:, None]
    cdf = np.where(total[:, None] > 0, cdf, 1.0) + np.arange(rates.shape[0])[:, None]
    j = np.searchsorted(cdf.ravel(), ev_src + rng.random(ev_src.size), side="right") - ev_src * d
    keys = np.unique(ev_adm * d + np.clip(j, 0, d - 1))
    pair_adm, pair_group = keys // d, keys % d
    leaves = model.leaves_count[pair_group]
    first = (rng.random(keys.size) * leaves).astype(np.int64)
    second = rng.random(keys.size) < P.SECOND_ROW * (1.0 - 1.0 / leaves)
    other = (first + 1 + (rng.random(keys.size) * (leaves - 1)).astype(np.int64)) % leaves
    keep = _within_row_cap(rng, pair_adm, 1 + second)
    pair_adm, pair_group, first, second, other = (
        a[keep] for a in (pair_adm, pair_group, first, second, other))
    dx_adm = np.concatenate([pair_adm, pair_adm[second]])
    dx_group = np.concatenate([pair_group, pair_group[second]])
    dx_code = model.leaves_start[dx_group] + np.concatenate([first, other[second]])
    order = np.argsort(dx_adm, kind="stable")
    return {"neonate": neonate, "adm_patient": adm_patient, "dx_adm": dx_adm[order],
            "dx_group": dx_group[order], "dx_code": dx_code[order]}


def _within_row_cap(rng: np.random.Generator, pair_adm: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Keep a random subset of each admission's groups so it has at most MAX_ROWS_PER_ADMISSION rows.

    MIMIC-III records at most 39 diagnoses (SEQ_NUM) per admission. ``pair_adm`` is sorted.
    """
    order = np.lexsort((rng.random(pair_adm.size), pair_adm))
    rows_sorted = rows[order]
    total = np.cumsum(rows_sorted)
    start = np.searchsorted(pair_adm, pair_adm[order], side="left")
    within = total - (total[start] - rows_sorted[start])
    keep = np.empty(pair_adm.size, dtype=bool)
    keep[order] = within <= P.MAX_ROWS_PER_ADMISSION
    return keep


def _fill_empty_columns(rng: np.random.Generator, model: Model, cohort: Cohort) -> Cohort:
    """Give each column that never occurred one row, in a random admission of its population."""
    d = len(model.names)
    missing = np.flatnonzero(np.bincount(cohort.dx_group, minlength=d) == 0)
    if missing.size == 0 or cohort.adm_patient.size == 0:
        return cohort
    adm_neonate = cohort.neonate[cohort.adm_patient]
    family = is_neonatal_family(model.names)[missing]
    pools = [np.flatnonzero(~adm_neonate), np.flatnonzero(adm_neonate)]
    pools = [p if p.size else np.arange(cohort.adm_patient.size) for p in pools]
    adm = np.where(
        family,
        pools[1][rng.integers(0, pools[1].size, size=missing.size)],
        pools[0][rng.integers(0, pools[0].size, size=missing.size)],
    )
    code = model.leaves_start[missing] + (rng.random(missing.size) * model.leaves_count[missing]).astype(np.int64)
    dx_adm = np.concatenate([cohort.dx_adm, adm])
    order = np.argsort(dx_adm, kind="stable")
    cohort.dx_adm = dx_adm[order]
    cohort.dx_group = np.concatenate([cohort.dx_group, missing])[order]
    cohort.dx_code = np.concatenate([cohort.dx_code, code])[order]
    return cohort


def simulate_cohort(patients: int, codes: int, seed: int) -> Cohort:
    """Draw the whole cohort; deterministic in (patients, codes, seed)."""
    model = build_model(codes, seed)
    patients_seed, fill_seed = np.random.SeedSequence([seed, 2]).spawn(2)
    parts: list[dict[str, np.ndarray]] = []
    n_adm = 0
    n_chunks = -(-patients // CHUNK_ROWS)
    for c, chunk_seed in enumerate(patients_seed.spawn(n_chunks)):
        n = min(CHUNK_ROWS, patients - c * CHUNK_ROWS)
        part = _draw_chunk(np.random.default_rng(chunk_seed), model, n)
        part["dx_adm"] = part["dx_adm"] + n_adm
        part["adm_patient"] = part["adm_patient"] + c * CHUNK_ROWS
        n_adm += part["adm_patient"].size
        parts.append(part)
    cohort = Cohort(model.names, *(np.concatenate([p[k] for p in parts]) for k in
                                   ("neonate", "adm_patient", "dx_adm", "dx_group", "dx_code")))
    return _fill_empty_columns(np.random.default_rng(fill_seed), model, cohort)


# --------------------------------------------------------------------------- outputs


def summary(cohort: Cohort) -> dict[str, Any]:
    """The same summary ``mimic3`` stores, so reports read both alike."""
    rows = int(cohort.dx_adm.size)
    return {
        "patients": cohort.n_patients,
        "admissions": int(cohort.adm_patient.size),
        "admissions_without_diagnoses": 0,
        "patients_without_diagnoses": 0,
        "diagnosis_rows": rows,
        "rows_used": rows,
        "rows_dropped": {"empty_icd9_code": 0, "hadm_id_not_in_admissions": 0,
                         "subject_id_differs_from_admission": 0},
        "codes": len(cohort.names),
        "distinct_full_codes": int(np.unique(cohort.dx_code).size),
        "neonates": int(cohort.neonate.sum()),
    }


def describe(cohort: Cohort, X: sp.csr_matrix | None = None) -> list[tuple[str, float | None, float]]:
    """(statistic, MIMIC-III target or None, achieved) for the issue's calibration targets."""
    X = cohort.counts() if X is None else X
    n = cohort.n_patients
    scale = n / P.MIMIC3_PATIENTS
    present = X.copy()
    present.data[:] = 1.0
    prevalence = np.asarray(present.sum(axis=0)).ravel() / n
    adm_per_patient = np.bincount(cohort.adm_patient, minlength=n)
    family = is_neonatal_family(cohort.names)
    adult_codes = np.asarray(present[:, ~family].sum(axis=1)).ravel() > 0
    col = {g: j for j, g in enumerate(cohort.names)}
    stats: list[tuple[str, float | None, float]] = [
        ("patients", P.MIMIC3_PATIENTS * scale, n),
        ("code groups", P.MIMIC3_CODES, len(cohort.names)),
        ("admissions", P.MIMIC3_ADMISSIONS * scale, cohort.adm_patient.size),
        ("admissions per patient", P.MIMIC3_ADMISSIONS / P.MIMIC3_PATIENTS, cohort.adm_patient.size / n),
        ("share of patients with >1 admission", P.MULTI_ADMISSION_SHARE, float((adm_per_patient > 1).mean())),
        ("diagnosis rows", P.MIMIC3_DIAGNOSIS_ROWS * scale, cohort.dx_adm.size),
        ("diagnosis rows per admission", P.MIMIC3_DIAGNOSIS_ROWS / P.MIMIC3_ADMISSIONS,
         cohort.dx_adm.size / max(1, cohort.adm_patient.size)),
        ("diagnosis rows per patient", P.MIMIC3_DIAGNOSIS_ROWS / P.MIMIC3_PATIENTS, cohort.dx_adm.size / n),
        ("neonatal share of patients", P.NEONATAL_SHARE, float(cohort.neonate.mean())),
        ("share of neonates with an adult code", None,
         float(adult_codes[cohort.neonate].mean()) if cohort.neonate.any() else 0.0),
    ]
    for g, target in P.LEADING.items():
        if g in col:
            stats.append((f"prevalence {g}", target, float(prevalence[col[g]])))
    patients_per_code = np.asarray(present.sum(axis=0)).ravel()
    stats += [
        ("groups in fewer than 10 patients", None, int((patients_per_code < 10).sum())),
        ("distinct groups per patient", None, float(present.sum() / n)),
        ("count per present group", None, float(X.sum() / max(1, present.sum()))),
    ]
    return stats


def write_mimic3_tables(cohort: Cohort, out_dir: Path) -> tuple[Path, Path]:
    """ADMISSIONS.csv.gz and DIAGNOSES_ICD.csv.gz in the credentialed v1.4 dialect.

    Upper-case quoted headers, quoted strings (codes like ``"0389"``), unquoted numbers, LF
    line ends, gzip. Times are placeholders derived from the admission's index; ADMISSION_TYPE
    is NEWBORN for neonates. Written to temporary names, then renamed.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    n_adm = cohort.adm_patient.size
    adm_index = np.arange(n_adm)
    admit = np.datetime64("2100-01-01T08:00") + (cohort.adm_patient * 97 + adm_index % 7 * 211).astype("timedelta64[D]")
    discharge = admit + (1 + adm_index % 9).astype("timedelta64[D]")
    admissions = pd.DataFrame({
        "ROW_ID": adm_index + 1,
        "SUBJECT_ID": cohort.adm_patient + FIRST_SUBJECT_ID,
        "HADM_ID": adm_index + FIRST_HADM_ID,
        "ADMITTIME": np.datetime_as_string(admit, unit="s"),
        "DISCHTIME": np.datetime_as_string(discharge, unit="s"),
        "ADMISSION_TYPE": np.where(cohort.neonate[cohort.adm_patient], "NEWBORN", "EMERGENCY"),
    })
    for column in ("ADMITTIME", "DISCHTIME"):
        admissions[column] = admissions[column].str.replace("T", " ", regex=False)
    starts = np.searchsorted(cohort.dx_adm, cohort.dx_adm, side="left")
    diagnoses = pd.DataFrame({
        "ROW_ID": np.arange(cohort.dx_adm.size) + 1,
        "SUBJECT_ID": cohort.adm_patient[cohort.dx_adm] + FIRST_SUBJECT_ID,
        "HADM_ID": cohort.dx_adm + FIRST_HADM_ID,
        "SEQ_NUM": np.arange(cohort.dx_adm.size) - starts + 1,
        "ICD9_CODE": icd9_table().codes[cohort.dx_code],
    })
    paths = []
    for name, frame in (("ADMISSIONS", admissions), ("DIAGNOSES_ICD", diagnoses)):
        path = out_dir / f"{name}.csv.gz"
        tmp = out_dir / f".{name}.csv.gz.tmp"
        frame.to_csv(tmp, index=False, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n",
                     compression={"method": "gzip", "compresslevel": 6, "mtime": 0})
        tmp.replace(path)
        paths.append(path)
    return paths[0], paths[1]


# --------------------------------------------------------------------------- plugin


@dataclass(frozen=True)
class SimulatedOptions:
    """Size and seed of the simulated cohort."""

    patients: int = P.MIMIC3_PATIENTS  # MIMIC-III size: sampling noise must not swamp correlations
    codes: int = P.MIMIC3_CODES
    seed: int = 0

    def __post_init__(self) -> None:
        if self.patients < 1:
            raise ValueError(f"option 'patients' must be at least 1, got {self.patients}")
        if not 1 <= self.codes <= pool_size():
            raise ValueError(
                f"option 'codes' must be between 1 and {pool_size()} (the distinct ICD-9 groups "
                f"of D_ICD_DIAGNOSES, E-codes grouped by 4 characters), got {self.codes}"
            )
        if self.seed < 0:
            raise ValueError(f"option 'seed' must be non-negative, got {self.seed}")


class SimulatedDataset(Dataset):
    """A seeded stand-in for MIMIC-III: patients, admissions and diagnosis rows, calibrated."""

    name = "simulated"
    description = "seeded cohort calibrated to MIMIC-III (patients × ICD-9 groups; no data needed)"
    simulated = True
    default = True  # a run needs no data to start
    Options = SimulatedOptions
    # `--profile smoke` means seconds: a small cohort of the most prevalent groups. quick and paper keep
    # MIMIC-III's size, where PCD's sampling-noise floor is low enough to separate the calibration rows.
    profiles = {"smoke": {"patients": 2000, "codes": 150}}

    def input_files(self) -> list[Path]:
        """The bundled ICD-9 dictionary the groups and full codes come from."""
        return [DEMO_FILES["titles"]]

    def fingerprint(self) -> str:
        """Options, inputs and the model's version: a recalibrated simulator is another dataset."""
        return hashlib.sha256(f"{super().fingerprint()}/{GENERATOR_VERSION}".encode()).hexdigest()[:16]

    def cohort(self) -> Cohort:
        """Patients, admissions and diagnosis rows (what ``load`` turns into the matrix)."""
        o = self.options
        return simulate_cohort(o.patients, o.codes, o.seed)

    def matrix(self, cohort: Cohort) -> EHRMatrix:
        meta = {
            "dataset": "simulated",
            "simulated": True,
            "notice": SIMULATED_NOTICE,
            "generator": GENERATOR_VERSION,
            "seed": self.options.seed,
            "representation": "count",
            "grouping": GROUPING,
            "column_order": "numeric groups ascending, then V, then E",
            "summary": summary(cohort),
        }
        ids = np.arange(FIRST_SUBJECT_ID, FIRST_SUBJECT_ID + cohort.n_patients, dtype=np.int64)
        return EHRMatrix(cohort.counts().toarray(), cohort.names, ids, meta)

    def load(self) -> EHRMatrix:
        return self.matrix(self.cohort())

    @staticmethod
    def describe(cohort: Cohort) -> list[tuple[str, float | None, float]]:
        """(statistic, MIMIC-III target or None, achieved) — see :func:`describe`."""
        return describe(cohort)

    @staticmethod
    def write_tables(cohort: Cohort, out_dir: Path) -> tuple[Path, Path]:
        """ADMISSIONS.csv.gz and DIAGNOSES_ICD.csv.gz in the credentialed dialect."""
        return write_mimic3_tables(cohort, out_dir)


@hookimpl
def ehrbench_datasets() -> list[type]:
    return [SimulatedDataset]


@hookimpl
def ehrbench_commands() -> list:
    from .simulated_cli import simulate

    return [simulate]
