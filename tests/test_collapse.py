"""Degeneracy flags (ehrbench/collapse.py): each kind on a sample built to have it, none on healthy ones."""

from __future__ import annotations

import numpy as np
import pytest

from ehrbench.execution.collapse import KINDS, sample_warnings
from ehrbench.rundir.records import flag_kind


@pytest.fixture(scope="module")
def real() -> np.ndarray:
    """2,000 records × 100 codes, prevalences from 0.2 % to 30 %, no empty record."""
    rng = np.random.default_rng(0)
    p = np.geomspace(0.002, 0.3, 100)
    X = (rng.random((2000, 100)) < p).astype(np.float32)
    X[~X.any(axis=1), -1] = 1
    return X


def _independent(real: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((n, real.shape[1])) < (real > 0).mean(axis=0)).astype(np.float32)


def kinds(samples: np.ndarray, real: np.ndarray, binary: bool | None = None) -> set[str]:
    return {flag_kind(w) for w in sample_warnings(samples, real, binary)}


def test_healthy_samples_of_any_size_are_not_flagged(real):
    """Independent draws from the marginals: no flag at 2,000 rows nor at 50 (where most rare codes
    cannot occur: the expected-codes check scales with the sample)."""
    for n, seed in ((2000, 1), (50, 2)):
        sample = _independent(real, n, seed)
        assert sample_warnings(sample, real) == []
        assert sample_warnings(sample * 3, real * 3) == []  # counts, not binary


def test_empty_records(real):
    sample = _independent(real, 1000, 3)
    sample[:300] = 0  # 30 % empty against 0 % in the real rows
    assert "empty records" in kinds(sample, real)
    sample[:300] = _independent(real, 300, 4)
    sample[:150] = 0  # 15 %: not "far above"
    assert "empty records" not in kinds(sample, real)


def test_few_distinct_rows(real):
    sample = np.tile(_independent(real, 5, 5), (200, 1))
    assert "few distinct rows" in kinds(sample, real)


def test_codes_per_record_either_way(real):
    sample = _independent(real, 1000, 6)
    sparse = sample * (np.random.default_rng(7).random(sample.shape) < 0.3)
    assert "codes per record" in kinds(sparse, real)
    dense = np.maximum(sample, np.random.default_rng(8).random(sample.shape) < 0.15).astype(np.float32)
    assert "codes per record" in kinds(dense, real)


def test_codes_never_produced_and_common_codes_missing(real):
    sample = _independent(real, 2000, 9)
    sample[:, 40:] = 0  # only the 40 rarest codes remain
    found = kinds(sample, real)
    assert {"codes never produced", "common codes missing"} <= found
    with_common = _independent(real, 2000, 10)
    with_common[:, :60] = 0  # the 60 rarest codes gone, the common ones kept
    assert "common codes missing" not in kinds(with_common, real)


def test_binary_all_zeros_or_all_ones(real):
    zeros = np.zeros((500, 100), np.float32)
    zeros[0, 0] = 1
    assert {"all zeros", "empty records"} <= kinds(zeros, real, binary=True)
    ones = np.ones((500, 100), np.float32)
    ones[0, 0] = 0
    assert "all ones" in kinds(ones, real, binary=True)
    assert "all ones" not in kinds(ones * 2, real * 2, binary=False)  # a count matrix is not judged by cells


def test_every_warning_names_a_known_kind(real):
    sample = np.zeros((500, 100), np.float32)
    warnings = sample_warnings(sample, real, binary=True)
    assert warnings and all(flag_kind(w) in KINDS for w in warnings)
