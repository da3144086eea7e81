"""ScoEHR's autoencoder: one linear layer each way between the record and the latent."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class Autoencoder(nn.Module):
    """One linear layer each way; Xavier-uniform weights, biases 0.01 (the original's init)."""

    def __init__(self, n_codes: int, latent: int, binary: bool) -> None:
        super().__init__()
        self.binary = binary
        self.encoder = nn.Linear(n_codes, latent)
        self.decoder = nn.Linear(latent, n_codes)
        for layer in (self.encoder, self.decoder):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.constant_(layer.bias, 0.01)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.encoder(x))

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Probabilities (binary) or non-negative expected counts."""
        logits = self.decode_logits(z)
        return torch.sigmoid(logits) if self.binary else F.relu(logits)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction loss summed over codes, averaged over the batch."""
        logits = self.decode_logits(self.encode(x))
        if self.binary:
            per_cell = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        else:
            per_cell = (F.relu(logits) - x).pow(2)
        return per_cell.sum(dim=1).mean()
