"""What ``scoehr`` and ``raw-diffusion`` share: score-network options, its training, sampling, saving.

A subclass supplies the data the score network models (latents or scaled records, flat and of a
square size) and the way back to per-code means (``_decode_mean``); records are drawn from those
means by the shared output likelihood (``decode = threshold | sample``, :mod:`..likelihood`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ehrbench.api import Generator, RunContext
from ehrbench.seeding import derive_seed
from ehrbench_plugins.generators.diffusion.options import ScoreOptions
from ehrbench_plugins.generators.diffusion.sde import VPSDE
from ehrbench_plugins.generators.likelihood import decode_records
from ehrbench_plugins.generators.torch_threads import torch_threads

if TYPE_CHECKING:  # torch and the networks are imported when a model is fitted, loaded or sampled
    import torch

    from ehrbench_plugins.generators.diffusion.score import GaussianPrior, MarginalPrior, Score
    from ehrbench_plugins.generators.diffusion.unet import UNet

__all__ = ["DiffusionGenerator", "ScoreOptions"]

WEIGHTS = "weights.pt"
META = "model.json"


class DiffusionGenerator(Generator):
    """Shared fit/sample/save logic around one VP-SDE score network."""

    uses_torch = True
    sde = VPSDE()

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.score_net: UNet | None = None
        self.prior: GaussianPrior | MarginalPrior | None = None  # with the gaussian_prior / marginal_prior option
        self.n_codes: int | None = None
        self._log: dict[str, list[float]] = {}

    # -- what subclasses provide -----------------------------------------------------------
    def _extra_modules(self) -> dict[str, torch.nn.Module]:
        """Trained modules besides the score network (saved and counted with it)."""
        return {}

    def _extra_state(self) -> dict[str, Any]:
        """JSON-ready fitted values besides weights (e.g. a scaling)."""
        return {}

    def _restore(self, state: dict[str, Any], device: torch.device) -> None:
        """Rebuild the subclass's modules from ``_extra_state`` before weights are loaded."""

    def _decode_mean(self, states: torch.Tensor) -> torch.Tensor:
        """Final diffusion states → per-code means (probabilities, or expected counts ≥ 0)."""
        raise NotImplementedError

    def _is_binary(self) -> bool:
        """Whether the fitted model produces 0/1 records."""
        raise NotImplementedError

    # -- shared machinery -------------------------------------------------------------------
    @staticmethod
    def _check_train(X_train: np.ndarray, name: str) -> np.ndarray:
        X = np.asarray(X_train, dtype=np.float32)
        if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
            raise ValueError(f"{name}: expected a 2-D patients × codes matrix with rows and codes, got shape {X.shape}")
        return X

    def _train_score_net(self, data: torch.Tensor, ctx: RunContext) -> None:
        """Denoising score matching on the flat rows of ``data`` (already on the device)."""
        import torch

        from ehrbench_plugins.generators.diffusion.execution import numerics
        from ehrbench_plugins.generators.diffusion.training import (
            dsm_loss,
            make_generator,
            scorenet_lr_factor,
            seeded_global,
            train_minibatches,
        )
        from ehrbench_plugins.generators.diffusion.unet import UNet

        o = self.options
        device = data.device
        with seeded_global(derive_seed(ctx.seed, "score-net", "global"), device), numerics(o, device):
            self.score_net = UNet(o.unet_config(data.shape[1])).to(device)
            self.prior = self._new_prior(data.shape[1], device)
            if self.prior is not None:
                self.prior.fit(data)
            optimizer = torch.optim.Adam(self.score_net.parameters(), lr=o.lr)
            generator = make_generator(device, derive_seed(ctx.seed, "score-net", "batches"))
            self.score_net.train()
            score = self._score()
            self._log["score_loss"] = train_minibatches(
                list(self.score_net.parameters()), data,
                lambda x0: dsm_loss(score, self.sde, x0, generator),
                optimizer, o.score_epochs, o.batch_size, generator,
                lr_factor=lambda epoch: scorenet_lr_factor(epoch, o.score_epochs, o.lr_hold_epochs),
                grad_clip=o.grad_clip, progress=ctx.progress, label="score network",
            )
        self.score_net.eval()

    def _new_prior(self, size: int, device: torch.device) -> GaussianPrior | MarginalPrior | None:
        from ehrbench_plugins.generators.diffusion.score import GaussianPrior, MarginalPrior

        if self.options.marginal_prior:
            return MarginalPrior(self.sde, size, self.options.prior_atoms).to(device)
        if self.options.gaussian_prior:
            return GaussianPrior(self.sde, size).to(device)
        return None

    def _score(self) -> Score:
        from ehrbench_plugins.generators.diffusion.score import Score

        o = self.options
        return Score(self.score_net, self.sde, o.scale_by_sigma, self.prior, o.precision, o.channels_last)

    def _saved_modules(self) -> dict[str, torch.nn.Module]:
        prior = {}
        if self.prior is not None:
            prior = {"marginal_prior" if self.options.marginal_prior else "gaussian_prior": self.prior}
        return {"score_net": self.score_net, **prior, **self._extra_modules()}

    def sample(self, n: int, ctx: RunContext) -> np.ndarray:
        if self.score_net is None or self.n_codes is None:
            raise RuntimeError(f"{self.name}: sample() was called before fit(); fit it on the train matrix first.")
        if n < 0:
            raise ValueError(f"{self.name}: cannot sample a negative number of rows ({n}).")
        with torch_threads(self.options.threads):
            return self._sample(n, ctx)

    def _sample(self, n: int, ctx: RunContext) -> np.ndarray:
        import torch

        from ehrbench_plugins.generators.diffusion.sampling import sample_states

        o = self.options
        out = np.empty((n, self.n_codes), dtype=np.float32)
        start = 0
        states = sample_states(
            self._score(), self.sde, n, self.score_net.config.size, derive_seed(ctx.seed, "sample"),
            o.sampler, o.sampling_steps, o.sample_batch_size, ctx.progress, o.ode_grid_power, execution=o,
        )
        rng = ctx.rng(self.name, "decode")  # one stream, drawn batch after batch
        for batch in states:
            with torch.no_grad():
                mean = self._decode_mean(batch).cpu().numpy()
            out[start:start + mean.shape[0]] = decode_records(mean, self._is_binary(), o.decode, rng)
            start += mean.shape[0]
        return out

    def parameter_count(self) -> int | None:
        if self.score_net is None:
            return None
        from ehrbench_plugins.generators.diffusion.unet import parameter_count

        return sum(parameter_count(m) for m in self._saved_modules().values())

    def training_log(self) -> dict[str, list[float]]:
        return dict(self._log)

    def save(self, directory: Path) -> None:
        if self.score_net is None:
            raise RuntimeError(f"{self.name}: nothing to save before fit().")
        import torch

        torch.save({k: m.state_dict() for k, m in self._saved_modules().items()}, Path(directory) / WEIGHTS)
        meta = {
            "generator": self.name, "n_codes": self.n_codes, "score_size": self.score_net.config.size,
            "options": self.options_dict(), "training_log": self._log, "state": self._extra_state(),
        }
        (Path(directory) / META).write_text(json.dumps(meta))

    def load(self, directory: Path, ctx: RunContext) -> None:
        meta = json.loads((Path(directory) / META).read_text())
        if meta.get("options") != self.options_dict():
            raise ValueError(
                f"{self.name}: the saved model in {directory} was trained with other options; refit it "
                f"(start a new run or delete that directory)."
            )
        import torch

        from ehrbench_plugins.generators.diffusion.unet import UNet

        device = torch.device(ctx.device)
        self.n_codes = int(meta["n_codes"])
        self._log = {k: list(v) for k, v in meta["training_log"].items()}
        self.score_net = UNet(self.options.unet_config(int(meta["score_size"]))).to(device)
        self.prior = self._new_prior(int(meta["score_size"]), device)
        self._restore(meta["state"], device)
        weights = torch.load(Path(directory) / WEIGHTS, map_location=device, weights_only=True)
        for key, module in self._saved_modules().items():
            module.load_state_dict(weights[key])
            module.eval()
