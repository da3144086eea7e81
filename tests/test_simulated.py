"""The ``simulated`` cohort: calibration to MIMIC-III, profiles, neonates, tables and round trip."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from ehrbench.matrix import EHRMatrix
from ehrbench_plugins.datasets import simulated_profiles as P
from ehrbench_plugins.datasets.simulated import (
    SimulatedDataset,
    build_model,
    code_names,
    describe,
    is_neonatal_family,
    pool_size,
    simulate_cohort,
)

TOLERANCE = 0.15  # the "within about 15 % relative"


@pytest.fixture(scope="module")
def cohort():
    return simulate_cohort(P.MIMIC3_PATIENTS, P.MIMIC3_CODES, 0)


@pytest.fixture(scope="module")
def present(cohort):
    X = cohort.counts()
    X.data[:] = 1.0
    return X.tocsc()


def test_every_target_is_met_within_tolerance(cohort) -> None:
    stats = describe(cohort)
    targeted = [(name, target, value) for name, target, value in stats if target is not None]
    assert len(targeted) == 9 + len(P.LEADING)
    misses = [(n, t, v) for n, t, v in targeted if abs(v - t) > TOLERANCE * t]
    assert not misses, misses
    values = {name: value for name, _, value in stats}
    assert values["patients"] == 46520 and values["code groups"] == 1071
    assert values["groups in fewer than 10 patients"] >= 100  # a long tail
    assert values["share of neonates with an adult code"] < 0.05  # rarely overlaps


def test_neonatal_family_only_in_neonates(cohort, present) -> None:
    family = is_neonatal_family(cohort.names)
    adults = ~cohort.neonate
    assert present[adults][:, family].nnz == 0
    neonatal_rows = present[cohort.neonate]
    col = {g: j for j, g in enumerate(cohort.names)}
    liveborn = np.asarray(neonatal_rows[:, [col[g] for g in ("V30", "V31")]].sum(axis=1)).ravel()
    assert (liveborn == 1).mean() > 0.9  # singleton or twin, almost never both
    assert float(np.asarray(neonatal_rows[:, col["V05"]].sum()) / cohort.neonate.sum()) > 0.5


def correlation(present, cohort, a: str, b: str) -> float:
    col = {g: j for j, g in enumerate(cohort.names)}
    x = present[:, col[a]].toarray().ravel()
    y = present[:, col[b]].toarray().ravel()
    return float(np.corrcoef(x, y)[0, 1])


def test_profiles_make_codes_co_occur(cohort, present) -> None:
    assert correlation(present, cohort, "038", "995") > 0.4  # sepsis
    assert correlation(present, cohort, "571", "572") > 0.2  # liver
    assert correlation(present, cohort, "585", "403") > 0.3  # renal
    assert correlation(present, cohort, "428", "414") > 0.1  # cardiac
    assert correlation(present, cohort, "V30", "401") < -0.1  # neonates vs adults


def test_deterministic_by_seed_and_columns_by_codes() -> None:
    a = SimulatedDataset.configure({"patients": 600, "codes": 200, "seed": 5}).load()
    b = SimulatedDataset.configure({"patients": 600, "codes": 200, "seed": 5}).load()
    c = SimulatedDataset.configure({"patients": 600, "codes": 200, "seed": 6}).load()
    np.testing.assert_array_equal(a.X, b.X)
    assert not np.array_equal(a.X, c.X)
    assert a.codes.tolist() == c.codes.tolist() == code_names(200)
    assert a.meta["simulated"] is True and "Simulated data" in a.meta["notice"]
    assert a.meta["summary"]["diagnosis_rows"] == a.X.sum()


def test_fewer_codes_keep_the_most_prevalent_and_all_columns_occur() -> None:
    assert set(P.LEADING) <= set(code_names(40))
    full = simulate_cohort(300, pool_size(), 1)
    assert len(full.names) == pool_size()
    assert (np.bincount(full.dx_group, minlength=pool_size()) > 0).all()


def test_round_trip_through_the_mimic3_tables(cli, tmp_path: Path) -> None:
    result = cli("simulate", "--patients", "1500", "--seed", "2", "--out", tmp_path)
    assert result.code == 0, result.err
    assert "simulated data" in result.out
    with gzip.open(tmp_path / "DIAGNOSES_ICD.csv.gz", "rt", newline="") as fh:
        header, first = fh.readline(), fh.readline()
    assert header == '"ROW_ID","SUBJECT_ID","HADM_ID","SEQ_NUM","ICD9_CODE"\n'
    assert first.count('"') == 2  # the code is quoted, the numbers are not
    prepared = cli("prepare", "mimic3", "--admissions", tmp_path / "ADMISSIONS.csv.gz",
                   "--diagnoses", tmp_path / "DIAGNOSES_ICD.csv.gz", "-o", tmp_path / "p.npz")
    assert prepared.code == 0, prepared.err
    own = SimulatedDataset.configure({"patients": 1500, "seed": 2}).load()
    back = EHRMatrix.load(tmp_path / "p.npz")
    assert back.codes.tolist() == own.codes.tolist()
    assert back.ids.tolist() == own.ids.tolist()
    np.testing.assert_array_equal(back.X, own.X)
    assert back.meta["summary"]["diagnosis_rows"] == own.meta["summary"]["diagnosis_rows"]
    np.testing.assert_array_equal(EHRMatrix.load(tmp_path / "simulated.npz").X, own.X)


def test_describe_prints_targets(cli) -> None:
    result = cli("simulate", "--patients", "2000", "--codes", "300", "--describe")
    assert result.code == 0, result.err
    for text in ("MIMIC-III target", "prevalence 401", "diagnosis rows per admission", "neonatal share"):
        assert text in result.out
    bad = cli("simulate", "--patients", "0")
    assert bad.code == 2 and "patients" in bad.err


def test_model_is_calibrated_for_small_code_sets() -> None:
    model = build_model(30, 0)
    assert model.theta.shape == (30,) and (model.theta > 0).all()
    assert model.weights.shape == (len(model.sources), 30)


@pytest.mark.slow
def test_a_million_patients_fit_as_a_sparse_matrix() -> None:
    big = simulate_cohort(1_000_000, P.MIMIC3_CODES, 0)
    X = big.counts()
    assert X.shape == (1_000_000, 1071)
    assert 12e6 < X.sum() < 16e6
    assert X.data.nbytes + X.indices.nbytes < 200e6


def test_run_manifest_marks_simulated_data(cli, tmp_path: Path) -> None:
    common = ("--profile", "smoke", "--repeats", "1", "--generators", "independent-marginals",
              "--metrics", "dimension_wise_probability")
    run = cli("run", *common, "--dataset-option", "patients=300", "--dataset-option", "codes=40",
              "--out", tmp_path / "a")
    assert run.code == 0, run.err
    dataset = json.loads((tmp_path / "a" / "run.json").read_text())["dataset"]
    assert dataset["simulated"] is True and "Simulated data" in dataset["notice"]
    assert dataset["summary"]["patients"] == 300 and dataset["summary"]["codes"] == 40
    SimulatedDataset.configure({"patients": 300, "codes": 40}).load().save(tmp_path / "s.npz")
    again = cli("run", *common, "--dataset", "matrix", "--dataset-option", f"path={tmp_path / 's.npz'}",
                "--out", tmp_path / "b")
    assert again.code == 0, again.err
    assert json.loads((tmp_path / "b" / "run.json").read_text())["dataset"]["simulated"] is True


def test_calibration_formulas_against_hand_computed_cases() -> None:
    from ehrbench_plugins.datasets.simulated import GEOMETRIC_P, _absence, _calibrate

    # One configuration, one admission: presence 1 − (1 + θh/3)^−3 = p ⇒ θ = 3((1 − p)^(−1/3) − 1)/h.
    theta = _calibrate(np.array([[2.0]]), np.array([1.0]), np.array([0.0]), np.array([0.3]))
    assert theta[0] == pytest.approx(3 * (0.7 ** (-1 / 3) - 1) / 2, rel=1e-8)
    # E[x^A] for A = 1 + B·G against the series Σ P(A = a) x^a.
    x, m, p = 0.8, 0.3, GEOMETRIC_P
    series = (1 - m) * x + sum(m * p * (1 - p) ** (k - 1) * x ** (1 + k) for k in range(1, 400))
    value, slope = _absence(np.array([x]), np.array([m]))
    assert value[0] == pytest.approx(series, rel=1e-10)
    h = 1e-6
    assert slope[0] == pytest.approx((_absence(np.array([x + h]), np.array([m]))[0][0] - value[0]) / h, rel=1e-4)
