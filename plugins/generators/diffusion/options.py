"""The diffusion generators' options and network shape, without torch.

Kept apart from the modules that build and run the networks so that ``ehrbench list`` and
option validation never import torch (the generator modules import it when they fit or load).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Literal

Sampler = Literal["euler-maruyama", "ode"]
SAMPLERS: tuple[str, ...] = ("euler-maruyama", "ode")


@dataclass(frozen=True, kw_only=True)
class NetworkShape:
    """The score network's shape: one definition for the UNet's config and the generators' options."""

    channels: int = 128
    multipliers: tuple[int, ...] = (1, 2, 2)
    res_blocks: int = 2
    attention_resolutions: tuple[int, ...] = (16,)
    dropout: float = 0.0
    groups: int = 32
    patch_size: int = 1  # > 1: pixel-unshuffle the image into p² channels of (H/p)² first


@dataclass(frozen=True)
class UNetConfig(NetworkShape):
    """Architecture of the score network; ``size`` is the flat input size H² (H a multiple of 2^(levels−1))."""

    size: int

    @property
    def height(self) -> int:
        return math.isqrt(self.size)

    @property
    def inner_height(self) -> int:
        """Side of the feature maps the first level works on (H / patch_size)."""
        return self.height // max(self.patch_size, 1)

    def problem(self) -> str | None:
        """Why this configuration cannot be built, or None."""
        h, levels = self.height, len(self.multipliers)
        if self.size < 1 or h * h != self.size:
            return f"input size {self.size} is not a square H×H"
        if (levels < 1 or self.res_blocks < 1 or self.channels < 1 or min(self.multipliers) < 1 or self.patch_size < 1
                or self.groups < 1):
            return ("channels, res_blocks, patch_size, groups and every multiplier must be positive, with at least "
                    "one level")
        multiple = self.patch_size * 2 ** (levels - 1)
        if h % multiple:
            return (f"H = {h} must be divisible by patch_size · 2^(levels − 1) = {multiple} "
                    f"for {levels} levels and patch size {self.patch_size}")
        widths = [self.channels * m for m in self.multipliers]
        if any(w % self.groups for w in widths):
            return f"every level's channels {widths} must be divisible by the {self.groups} GroupNorm groups"
        if not 0.0 <= self.dropout < 1.0:
            return f"dropout {self.dropout} must be in [0, 1)"
        return None


# -- How the score network runs on the device (issue 20) -----------------------------------------
# None of these changes the model's definition; they choose the arithmetic and the integrator's
# machinery. The defaults are the reference path: torchsde's Euler–Maruyama in float32 with
# torch's own TF32 setting. DESIGN.md §7 says what each costs and what it was checked against.
Integrator = Literal["torchsde", "direct"]
Precision = Literal["float32", "bfloat16"]
TF32 = Literal["torch", "on", "off"]
INTEGRATORS: tuple[str, ...] = ("torchsde", "direct")
PRECISIONS: tuple[str, ...] = ("float32", "bfloat16")
TF32_MODES: tuple[str, ...] = ("torch", "on", "off")


@dataclass(frozen=True, kw_only=True)
class ExecutionOptions:
    """Device execution of the score network: integrator, CUDA graph, precision, TF32, determinism."""

    # Euler–Maruyama: torchsde's sdeint (reference), or a direct loop with the same update that
    # draws its increments on the device and never waits for the host (DESIGN.md §7).
    em_integrator: Integrator = "torchsde"
    cuda_graph: bool = False  # replay the direct loop's step as one CUDA graph (uncaptured off CUDA)
    precision: Precision = "float32"  # bfloat16: the network runs under bf16 autocast; the SDE stays float32
    tf32: TF32 = "torch"  # torch: its defaults (TF32 convolutions, IEEE matmuls); on / off: both
    deterministic: bool = True  # CUDA: deterministic cuDNN algorithms and attention, so a fit repeats
    channels_last: bool = False  # the network's feature maps and weights in NHWC, the layout tensor cores read

    def execution_problem(self, sampler: str) -> str | None:
        """Why these execution options cannot be used with ``sampler``, or None."""
        checks = (("em_integrator", INTEGRATORS), ("precision", PRECISIONS), ("tf32", TF32_MODES))
        for name, allowed in checks:
            if getattr(self, name) not in allowed:
                return f"option '{name}' must be one of {', '.join(allowed)}, got {getattr(self, name)!r}"
        if self.cuda_graph and (sampler != "euler-maruyama" or self.em_integrator != "direct"):
            return ("option 'cuda_graph' needs sampler = 'euler-maruyama' and em_integrator = 'direct' "
                    "(torchsde's loop and the ode sampler are not captured)")
        return None


@dataclass(frozen=True)
class ScoreOptions(NetworkShape, ExecutionOptions):
    """Score network, its training and its sampler; the defaults are the paper's."""

    scale_by_sigma: bool = False  # True: score = output / σ(t) (see diffusion/score.py)
    gaussian_prior: bool = False  # True: add the exact score of per-dimension Gaussians fitted to the data
    marginal_prior: bool = False  # True: add the exact score of each dimension's empirical marginal (few distinct values)
    prior_atoms: int = 4  # marginal_prior: the most frequent values kept per dimension
    score_epochs: int = 200
    batch_size: int = 256
    lr: float = 1e-3
    lr_hold_epochs: int = 20
    grad_clip: float = 1.0
    sampler: Sampler = "euler-maruyama"
    sampling_steps: int = 1000
    ode_grid_power: float = 2.0  # the ode sampler's time grid: (1 − i/N)^power
    sample_batch_size: int = 0  # 0: sized to the device
    threads: int = 0  # torch CPU threads while fitting and sampling; 0 = torch's setting (honours OMP_NUM_THREADS)

    def __post_init__(self) -> None:
        positive = ("prior_atoms", "channels", "res_blocks", "patch_size", "score_epochs", "batch_size", "sampling_steps")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"option '{name}' must be at least 1, got {getattr(self, name)}")
        for name in ("lr", "grad_clip", "ode_grid_power"):
            if not getattr(self, name) > 0:
                raise ValueError(f"option '{name}' must be positive, got {getattr(self, name)}")
        if self.sample_batch_size < 0 or self.lr_hold_epochs < 0 or self.threads < 0:
            raise ValueError("options 'sample_batch_size', 'lr_hold_epochs' and 'threads' must not be negative")
        if self.gaussian_prior and self.marginal_prior:
            raise ValueError("options 'gaussian_prior' and 'marginal_prior' exclude each other; set one")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"option 'sampler' must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        problem = self.unet_config(self.side_multiple**2).problem()
        if problem:
            raise ValueError(f"score network: {problem}")
        execution = self.execution_problem(self.sampler)
        if execution:
            raise ValueError(execution)

    def unet_config(self, size: int) -> UNetConfig:
        shape = {f.name: getattr(self, f.name) for f in fields(NetworkShape)}
        shape.update(multipliers=tuple(self.multipliers), attention_resolutions=tuple(self.attention_resolutions))
        return UNetConfig(size=size, **shape)

    @property
    def side_multiple(self) -> int:
        """H must be a multiple of this for the UNet's patches and downsampling levels."""
        return max(self.patch_size, 1) * 2 ** (len(self.multipliers) - 1)
