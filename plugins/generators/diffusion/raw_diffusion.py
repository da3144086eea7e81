"""``raw-diffusion``: the ScoEHR score network and VP-SDE applied to the record itself, no autoencoder.

A record of d codes is zero-padded to the next square H² whose side suits the UNet (H a multiple
of patch_size · 2^(levels − 1): 1,071 → 1,296 = 36² for the paper's three levels), diffused as a
1×H×H image, and cropped back to d after sampling.

Scaling into the diffusion range [−1, 1], fitted on the train split:
- counts: x' = 2 · log1p(x) / log1p(c_j) − 1, with c_j the largest count of code j (1 if the code
  is never seen). The log compresses the heavy tail of repeat diagnoses so that one frequent code
  does not dominate the squared-error loss; absent codes sit at −1. The inverse is
  expm1((x' + 1)/2 · log1p(c_j)) after clipping x' to [−1, 1], then rounded: counts in [0, c_j].
  With ``count_scaling = "gap"`` a present code instead maps to 1 + log(x) / log(c_j) ∈ [1, 2]
  (count 1 at 1) and an absent one to −1: presence is the same gap of 2 as on binary data, which a
  few sampler steps do not blur (log1p puts count 1 at −0.6 when c_j = 30). A value above 0 decodes
  as present, with count exp((x' − 1) · log c_j), x' clipped to [1, 2].
- binary: x' = 2x − 1; a sampled value is present when x' > 0 (i.e. 0.5 on the 0/1 scale).
Decoding goes through the shared output likelihood (:mod:`.likelihood`): the clipped, unscaled value
is the per-code mean (a probability (x' + 1)/2, or an expected count), which ``decode = threshold``
rounds (the reproduction's choice) and ``decode = sample`` draws from (Bernoulli / Poisson).
Padding cells are the scaled zero (−1), which the network learns to reproduce; they are dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ehrbench import RunContext, hookimpl
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

    count_scaling: Literal["log1p", "gap"] = "log1p"  # counts into [−1, 1]: log1p, or a presence gap (see above)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_likelihood()
        if self.count_scaling not in ("log1p", "gap"):
            raise ValueError(f"option 'count_scaling' must be log1p or gap, got {self.count_scaling!r}")


# CPU profiles: fold 6×6 pixel patches into 36 channels (36×36 → 6×6) for a small two-level UNet
# predicting the noise (scale_by_sigma) on top of the exact score of every cell's empirical
# marginal (marginal_prior, two values per cell: absent or present), with counts scaled so that
# presence is the same gap as on binary data (count_scaling = gap); the ODE sampler with 5 Heun
# steps, the fewest that keep the prior's presence rates (3 steps overshoot). At this budget the
# network adds nearly nothing to the prior: the samples are close to independent marginals, but
# no longer degenerate (the Gaussian prior's rounded samples never produced 1,017 codes).
_QUICK = {
    "patch_size": 6, "channels": 8, "multipliers": (1, 2), "res_blocks": 1, "groups": 4,
    "score_epochs": 1, "batch_size": 512, "lr": 2e-3, "scale_by_sigma": True, "marginal_prior": True,
    "prior_atoms": 2, "count_scaling": "gap", "sampler": "ode", "sampling_steps": 5, "threads": 1,
}
_SMOKE = {
    "patch_size": 4, "channels": 8, "multipliers": (1, 2), "res_blocks": 1, "groups": 4,
    "score_epochs": 2, "batch_size": 128, "scale_by_sigma": True, "marginal_prior": True,
    "prior_atoms": 2, "count_scaling": "gap", "sampler": "ode", "sampling_steps": 5, "threads": 1,
}


class RawDiffusion(DiffusionGenerator):
    """VP-SDE score model on the zero-padded record viewed as an image."""

    name = "raw-diffusion"
    description = "the ScoEHR score network and VP-SDE on the zero-padded record itself (no autoencoder)"
    Options = RawDiffusionOptions
    profiles = {"paper": {}, "quick": _QUICK, "smoke": _SMOKE}

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.log_max: torch.Tensor | None = None  # log1p (or log, for "gap") of each code's largest count
        self.binary = False

    def _extra_state(self) -> dict[str, Any]:
        log_max = None if self.log_max is None else self.log_max.cpu().tolist()
        return {"binary": self.binary, "log_max": log_max}

    def _restore(self, state: dict[str, Any], device: torch.device) -> None:
        import torch

        self.binary = bool(state["binary"])
        self.log_max = None if state["log_max"] is None else torch.tensor(state["log_max"], device=device)

    @property
    def _gap(self) -> bool:
        return self.options.count_scaling == "gap"

    def _scale(self, X: torch.Tensor) -> torch.Tensor:
        if self.binary:
            return 2.0 * X - 1.0
        if self._gap:
            import torch

            return torch.where(X > 0, 1.0 + X.clamp(min=1.0).log() / self.log_max, -1.0)
        return 2.0 * X.log1p() / self.log_max - 1.0

    def _mean(self, Y: torch.Tensor) -> torch.Tensor:
        """Per-code means from scaled values, clipped to the training range: no overflow."""
        if self._gap and not self.binary:
            return ((Y.clamp(1.0, 2.0) - 1.0) * self.log_max).exp() * (Y > 0.0)
        Y = Y.clamp(-1.0, 1.0)
        if self.binary:
            return (Y + 1.0) / 2.0
        return ((Y + 1.0) / 2.0 * self.log_max).expm1()

    def fit(self, X_train: np.ndarray, ctx: RunContext) -> None:
        from ehrbench_plugins.generators.torch_threads import torch_threads

        with torch_threads(self.options.threads):
            self._fit(X_train, ctx)

    def _fit(self, X_train: np.ndarray, ctx: RunContext) -> None:
        import torch

        X = self._check_train(X_train, self.name)
        device = torch.device(ctx.device)
        self.n_codes = X.shape[1]
        self.binary = ctx.representation == "binary"
        data = torch.from_numpy(np.ascontiguousarray(X)).to(device)
        if not self.binary:
            largest = data.amax(dim=0)
            # "gap": log c_j, at least log 2 so that a code seen only once still has a scale.
            self.log_max = largest.clamp(min=2.0).log() if self._gap else torch.log1p(largest.clamp(min=1.0))
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
