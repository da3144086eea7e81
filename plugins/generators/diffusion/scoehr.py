"""``scoehr``: latent score-based diffusion (ScoEHR, Naseer et al., MLHC 2023).

An autoencoder (d → latent, Tanh; decoder back to d: Sigmoid + summed BCE on binary data; on
counts ReLU + summed MSE, or exp + the Poisson likelihood) is trained first. The training set is
encoded once, a VP-SDE score network (the DDPM UNet on the latent viewed as 1×H×H) is trained on
the latents, latents are sampled from the reverse SDE, and only the final state is decoded into
per-code means, from which the shared output likelihood (:mod:`.likelihood`) makes records:
thresholded at 0.5 / rounded (the original), or sampled (Bernoulli / Poisson).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ehrbench import RunContext, derive_seed, hookimpl
from ehrbench_plugins.generators.diffusion.generator import DiffusionGenerator, ScoreOptions
from ehrbench_plugins.generators.likelihood import LikelihoodOptions, OutputLikelihood

if TYPE_CHECKING:  # torch is imported when a model is fitted or loaded, so listing plugins stays fast
    import torch
    from torch import nn

    from ehrbench_plugins.generators.diffusion.autoencoder import Autoencoder


@dataclass(frozen=True)
class ScoEHROptions(ScoreOptions, LikelihoodOptions):
    latent_dim: int = 144
    ae_epochs: int = 200
    ae_batch_size: int = 256
    ae_lr: float = 1e-3
    ae_weight_decay: float = 1e-4
    standardize_latents: bool = False  # True: diffuse (z − mean)/std per latent dimension

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_likelihood()
        side = math.isqrt(self.latent_dim) if self.latent_dim > 0 else 0
        if side * side != self.latent_dim or side % self.side_multiple:
            raise ValueError(
                f"option 'latent_dim' must be a square H² with H divisible by {self.side_multiple} "
                f"(e.g. 64, 144, 256), got {self.latent_dim}"
            )
        for name in ("ae_epochs", "ae_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"option '{name}' must be at least 1, got {getattr(self, name)}")
        if not self.ae_lr > 0 or self.ae_weight_decay < 0:
            raise ValueError("option 'ae_lr' must be positive and 'ae_weight_decay' not negative")


# The decoder's likelihood on the CPU profiles (DESIGN.md §6): starting the output bias at the
# training marginals, the Poisson loss on counts and sampling the records instead of thresholding
# the mean. Each alone makes it worse; together they took the quick PCD from 39.5 to 27.1 on counts
# and the binary sample from 99% empty records to 8.6 codes per record (benchmarks/RESULTS.md).
_LIKELIHOOD = {"decode": "sample", "count_loss": "poisson", "decoder_bias": "marginal"}
# CPU profiles. A 36-d latent (6×6) and an 8-channel two-level UNet that predicts the noise
# (scale_by_sigma) on standardised latents; the probability-flow ODE with 5 Heun steps (DESIGN.md
# §8: the 144-d paper latent needs more score-network steps than the budget allows). One torch
# thread: these small networks gain little from a second one, and on a busy machine two threads
# fighting for a core made a fit many times slower (a quick medbgan fit: 540 s against 22 s).
_QUICK = {
    "latent_dim": 36, "channels": 8, "multipliers": (1, 2), "res_blocks": 1, "groups": 4,
    "ae_epochs": 3, "ae_batch_size": 256, "score_epochs": 2, "batch_size": 128, "lr": 2e-3,
    "scale_by_sigma": True, "standardize_latents": True, "sampler": "ode", "sampling_steps": 5,
    "threads": 1, **_LIKELIHOOD,
}
# Smoke: about a second on a 1,000 × 200 cohort, long enough to learn its correlations.
_SMOKE = {
    "latent_dim": 16, "channels": 8, "multipliers": (1, 2), "res_blocks": 1, "groups": 4,
    "ae_epochs": 40, "ae_batch_size": 128, "ae_lr": 5e-3, "score_epochs": 4, "batch_size": 64, "lr": 5e-3,
    "scale_by_sigma": True, "standardize_latents": True, "sampler": "ode", "sampling_steps": 3,
    "threads": 1, **_LIKELIHOOD,
}


class ScoEHR(DiffusionGenerator):
    """Autoencoder + latent VP-SDE score model."""

    name = "scoehr"
    description = "ScoEHR: autoencoder + VP-SDE score-based diffusion on the latent (Naseer et al. 2023)"
    Options = ScoEHROptions
    profiles = {"paper": {}, "quick": _QUICK, "smoke": _SMOKE}

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.autoencoder: Autoencoder | None = None
        self.latent_mean: torch.Tensor | None = None
        self.latent_std: torch.Tensor | None = None

    def _extra_modules(self) -> dict[str, nn.Module]:
        return {"autoencoder": self.autoencoder} if self.autoencoder is not None else {}

    def _extra_state(self) -> dict[str, Any]:
        if self.autoencoder is None:
            return {}
        return {"binary": bool(self.autoencoder.binary),
                "latent_mean": self.latent_mean.cpu().tolist(), "latent_std": self.latent_std.cpu().tolist()}

    def _likelihood(self, binary: bool) -> OutputLikelihood:
        return OutputLikelihood(binary, self.options.count_loss)

    def _restore(self, state: dict[str, Any], device: torch.device) -> None:
        import torch

        from ehrbench_plugins.generators.diffusion.autoencoder import Autoencoder

        self.autoencoder = Autoencoder(self.n_codes, self.options.latent_dim,
                                       self._likelihood(bool(state["binary"]))).to(device)
        self.latent_mean = torch.tensor(state["latent_mean"], device=device)
        self.latent_std = torch.tensor(state["latent_std"], device=device)

    def fit(self, X_train: np.ndarray, ctx: RunContext) -> None:
        from ehrbench_plugins.generators.torch_threads import torch_threads

        with torch_threads(self.options.threads):
            self._fit(X_train, ctx)

    def _fit(self, X_train: np.ndarray, ctx: RunContext) -> None:
        import torch

        from ehrbench_plugins.generators.diffusion.autoencoder import Autoencoder
        from ehrbench_plugins.generators.diffusion.training import make_generator, seeded_global, train_minibatches

        X = self._check_train(X_train, self.name)
        o = self.options
        device = torch.device(ctx.device)
        data = torch.from_numpy(np.ascontiguousarray(X)).to(device)
        self.n_codes = X.shape[1]
        with seeded_global(derive_seed(ctx.seed, "autoencoder", "global"), device):
            self.autoencoder = Autoencoder(X.shape[1], o.latent_dim,
                                           self._likelihood(ctx.representation == "binary")).to(device)
            if o.decoder_bias == "marginal":
                self.autoencoder.init_decoder_bias(X)
            optimizer = torch.optim.Adam(self.autoencoder.parameters(), lr=o.ae_lr, weight_decay=o.ae_weight_decay)
            self.autoencoder.train()
            self._log = {"autoencoder_loss": train_minibatches(
                list(self.autoencoder.parameters()), data, self.autoencoder.loss, optimizer,
                o.ae_epochs, o.ae_batch_size, make_generator(device, derive_seed(ctx.seed, "autoencoder", "batches")),
                progress=ctx.progress, label="autoencoder",
            )}
        self.autoencoder.eval()
        with torch.no_grad():
            latents = torch.cat([self.autoencoder.encode(chunk) for chunk in data.split(8192)])
        del data
        if o.standardize_latents:
            self.latent_mean = latents.mean(dim=0)
            self.latent_std = latents.std(dim=0).clamp(min=1e-3)
        else:
            self.latent_mean = torch.zeros(o.latent_dim, device=device)
            self.latent_std = torch.ones(o.latent_dim, device=device)
        latents = (latents - self.latent_mean) / self.latent_std
        self._train_score_net(latents, ctx)

    def _decode_mean(self, states: torch.Tensor) -> torch.Tensor:
        # The encoder's Tanh bounds every latent to [−1, 1]; a sample outside cannot be a code.
        latents = (states * self.latent_std + self.latent_mean).clamp(-1.0, 1.0)
        return self.autoencoder.decode(latents)

    def _is_binary(self) -> bool:
        return bool(self.autoencoder.binary)


@hookimpl
def ehrbench_generators() -> list[type]:
    return [ScoEHR]
