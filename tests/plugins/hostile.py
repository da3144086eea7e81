"""Test plugins that attack the host: they write to their training array, exit the interpreter,
raise what is not an Exception, hang at start-up, outlive their driver, or return values a
float32 cannot hold. Each must cost its own job only, with a clear reason.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from ehrbench import Generator, Metric, hookimpl


def _in_job_process() -> bool:
    main = getattr(sys.modules["__main__"], "__spec__", None)
    return main is not None and main.name == "ehrbench.execution.executor_process"


# Start-up that never ends, in a job's own interpreter only: --timeout must count it.
if _in_job_process() and os.environ.get("HOSTILE_HANG_AT_IMPORT"):
    time.sleep(float(os.environ["HOSTILE_HANG_AT_IMPORT"]))


class _Marginals(Generator):
    description = "test generator"
    default = False

    def fit(self, X_train, ctx):
        self.p = (np.asarray(X_train) > 0).mean(axis=0)

    def sample(self, n, ctx):
        return (ctx.rng("sample").random((n, self.p.size)) < self.p).astype(np.float32)


class WritesTrain(_Marginals):
    """Zeroes its training array in place, which would corrupt every later job and metric."""

    name = "writes-train"

    def fit(self, X_train, ctx):
        X_train[:] = 0
        super().fit(X_train, ctx)


class ExitsInFit(_Marginals):
    """Calls sys.exit() in fit."""

    name = "exits-in-fit"

    def fit(self, X_train, ctx):
        sys.exit(3)


class Escape(BaseException):
    """Not an Exception: a plain ``except Exception`` lets it through."""


class RaisesBase(_Marginals):
    name = "raises-base"

    def fit(self, X_train, ctx):
        raise Escape("escaped the job")


class Overflows(_Marginals):
    """Returns float64 counts of 1e39: finite in float64, infinity in float32."""

    name = "overflows"

    def sample(self, n, ctx):
        out = super().sample(n, ctx).astype(np.float64)
        out[1, 2] = 1e39
        return out


class ComplexSample(_Marginals):
    name = "complex-sample"

    def sample(self, n, ctx):
        return super().sample(n, ctx).astype(np.complex128) + 1j * (np.arange(n)[:, None] == 4)


class Sleeper(_Marginals):
    """Writes its pid to $HOSTILE_PID_FILE, then sleeps $HOSTILE_SLEEP seconds or until
    $HOSTILE_RELEASE_FILE exists: a job its driver must not leave behind."""

    name = "sleeper"

    def fit(self, X_train, ctx):
        path = os.environ.get("HOSTILE_PID_FILE")
        if path:
            Path(path).write_text(str(os.getpid()))
        release = os.environ.get("HOSTILE_RELEASE_FILE")
        deadline = time.monotonic() + float(os.environ.get("HOSTILE_SLEEP", "120"))
        while time.monotonic() < deadline and not (release and Path(release).exists()):
            time.sleep(0.05)
        super().fit(X_train, ctx)


class SavesBadly(_Marginals):
    """Can save, but its save fails as a full disk would: the model cache must not fail the job."""

    name = "saves-badly"

    def save(self, directory):
        (Path(directory) / "half.bin").write_bytes(b"0" * 10)
        raise OSError(28, "No space left on device")

    def load(self, directory, ctx):
        raise AssertionError("a failed save is never loaded")


class ExitsInCompute(Metric):
    """sys.exit() inside a metric."""

    name = "exits_in_compute"
    category = "fidelity"
    higher_is_better = False
    default = False

    def compute(self, real_train, real_test, synthetic, ctx):
        sys.exit("metric gave up")


class WritesTest(Metric):
    """Zeroes the real test split in place; the split must be read-only."""

    name = "writes_test"
    category = "fidelity"
    higher_is_better = False
    default = False

    def compute(self, real_train, real_test, synthetic, ctx):
        real_test.X[:] = 0
        return {"value": 0.0}


@hookimpl
def ehrbench_generators():
    return [WritesTrain, ExitsInFit, RaisesBase, Overflows, ComplexSample, Sleeper, SavesBadly]


@hookimpl
def ehrbench_metrics():
    return [ExitsInCompute, WritesTest]
