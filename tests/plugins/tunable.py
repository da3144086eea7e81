"""A test generator with options that change its output: the base of variants and sweeps in tests."""


from dataclasses import dataclass
from typing import Literal

import numpy as np

from ehrbench import Generator, hookimpl


class Tunable(Generator):
    """Independent Bernoulli codes at ``scale`` × the training prevalence; ``mode`` empty drops every code."""

    name = "tunable"
    description = "test generator: scaled marginals"
    default = False

    @dataclass(frozen=True)
    class Options:
        scale: float = 1.0
        mode: Literal["marginal", "empty"] = "marginal"
        widths: tuple[int, ...] = (4, 2)

        def __post_init__(self):
            if not 0 < self.scale <= 1:
                raise ValueError(f"scale must be in (0, 1], got {self.scale}")

    def fit(self, X_train, ctx):
        self.p = (X_train > 0).mean(axis=0) * self.options.scale

    def sample(self, n, ctx):
        if self.options.mode == "empty":
            return np.zeros((n, len(self.p)), dtype=np.float32)
        return (ctx.rng("sample").random((n, len(self.p))) < self.p).astype(np.float32)

    def save(self, directory):
        np.save(directory / "p.npy", self.p)

    def load(self, directory, ctx):
        self.p = np.load(directory / "p.npy")


@hookimpl
def ehrbench_generators():
    return [Tunable]
