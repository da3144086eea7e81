"""Training and sampling loops of the medGAN family, following Choi et al.'s reference code.

1. Pretrain the autoencoder on shuffled mini-batches.
2. Adversarial epochs of ⌈n / batch⌉ iterations; each iteration takes ``discriminator_steps``
   discriminator steps on a fresh real batch (drawn without replacement) and a fresh fake
   batch, then one generator step. As in the reference, the generator's batch norm runs on
   its moving averages while the discriminator trains (``bn_train=False``) and on batch
   statistics while the generator trains. The generator's optimiser also updates the decoder.
3. Sampling re-estimates the batch-norm statistics on generated batches (a burn-in, on a
   copy of the generator so that sampling never changes the fitted model), then generates
   with those statistics fixed.

Every random draw comes from the generators passed in (NumPy for row indices, a CPU
``torch.Generator`` for noise and interpolation weights), so a run depends only on its seed
and not on the device's own random state.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .losses import AdversarialLoss, gradient_penalty
from .nets import Autoencoder, Decoder, MinibatchDiscriminator, ResidualGenerator

# Called after every epoch with (phase, epoch number from 1, epochs in the phase, mean losses).
EpochCallback = Callable[[str, int, int, dict[str, float]], None]
SAMPLE_CHUNK = 8192  # rows generated per forward pass when sampling


def _ignore(phase: str, epoch: int, total: int, losses: dict[str, float]) -> None:
    """An epoch callback that does nothing."""


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite: the run is reported as failed, with the epoch."""


@dataclass
class Randomness:
    """The two random streams of a fit or a sample: row indices and torch noise."""

    rows: np.random.Generator
    noise: torch.Generator

    def normal(self, rows: int, cols: int, device: torch.device) -> torch.Tensor:
        return torch.randn(rows, cols, generator=self.noise).to(device)

    def uniform(self, rows: int, cols: int, device: torch.device) -> torch.Tensor:
        return torch.rand(rows, cols, generator=self.noise).to(device)


def _check_finite(values: dict[str, float], phase: str, epoch: int) -> None:
    bad = [k for k, v in values.items() if not math.isfinite(v)]
    if bad:
        raise TrainingDiverged(
            f"training diverged: {', '.join(bad)} became {values[bad[0]]} in {phase} epoch {epoch}; "
            f"try a smaller learning_rate"
        )


def pretrain_autoencoder(
    autoencoder: Autoencoder,
    X: torch.Tensor,
    epochs: int,
    batch_size: int,
    optimizer: torch.optim.Optimizer,
    rand: Randomness,
    count_reduction: str,
    on_epoch: EpochCallback = _ignore,
) -> list[float]:
    """Minimise the reconstruction loss (the decoder's likelihood); returns each epoch's mean batch loss.

    ``count_reduction``: the loss summed over codes, or averaged over them too (``mean``).
    """
    n = X.shape[0]
    batch_size = min(batch_size, n)
    n_batches = math.ceil(n / batch_size)
    likelihood = autoencoder.decoder.likelihood
    curve = []
    autoencoder.train()
    for epoch in range(1, epochs + 1):
        order = torch.from_numpy(rand.rows.permutation(n)).to(X.device)
        total = torch.zeros((), device=X.device)
        for b in range(n_batches):
            batch = X[order[b * batch_size : (b + 1) * batch_size]]
            eta = autoencoder.decoder.logits(autoencoder.encode(batch))
            loss = likelihood.loss(eta, batch, "sum" if autoencoder.binary else count_reduction)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach()
        values = {"autoencoder_loss": float(total) / n_batches}
        _check_finite(values, "autoencoder", epoch)
        curve.append(values["autoencoder_loss"])
        on_epoch("autoencoder", epoch, epochs, values)
    return curve


@dataclass
class AdversarialSetup:
    """Networks, optimisers and schedule of the adversarial phase."""

    generator: ResidualGenerator
    decoder: Decoder
    discriminator: MinibatchDiscriminator
    generator_optimizer: torch.optim.Optimizer  # over generator and decoder parameters
    discriminator_optimizer: torch.optim.Optimizer
    loss: AdversarialLoss
    epochs: int
    batch_size: int
    discriminator_steps: int
    noise_dim: int
    sampled_records: bool = False  # the discriminator sees records drawn from the decoder's mean, not the mean
    batch_stats_in_discriminator_steps: bool = False  # the generator's batch norm during D steps: batch, not moving


def straight_through_sample(mean: torch.Tensor, binary: bool, rand: Randomness) -> torch.Tensor:
    """Records drawn from ``mean`` (Bernoulli or Poisson) whose gradient is the mean's (straight through).

    The forward value is a record like the real ones, so the discriminator cannot tell generated
    records by their fractional values; the backward pass treats the draw as the identity.
    """
    with torch.no_grad():
        if binary:
            drawn = (rand.uniform(*mean.shape, mean.device) < mean).to(mean.dtype)
        else:
            drawn = torch.poisson(mean.detach().cpu(), generator=rand.noise).to(mean.device)
    return mean + (drawn - mean).detach()


