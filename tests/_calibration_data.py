"""The default (MIMIC-sized) cohort, split, and one sample of each calibration row, built once per session.

Shared by the utility and privacy metric tests so the 46,520 × 1,071 matrix is drawn once.
"""

from __future__ import annotations

from functools import lru_cache

from ehrbench.api import RunContext
from ehrbench.matrix import EHRMatrix, Split, split
from ehrbench.plugins import load_registry

CALIBRATION_ROWS = ("train-resample", "independent-marginals")


@lru_cache(maxsize=1)
def calibration_sets() -> tuple[Split, dict[str, EHRMatrix]]:
    """(split of the default dataset with seed 0, {generator: synthetic sample of n_test rows})."""
    registry = load_registry()
    data = registry.get("datasets", "simulated").configure().load()
    parts = split(data, seed=0)
    samples = {}
    for name in CALIBRATION_ROWS:
        ctx = RunContext(seed=1)
        generator = registry.get("generators", name).configure("quick")
        generator.fit(parts.train.X, ctx)
        samples[name] = parts.train.with_data(generator.sample(parts.test.n_patients, ctx))
    return parts, samples
