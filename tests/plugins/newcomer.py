"""Test-only plugins for a newcomer's first failures: text that looks like markup, errors deep in numpy,
a progress bar with a total, CPU work, and a broken process job whose last output has brackets."""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from ehrbench import Generator, Metric, hookimpl


class _Base(Generator):
    description = "test generator"

    def fit(self, X_train, ctx):
        self.X = X_train.copy()

    def sample(self, n, ctx):
        rows = ctx.rng("rows").integers(0, len(self.X), size=n)
        return self.X[rows]


class Bracketed(_Base):
    """Fails with a message that rich would read as a closing markup tag."""

    name = "bracketed"

    def fit(self, X_train, ctx):
        ctx.progress("[bold]reading[/] [/data/train]")
        raise RuntimeError("could not open [/data/train] file")


class NumpyDeep(_Base):
    """Fails inside numpy, called from this file's own line."""

    name = "numpy-deep"

    def fit(self, X_train, ctx):
        singular = np.zeros((2, 2))
        self.inverse = np.linalg.inv(singular)  # the plugin's own line: LinAlgError is raised inside numpy


class Counting(_Base):
    """Reports a step with a total (600), then a step without one."""

    name = "counting"

    def fit(self, X_train, ctx):
        for k in range(600):
            ctx.progress(completed=k, total=600) if k else ctx.progress("epochs", completed=0, total=600)
        ctx.progress("finishing")
        super().fit(X_train, ctx)


class Busy(_Base):
    """Burns about 0.3 s of CPU in fit, then sleeps 0.3 s (wall time that is no CPU time)."""

    name = "busy"

    def fit(self, X_train, ctx):
        start = time.process_time()
        while time.process_time() - start < 0.3:
            pass
        time.sleep(0.3)
        super().fit(X_train, ctx)


class LoudCrash(_Base):
    """Prints text with brackets, then ends its process: its last output goes into the reason."""

    name = "loud-crash"

    def fit(self, X_train, ctx):
        print("cannot map [/dev/shm] [bold]x", flush=True)
        sys.stdout.flush()
        os._exit(3)


class Sigma(Metric):
    """A metric that fails inside numpy."""

    name = "sigma_failing"
    category = "fidelity"
    higher_is_better = False
    description = "fails on purpose"

    def compute(self, real_train, real_test, synthetic, ctx):
        return {"value": float(np.linalg.inv(np.zeros((2, 2)))[0, 0])}


@hookimpl
def ehrbench_generators():
    return [Bracketed, NumpyDeep, Counting, Busy, LoudCrash]


@hookimpl
def ehrbench_metrics():
    return [Sigma]
