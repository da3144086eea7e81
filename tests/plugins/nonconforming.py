"""Generators and metrics that each break one rule of the contract, for ehrbench.testing's checks.

Not registered through a hook: the conformance tests hand the classes to check_generator / check_metric.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ehrbench import Generator, Metric


class _Marginals(Generator):
    """A conforming base: independent codes at their training prevalence, drawn from ctx.rng."""

    name = "nonconforming-base"

    def fit(self, X_train, ctx):
        self.p = (X_train > 0).mean(axis=0)

    def sample(self, n, ctx):
        return (ctx.rng("sample").random((n, len(self.p))) < self.p).astype(np.float32)


class WrongShape(_Marginals):
    name = "wrong-shape"

    def sample(self, n, ctx):
        return super().sample(n, ctx)[:, :-1]


class Fractional(_Marginals):
    name = "fractional"

    def sample(self, n, ctx):
        return np.tile(self.p, (n, 1)).astype(np.float32)  # probabilities, not counts


class Unseeded(_Marginals):
    name = "unseeded"

    def sample(self, n, ctx):
        return (np.random.default_rng().random((n, len(self.p))) < self.p).astype(np.float32)


class FixedSeed(_Marginals):
    """Reproducible by ignoring ctx: every repeat of a run would draw the same sample."""

    name = "fixed-seed"

    def sample(self, n, ctx):
        return (np.random.default_rng(42).random((n, len(self.p))) < self.p).astype(np.float32)


class GlobalSeeded(_Marginals):
    """Reproducible, but by reseeding numpy's global generator: other plugins' streams change with it."""

    name = "global-seeded"

    def sample(self, n, ctx):
        np.random.seed(ctx.seed)
        return (np.random.random((n, len(self.p))) < self.p).astype(np.float32)


class ForgetfulSave(_Marginals):
    """save() keeps nothing, load() restores a wrong model: a resumed run would sample something else."""

    name = "forgetful-save"

    def save(self, directory):
        (directory / "empty").write_text("")

    def load(self, directory, ctx):
        self.p = np.full(24, 0.5)


class WritesTraining(_Marginals):
    name = "writes-training"

    def fit(self, X_train, ctx):
        X = np.asarray(X_train)
        X.setflags(write=True)  # refused on a read-only view: the check sees the attempt fail
        X[:, 0] = 1
        super().fit(X, ctx)


class BadProfile(_Marginals):
    name = "bad-profile"

    @dataclass(frozen=True)
    class Options:
        epochs: int = 3

    profiles = {"smoke": {"epoch": 1}}


class AssertingOptions(_Marginals):
    name = "asserting-options"

    @dataclass(frozen=True)
    class Options:
        rate: float = 0.5

        def __post_init__(self):
            assert 0 < float(self.rate) < 1  # an AssertionError is no clear error


class ConstantMetric(Metric):
    name = "nonconforming_text"
    category = "fidelity"
    higher_is_better = True

    def compute(self, real_train, real_test, synthetic, ctx):
        return {"value": "good"}


class RandomMetric(Metric):
    name = "nonconforming_random"
    category = "fidelity"
    higher_is_better = True

    def compute(self, real_train, real_test, synthetic, ctx):
        return {"value": float(np.random.default_rng().random())}


class EmptyChokes(Metric):
    name = "nonconforming_empty"
    category = "fidelity"
    higher_is_better = True

    def compute(self, real_train, real_test, synthetic, ctx):
        per_code = synthetic.X.sum(axis=0)
        return {"value": float(np.log(per_code[per_code > 0]).mean() if (per_code > 0).any() else 1 / 0)}
