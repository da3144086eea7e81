"""ScoEHR's autoencoder: one linear layer each way between the record and the latent."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ehrbench_plugins.generators.likelihood import OutputLikelihood


class Autoencoder(nn.Module):
    """One linear layer each way; Xavier-uniform weights, biases 0.01 (the original's init).

    The decoder's output is read through ``likelihood``: sigmoid and cross-entropy on binary data,
    ReLU and squared error or exp and the Poisson likelihood on counts.
    """

    def __init__(self, n_codes: int, latent: int, likelihood: OutputLikelihood) -> None:
        super().__init__()
        self.likelihood = likelihood
        self.binary = likelihood.binary
        self.encoder = nn.Linear(n_codes, latent)
        self.decoder = nn.Linear(latent, n_codes)
        for layer in (self.encoder, self.decoder):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.constant_(layer.bias, 0.01)

    def init_decoder_bias(self, X: np.ndarray) -> None:
        """Start the decoder at the training marginals (``decoder_bias = marginal``)."""
        self.likelihood.init_bias(self.decoder.bias, X)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.encoder(x))

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Per-code means: probabilities (binary) or non-negative expected counts."""
        return self.likelihood.mean(self.decode_logits(z))

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction loss summed over codes, averaged over the batch."""
        return self.likelihood.loss(self.decode_logits(self.encode(x)), x)
