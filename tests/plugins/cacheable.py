"""Test generators: one that saves/loads its model and logs a curve, one that collapses."""

import json

import numpy as np

from ehrbench import Generator, hookimpl

FITS = {"count": 0}


class Cacheable(Generator):
    name = "cacheable"
    default = False

    def fit(self, X_train, ctx):
        FITS["count"] += 1
        self.p = (X_train > 0).mean(axis=0)
        self.curve = [1.0 / (epoch + 1) for epoch in range(5)]

    def sample(self, n, ctx):
        return (ctx.rng("sample").random((n, len(self.p))) < self.p).astype(np.float32)

    def save(self, directory):
        np.save(directory / "p.npy", self.p)
        (directory / "curve.json").write_text(json.dumps(self.curve))

    def load(self, directory, ctx):
        self.p = np.load(directory / "p.npy")
        self.curve = json.loads((directory / "curve.json").read_text())

    def training_log(self):
        return {"loss": self.curve}


class Collapsing(Generator):
    name = "collapsing"
    default = False

    def fit(self, X_train, ctx):
        pass

    def sample(self, n, ctx):
        out = np.zeros((n, 40), dtype=np.float32)
        out[: n // 10, 0] = 1
        return out


@hookimpl
def ehrbench_generators():
    return [Cacheable, Collapsing]
