"""``raw-diffusion``: the ScoEHR score network and VP-SDE applied to the record itself, no autoencoder.

A record of d codes is zero-padded to the next square H² whose side suits the UNet (H a multiple
of patch_size · 2^(levels − 1): 1,071 → 1,296 = 36² for the paper's three levels), diffused as a
1×H×H image, and cropped back to d after sampling.

Scaling into the diffusion range [−1, 1], fitted on the train split:
- counts: x' = 2 · log1p(x) / log1p(c_j) − 1, with c_j the largest count of code j (1 if the code
  is never seen). The log compresses the heavy tail of repeat diagnoses so that one frequent code
  does not dominate the squared-error loss; absent codes sit at −1. The inverse is
  expm1((x' + 1)/2 · log1p(c_j)) after clipping x' to [−1, 1], then rounded: counts in [0, c_j].
- binary: x' = 2x − 1; a sampled value is present when x' > 0 (i.e. 0.5 on the 0/1 scale).
Decoding goes through the shared output likelihood (:mod:`.likelihood`): the clipped, unscaled value
is the per-code mean (a probability (x' + 1)/2, or an expected count), which ``decode = threshold``
rounds (the reproduction's choice) and ``decode = sample`` draws from (Bernoulli / Poisson).
Padding cells are the scaled zero (−1), which the network learns to reproduce; they are dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ehrbench.api import RunContext
from ehrbench.hookspecs import hookimpl
from ehrbench_plugins.generators.diffusion.generator import DiffusionGenerator, ScoreOptions
from ehrbench_plugins.generators.likelihood import DecodeOptions

if TYPE_CHECKING:  # torch is imported when a model is fitted or loaded, so listing plugins stays fast
    import torch


def padded_size(n_codes: int, side_multiple: int) -> int:
    """The smallest H² ≥ n_codes with H a positive multiple of ``side_multiple``."""
    side = side_multiple * max(1, math.ceil(math.sqrt(n_codes) / side_multiple))
    while side * side < n_codes:  # guard against float rounding in sqrt
        side += side_multiple
    return side * side


@dataclass(frozen=True)
class RawDiffusionOptions(ScoreOptions, DecodeOptions):
    """The score network's options; defaults are the paper's network on the padded record."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_likelihood()


# CPU profiles: fold 6×6 pixel patches into 36 channels (36×36 → 6×6) for a small two-level
# UNet predicting the noise (scale_by_sigma) on top of the per-cell Gaussian prior's score
# (without it this network never learned to keep absent codes at −1 and about half of all codes
# came out present), one epoch, the ODE sampler with 3 Heun steps. DESIGN.md §8 has the figures.
_QUICK = {
    "patch_size": 6, "channels": 16, "multipliers": (1, 2), "res_blocks": 1, "groups": 8,
    "score_epochs": 1, "batch_size": 128, "lr": 2e-3, "scale_by_sigma": True, "gaussian_prior": True,
    "sampler": "ode", "sampling_steps": 3,
}
_SMOKE = {
    "patch_size": 4, "channels": 8, "multipliers": (1, 2), "res_blocks": 1, "groups": 4,
    "score_epochs": 2, "batch_size": 128, "scale_by_sigma": True, "gaussian_prior": True,
    "sampler": "ode", "sampling_steps": 3,
}


class RawDiffusion(DiffusionGenerator):
    """VP-SDE score model on the zero-padded record viewed as an image."""

    name = "raw-diffusion"
    description = "the ScoEHR score network and VP-SDE on the zero-padded record itself (no autoencoder)"
    Options = RawDiffusionOptions
    profiles = {"paper": {}, "quick": _QUICK, "smoke": _SMOKE}

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.log_max: torch.Tensor | None = None  # log1p of each code's largest count (counts only)
        self.binary = False

    def _extra_state(self) -> dict[str, Any]:
        log_max = None if self.log_max is None else self.log_max.cpu().tolist()
        return {"binary": self.binary, "log_max": log_max}

    def _restore(self, state: dict[str, Any], device: torch.device) -> None:
        import torch

        self.binary = bool(state["binary"])
        self.log_max = None if state["log_max"] is None else torch.tensor(state["log_max"], device=device)

    def _scale(self, X: torch.Tensor) -> torch.Tensor:
        if self.binary:
            return 2.0 * X - 1.0
        return 2.0 * X.log1p() / self.log_max - 1.0

    def _mean(self, Y: torch.Tensor) -> torch.Tensor:
        """Per-code means from scaled values, clipped to the training range [−1, 1]: no overflow."""
        Y = Y.clamp(-1.0, 1.0)
        if self.binary:
            return (Y + 1.0) / 2.0
        return ((Y + 1.0) / 2.0 * self.log_max).expm1()

    def fit(self, X_train: np.ndarray, ctx: RunContext) -> None:
        import torch

        X = self._check_train(X_train, self.name)
        device = torch.device(ctx.device)
        self.n_codes = X.shape[1]
        self.binary = ctx.representation == "binary"
        data = torch.from_numpy(np.ascontiguousarray(X)).to(device)
        if not self.binary:
            self.log_max = torch.log1p(data.amax(dim=0).clamp(min=1.0))
        size = padded_size(self.n_codes, self.options.side_multiple)
        padded = torch.full((X.shape[0], size), -1.0, device=device)
        padded[:, : self.n_codes] = self._scale(data)
        del data
        self._train_score_net(padded, ctx)

    def _decode_mean(self, states: torch.Tensor) -> torch.Tensor:
        return self._mean(states[:, : self.n_codes])

    def _is_binary(self) -> bool:
        return self.binary


@hookimpl
def ehrbench_generators() -> list[type]:
    return [RawDiffusion]
