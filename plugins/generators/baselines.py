"""Calibration generators (DESIGN.md §5, "Noise floors"): they make a leaderboard readable.

- ``train-resample`` draws real training rows with replacement: the ceiling of fidelity and
  the floor of privacy. Its samples are real patient rows (``releases_real_records``), so the
  runner must never write them to disk.
- ``independent-marginals`` draws every code independently from its empirical marginal in
  the training matrix: perfect per-code distributions, no correlations between codes.
"""

from __future__ import annotations

import numpy as np

from ehrbench import Generator, RunContext, hookimpl

# Rows × codes drawn per block, so sampling 50k × 1k never holds a full index matrix.
_BLOCK_CELLS = 1 << 22


class _TrainBaseline(Generator):
    """Keeps a private float32 copy of the training matrix; samples are drawn from it."""

    calibration = True

    def __init__(self, options: object = None) -> None:
        super().__init__(options)
        self._train: np.ndarray | None = None

    def fit(self, X_train: np.ndarray, ctx: RunContext) -> None:
        """Copy the rows: the caller may reuse or modify its array after ``fit`` returns."""
        X = np.array(X_train, dtype=np.float32, order="C", copy=True)
        if X.ndim != 2 or X.shape[0] < 1:
            raise ValueError(
                f"{self.name}: expected a 2-D patients × codes matrix with at least one row, "
                f"got shape {X.shape}."
            )
        self._train = X

    def _fitted(self, n: int) -> np.ndarray:
        if self._train is None:
            raise RuntimeError(
                f"{self.name}: sample() was called before fit(); fit it on the train matrix first."
            )
        if n < 0:
            raise ValueError(f"{self.name}: cannot sample a negative number of rows ({n}).")
        return self._train


class TrainResample(_TrainBaseline):
    """Real training rows drawn uniformly with replacement."""

    name = "train-resample"
    description = "real training rows resampled with replacement (fidelity ceiling, privacy floor)"
    releases_real_records = True

    def sample(self, n: int, ctx: RunContext) -> np.ndarray:
        train = self._fitted(n)
        rows = ctx.rng(self.name, "sample").integers(0, train.shape[0], size=n)
        return train[rows]


class IndependentMarginals(_TrainBaseline):
    """Each code drawn from its own empirical distribution, independently of the others."""

    name = "independent-marginals"
    description = "every code drawn independently from its training marginal (no correlations)"

    def sample(self, n: int, ctx: RunContext) -> np.ndarray:
        train = self._fitted(n)
        n_train, d = train.shape
        rng = ctx.rng(self.name, "sample")
        out = np.empty((n, d), dtype=np.float32)
        cols = np.arange(d)
        block = max(1, _BLOCK_CELLS // max(d, 1))
        for start in range(0, n, block):
            stop = min(n, start + block)
            # A fresh row index per cell: column j's value comes from a random training row.
            rows = rng.integers(0, n_train, size=(stop - start, d))
            out[start:stop] = train[rows, cols]
        return out


@hookimpl
def ehrbench_generators() -> list[type]:
    return [IndependentMarginals, TrainResample]
