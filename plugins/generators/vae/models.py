"""The VAE family as generators: ``synthvae`` and ``cvae`` (DESIGN.md, "The VAE family").

``synthvae`` follows NHS England's SynthVAE (nhsx/SynthVAE, ``VAE.py`` and
``Investigations/MIMIC_Runs.py``): MLP encoder and decoder of two tanh layers, a diagonal Gaussian
posterior, Adam, optional DP-SGD through Opacus with an RDP accountant. The output likelihood is
the shared one (:mod:`..likelihood`): Bernoulli on binary data, Poisson on counts, records drawn
from it at generation. ``cvae`` is the same networks given a condition vector and its mask
(:mod:`.conditions`), trained with random masks; it samples records that contain given codes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from ehrbench import Generator, RunContext, derive_seed, hookimpl

from ..likelihood import CountLoss, Decode, DecoderBias, LikelihoodOptions, OutputLikelihood
from ..torch_threads import torch_threads

if TYPE_CHECKING:
    import torch

FORMAT = "ehrbench-vae-1"


@dataclass(frozen=True)
class SynthVAEOptions(LikelihoodOptions):
    """The defaults are the ``paper`` profile (SynthVAE's MIMIC-III runs) where SynthVAE sets a value."""

    decode: Decode = "sample"  # SynthVAE samples its output distributions
    count_loss: CountLoss = "poisson"
    decoder_bias: DecoderBias = "marginal"
    latent_dim: int = 256
    hidden_dims: tuple[int, ...] = (256, 256)
    activation: Literal["tanh", "relu"] = "tanh"
    epochs: int = 5
    batch_size: int = 32
    learning_rate: float = 1e-3
    threads: int = 0  # torch CPU threads while fitting and sampling; 0 = torch's setting (honours OMP_NUM_THREADS)
    dp: bool = False  # DP-SGD through Opacus (the `dp` extra)
    target_epsilon: float = 1.0
    delta: float | None = None  # None: 1 / (training records)
    max_grad_norm: float = 1.0

    def __post_init__(self) -> None:
        self.check_likelihood()
        for name in ("latent_dim", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.threads < 0:
            raise ValueError(f"threads must be 0 or more, got {self.threads}")
        if not self.hidden_dims or min(self.hidden_dims) < 1:
            raise ValueError(f"hidden_dims must be positive layer widths, got {self.hidden_dims}")
        if self.activation not in ("tanh", "relu"):
            raise ValueError(f"activation must be tanh or relu, got {self.activation!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if not (self.target_epsilon > 0 and math.isfinite(self.target_epsilon)):
            raise ValueError(f"target_epsilon must be a positive number, got {self.target_epsilon} "
                             f"(for no privacy guarantee set dp = false)")
        if self.delta is not None and not 0 < self.delta < 1:
            raise ValueError(f"delta must be between 0 and 1, got {self.delta}")
        if not (self.max_grad_norm > 0 and math.isfinite(self.max_grad_norm)):
            raise ValueError(f"max_grad_norm must be a positive number, got {self.max_grad_norm}")


# SynthVAE's MIMIC-III runs: latent 256, hidden 256 (two tanh layers), batch 32 by Poisson sampling,
# 5 epochs, Adam at 1e-3; DP off by default there, target ε = 1 when on. quick: a smaller network and
# larger batches fit the default run's budget on one torch thread; smoke takes seconds.
PROFILES: dict[str, dict[str, Any]] = {
    "paper": {},
    "quick": {"latent_dim": 64, "hidden_dims": (256, 256), "epochs": 8, "batch_size": 256, "threads": 1},
    "smoke": {"latent_dim": 16, "hidden_dims": (64, 64), "epochs": 2, "batch_size": 128, "threads": 1},
}


class SynthVAE(Generator):
    """SynthVAE for the patient × code matrix, with an optional (ε, δ) guarantee."""

    name = "synthvae"
    description = "SynthVAE (NHS England): MLP VAE, Bernoulli/Poisson likelihood, optional DP-SGD (Opacus, ε reported)"
    Options: ClassVar[type] = SynthVAEOptions
    profiles = PROFILES
    uses_torch = True
    requires = ("torch",)
    install_hint = "pip install torch (and 'ehrbench[dp]' for dp = true)"
    default = False
    STREAM: ClassVar[str] = "synthvae"

    def __init__(self, options: object = None) -> None:
        super().__init__(options)
        self._model: Any = None
        self._binary = False
        self._log: dict[str, list[float]] = {}
        self._guarantee: dict[str, float] | None = None

    # -- what the conditional VAE changes ------------------------------------------------------
    def _extra_dim(self, n_codes: int) -> int:
        return 0

    def _random_conditions(self) -> bool:
        return False

    def _unconditional_extra(self) -> torch.Tensor | None:
        return None

    # -- fit -----------------------------------------------------------------------------------
    def fit(self, X_train: np.ndarray, ctx: RunContext) -> None:
        import torch

        from .nets import VAE, init_weights_
        from .privacy import require_opacus
        from .training import Streams, TrainSettings, train

        X = _checked_train(self.name, X_train, ctx)
        o = self.options
        if o.dp:
            require_opacus()  # before any training, so the error says what to install
        binary = ctx.representation == "binary"
        device = torch.device(ctx.device)
        likelihood = OutputLikelihood(binary, o.count_loss)
        delta = o.delta if o.delta is not None else 1.0 / X.shape[0]

        def gen(label: str) -> torch.Generator:
            return torch.Generator().manual_seed(derive_seed(ctx.seed, self.STREAM, label))

        with torch_threads(o.threads):
            with torch.random.fork_rng(devices=[]):  # torch's default init draws from the global RNG…
                model = VAE(X.shape[1], o.latent_dim, o.hidden_dims, o.activation, self._extra_dim(X.shape[1]))
            init_weights_(model, gen("init"))  # …then replaced from our own seed
            if o.decoder_bias == "marginal":
                likelihood.init_bias(model.output_layer.bias, X)
            model.to(device)
            settings = TrainSettings(o.epochs, o.batch_size, o.learning_rate, self._random_conditions(), o.dp,
                                     o.target_epsilon, delta, o.max_grad_norm)
            streams = Streams(gen("batches"), gen("noise"), gen("masks"), gen("dp-noise"))

            def on_epoch(epoch: int, total: int, losses: dict[str, float]) -> None:
                shown = ", ".join(f"{k} {v:.4g}" for k, v in losses.items())
                ctx.progress(f"epoch {epoch}/{total}: {shown}", completed=epoch, total=total)

            log, private = train(model, likelihood, X, settings, streams, device, on_epoch)
        self._model = model
        self._binary = binary
        self._log = log
        self._guarantee = None
        if private is not None:
            self._guarantee = {"epsilon": private.epsilon(), "delta": delta,
                               "noise_multiplier": private.noise_multiplier}

    # -- sample --------------------------------------------------------------------------------
    def _decode(self, n: int, ctx: RunContext, extra: torch.Tensor | None, label: str) -> np.ndarray:
        import torch

        from .training import decoded_means

        if self._model is None:
            raise RuntimeError(f"{self.name}: sample() was called before fit(); fit it on the train matrix first.")
        if n < 0:
            raise ValueError(f"{self.name}: cannot sample a negative number of rows ({n}).")
        noise = torch.Generator().manual_seed(derive_seed(ctx.seed, self.STREAM, label))
        likelihood = OutputLikelihood(self._binary, self.options.count_loss)
        with torch_threads(self.options.threads):
            self._model.to(torch.device(ctx.device))
            mean = decoded_means(self._model, likelihood, n, extra, noise, torch.device(ctx.device))
        return likelihood.decode(mean, self.options.decode, ctx.rng(self.STREAM, label, "decode"))

    def sample(self, n: int, ctx: RunContext) -> np.ndarray:
        return self._decode(n, ctx, self._unconditional_extra(), "sample")

    # -- reporting -----------------------------------------------------------------------------
    def training_log(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in self._log.items()}

    def parameter_count(self) -> int | None:
        from .nets import parameter_count

        return parameter_count(self._model) if self._model is not None else None

    def privacy_guarantee(self) -> dict[str, float] | None:
        """(ε, δ) from Opacus' RDP accountant after the steps taken; None when trained without DP."""
        return dict(self._guarantee) if self._guarantee is not None else None

    # -- model cache ---------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        import torch

        if self._model is None:
            raise RuntimeError(f"{self.name}: nothing to save before fit().")
        torch.save({k: t.detach().cpu() for k, t in self._model.state_dict().items()}, Path(directory) / "vae.pt")
        meta = {"format": FORMAT, "generator": self.name, "options": self.options_dict(), "binary": self._binary,
                "n_codes": self._model.n_codes, "training_log": self._log, "guarantee": self._guarantee}
        (Path(directory) / "model.json").write_text(json.dumps(meta, indent=1))

    def load(self, directory: Path, ctx: RunContext) -> None:
        import torch

        from .nets import VAE

        directory = Path(directory)
        meta = json.loads((directory / "model.json").read_text())
        if meta.get("format") != FORMAT or meta.get("generator") != self.name:
            raise ValueError(f"{directory / 'model.json'}: not a saved {self.name} model (format "
                             f"{meta.get('format')!r}, generator {meta.get('generator')!r}).")
        stored, o = meta["options"], self.options
        architecture = ("latent_dim", "hidden_dims", "activation", "count_loss")
        if any(stored[k] != self.options_dict()[k] for k in architecture):
            raise ValueError(f"{directory}: the saved {self.name} model was built with "
                             f"{ {k: stored[k] for k in architecture} }, but the options ask for "
                             f"{ {k: self.options_dict()[k] for k in architecture} }.")
        n_codes = int(meta["n_codes"])
        with torch.random.fork_rng(devices=[]):  # the saved weights replace torch's default init
            model = VAE(n_codes, o.latent_dim, o.hidden_dims, o.activation, self._extra_dim(n_codes))
        model.load_state_dict(torch.load(directory / "vae.pt", map_location="cpu", weights_only=True))
        self._model = model.to(ctx.device).eval()
        self._binary = bool(meta["binary"])
        self._log = {k: [float(v) for v in vals] for k, vals in meta["training_log"].items()}
        self._guarantee = meta.get("guarantee")


# The condition doubles the encoder's input and adds 2·d to the decoder's: fewer quick epochs keep its cost.
CVAE_PROFILES: dict[str, dict[str, Any]] = {**PROFILES, "quick": {**PROFILES["quick"], "epochs": 5}}


class CVAE(SynthVAE):
    """SynthVAE's networks given a condition vector and mask; samples records with given codes."""

    name = "cvae"
    profiles = CVAE_PROFILES
    description = "conditional VAE: SynthVAE's networks given codes that must be present (random masks in training)"
    conditional = True
    STREAM = "cvae"

    def _extra_dim(self, n_codes: int) -> int:
        return 2 * n_codes

    def _random_conditions(self) -> bool:
        return True

    def _unconditional_extra(self) -> torch.Tensor | None:
        from .conditions import no_condition

        return no_condition(self._model.n_codes) if self._model is not None else None

    def sample_conditional(self, n: int, ctx: RunContext, codes: Sequence[int]) -> np.ndarray:
        """``n`` records that contain every code of ``codes`` (column indices).

        The decoder is given the codes as present; a drawn record where a given code came out 0
        gets it once (count 1), so every record contains its condition.
        """
        from .conditions import given_present

        if self._model is None:
            raise RuntimeError(f"{self.name}: sample_conditional() was called before fit().")
        columns = [int(c) for c in codes]
        bad = [c for c in columns if not 0 <= c < self._model.n_codes]
        if bad:
            raise ValueError(f"{self.name}: condition columns {bad} are outside 0…{self._model.n_codes - 1}.")
        label = "conditional-" + "-".join(map(str, sorted(columns)))
        records = self._decode(n, ctx, given_present(columns, self._model.n_codes), label)
        records[:, columns] = np.maximum(records[:, columns], 1.0)
        return records


def _checked_train(name: str, X_train: np.ndarray, ctx: RunContext) -> np.ndarray:
    X = np.ascontiguousarray(X_train, dtype=np.float32)
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"{name}: expected a 2-D patients × codes matrix with at least one row and one column, "
                         f"got shape {X.shape}.")
    if not np.isfinite(X).all() or (X < 0).any():
        raise ValueError(f"{name}: the training matrix must be finite and non-negative.")
    if ctx.representation == "binary" and (X > 1).any():
        raise ValueError(f"{name}: representation is binary but the training matrix has values above 1 "
                         f"(largest {X.max():g}); pass its 0/1 view.")
    return X


@hookimpl
def ehrbench_generators() -> list[type]:
    return [SynthVAE, CVAE]
