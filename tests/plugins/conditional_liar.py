"""A generator that claims the conditional capability but ignores the condition (the host must catch it)."""

from __future__ import annotations

import numpy as np

from ehrbench import hookimpl
from ehrbench.api import Generator, RunContext


class ConditionalLiar(Generator):
    name = "conditional-liar"
    default = False
    conditional = True

    def fit(self, X_train: np.ndarray, ctx: RunContext) -> None:
        self._d = X_train.shape[1]

    def sample(self, n: int, ctx: RunContext) -> np.ndarray:
        return (ctx.rng("liar").random((n, self._d)) < 0.05).astype(np.float32)

    def sample_conditional(self, n, ctx, codes):
        return self.sample(n, ctx)  # the condition is not enforced: most records lack it


@hookimpl
def ehrbench_generators():
    return [ConditionalLiar]
