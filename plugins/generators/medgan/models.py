"""The medGAN family as generators: ``medgan``, ``medwgan`` and ``medbgan`` (DESIGN.md §6).

One implementation (networks in :mod:`.nets`, loops in :mod:`.training`) whose
only difference between the three is the adversarial loss (:mod:`.losses`):

- ``medgan`` (Choi et al. 2017): non-saturating GAN loss;
- ``medwgan`` (Baowaly et al. 2019): Wasserstein critic with gradient penalty (weight 10);
- ``medbgan`` (Baowaly et al. 2019): boundary-seeking generator loss.

The ``paper`` profile is the published setup (the option defaults); ``quick`` keeps the
networks and shortens training so that fit + sample take seconds on a 2-core CPU.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from ehrbench import Generator, RunContext, derive_seed, hookimpl

from ..likelihood import LikelihoodOptions, OutputLikelihood
from ..torch_threads import torch_threads

if TYPE_CHECKING:  # torch is imported when a model is built, so listing plugins stays fast
    from .losses import AdversarialLoss
    from .training import EpochCallback

FORMAT = "ehrbench-medgan-1"
# Random streams are labelled by the family, not the member: with one seed the three start
# from the same weights and see the same batches, so they differ by their loss alone.
STREAM = "medgan-family"


@dataclass(frozen=True)
class MedGANOptions(LikelihoodOptions):
    """Hyperparameters of the reference code; the defaults are the ``paper`` profile."""

    embedding_dim: int = 128  # code size = noise size = generator width (the shortcuts need all three equal)
    generator_layers: int = 3
    discriminator_dims: tuple[int, ...] = (256, 128)
    pretrain_epochs: int = 100
    pretrain_batch_size: int = 100
    epochs: int = 1000
    batch_size: int = 1000
    discriminator_steps: int = 2
    learning_rate: float = 1e-3
    weight_decay: float = 1e-3  # L2 on every weight and bias (TF's l2_regularizer, coupled as in Adam)
    bn_decay: float = 0.99
    burn_in_batches: int = 1000  # generated batches that re-estimate batch norm before sampling
    burn_in_batch_size: int = 100
    count_reduction: Literal["sum", "mean"] = "mean"  # count loss over codes: averaged (TF's reduce_mean) or summed
    # What the discriminator sees of a generated record: the decoder's mean (the original), or a
    # record drawn from it with a straight-through gradient.
    discriminator_input: Literal["mean", "sample"] = "mean"
    # The generator's batch norm while the discriminator trains: moving averages (the original's
    # bn_train=False) or batch statistics.
    discriminator_step_bn: Literal["moving", "batch"] = "moving"
    threads: int = 0  # torch CPU threads while fitting and sampling; 0 = torch's setting (honours OMP_NUM_THREADS)

    def __post_init__(self) -> None:
        self.check_likelihood()
        positive = ("embedding_dim", "generator_layers", "pretrain_batch_size", "epochs", "discriminator_steps")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("pretrain_epochs", "burn_in_batches", "threads"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more, got {getattr(self, name)}")
        for name in ("batch_size", "burn_in_batch_size"):
            if getattr(self, name) < 2:
                raise ValueError(f"{name} must be at least 2 (batch norm needs two rows), got {getattr(self, name)}")
        if not self.discriminator_dims or min(self.discriminator_dims) < 1:
            raise ValueError(f"discriminator_dims must be positive layer widths, got {self.discriminator_dims}")
        if self.discriminator_input not in ("mean", "sample"):
            raise ValueError(f"discriminator_input must be mean or sample, got {self.discriminator_input!r}")
        if self.discriminator_step_bn not in ("moving", "batch"):
            raise ValueError(f"discriminator_step_bn must be moving or batch, got {self.discriminator_step_bn!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be 0 or more, got {self.weight_decay}")
        if not 0 <= self.bn_decay < 1:
            raise ValueError(f"bn_decay must be in [0, 1), got {self.bn_decay}")


@dataclass(frozen=True)
class MedWGANOptions(MedGANOptions):
    gp_weight: float = 10.0  # weight of the gradient penalty
    # The penalty's interpolation weight: one per batch (Baowaly et al.'s code) or one per record.
    gp_interpolation: Literal["batch", "record"] = "batch"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.gp_weight < 0:
            raise ValueError(f"gp_weight must be 0 or more, got {self.gp_weight}")
        if self.gp_interpolation not in ("batch", "record"):
            raise ValueError(f"gp_interpolation must be batch or record, got {self.gp_interpolation!r}")


# Same networks in every profile. quick (DESIGN.md §6) trains briefly and departs from the paper
# where that measurably helps at this budget, each departure a named option: the output
# likelihood (marginal decoder bias, Poisson loss summed over codes, sampled records), the
# discriminator shown sampled records with a straight-through gradient, and the generator's
# batch statistics during discriminator steps (its moving averages lag the first hundreds of steps).
# One torch thread: on a busy 2-core machine two threads made a quick medbgan fit 540 s, not 22 s.
_CPU = {
    "decode": "sample", "count_loss": "poisson", "decoder_bias": "marginal", "count_reduction": "sum",
    "discriminator_input": "sample", "discriminator_step_bn": "batch",
}
PROFILES: dict[str, dict[str, Any]] = {
    "paper": {},
    "quick": {**_CPU, "pretrain_epochs": 1, "epochs": 4, "batch_size": 200, "discriminator_steps": 1,
              "burn_in_batches": 100, "threads": 1},
    "smoke": {**_CPU, "pretrain_epochs": 10, "epochs": 20, "batch_size": 100, "burn_in_batches": 20,
              "threads": 1},
}
# medWGAN's critic steps cost twice (the gradient penalty's double backward): half the epochs, and
# two critic steps per generator step, which measured better than one at the same cost.
WGAN_PROFILES: dict[str, dict[str, Any]] = {
    **PROFILES, "quick": {**PROFILES["quick"], "epochs": 2, "discriminator_steps": 2},
    "smoke": {**PROFILES["smoke"], "epochs": 10},
}
# medBGAN's boundary-seeking loss is the least stable of the three at a few hundred generator
# steps: with 4 epochs one repeat in three reached detection AUC 0.99 on counts and another 23 %
# empty records on binary data. 12 epochs (55 s CPU a job) held every repeat near its mean
# (benchmarks/RESULTS.md, "Generator quality"); the default executor's second core pays for them.
BGAN_PROFILES: dict[str, dict[str, Any]] = {**PROFILES, "quick": {**PROFILES["quick"], "epochs": 12}}


class _MedGANFamily(Generator):
    """Shared fit / sample / save / load; subclasses pick the adversarial loss."""

    Options: ClassVar[type] = MedGANOptions
    profiles = PROFILES
    uses_torch = True
    requires = ("torch",)
    install_hint = "pip install torch"

    def __init__(self, options: object = None) -> None:
        super().__init__(options)
        self._nets: dict[str, Any] | None = None
        self._binary = False
        self._n_codes = 0
        self._log: dict[str, list[float]] = {}
        self._parameters: int | None = None

    def _loss(self) -> AdversarialLoss:
        raise NotImplementedError

    # -- fit -------------------------------------------------------------------------------
    def fit(self, X_train: np.ndarray, ctx: RunContext) -> None:
        import torch

        from .nets import (
            Autoencoder, MinibatchDiscriminator, ResidualGenerator, glorot_uniform_, parameter_count,
        )
        from .training import AdversarialSetup, Randomness, pretrain_autoencoder, train_adversarial

        X = self._checked_train(X_train, ctx)
        o = self.options
        binary = ctx.representation == "binary"
        device = torch.device(ctx.device)
        with torch_threads(o.threads):
            init = torch.Generator().manual_seed(derive_seed(ctx.seed, STREAM, "init"))
            rand = Randomness(ctx.rng(STREAM, "rows"),
                              torch.Generator().manual_seed(derive_seed(ctx.seed, STREAM, "noise")))
            d = X.shape[1]
            likelihood = OutputLikelihood(binary, o.count_loss)
            with torch.random.fork_rng(devices=[]):  # torch's default init draws from the global RNG
                autoencoder = Autoencoder(d, o.embedding_dim, likelihood)
                generator = ResidualGenerator(o.embedding_dim, o.generator_layers, binary, o.bn_decay)
                discriminator = MinibatchDiscriminator(d, o.discriminator_dims)
            for net in (autoencoder, generator, discriminator):  # …then replaced from our own seed
                glorot_uniform_(net, init)
                net.to(device)
            if o.decoder_bias == "marginal":
                likelihood.init_bias(autoencoder.decoder.linear.bias, X)
            data = torch.as_tensor(X, device=device)
            progress = _progress_callback(ctx)

            def adam(params: Any) -> torch.optim.Optimizer:
                return torch.optim.Adam(params, lr=o.learning_rate, weight_decay=o.weight_decay)

            log = {"autoencoder_loss": pretrain_autoencoder(
                autoencoder, data, o.pretrain_epochs, o.pretrain_batch_size, adam(autoencoder.parameters()),
                rand, o.count_reduction, progress,
            )}
            decoder = autoencoder.decoder
            setup = AdversarialSetup(
                generator=generator,
                decoder=decoder,
                discriminator=discriminator,
                generator_optimizer=adam([*generator.parameters(), *decoder.parameters()]),
                discriminator_optimizer=adam(discriminator.parameters()),
                loss=self._loss(),
                epochs=o.epochs,
                batch_size=o.batch_size,
                discriminator_steps=o.discriminator_steps,
                noise_dim=o.embedding_dim,
                sampled_records=o.discriminator_input == "sample",
                batch_stats_in_discriminator_steps=o.discriminator_step_bn == "batch",
            )
            log.update(train_adversarial(setup, data, rand, progress))
        self._nets = {"generator": generator, "decoder": decoder}
        self._binary = binary
        self._n_codes = d
        self._log = log
        self._parameters = parameter_count(autoencoder, generator, discriminator)

    def _checked_train(self, X_train: np.ndarray, ctx: RunContext) -> np.ndarray:
        X = np.ascontiguousarray(X_train, dtype=np.float32)
        if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
            raise ValueError(
                f"{self.name}: expected a 2-D patients × codes matrix with at least one row and one "
                f"column, got shape {X.shape}."
            )
        if not np.isfinite(X).all() or (X < 0).any():
            raise ValueError(f"{self.name}: the training matrix must be finite and non-negative.")
        if ctx.representation == "binary" and (X > 1).any():
            raise ValueError(
                f"{self.name}: representation is binary but the training matrix has values above 1 "
                f"(largest {X.max():g}); pass its 0/1 view."
            )
        return X

    # -- sample ----------------------------------------------------------------------------
    def sample(self, n: int, ctx: RunContext) -> np.ndarray:
        import torch

        from .training import Randomness, generate

        if self._nets is None:
            raise RuntimeError(f"{self.name}: sample() was called before fit(); fit it on the train matrix first.")
        if n < 0:
            raise ValueError(f"{self.name}: cannot sample a negative number of rows ({n}).")
        o = self.options
        device = torch.device(ctx.device)
        rand = Randomness(ctx.rng(STREAM, "sample-rows"),
                          torch.Generator().manual_seed(derive_seed(ctx.seed, STREAM, "sample")))
        with torch_threads(o.threads):
            generator = self._nets["generator"].to(device)
            decoder = self._nets["decoder"].to(device)
            decoded = generate(generator, decoder, n, o.embedding_dim, o.burn_in_batches,
                               o.burn_in_batch_size, rand, device)
        return decoder.likelihood.decode(decoded, o.decode, ctx.rng(STREAM, "decode"))

    # -- reporting -------------------------------------------------------------------------
    def training_log(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in self._log.items()}

    def parameter_count(self) -> int | None:
        return self._parameters

    # -- model cache -----------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        import torch

        if self._nets is None:
            raise RuntimeError(f"{self.name}: nothing to save before fit().")
        state = {k: {n: t.detach().cpu() for n, t in net.state_dict().items()} for k, net in self._nets.items()}
        torch.save(state, Path(directory) / "networks.pt")
        meta = {
            "format": FORMAT,
            "generator": self.name,
            "options": self.options_dict(),
            "binary": self._binary,
            "n_codes": self._n_codes,
            "parameters": self._parameters,
            "training_log": self._log,
        }
        (Path(directory) / "model.json").write_text(json.dumps(meta, indent=1))

    def load(self, directory: Path, ctx: RunContext) -> None:
        import torch

        from .nets import Decoder, ResidualGenerator

        directory = Path(directory)
        meta = json.loads((directory / "model.json").read_text())
        if meta.get("format") != FORMAT or meta.get("generator") != self.name:
            raise ValueError(
                f"{directory / 'model.json'}: not a saved {self.name} model (format {meta.get('format')!r}, "
                f"generator {meta.get('generator')!r})."
            )
        stored = meta["options"]
        architecture = ("embedding_dim", "generator_layers", "bn_decay", "count_loss")
        if any(stored[k] != getattr(self.options, k) for k in architecture):
            raise ValueError(
                f"{directory}: the saved {self.name} model was built with "
                f"{ {k: stored[k] for k in architecture} }, but the options ask for "
                f"{ {k: getattr(self.options, k) for k in architecture} }."
            )
        o = self.options
        state = torch.load(directory / "networks.pt", map_location=ctx.device, weights_only=True)
        with torch.random.fork_rng(devices=[]):  # the saved weights replace torch's default init
            generator = ResidualGenerator(o.embedding_dim, o.generator_layers, meta["binary"], o.bn_decay)
            decoder = Decoder(o.embedding_dim, meta["n_codes"], OutputLikelihood(bool(meta["binary"]), o.count_loss))
        generator.load_state_dict(state["generator"])
        decoder.load_state_dict(state["decoder"])
        self._nets = {"generator": generator.to(ctx.device), "decoder": decoder.to(ctx.device)}
        self._binary = bool(meta["binary"])
        self._n_codes = int(meta["n_codes"])
        self._parameters = meta["parameters"]
        self._log = {k: [float(v) for v in vals] for k, vals in meta["training_log"].items()}


def _progress_callback(ctx: RunContext) -> EpochCallback:
    """Turns the trainer's per-epoch losses into the run's progress line."""

    def on_epoch(phase: str, epoch: int, total: int, losses: dict[str, float]) -> None:
        shown = ", ".join(f"{k.replace('_loss', '')} {v:.4g}" for k, v in losses.items())
        ctx.progress(f"{phase} epoch {epoch}/{total}: {shown}", completed=epoch, total=total)

    return on_epoch


class MedGAN(_MedGANFamily):
    """Choi et al. (2017): autoencoder + residual generator, non-saturating GAN loss."""

    name = "medgan"
    description = "medGAN (Choi et al. 2017): pretrained autoencoder, residual generator, minibatch-averaging discriminator"

    def _loss(self) -> AdversarialLoss:
        from .losses import MINIMAX

        return MINIMAX


class MedWGAN(_MedGANFamily):
    """Baowaly et al. (2019): the medGAN networks with a Wasserstein critic and gradient penalty."""

    name = "medwgan"
    description = "medWGAN (Baowaly et al. 2019): medGAN with a Wasserstein critic and gradient penalty"
    Options = MedWGANOptions
    profiles = WGAN_PROFILES

    def _loss(self) -> AdversarialLoss:
        from .losses import wasserstein_gp

        return wasserstein_gp(self.options.gp_weight, self.options.gp_interpolation == "record")


class MedBGAN(_MedGANFamily):
    """Baowaly et al. (2019): the medGAN networks with a boundary-seeking generator loss."""

    name = "medbgan"
    description = "medBGAN (Baowaly et al. 2019): medGAN with a boundary-seeking generator loss"
    profiles = BGAN_PROFILES

    def _loss(self) -> AdversarialLoss:
        from .losses import BOUNDARY_SEEKING

        return BOUNDARY_SEEKING


@hookimpl
def ehrbench_generators() -> list[type]:
    return [MedGAN, MedWGAN, MedBGAN]
