"""Training and sampling loops of the VAE family (negative ELBO: the likelihood's loss + KL to N(0, I)).

Without DP, each epoch visits the shuffled records in batches; with DP (:mod:`.privacy`), batches
are Poisson-sampled and Opacus clips and noises each record's gradient. Every random draw comes
from ``torch.Generator``s the caller seeds (batches, reparameterisation noise, masks, DP noise),
so a fit depends only on its seed, never on torch's global random state.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from ..likelihood import OutputLikelihood
from .conditions import random_conditions
from .nets import VAE
from .privacy import PrivateTraining, make_private

EpochCallback = Callable[[int, int, dict[str, float]], None]
SAMPLE_CHUNK = 8192  # rows decoded per forward pass


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite: the job fails with the epoch."""


@dataclass
class Streams:
    """The seeded random streams of a fit."""

    batches: torch.Generator
    noise: torch.Generator
    masks: torch.Generator
    dp_noise: torch.Generator


@dataclass
class TrainSettings:
    epochs: int
    batch_size: int
    learning_rate: float
    conditional: bool = False  # the conditional VAE: random conditions as extra inputs
    dp: bool = False
    target_epsilon: float = 1.0
    delta: float = 1e-5
    max_grad_norm: float = 1.0


def train(model: VAE, likelihood: OutputLikelihood, X: np.ndarray, settings: TrainSettings, streams: Streams,
          device: torch.device, on_epoch: EpochCallback) -> tuple[dict[str, list[float]], PrivateTraining | None]:
    """Fit ``model`` in place; returns the per-epoch curves and, with DP, the Opacus state (for ε)."""
    rows = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    private = None
    if settings.dp:
        loader = DataLoader(TensorDataset(rows), batch_size=settings.batch_size, generator=streams.batches)
        private = make_private(model, optimizer, loader, target_epsilon=settings.target_epsilon,
                               delta=settings.delta, epochs=settings.epochs, max_grad_norm=settings.max_grad_norm,
                               noise_generator=streams.dp_noise)
        module, optimizer, loader = private.module, private.optimizer, private.loader
    else:
        module = model
        loader = _ShuffledBatches(rows, settings.batch_size, streams.batches)
    log: dict[str, list[float]] = {"loss": [], "reconstruction": [], "kl": []}
    model.train()
    try:
        with warnings.catch_warnings():
            # Opacus' per-record hooks fire on module outputs alone (the inputs need no gradient).
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            for epoch in range(1, settings.epochs + 1):
                means = _epoch(module, model, likelihood, loader, optimizer, settings, streams, device, private)
                bad = [k for k, v in means.items() if not math.isfinite(v)]
                if bad:
                    raise TrainingDiverged(f"the {', '.join(bad)} loss became non-finite in epoch {epoch}; "
                                           f"try a smaller learning_rate")
                for key, value in means.items():
                    log[key].append(value)
                on_epoch(epoch, settings.epochs, means)
    finally:
        if private is not None:
            private.module.remove_hooks()  # the fitted model samples without Opacus' per-record hooks
    model.eval()
    return log, private


def _epoch(module: torch.nn.Module, model: VAE, likelihood: OutputLikelihood, loader: Iterable,
           optimizer: torch.optim.Optimizer, settings: TrainSettings, streams: Streams,
           device: torch.device, private: PrivateTraining | None) -> dict[str, float]:
    """One pass over ``loader``; the mean losses of its batches."""
    sums = {"loss": 0.0, "reconstruction": 0.0, "kl": 0.0}
    batches = 0
    for (xb,) in loader:
        extra = random_conditions(xb, streams.masks) if settings.conditional else None
        eps = torch.randn(xb.shape[0], model.latent_dim, generator=streams.noise)
        xb, eps = xb.to(device), eps.to(device)
        extra = extra.to(device) if extra is not None else None
        optimizer.zero_grad()
        eta, kl = module(xb, eps, extra)
        per_record = likelihood.loss(eta, xb, reduction="none")
        if private is not None:
            private.backward(per_record + kl)
        else:
            (per_record + kl).mean().backward()
        optimizer.step()
        reconstruction, kl = per_record.mean(), kl.mean()
        loss = reconstruction + kl
        for key, value in (("loss", loss), ("reconstruction", reconstruction), ("kl", kl)):
            sums[key] += float(value.detach())
        batches += 1
    return {k: v / max(batches, 1) for k, v in sums.items()}


class _ShuffledBatches:
    """Each pass: the rows in a fresh random order (from ``generator``), in batches of ``size``."""

    def __init__(self, rows: torch.Tensor, size: int, generator: torch.Generator) -> None:
        self.rows, self.size, self.generator = rows, size, generator

    def __iter__(self) -> Iterator[tuple[torch.Tensor]]:
        order = torch.randperm(self.rows.shape[0], generator=self.generator)
        for start in range(0, len(order), self.size):
            yield (self.rows[order[start:start + self.size]],)


@torch.no_grad()
def decoded_means(model: VAE, likelihood: OutputLikelihood, n: int, extra: torch.Tensor | None,
                  noise: torch.Generator, device: torch.device) -> np.ndarray:
    """The likelihood's per-code means for ``n`` draws of z from the prior (given a condition row, if any)."""
    model.eval()
    out = np.empty((n, model.n_codes), dtype=np.float32)
    for start in range(0, n, SAMPLE_CHUNK):
        rows = min(SAMPLE_CHUNK, n - start)
        eps = torch.randn(rows, model.latent_dim, generator=noise).to(device)
        given = extra.to(device).expand(rows, -1) if extra is not None else None
        z = model.draw_latent(eps, given)
        out[start:start + rows] = likelihood.mean(model.decode(z, given)).cpu().numpy()
    return out
