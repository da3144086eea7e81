"""Losses of the medGAN family: the adversarial loss is the only difference between the three.

All adversarial losses take the discriminator's logits ``l`` (D = sigmoid(l)), which gives the
reference formulas in a numerically stable form: −log D = softplus(−l), −log(1 − D) =
softplus(l), and log D − log(1 − D) = l exactly.

- medGAN (non-saturating): L_D = −E log D(x) − E log(1 − D(G(z))), L_G = −E log D(G(z)).
- medBGAN (boundary seeking, Hjelm et al. 2018): L_D as medGAN,
  L_G = ½ E[(log D(G(z)) − log(1 − D(G(z))))²] = ½ E[l²].
- medWGAN (WGAN-GP, Gulrajani et al. 2017): the critic is the logit itself,
  L_D = E c(G(z)) − E c(x) + λ E[(‖∇ c(x̂)‖₂ − 1)²] with x̂ = ε x + (1 − ε) G(z), one
  ε ~ U(0, 1) per record (Gulrajani et al.) or per batch (Baowaly et al.'s code); L_G = −E c(G(z)).

The autoencoder's reconstruction loss is the decoder's output likelihood (:mod:`.likelihood`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

Critic = Callable[[torch.Tensor], torch.Tensor]


def minimax_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """−E log D(x) − E log(1 − D(G(z)))."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def non_saturating_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """−E log D(G(z))."""
    return F.softplus(-fake_logits).mean()


def boundary_seeking_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """½ E[(log D(G(z)) − log(1 − D(G(z))))²]: the generator aims at D = ½."""
    return 0.5 * (fake_logits**2).mean()


def wasserstein_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """E c(G(z)) − E c(x): minimising it widens the critic's estimate of W₁."""
    return fake_scores.mean() - real_scores.mean()


def wasserstein_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """−E c(G(z))."""
    return -fake_scores.mean()


def gradient_penalty(
    critic: Critic, real: torch.Tensor, fake: torch.Tensor, epsilon: torch.Tensor
) -> torch.Tensor:
    """E[(‖∇_x̂ c(x̂)‖₂ − 1)²] at x̂ = ε·real + (1 − ε)·fake, ``epsilon`` of shape (batch, 1).

    The critic sees the interpolated batch as a batch (its minibatch mean included), and the
    gradient of Σ c(x̂) is taken with respect to every interpolated record.
    """
    mixed = (epsilon * real + (1.0 - epsilon) * fake).requires_grad_(True)
    scores = critic(mixed)
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    return ((grad.norm(2, dim=1) - 1.0) ** 2).mean()


@dataclass(frozen=True)
class AdversarialLoss:
    """One family member's losses; ``gp_weight > 0`` adds the gradient penalty to L_D."""

    name: str
    discriminator: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    generator: Callable[[torch.Tensor], torch.Tensor]
    gp_weight: float = 0.0
    gp_per_record: bool = True  # the penalty's interpolation weight: one per record, or one per batch


MINIMAX = AdversarialLoss("non-saturating", minimax_discriminator_loss, non_saturating_generator_loss)
BOUNDARY_SEEKING = AdversarialLoss("boundary-seeking", minimax_discriminator_loss, boundary_seeking_generator_loss)


def wasserstein_gp(weight: float, per_record: bool = True) -> AdversarialLoss:
    """medWGAN's losses with gradient-penalty weight ``weight`` (10 in the paper)."""
    return AdversarialLoss("wasserstein-gp", wasserstein_critic_loss, wasserstein_generator_loss, weight, per_record)
