"""Degenerate generators for the gaming tests (tests/test_gaming.py): each one tries to win a
metric without learning the data, and the benchmark must not let it.

- ``uniform-noise``: every cell 0 or 1 with probability ½ (no structure at all);
- ``all-empty`` / ``all-ones``: every record empty / every code present;
- ``train-copy``: training records verbatim (a seeded order, without replacement while they last);
- ``train-copy-perturbed``: the same with one random code per record toggled;
- ``holdout-resample``: records drawn from a matrix file (option ``path``; without replacement
  while rows last, like ``train-copy``) of
  patients the run never sees: the tests give it held-out patients of the same cohort, so it is
  an ideal generator (a fresh sample of the population), the positive control.

None is a default generator: name them with ``--generators``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ehrbench import hookimpl
from ehrbench.api import Generator, RunContext
from ehrbench.matrix import EHRMatrix


class _Degenerate(Generator):
    default = False

    def fit(self, X_train: np.ndarray, ctx: RunContext) -> None:
        self._train = np.array(X_train, dtype=np.float32, copy=True)


class UniformNoise(_Degenerate):
    name = "uniform-noise"
    description = "every cell 0 or 1 with probability 1/2"

    def sample(self, n: int, ctx: RunContext) -> np.ndarray:
        return (ctx.rng(self.name).random((n, self._train.shape[1])) < 0.5).astype(np.float32)


class AllEmpty(_Degenerate):
    name = "all-empty"
    description = "every record empty"

    def sample(self, n: int, ctx: RunContext) -> np.ndarray:
        return np.zeros((n, self._train.shape[1]), dtype=np.float32)


class AllOnes(_Degenerate):
    name = "all-ones"
    description = "every code present once in every record"

    def sample(self, n: int, ctx: RunContext) -> np.ndarray:
        return np.ones((n, self._train.shape[1]), dtype=np.float32)


def _copied_rows(train: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n training rows in a seeded order, each used once before any is used twice."""
    order = np.concatenate([rng.permutation(train.shape[0]) for _ in range(-(-n // train.shape[0]))])
    return train[order[:n]].copy()


class TrainCopy(_Degenerate):
    name = "train-copy"
    description = "training records, verbatim"
    releases_real_records = True

    def sample(self, n: int, ctx: RunContext) -> np.ndarray:
        return _copied_rows(self._train, n, ctx.rng(self.name))


class TrainCopyPerturbed(_Degenerate):
    name = "train-copy-perturbed"
    description = "training records with one random code toggled in each"
    releases_real_records = True

    def sample(self, n: int, ctx: RunContext) -> np.ndarray:
        rng = ctx.rng(self.name)
        X = _copied_rows(self._train, n, rng)
        column = rng.integers(0, X.shape[1], size=n)
        rows = np.arange(n)
        X[rows, column] = (X[rows, column] == 0).astype(np.float32)
        return X


@dataclass(frozen=True)
class HoldoutOptions:
    """A matrix file (ehrbench .npz) of patients outside the run's dataset."""

    path: str = ""


class HoldoutResample(_Degenerate):
    name = "holdout-resample"
    description = "records of held-out patients, each used once while they last (an ideal generator)"
    releases_real_records = True
    Options = HoldoutOptions

    def fit(self, X_train: np.ndarray, ctx: RunContext) -> None:
        if not self.options.path:
            raise ValueError("holdout-resample needs the option 'path' (an .npz of held-out patients)")
        pool = EHRMatrix.load(Path(self.options.path)).X
        if pool.shape[1] != X_train.shape[1]:
            raise ValueError(f"holdout-resample: {self.options.path} has {pool.shape[1]} codes, not {X_train.shape[1]}")
        self._train = (pool > 0).astype(np.float32) if ctx.representation == "binary" else pool

    def sample(self, n: int, ctx: RunContext) -> np.ndarray:
        return _copied_rows(self._train, n, ctx.rng(self.name))


@hookimpl
def ehrbench_generators():
    return [UniformNoise, AllEmpty, AllOnes, TrainCopy, TrainCopyPerturbed, HoldoutResample]
