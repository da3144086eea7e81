"""The score function s_θ(x, t) built from the network's output.

ScoEHR uses the UNet's output as the score itself. With ``scale_by_sigma`` the output is divided
by σ(t) (Song et al.'s ``scale_by_sigma``), so the network predicts −ε, a quantity of unit scale
at every t. A tiny network learns that far faster than scores that grow like 1/σ(t) near t = 0,
which is why the CPU profiles use it; the paper profile keeps the original parameterisation.
"""

from __future__ import annotations

import torch
from torch import nn

from ehrbench_plugins.generators.diffusion.sde import VPSDE


class Score(nn.Module):
    """Wraps a network taking (flat x, t) so that calling it returns the score."""

    def __init__(self, net: nn.Module, sde: VPSDE, scale_by_sigma: bool) -> None:
        super().__init__()
        self.net = net
        self.sde = sde
        self.scale_by_sigma = scale_by_sigma

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        out = self.net(x, t)
        if self.scale_by_sigma:
            out = out / self.sde.std(t.reshape(-1, *([1] * (out.dim() - 1))))
        return out
