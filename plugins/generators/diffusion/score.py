"""The score function s_θ(x, t) built from the network's output.

ScoEHR uses the UNet's output as the score itself. With ``scale_by_sigma`` the output is divided
by σ(t) (Song et al.'s ``scale_by_sigma``), so the network predicts −ε, a quantity of unit scale
at every t. A tiny network learns that far faster than scores that grow like 1/σ(t) near t = 0,
which is why the CPU profiles use it; the paper profile keeps the original parameterisation.

With a :class:`GaussianPrior` the network's score is added to the exact score of independent
Gaussians with the training data's per-dimension mean and variance, so the network only learns
what that leaves out. A small network cannot learn the near-identity map that denoising almost
constant cells (a sparse record's absent codes) needs, and its error, amplified by 1/σ(t) near
t = 0, made raw-diffusion's samples diverge; the prior gets those cells right from the start.

A :class:`MarginalPrior` goes one step further for data with few distinct values per cell (a
record's codes: 0/1, or a handful of scaled counts): it is the exact score of the per-cell
*empirical* marginals, a mixture of Gaussians around each value a cell takes. With a network that
outputs zero, sampling it draws every code independently from its training marginal (the
independent-marginals model), so absent codes stay absent and rare codes occur at their rate;
the network learns the correlations on top.

With ``precision = 'bfloat16'`` the network alone runs under bf16 autocast and its output is
returned in the input's dtype: the σ(t) scaling, the prior and the SDE stay in float32.
"""

from __future__ import annotations

import torch
from torch import nn

from ehrbench_plugins.generators.diffusion.execution import autocast
from ehrbench_plugins.generators.diffusion.sde import VPSDE


class GaussianPrior(nn.Module):
    """∇ log p_t(x) when x_0 ~ N(mean, diag(var)): −(x − m(t)·mean) / (σ(t)² + m(t)²·var).

    The mean and variance are buffers, so they are saved and loaded with the weights.
    """

    def __init__(self, sde: VPSDE, size: int) -> None:
        super().__init__()
        self.sde = sde
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("var", torch.ones(size))

    @torch.no_grad()
    def fit(self, data: torch.Tensor) -> GaussianPrior:
        self.mean.copy_(data.mean(dim=0))
        self.var.copy_(data.var(dim=0, correction=0))
        return self

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = t.reshape(-1, 1)
        m = self.sde.mean_factor(t)
        return -(x - m * self.mean) / (self.sde.variance(t) + m * m * self.var)


class MarginalPrior(nn.Module):
    """∇ log p_t(x) when each cell of x_0 follows its empirical marginal, independently of the others.

    Cell j keeps its most frequent values a_jk (at most ``atoms``; a value beyond them is counted
    with the nearest kept one) with frequencies w_jk; the diffused marginal is
    Σ_k w_jk N(m(t)·a_jk, σ(t)²), whose score is −(x − m(t)·Σ_k r_jk a_jk) / σ(t)², with r the
    posterior weights of the atoms given x.
    """

    def __init__(self, sde: VPSDE, size: int, atoms: int = 4) -> None:
        super().__init__()
        self.sde = sde
        self.register_buffer("values", torch.zeros(atoms, size))
        self.register_buffer("log_weights", torch.full((atoms, size), -1e30))
        self.log_weights[0] = 0.0

    @torch.no_grad()
    def fit(self, data: torch.Tensor) -> MarginalPrior:
        atoms = self.values.shape[0]
        values = torch.zeros_like(self.values)
        weights = torch.zeros_like(self.values)
        for j in range(data.shape[1]):
            uniq, counts = torch.unique(data[:, j], return_counts=True)
            keep = counts.argsort(descending=True)[:atoms]
            kept, mass = uniq[keep], counts[keep].to(weights.dtype)
            if len(uniq) > atoms:  # fold the rest into the nearest kept value
                nearest = (uniq[:, None] - kept[None, :]).abs().argmin(dim=1)
                mass = torch.zeros_like(mass).index_add_(0, nearest, counts.to(weights.dtype))
            values[: len(kept), j] = kept
            weights[: len(kept), j] = mass / data.shape[0]
        used = int((weights > 0).sum(dim=0).max())  # no cell needs more atoms than this
        self.values = values[:used].contiguous()
        self.log_weights = torch.where(weights[:used] > 0, weights[:used].log(), torch.full_like(weights[:used], -1e30))
        return self

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: object, **kwargs: object) -> None:
        # fit() keeps only as many atoms as some cell uses: take the saved buffers' shape.
        for name in ("values", "log_weights"):
            saved = state_dict.get(prefix + name)
            if saved is not None:
                setattr(self, name, torch.empty(saved.shape, dtype=saved.dtype, device=getattr(self, name).device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = t.reshape(-1, 1)
        m, var = self.sde.mean_factor(t), self.sde.variance(t)
        # log w_k − (x − m a_k)² / 2σ², less the x² / 2σ² that every atom shares: linear in x.
        slope = m / var
        if self.values.shape[0] == 2:  # two atoms: the posterior of the second is a sigmoid
            a0, a1 = self.values[0], self.values[1]
            logit = (self.log_weights[1] - self.log_weights[0]) + slope * (x * (a1 - a0) - 0.5 * m * (a1 * a1 - a0 * a0))
            expected = m * (a0 + torch.sigmoid(logit) * (a1 - a0))
        else:
            a = self.values.unsqueeze(1)  # (atoms, 1, size)
            logits = self.log_weights.unsqueeze(1) + slope * (x * a - 0.5 * m * a * a)
            expected = m * (torch.softmax(logits, dim=0) * a).sum(dim=0)
        return -(x - expected) / var


class Score(nn.Module):
    """Wraps a network taking (flat x, t) so that calling it returns the score."""

    def __init__(self, net: nn.Module, sde: VPSDE, scale_by_sigma: bool,
                 prior: GaussianPrior | MarginalPrior | None = None, precision: str = "float32",
                 channels_last: bool = False) -> None:
        super().__init__()
        if hasattr(net, "channels_last"):
            from ehrbench_plugins.generators.diffusion.unet import use_channels_last

            net = use_channels_last(net, channels_last)
        self.net = net
        self.sde = sde
        self.scale_by_sigma = scale_by_sigma
        self.prior = prior
        self.precision = precision

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with autocast(self.precision, x.device.type):
            out = self.net(x, t)
        out = out.to(x.dtype)
        if self.scale_by_sigma:
            out = out / self.sde.std(t.reshape(-1, *([1] * (out.dim() - 1))))
        if self.prior is not None:
            out = out + self.prior(x, t).view_as(out)
        return out
