"""Test generators for the executors: a small torch model, and jobs that crash or will not stop."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

from ehrbench import Generator, Metric, hookimpl
from ehrbench.seeding import derive_seed

HIDDEN = 8


class TorchAutoencoder(Generator):
    """A one-layer torch autoencoder on the presence matrix, decoded from Gaussian codes."""

    name = "torch-autoencoder"
    default = False
    uses_torch = True

    def fit(self, X_train, ctx):
        import torch

        gen = torch.Generator().manual_seed(derive_seed(ctx.seed, "fit"))
        x = torch.as_tensor(np.asarray(X_train) > 0, dtype=torch.float32)
        d = x.shape[1]
        self.encoder = torch.randn(d, HIDDEN, generator=gen) * 0.1
        self.decoder = torch.randn(HIDDEN, d, generator=gen) * 0.1
        self.bias = torch.zeros(d)
        params = [p.requires_grad_() for p in (self.encoder, self.decoder, self.bias)]
        opt = torch.optim.Adam(params, lr=0.05)
        self.losses = []
        for _ in range(30):
            batch = x[torch.randint(0, len(x), (64,), generator=gen)]
            logits = torch.tanh(batch @ self.encoder) @ self.decoder + self.bias
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            self.losses.append(loss.item())

    def sample(self, n, ctx):
        import torch

        gen = torch.Generator().manual_seed(derive_seed(ctx.seed, "sample"))
        with torch.no_grad():
            probs = torch.sigmoid(torch.tanh(torch.randn(n, HIDDEN, generator=gen)) @ self.decoder + self.bias)
            return torch.bernoulli(probs, generator=gen).numpy().astype(np.float32)

    def parameter_count(self):
        return int(self.encoder.numel() + self.decoder.numel() + self.bias.numel())

    def training_log(self):
        return {"loss": self.losses}


class Exits(Generator):
    """Ends its interpreter in the middle of fit, as a segfaulting extension would."""

    name = "exits"
    default = False

    def fit(self, X_train, ctx):
        os._exit(3)

    def sample(self, n, ctx):
        raise AssertionError("unreachable")


class Stubborn(Generator):
    """Ignores the soft (SIGALRM) timeout, as a long native call does; only a kill stops it."""

    name = "stubborn"
    default = False

    def fit(self, X_train, ctx):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(60)

    def sample(self, n, ctx):
        raise AssertionError("unreachable")


class KillsDriver(Generator):
    """Under the process executor, SIGKILLs the driver on the Nth fit (KILLS_DRIVER_COUNTER/_ON)."""

    name = "kills-driver"
    default = False

    def fit(self, X_train, ctx):
        counter = Path(os.environ["KILLS_DRIVER_COUNTER"])
        count = int(counter.read_text()) + 1 if counter.exists() else 1
        counter.write_text(str(count))
        main = getattr(sys.modules["__main__"], "__spec__", None)
        in_job_process = main is not None and main.name == "ehrbench.execution.executor_process"
        if in_job_process and str(count) == os.environ.get("KILLS_DRIVER_ON"):
            os.kill(os.getppid(), signal.SIGKILL)
            os._exit(0)
        self.p = (np.asarray(X_train) > 0).mean(axis=0)

    def sample(self, n, ctx):
        return (ctx.rng("sample").random((n, self.p.size)) < self.p).astype(np.float32)


class ExitsWhileScoring(Metric):
    """Ends its interpreter while scoring: the job dies after its sample was recorded."""

    name = "exits_while_scoring"
    category = "fidelity"
    higher_is_better = False
    default = False

    def compute(self, real_train, real_test, synthetic, ctx):
        os._exit(4)


@hookimpl
def ehrbench_generators():
    return [TorchAutoencoder, Exits, Stubborn, KillsDriver]


@hookimpl
def ehrbench_metrics():
    return [ExitsWhileScoring]
