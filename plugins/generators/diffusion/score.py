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


class Score(nn.Module):
    """Wraps a network taking (flat x, t) so that calling it returns the score."""

    def __init__(self, net: nn.Module, sde: VPSDE, scale_by_sigma: bool, prior: GaussianPrior | None = None,
                 precision: str = "float32") -> None:
        super().__init__()
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
