"""The calibration generators ``train-resample`` and ``independent-marginals``."""

from __future__ import annotations

import numpy as np
import pytest

from ehrbench.api import Generator, NoOptions, RunContext
from ehrbench.errors import ConfigError
from ehrbench_plugins.generators import baselines
from ehrbench_plugins.generators.baselines import IndependentMarginals, TrainResample

GENERATORS = [TrainResample, IndependentMarginals]


@pytest.fixture(scope="module")
def train() -> np.ndarray:
    """Counts with a strongly correlated pair (columns 0 and 1) and a rare column."""
    rng = np.random.default_rng(0)
    n = 3000
    shared = rng.random(n) < 0.3
    X = np.zeros((n, 6), dtype=np.float32)
    X[:, 0] = shared * rng.integers(1, 4, n)
    X[:, 1] = shared
    X[:, 2] = rng.random(n) < 0.1
    X[:, 3] = rng.poisson(0.5, n)
    X[:, 4] = rng.random(n) < 0.005
    return X


def fitted(cls: type, train: np.ndarray, seed: int = 0) -> Generator:
    gen = cls.configure("quick")
    gen.fit(train, RunContext(seed=seed))
    return gen


def test_hook_and_class_attributes() -> None:
    assert baselines.ehrbench_generators() == [IndependentMarginals, TrainResample]
    assert TrainResample.name == "train-resample" and TrainResample.releases_real_records
    assert IndependentMarginals.name == "independent-marginals"
    assert not IndependentMarginals.releases_real_records
    for cls in GENERATORS:
        assert cls.calibration and cls.Options is NoOptions and cls.description
        with pytest.raises(ConfigError, match="unknown option"):
            cls.configure("quick", {"epochs": 3})


# The output contract, seeds and global RNGs: tests/test_conformance.py (ehrbench.testing.check_generator).


@pytest.mark.parametrize("cls", GENERATORS)
def test_sample_before_fit(cls: type) -> None:
    with pytest.raises(RuntimeError, match="before fit"):
        cls.configure("quick").sample(3, RunContext(seed=0))


@pytest.mark.parametrize("cls", GENERATORS)
def test_fit_keeps_its_own_copy(cls: type, train: np.ndarray) -> None:
    data = train.copy()
    gen = fitted(cls, data)
    data[:] = 99
    assert gen.sample(200, RunContext(seed=0)).max() < 99


def test_train_resample_draws_real_rows(train: np.ndarray) -> None:
    out = fitted(TrainResample, train).sample(5000, RunContext(seed=2))
    real = {row.tobytes() for row in train}
    assert all(row.tobytes() in real for row in out)


def test_independent_marginals_keeps_marginals_and_breaks_correlation(train: np.ndarray) -> None:
    out = fitted(IndependentMarginals, train).sample(40000, RunContext(seed=3))
    np.testing.assert_allclose((out > 0).mean(axis=0), (train > 0).mean(axis=0), atol=0.01)
    np.testing.assert_allclose(out.mean(axis=0), train.mean(axis=0), atol=0.02)
    for j in range(train.shape[1]):
        assert set(np.unique(out[:, j])) <= set(np.unique(train[:, j]))
    assert np.corrcoef(train[:, 0], train[:, 1])[0, 1] > 0.7
    assert abs(np.corrcoef(out[:, 0], out[:, 1])[0, 1]) < 0.03

