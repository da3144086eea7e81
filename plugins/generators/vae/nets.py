"""The VAE's networks: an MLP encoder to a diagonal Gaussian posterior and an MLP decoder to one output per code.

SynthVAE's networks (nhsx/SynthVAE ``VAE.py``): two hidden layers of the same width with tanh, the
encoder ending in 2 × latent outputs (mean and log standard deviation). A conditional VAE feeds
extra inputs (the condition vector and its mask) to both networks; ``extra_dim`` is their width,
0 for the unconditional VAE. Weights are drawn from a caller's ``torch.Generator`` so that a fit
depends only on its seed.
"""

from __future__ import annotations

import math

import torch
from torch import nn

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}
LOG_SIGMA_RANGE = (-10.0, 5.0)  # keeps exp(log σ) finite when training (or DP noise) pushes an output far


def mlp(sizes: list[int], activation: str) -> nn.Sequential:
    """Linear layers of ``sizes`` with the activation between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class VAE(nn.Module):
    """Encoder q(z | x, extra) and decoder p(x | z, extra); the decoder returns the likelihood's η.

    With extra inputs (a condition) the prior is learned too, p(z | extra) (Sohn et al. 2015): an
    encoder that sees the whole record puts what the condition says into z as well, and a decoder
    then reads it from z; z drawn from N(0, I) would ignore the condition. The prior network moves
    z to where records with the condition lie.
    """

    def __init__(self, n_codes: int, latent_dim: int, hidden_dims: tuple[int, ...], activation: str,
                 extra_dim: int = 0) -> None:
        super().__init__()
        self.n_codes, self.latent_dim, self.extra_dim = n_codes, latent_dim, extra_dim
        self.encoder = mlp([n_codes + extra_dim, *hidden_dims, 2 * latent_dim], activation)
        self.decoder = mlp([latent_dim + extra_dim, *hidden_dims[::-1], n_codes], activation)
        self.prior = mlp([extra_dim, hidden_dims[0], 2 * latent_dim], activation) if extra_dim else None

    @property
    def output_layer(self) -> nn.Linear:
        return self.decoder[-1]  # type: ignore[return-value]

    def encode(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.encoder(x if extra is None else torch.cat([x, extra], dim=1))
        mu, log_sigma = out[:, : self.latent_dim], out[:, self.latent_dim:]
        return mu, log_sigma.clamp(*LOG_SIGMA_RANGE)

    def decode(self, z: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(z if extra is None else torch.cat([z, extra], dim=1))

    def prior_of(self, extra: torch.Tensor | None, rows: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(μ, log σ) of p(z | extra); None for the standard normal prior of the unconditional VAE."""
        if self.prior is None or extra is None:
            return None
        out = self.prior(extra.expand(rows, -1))
        return out[:, : self.latent_dim], out[:, self.latent_dim:].clamp(*LOG_SIGMA_RANGE)

    def forward(self, x: torch.Tensor, eps: torch.Tensor, extra: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(η, KL per record) for records ``x`` with reparameterisation noise ``eps`` (drawn by the caller)."""
        mu, log_sigma = self.encode(x, extra)
        z = mu + eps * log_sigma.exp()
        prior = self.prior_of(extra, x.shape[0])
        kl = kl_to_standard_normal(mu, log_sigma) if prior is None else kl_between(mu, log_sigma, *prior)
        return self.decode(z, extra), kl

    def draw_latent(self, eps: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
        """z from the prior, given standard normal ``eps``."""
        prior = self.prior_of(extra, eps.shape[0])
        return eps if prior is None else prior[0] + eps * prior[1].exp()


def kl_to_standard_normal(mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) per record, summed over latent dimensions."""
    return 0.5 * (mu.pow(2) + (2 * log_sigma).exp() - 1.0 - 2 * log_sigma).sum(dim=1)


def kl_between(mu: torch.Tensor, log_sigma: torch.Tensor, prior_mu: torch.Tensor, prior_log_sigma: torch.Tensor
               ) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(μ_p, σ_p²)) per record, summed over latent dimensions."""
    ratio = (2 * (log_sigma - prior_log_sigma)).exp()
    gap = (mu - prior_mu).pow(2) / (2 * prior_log_sigma).exp()
    return (prior_log_sigma - log_sigma + 0.5 * (ratio + gap - 1.0)).sum(dim=1)


def init_weights_(net: nn.Module, generator: torch.Generator) -> None:
    """torch's default Linear initialisation (U(±1/√fan_in) for weight and bias), drawn from ``generator``."""
    with torch.no_grad():
        for layer in net.modules():
            if isinstance(layer, nn.Linear):
                bound = 1.0 / math.sqrt(layer.in_features)
                layer.weight.copy_(torch.rand(layer.weight.shape, generator=generator) * 2 * bound - bound)
                layer.bias.copy_(torch.rand(layer.bias.shape, generator=generator) * 2 * bound - bound)


def parameter_count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters() if p.requires_grad)
