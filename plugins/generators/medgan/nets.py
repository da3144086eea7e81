"""The networks of the medGAN family (Choi et al. 2017), as in the reference TensorFlow code.

- :class:`Autoencoder`: d → code → d. Binary records: tanh code, sigmoid output; counts:
  ReLU code and a ReLU output (or exp, with the Poisson likelihood; :mod:`.likelihood`). Only
  the decoder is used after pretraining.
- :class:`ResidualGenerator`: noise of the code size through bias-free linear layers, each
  with batch norm and a shortcut (``h = act(bn(W h)) + h``): ReLU, …, ReLU, then tanh
  (binary) or ReLU (counts) on the last.
- :class:`MinibatchDiscriminator`: each record concatenated with the batch mean (2d inputs)
  → 256 → 128 → 1, ReLU between; it returns logits (medGAN/medBGAN put a sigmoid on them in
  their losses, medWGAN's critic uses them as they are).

Weights and biases start as TensorFlow's default ``glorot_uniform`` initialiser sets them
(a bias of size n gets the limit √(3/n)), drawn from an explicit ``torch.Generator``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..likelihood import OutputLikelihood


def glorot_uniform_(module: nn.Module, generator: torch.Generator) -> None:
    """Re-initialise every linear layer of ``module`` like TF1's ``get_variable`` default."""
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.Linear):
                fan_out, fan_in = layer.weight.shape
                limit = math.sqrt(6.0 / (fan_in + fan_out))
                layer.weight.uniform_(-limit, limit, generator=generator)
                if layer.bias is not None:
                    n = layer.bias.shape[0]
                    limit = math.sqrt(3.0 / n)
                    layer.bias.uniform_(-limit, limit, generator=generator)


class Decoder(nn.Module):
    """code → record mean through the output likelihood: sigmoid (binary), ReLU or exp (counts)."""

    def __init__(self, embedding_dim: int, n_codes: int, likelihood: OutputLikelihood) -> None:
        super().__init__()
        self.linear = nn.Linear(embedding_dim, n_codes)
        self.likelihood = likelihood
        self.binary = likelihood.binary

    def logits(self, code: torch.Tensor) -> torch.Tensor:
        """Pre-activation output η (the likelihood's loss takes it, for a stable cross-entropy)."""
        return self.linear(code)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        return self.likelihood.mean(self.linear(code))


class Autoencoder(nn.Module):
    """d → code → d, pretrained so that the generator can work in the code space."""

    def __init__(self, n_codes: int, embedding_dim: int, likelihood: OutputLikelihood) -> None:
        super().__init__()
        self.encoder = nn.Linear(n_codes, embedding_dim)
        self.decoder = Decoder(embedding_dim, n_codes, likelihood)
        self.binary = likelihood.binary

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(x)
        return torch.tanh(h) if self.binary else F.relu(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encode(x))


class ResidualGenerator(nn.Module):
    """Noise → code: ``layers`` bias-free linear layers with batch norm and shortcuts.

    ``bn_decay`` is TensorFlow's moving-average decay (torch's momentum is 1 − decay);
    epsilon is TensorFlow's default 1e-3.
    """

    def __init__(self, width: int, layers: int, binary: bool, bn_decay: float) -> None:
        super().__init__()
        self.linears = nn.ModuleList(nn.Linear(width, width, bias=False) for _ in range(layers))
        self.norms = nn.ModuleList(
            nn.BatchNorm1d(width, eps=1e-3, momentum=1.0 - bn_decay) for _ in range(layers)
        )
        self.binary = binary

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = z
        last = len(self.linears) - 1
        for i, (linear, norm) in enumerate(zip(self.linears, self.norms)):
            a = norm(linear(h))
            if i < last:
                a = F.relu(a)
            else:
                a = torch.tanh(a) if self.binary else F.relu(a)
            h = a + h
        return h


class MinibatchDiscriminator(nn.Module):
    """[record, batch mean] → hidden (ReLU) → 1 logit, one per record.

    The first layer's weight is one (hidden × 2d) matrix as in the reference; its
    batch-mean half is applied once to the mean and broadcast, which is the same function
    at half the cost of multiplying the concatenated (batch × 2d) input.
    """

    def __init__(self, n_codes: int, hidden: Sequence[int]) -> None:
        super().__init__()
        if not hidden:
            raise ValueError("the discriminator needs at least one hidden layer")
        self.n_codes = n_codes
        self.first = nn.Linear(2 * n_codes, hidden[0])
        self.rest = nn.ModuleList(nn.Linear(a, b) for a, b in zip(hidden[:-1], hidden[1:]))
        self.out = nn.Linear(hidden[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.n_codes
        weight = self.first.weight
        mean = x.mean(dim=0, keepdim=True)
        h = F.relu(F.linear(x, weight[:, :d], self.first.bias) + F.linear(mean, weight[:, d:]))
        for layer in self.rest:
            h = F.relu(layer(h))
        return self.out(h).squeeze(1)


def parameter_count(*modules: nn.Module) -> int:
    """Trainable parameters of the given networks together."""
    return sum(p.numel() for m in modules for p in m.parameters() if p.requires_grad)
