"""The variance-preserving SDE of ScoEHR (Song et al. 2021, VP-SDE with linear β).

dx = −½ β(t) x dt + √β(t) dw on t ∈ [0, T = 1], with β(t) = β_min + t (β_max − β_min),
β_min = 0.1 and β_max = 20. Its transition kernel is Gaussian:
x_t | x_0 ~ N(m(t) x_0, σ(t)² I) with

    m(t)  = exp(−¼ t² (β_max − β_min) − ½ t β_min)
    σ(t)² = 1 − exp(−½ t² (β_max − β_min) − t β_min)

so m(t)² + σ(t)² = 1 (hence "variance preserving") and x_1 is close to N(0, I).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # tensor methods only, so the SDE's coefficients need no torch import
    import torch


@dataclass(frozen=True)
class VPSDE:
    """Coefficients of the VP-SDE; every method takes a tensor of times and broadcasts."""

    beta_min: float = 0.1
    beta_max: float = 20.0
    T: float = 1.0
    t_min: float = 1e-3  # training and sampling stop at t_min: the score blows up at t = 0

    def beta(self, t: torch.Tensor) -> torch.Tensor:
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def _log_mean(self, t: torch.Tensor) -> torch.Tensor:
        return -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def mean_factor(self, t: torch.Tensor) -> torch.Tensor:
        """m(t): how much of x_0 survives in x_t."""
        return self._log_mean(t).exp()

    def variance(self, t: torch.Tensor) -> torch.Tensor:
        """σ(t)² = 1 − m(t)², computed with expm1 so it stays accurate near t = 0."""
        return -(2.0 * self._log_mean(t)).expm1()

    def std(self, t: torch.Tensor) -> torch.Tensor:
        return self.variance(t).sqrt()

    def drift(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """f(x, t) = −½ β(t) x; ``t`` has shape (batch, 1) or is a scalar."""
        return -0.5 * self.beta(t) * x

    def diffusion(self, t: torch.Tensor) -> torch.Tensor:
        """g(t) = √β(t)."""
        return self.beta(t).sqrt()

    def perturb(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = m(t) x_0 + σ(t) ε for per-row times ``t`` of shape (batch,)."""
        t = t.view(-1, *([1] * (x0.dim() - 1)))
        return self.mean_factor(t) * x0 + self.std(t) * noise