def _fake(setup: AdversarialSetup, rows: int, rand: Randomness, device: torch.device) -> torch.Tensor:
    mean = setup.decoder(setup.generator(rand.normal(rows, setup.noise_dim, device)))
    if setup.sampled_records:
        return straight_through_sample(mean, setup.decoder.binary, rand)
    return mean


def _discriminator_step(
    setup: AdversarialSetup, X: torch.Tensor, batch: int, rand: Randomness
) -> tuple[torch.Tensor, torch.Tensor]:
    """One update of the discriminator; returns (its loss, the gradient penalty or 0)."""
    device = X.device
    real = X[torch.from_numpy(rand.rows.choice(X.shape[0], size=batch, replace=False)).to(device)]
    # The reference feeds bn_train=False here: the generator's moving averages, which lag far
    # behind its batch statistics in the first hundred steps.
    setup.generator.train(setup.batch_stats_in_discriminator_steps)
    with torch.no_grad():
        fake = _fake(setup, batch, rand, device)
    D = setup.discriminator
    loss = setup.loss.discriminator(D(real), D(fake))
    penalty = torch.zeros((), device=device)
    if setup.loss.gp_weight > 0:
        # One interpolation weight per record (Gulrajani et al.) or one per batch (Baowaly et al.'s code).
        epsilon = rand.uniform(batch, 1, device) if setup.loss.gp_per_record else rand.uniform(1, 1, device).expand(batch, 1)
        penalty = gradient_penalty(D, real, fake, epsilon)
        loss = loss + setup.loss.gp_weight * penalty
    setup.discriminator_optimizer.zero_grad(set_to_none=True)
    loss.backward()
    setup.discriminator_optimizer.step()
    return loss.detach(), penalty.detach()


def _generator_step(setup: AdversarialSetup, batch: int, rand: Randomness, device: torch.device) -> torch.Tensor:
    """One update of the generator and the decoder against the frozen discriminator."""
    setup.generator.train()
    D = setup.discriminator
    D.requires_grad_(False)  # gradients flow through D to the fake records, not into D
    try:
        loss = setup.loss.generator(D(_fake(setup, batch, rand, device)))
        setup.generator_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        setup.generator_optimizer.step()
    finally:
        D.requires_grad_(True)
    return loss.detach()


def train_adversarial(
    setup: AdversarialSetup, X: torch.Tensor, rand: Randomness, on_epoch: EpochCallback = _ignore
) -> dict[str, list[float]]:
    """The adversarial phase; returns per-epoch mean losses (and the mean gradient penalty)."""
    n = X.shape[0]
    batch = min(setup.batch_size, n)
    iterations = math.ceil(n / batch)
    device = X.device
    curves: dict[str, list[float]] = {"discriminator_loss": [], "generator_loss": []}
    if setup.loss.gp_weight > 0:
        curves["gradient_penalty"] = []
    setup.decoder.train()
    setup.discriminator.train()
    for epoch in range(1, setup.epochs + 1):
        d_total = torch.zeros((), device=device)
        gp_total = torch.zeros((), device=device)
        g_total = torch.zeros((), device=device)
        for _ in range(iterations):
            for _ in range(setup.discriminator_steps):
                d_loss, penalty = _discriminator_step(setup, X, batch, rand)
                d_total += d_loss
                gp_total += penalty
            g_total += _generator_step(setup, batch, rand, device)
        d_steps = iterations * setup.discriminator_steps
        values = {"discriminator_loss": float(d_total) / d_steps, "generator_loss": float(g_total) / iterations}
        if setup.loss.gp_weight > 0:
            values["gradient_penalty"] = float(gp_total) / d_steps
        _check_finite(values, "adversarial", epoch)
        for key, value in values.items():
            curves[key].append(value)
        on_epoch("adversarial", epoch, setup.epochs, values)
    return curves


@torch.no_grad()
def generate(
    generator: ResidualGenerator,
    decoder: Decoder,
    n: int,
    noise_dim: int,
    burn_in_batches: int,
    burn_in_batch_size: int,
    rand: Randomness,
    device: torch.device,
) -> np.ndarray:
    """``n`` decoded records (floats, before rounding), after the batch-norm burn-in."""
    sampler = copy.deepcopy(generator)
    sampler.train()  # batch statistics feed the moving averages
    for _ in range(burn_in_batches):
        sampler(rand.normal(burn_in_batch_size, noise_dim, device))
    sampler.eval()
    decoder.eval()
    out = np.empty((n, decoder.linear.out_features), dtype=np.float32)
    for start in range(0, n, SAMPLE_CHUNK):
        rows = min(SAMPLE_CHUNK, n - start)
        out[start : start + rows] = decoder(sampler(rand.normal(rows, noise_dim, device))).cpu().numpy()
    return out
