"""Training: the denoising score-matching loss, the learning-rate schedule, a seeded minibatch loop.

Every random draw (batch order, times, noise) comes from one ``torch.Generator`` on the
training device, seeded from the job's seed, so a fit is reproducible and never touches the
global RNG. Dropout is the one exception torch offers no generator for; :func:`seeded_global`
forks and restores the global state around training so it is seeded too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import nn

from ehrbench import ProgressReporter, null_progress
from ehrbench_plugins.generators.diffusion.sde import VPSDE


def make_generator(device: str | torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=torch.device(device)).manual_seed(int(seed))


@contextlib.contextmanager
def seeded_global(seed: int, device: str | torch.device) -> Iterator[None]:
    """Seed torch's global RNG (dropout draws from it) inside the block, then restore it."""
    dev = torch.device(device)
    devices = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type="cuda" if devices else "cpu"):
        torch.manual_seed(int(seed))
        yield


def stratified_times(n: int, t_min: float, T: float, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """One time in each of n equal strata of (t_min, T), uniformly inside it, then shuffled."""
    jitter = torch.rand(n, generator=generator, device=device)
    strata = torch.arange(n, device=device, dtype=torch.float32)
    t = t_min + (T - t_min) * (strata + jitter) / n
    return t[torch.randperm(n, generator=generator, device=device)]


def dsm_loss(score_net: nn.Module, sde: VPSDE, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Denoising score matching with σ² weighting: mean over the batch of ‖σ(t) s_θ(x_t, t) + ε‖²."""
    t = stratified_times(x0.shape[0], sde.t_min, sde.T, generator, x0.device)
    noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    xt = sde.perturb(x0, t, noise)
    sigma = sde.std(t).view(-1, *([1] * (x0.dim() - 1)))
    residual = sigma * score_net(xt, t).view_as(x0) + noise
    return residual.pow(2).flatten(1).sum(dim=1).mean()


def scorenet_lr_factor(epoch: int, epochs: int, hold_epochs: int = 20) -> float:
    """The original code's schedule: 1 − max(0, epoch − hold)/(epochs − 10), epoch counted from 0.

    The factor is held at 1 for ``hold_epochs`` epochs; it never drops below 0.
    """
    return max(0.0, 1.0 - max(0, epoch - hold_epochs) / max(1, epochs - 10))


def train_minibatches(
    parameters: list[nn.Parameter],
    data: torch.Tensor,
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    epochs: int,
    batch_size: int,
    generator: torch.Generator,
    lr_factor: Callable[[int], float] | None = None,
    grad_clip: float | None = None,
    progress: ProgressReporter = null_progress,
    label: str = "training",
) -> list[float]:
    """Shuffled minibatch epochs over the rows of ``data``; returns each epoch's mean loss."""
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    n = data.shape[0]
    losses: list[float] = []
    for epoch in range(epochs):
        factor = lr_factor(epoch) if lr_factor else 1.0
        for group, lr in zip(optimizer.param_groups, base_lrs):
            group["lr"] = lr * factor
        order = torch.randperm(n, generator=generator, device=data.device)
        total = torch.zeros((), device=data.device)
        batches = 0
        for start in range(0, n, batch_size):
            loss = batch_loss(data[order[start:start + batch_size]])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip is not None:
                nn.utils.clip_grad_norm_(parameters, grad_clip)
            optimizer.step()
            total += loss.detach()
            batches += 1
        losses.append(float(total) / max(batches, 1))  # one device sync per epoch
        progress(f"{label}: epoch {epoch + 1}/{epochs}, loss {losses[-1]:.4g}", completed=epoch + 1, total=epochs)
    for group, lr in zip(optimizer.param_groups, base_lrs):
        group["lr"] = lr
    return losses
