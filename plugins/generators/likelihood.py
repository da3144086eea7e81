"""The output likelihood of a decoder: how one value per code becomes a loss, a mean and a record.

One component for every generator whose network ends in a per-code output layer (``scoehr``'s and
the medGAN family's autoencoders, ``raw-diffusion``'s decoding, and any VAE): the choice is made
once, here, through three options that a generator's options dataclass inherits.

- ``decode``: ``threshold`` turns the decoder's mean into a record deterministically (present when
  p > 0.5 on binary data, the mean rounded on counts), as the published code does; ``sample`` draws
  the record from the likelihood (Bernoulli(p) on binary data, Poisson(mean) on counts). A rare
  code's conditional probability seldom reaches 0.5, so thresholding never produces it, and codes
  that share latent directions switch on together: sampling keeps every code's marginal.
- ``count_loss`` (counts only): ``mse`` is squared error on a ReLU output (the medGAN and ScoEHR
  reproduction code); ``poisson`` is the Poisson negative log-likelihood on a log link, whose mean
  exp(η) stays positive for rare codes instead of dying at ReLU's zero.
- ``decoder_bias``: ``constant`` keeps the architecture's initialisation; ``marginal`` starts the
  output layer's bias at the training marginals (logit p_j on binary data, log m_j for the Poisson
  loss, m_j for squared error), so the decoder starts at the independent-marginals model and
  training only has to learn the deviations.

The options and the NumPy parts import no torch; :class:`OutputLikelihood`'s loss and link import
it when called.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    import torch

Decode = Literal["threshold", "sample"]
CountLoss = Literal["mse", "poisson"]
DecoderBias = Literal["constant", "marginal"]
DECODES: tuple[str, ...] = ("threshold", "sample")
COUNT_LOSSES: tuple[str, ...] = ("mse", "poisson")
DECODER_BIASES: tuple[str, ...] = ("constant", "marginal")
MAX_LOG_RATE = 10.0  # exp(10) ≈ 22,026: the largest Poisson mean a log-link output can take


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"option '{name}' must be one of {', '.join(choices)}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class DecodeOptions:
    """How a record is drawn from the decoder's per-code mean."""

    decode: Decode = "threshold"

    def check_likelihood(self) -> None:
        _check_choice("decode", self.decode, DECODES)


@dataclass(frozen=True, kw_only=True)
class LikelihoodOptions(DecodeOptions):
    """The decoder's likelihood: decoding, the count loss and the output bias's initialisation."""

    count_loss: CountLoss = "mse"
    decoder_bias: DecoderBias = "constant"

    def check_likelihood(self) -> None:
        super().check_likelihood()
        _check_choice("count_loss", self.count_loss, COUNT_LOSSES)
        _check_choice("decoder_bias", self.decoder_bias, DECODER_BIASES)


def decode_records(mean: np.ndarray, binary: bool, decode: str, rng: np.random.Generator) -> np.ndarray:
    """Records (float32 0/1 or non-negative integer counts) from per-code means.

    ``mean`` holds probabilities (binary) or expected counts (≥ 0). ``threshold``: p > 0.5, or the
    mean rounded; ``sample``: Bernoulli(p), or Poisson(mean), drawn from ``rng``.
    """
    mean = np.asarray(mean, dtype=np.float64)
    if binary:
        p = np.clip(mean, 0.0, 1.0)
        out = p > 0.5 if decode == "threshold" else rng.random(p.shape) < p
        return out.astype(np.float32)
    rate = np.clip(np.nan_to_num(mean, nan=0.0), 0.0, float(np.exp(MAX_LOG_RATE)))
    out = np.rint(rate) if decode == "threshold" else rng.poisson(rate)
    return out.astype(np.float32)


def marginal_bias(X: np.ndarray, binary: bool, count_loss: str) -> np.ndarray:
    """The output bias at which the decoder's mean equals each code's training marginal.

    Binary: logit p_j; counts: log m_j (Poisson, log link) or m_j (squared error, ReLU). A code
    absent from the training rows gets the value of half a record (p or m = 1/(2n)), so the
    logarithms stay finite.
    """
    X = np.asarray(X)
    floor = 0.5 / max(X.shape[0], 1)
    if binary:
        p = np.clip((X > 0).mean(axis=0), floor, 1.0 - floor)
        return np.log(p / (1.0 - p)).astype(np.float32)
    m = X.mean(axis=0, dtype=np.float64)
    if count_loss == "poisson":
        return np.log(np.maximum(m, floor)).astype(np.float32)
    return m.astype(np.float32)


class OutputLikelihood:
    """The per-code likelihood of a decoder's output η (pre-activation), for binary data or counts."""

    def __init__(self, binary: bool, count_loss: str = "mse") -> None:
        _check_choice("count_loss", count_loss, COUNT_LOSSES)
        self.binary = binary
        self.count_loss = count_loss

    @property
    def poisson(self) -> bool:
        return not self.binary and self.count_loss == "poisson"

    def mean(self, eta: torch.Tensor) -> torch.Tensor:
        """The decoder's mean: sigmoid(η) (binary), exp(η) (Poisson) or ReLU(η) (squared error)."""
        import torch
        from torch.nn import functional as F

        if self.binary:
            return torch.sigmoid(eta)
        if self.poisson:
            return eta.clamp(max=MAX_LOG_RATE).exp()
        return F.relu(eta)

    def loss(self, eta: torch.Tensor, x: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
        """Negative log-likelihood (squared error for ``mse``) per record, averaged over the batch.

        ``reduction``: ``sum`` over codes (a record's loss), or ``mean`` over codes too (the medGAN
        TensorFlow code's ``reduce_mean`` for counts); ``none`` returns each record's sum over codes
        (DP-SGD needs the loss per record).
        """
        from torch.nn import functional as F

        if self.binary:
            per_cell = F.binary_cross_entropy_with_logits(eta, x, reduction="none")
        elif self.poisson:
            per_cell = F.poisson_nll_loss(eta.clamp(max=MAX_LOG_RATE), x, log_input=True, full=False,
                                          reduction="none")
        else:
            per_cell = (F.relu(eta) - x) ** 2
        if reduction == "mean":
            return per_cell.mean()
        if reduction == "none":
            return per_cell.sum(dim=1)
        return per_cell.sum(dim=1).mean()

    def marginal_bias(self, X: np.ndarray) -> np.ndarray:
        return marginal_bias(X, self.binary, self.count_loss)

    def init_bias(self, bias: torch.Tensor, X: np.ndarray) -> None:
        """Set an output layer's bias in place to the training marginals (``decoder_bias = marginal``)."""
        import torch

        with torch.no_grad():
            bias.copy_(torch.from_numpy(self.marginal_bias(X)).to(bias.device, bias.dtype))

    def decode(self, mean: np.ndarray, decode: str, rng: np.random.Generator) -> np.ndarray:
        return decode_records(mean, self.binary, decode, rng)
