"""Test-only generators that misbehave in every way the runner must survive."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np

from ehrbench import Generator, hookimpl


class _Base(Generator):
    description = "test generator"

    def fit(self, X_train, ctx):
        self.X = X_train.copy()

    def sample(self, n, ctx):
        rows = ctx.rng("rows").integers(0, len(self.X), size=n)
        return self.X[rows]


def _count_call(env_var: str) -> int:
    """Count calls across processes in the file named by ``env_var`` (0 when unset)."""
    path = os.environ.get(env_var)
    if not path:
        return 0
    p = Path(path)
    count = int(p.read_text()) + 1 if p.exists() else 1
    p.write_text(str(count))
    return count


class Flaky(_Base):
    """Raises on the Nth fit when FLAKY_COUNTER names a counter file and FLAKY_FAIL_ON=N."""

    name = "flaky"

    def fit(self, X_train, ctx):
        count = _count_call("FLAKY_COUNTER")
        if count and str(count) == os.environ.get("FLAKY_FAIL_ON"):
            raise RuntimeError("flaky generator failed on purpose")
        super().fit(X_train, ctx)


class Killer(_Base):
    """Kills its own process (SIGKILL) on the Nth fit: an interrupted run."""

    name = "killer"

    def fit(self, X_train, ctx):
        count = _count_call("KILLER_COUNTER")
        if count and str(count) == os.environ.get("KILLER_KILL_ON"):
            os.kill(os.getpid(), signal.SIGKILL)
        super().fit(X_train, ctx)


class Sleepy(_Base):
    name = "sleepy"

    def fit(self, X_train, ctx):
        end = time.monotonic() + 30
        while time.monotonic() < end:
            time.sleep(0.01)


class NanOutput(_Base):
    name = "nan-output"

    def sample(self, n, ctx):
        out = super().sample(n, ctx)
        out[1, 2] = np.nan
        return out


class NegativeOutput(_Base):
    name = "negative-output"

    def sample(self, n, ctx):
        return super().sample(n, ctx) - 1


class FractionalOutput(_Base):
    name = "fractional-output"

    def sample(self, n, ctx):
        return super().sample(n, ctx) + 0.5


class WrongShape(_Base):
    name = "wrong-shape"

    def sample(self, n, ctx):
        return super().sample(n, ctx)[:, :-1]


class ListOutput(_Base):
    name = "list-output"

    def sample(self, n, ctx):
        return super().sample(n, ctx).tolist()


@hookimpl
def ehrbench_generators():
    return [Flaky, Killer, Sleepy, NanOutput, NegativeOutput, FractionalOutput, WrongShape, ListOutput]
