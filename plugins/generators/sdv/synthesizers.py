"""SDV's single-table synthesizers as generators: ``tvae``, ``ctgan`` and ``gaussian-copula``.

SDV is an optional extra (``pip install 'ehrbench[sdv]'``); this module imports it only
inside ``fit``, so ``ehrbench list`` shows the three as unavailable, with the install hint,
when it is missing (``requires = ("sdv",)``).

How a matrix goes through SDV 2.x:

- Metadata is built explicitly, one column per code, never auto-detected (``column_sdtype``).
  TVAE and CTGAN see ``categorical`` codes: on counts, ``numerical`` makes ctgan fit one
  Bayesian GMM per column (about 0.24 s each) and widens the one-hot matrix; on 0/1 data
  ``categorical`` and ``boolean`` reach ctgan as the same two-level one-hot column. The
  Gaussian copula sees ``numerical`` codes with ``norm`` marginals: SDV's categorical encoder
  for it maps values one by one in Python, and its default ``beta`` marginal fits sparse counts
  badly (DESIGN.md §8 has the figures).
- Columns are named ``c00000``, ``c00001``…: fixed width, so no name is a prefix of another
  (SDV matches some parameters by prefix), and the sample's columns map back by position.
- SDV 2.x's single-table ``fit`` takes ``{table: DataFrame}`` and ``sample`` returns one.
- ctgan's column transform runs sequentially and SDV's per-value check of numeric columns is
  skipped (:mod:`.sdv_speedup`, neither changes a result); SDV is imported without
  writing into ``$HOME`` (:mod:`.sdv_env`).
- Seeds: ctgan and SDV train with NumPy's and torch's global generators. ``fit`` seeds them
  from the job's seed and restores their previous states afterwards; ``sample`` hands SDV a
  seed derived from the job's (otherwise SDV would use its fixed seed 73251).
- Fitted SDV models are not cached on disk: CTGAN's fitted object keeps, per code value, the
  indices of the training rows that have it, which together are the training matrix.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from ehrbench import Generator, RunContext, derive_seed, hookimpl

from ..likelihood import DECODER_BIASES, DecodeOptions, DecoderBias

INSTALL_HINT = "pip install 'ehrbench[sdv]'"
TABLE = "ehr"
ColumnSdtype = Literal["categorical", "numerical"]


def column_names(n_codes: int) -> list[str]:
    """SDV column names for ``n_codes`` code columns, in code order."""
    return [f"c{j:05d}" for j in range(n_codes)]


def metadata_dict(columns: list[str], sdtype: str) -> dict[str, Any]:
    """SDV 2.x metadata for one table whose every column has ``sdtype``."""
    return {"tables": {TABLE: {"columns": {c: {"sdtype": sdtype} for c in columns}}}}


@contextmanager
def seeded_global_rngs(seed: int, cuda: bool) -> Iterator[None]:
    """Seed NumPy's and torch's global generators for the block, then restore them.

    ctgan draws its minibatches, noise and conditional vectors from these global generators
    and offers no way to pass one in for training; restoring them keeps the rest of the
    process independent of this fit.
    """
    import torch

    np_state = np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if cuda else []
    with torch.random.fork_rng(devices=devices):
        np.random.set_state(np.random.RandomState(seed).get_state())
        torch.manual_seed(seed)
        try:
            yield
        finally:
            np.random.set_state(np_state)


def _check_max_rows(options: Any) -> None:
    if options.max_rows < 0 or options.max_rows == 1:
        raise ValueError(f"max_rows must be 0 (all rows) or at least 2, got {options.max_rows}")


def _positive(options: Any, *names: str) -> None:
    for name in names:
        value = getattr(options, name)
        values = value if isinstance(value, tuple) else (value,)
        if not values or any(v <= 0 for v in values):
            raise ValueError(f"{name} must be positive, got {value!r}")


class _SDVGenerator(Generator):
    """Fits one SDV single-table synthesizer on the code matrix and samples from it."""

    requires = ("sdv",)
    install_hint = INSTALL_HINT
    sdv_class: ClassVar[str]
    #: Options passed to the SDV class under the same name.
    sdv_arguments: ClassVar[tuple[str, ...]]

    def __init__(self, options: object = None) -> None:
        super().__init__(options)
        self._synthesizer: Any = None
        self._n_codes = 0

    # -- hooks for subclasses ----------------------------------------------------------------
    def _sdv_kwargs(self, ctx: RunContext) -> dict[str, Any]:
        return {name: getattr(self.options, name) for name in self.sdv_arguments}

    def _prepare(self, synthesizer: Any) -> None:
        """Adjust a synthesizer before ``fit`` (nothing by default)."""

    @contextmanager
    def _decoding(self, ctx: RunContext) -> Iterator[None]:
        """Change how the fitted model turns its output into rows while sampling (nothing by default)."""
        yield

    @contextmanager
    def _fitting(self) -> Iterator[None]:
        """Change how SDV builds the model while it fits (nothing by default)."""
        yield

    # -- the Generator contract ----------------------------------------------------------------
    def fit(self, X_train: np.ndarray, ctx: RunContext) -> None:
        import pandas as pd

        from ehrbench_plugins.generators.sdv.environment import import_sdv
        from ehrbench_plugins.generators.sdv.speedup import wide_table_workarounds

        X = np.asarray(X_train)
        if X.ndim != 2 or X.shape[0] < 2 or X.shape[1] < 1:
            raise ValueError(
                f"{self.name}: expected a 2-D patients × codes matrix with at least 2 rows and "
                f"1 column, got shape {X.shape}."
            )
        max_rows = getattr(self.options, "max_rows", 0)
        if 0 < max_rows < X.shape[0]:
            # A seeded subset bounds the per-row costs that dominate at 1,000+ codes (see profiles).
            rows = np.sort(ctx.rng(self.name, "fit-rows").choice(X.shape[0], max_rows, replace=False))
            X = X[rows]
        sdv = import_sdv()
        columns = column_names(X.shape[1])
        # Counts fit in 32-bit integers; integer dtype tells SDV the values are whole numbers.
        frame = pd.DataFrame(X.astype(np.int32), columns=columns)
        metadata = sdv.Metadata.load_from_dict(metadata_dict(columns, self.options.column_sdtype))
        synthesizer = getattr(sdv, self.sdv_class)(metadata, **self._sdv_kwargs(ctx))
        self._prepare(synthesizer)
        ctx.progress(f"fitting SDV {self.sdv_class} on {X.shape[0]} × {X.shape[1]}")
        with seeded_global_rngs(derive_seed(ctx.seed, self.name, "fit"), ctx.device.startswith("cuda")):
            with wide_table_workarounds(), self._fitting():
                synthesizer.fit({TABLE: frame})
        self._synthesizer = synthesizer
        self._n_codes = X.shape[1]

    def sample(self, n: int, ctx: RunContext) -> np.ndarray:
        if self._synthesizer is None:
            raise RuntimeError(f"{self.name}: sample() was called before fit().")
        if n < 0:
            raise ValueError(f"{self.name}: cannot sample a negative number of rows ({n}).")
        if n == 0:
            return np.zeros((0, self._n_codes), dtype=np.float32)
        # SDV's own seeding hook: without it, every sample starts from SDV's fixed seed.
        self._synthesizer._set_random_state(derive_seed(ctx.seed, self.name, "sample"))
        with self._decoding(ctx):
            frame = self._synthesizer.sample(num_rows=n)[TABLE]
        columns = column_names(self._n_codes)
        if len(frame) != n or list(frame.columns) != columns:
            raise RuntimeError(
                f"{self.name}: SDV returned {len(frame)} rows × {frame.shape[1]} columns; "
                f"expected {n} × {self._n_codes}."
            )
        return frame.to_numpy(dtype=np.float32)


def _network_parameters(module: Any) -> int | None:
    if module is None or not hasattr(module, "parameters"):
        return None
    return int(sum(p.numel() for p in module.parameters()))


def _epoch_means(losses: Any, columns: Mapping[str, str]) -> dict[str, list[float]]:
    """Per-epoch means of SDV's loss table (one row per batch or per epoch)."""
    if losses is None or len(losses) == 0:
        return {}
    grouped = losses.groupby("Epoch", sort=True)
    return {series: [float(v) for v in grouped[column].mean()] for series, column in columns.items()}


def sampling_tvae(model: Any, seed: int) -> Any:
    """A replacement for ctgan ``TVAE.sample`` that draws each categorical column from its softmax.

    ctgan decodes a categorical column by the argmax of its output block (after a tanh, which
    keeps the order). A code present in fewer than half of the records that resemble a latent
    point is then never generated, which left TVAE's records mostly empty. This draws the
    category from softmax(logits) instead, the likelihood TVAE is trained with (its loss is the
    cross-entropy of each block); continuous spans keep ctgan's tanh. Noise and draws come from
    one ``torch.Generator`` seeded with ``seed``.
    """
    import torch

    def sample(samples: int) -> Any:
        model.decoder.eval()
        generator = torch.Generator().manual_seed(seed)
        spans = [span for info in model.transformer.output_info_list for span in info]
        rows, sigmas = [], None
        with torch.no_grad():
            for start in range(0, samples, model.batch_size):
                size = min(model.batch_size, samples - start)
                noise = torch.randn(size, model.embedding_dim, generator=generator).to(model._device)
                fake, sigmas = model.decoder(noise)
                fake = fake.cpu()
                out, col = torch.empty_like(fake), 0
                for span in spans:
                    block = fake[:, col : col + span.dim]
                    if span.activation_fn == "softmax":
                        drawn = torch.multinomial(torch.softmax(block, dim=1), 1, generator=generator)
                        out[:, col : col + span.dim] = torch.zeros_like(block).scatter_(1, drawn, 1.0)
                    else:
                        out[:, col : col + span.dim] = torch.tanh(block)
                    col += span.dim
                rows.append(out.numpy())
        return model.transformer.inverse_transform(np.concatenate(rows, axis=0), sigmas.detach().cpu().numpy())

    return sample


@contextmanager
def marginal_tvae_decoder() -> Iterator[None]:
    """While a ctgan TVAE fits, start its decoder's output at the training marginals.

    The last layer's bias of each categorical block is set to the log-frequencies of the block's
    categories in the transformed training data, so that softmax(bias) is the code's marginal and
    an untrained decoder is the independent-marginals model (``decoder_bias = marginal``, as for
    the autoencoder generators). Continuous spans keep ctgan's initialisation. The data transform
    is observed (not changed) to learn the frequencies.
    """
    import torch
    from ctgan import data_transformer
    from ctgan.synthesizers import tvae

    seen: dict[str, Any] = {}
    transform = data_transformer.DataTransformer.transform

    def observing_transform(self: Any, *args: Any, **kwargs: Any) -> Any:
        out = transform(self, *args, **kwargs)
        seen["mean"], seen["spans"] = np.asarray(out, dtype=np.float64).mean(axis=0), self.output_info_list
        return out

    def marginal_init(self: Any, embedding_dim: int, decompress_dims: Any, data_dim: int) -> None:
        init(self, embedding_dim, decompress_dims, data_dim)
        if "mean" not in seen or len(seen["mean"]) != data_dim:
            return
        bias, col = self.seq[-1].bias, 0
        with torch.no_grad():
            for span in (span for info in seen["spans"] for span in info):
                if span.activation_fn == "softmax":
                    freq = np.clip(seen["mean"][col : col + span.dim], 1e-6, None)
                    bias[col : col + span.dim] = torch.from_numpy(np.log(freq / freq.sum())).to(bias.dtype)
                col += span.dim

    # ctgan's Decoder calls super(Decoder, self), so the class stays; its __init__ is wrapped.
    init = tvae.Decoder.__init__
    data_transformer.DataTransformer.transform = observing_transform
    tvae.Decoder.__init__ = marginal_init
    try:
        yield
    finally:
        data_transformer.DataTransformer.transform = transform
        tvae.Decoder.__init__ = init


@dataclass(frozen=True)
class TVAEOptions(DecodeOptions):
    """SDV ``TVAESynthesizer`` hyperparameters; the defaults are SDV's (the ``paper`` profile).

    ``decode``: ``threshold`` is ctgan's argmax per categorical column; ``sample`` draws it from
    the column's softmax (:func:`sampling_tvae`). ``decoder_bias``: ``constant`` keeps ctgan's
    initialisation; ``marginal`` starts each column's output at its training frequencies
    (:func:`marginal_tvae_decoder`).
    """

    epochs: int = 300
    batch_size: int = 500
    embedding_dim: int = 128
    compress_dims: tuple[int, ...] = (128, 128)
    decompress_dims: tuple[int, ...] = (128, 128)
    l2scale: float = 1e-5
    loss_factor: float = 2.0
    column_sdtype: ColumnSdtype = "categorical"
    max_rows: int = 0  # fit on a seeded subset of at most this many training rows; 0 = all
    decoder_bias: DecoderBias = "constant"

    def __post_init__(self) -> None:
        self.check_likelihood()
        if self.decoder_bias not in DECODER_BIASES:
            raise ValueError(f"decoder_bias must be one of {', '.join(DECODER_BIASES)}, got {self.decoder_bias!r}")
        _positive(self, "epochs", "batch_size", "embedding_dim", "compress_dims", "decompress_dims")
        _check_max_rows(self)


class TVAE(_SDVGenerator):
    """SDV's TVAE: the seed documents' tabular VAE baseline."""

    name = "tvae"
    description = "SDV TVAESynthesizer (tabular variational autoencoder)"
    Options = TVAEOptions
    uses_torch = True
    # Its quick fit + sample takes ~76 s a job, over the default run's budget (DESIGN.md §8).
    default = False
    sdv_class = "TVAESynthesizer"
    sdv_arguments = ("epochs", "batch_size", "embedding_dim", "compress_dims", "decompress_dims",
                     "l2scale", "loss_factor")
    profiles = {
        "smoke": {"epochs": 1, "batch_size": 50, "embedding_dim": 8, "compress_dims": (16,),
                  "decompress_dims": (16,), "decode": "sample", "decoder_bias": "marginal"},
        # ctgan's TVAE loss slices the output once per code: on one core an epoch on 2,000 rows
        # took 2.8 s at batch 100 and 3.6 s at batch 50, plus about 8 s of column transforms.
        # quick trains 15 epochs on 1,000 rows (750 steps of 20 rows): ~66 s to fit, ~10 s to
        # sample 13,956 rows. ctgan's argmax decoding left 72% of those records empty (no code
        # is in half the records); drawing each code from its softmax (decode = sample) gives
        # 6.7 codes per record (real 10.7) and detection AUC 0.82 (DESIGN.md §6).
        "quick": {"epochs": 15, "batch_size": 20, "max_rows": 1000, "decode": "sample"},
        "paper": {},
    }

    def _sdv_kwargs(self, ctx: RunContext) -> dict[str, Any]:
        return {**super()._sdv_kwargs(ctx), "enable_gpu": ctx.device.startswith("cuda")}

    @contextmanager
    def _fitting(self) -> Iterator[None]:
        if self.options.decoder_bias != "marginal":
            yield
            return
        with marginal_tvae_decoder():
            yield

    @contextmanager
    def _decoding(self, ctx: RunContext) -> Iterator[None]:
        model = self._synthesizer._model
        if self.options.decode != "sample" or model is None:
            yield
            return
        model.sample = sampling_tvae(model, derive_seed(ctx.seed, self.name, "decode"))
        try:
            yield
        finally:
            del model.sample  # the instance attribute shadowed ctgan's method

    def parameter_count(self) -> int | None:
        model = getattr(self._synthesizer, "_model", None)
        return _network_parameters(getattr(model, "decoder", None))

    def training_log(self) -> dict[str, list[float]]:
        if self._synthesizer is None:
            return {}
        return _epoch_means(self._synthesizer.get_loss_values(), {"loss": "Loss"})


@dataclass(frozen=True)
class CTGANOptions:
    """SDV ``CTGANSynthesizer`` hyperparameters; the defaults are SDV's (the ``paper`` profile)."""

    epochs: int = 300
    batch_size: int = 500
    embedding_dim: int = 128
    generator_dim: tuple[int, ...] = (256, 256)
    discriminator_dim: tuple[int, ...] = (256, 256)
    generator_lr: float = 2e-4
    discriminator_lr: float = 2e-4
    discriminator_steps: int = 1
    pac: int = 10
    log_frequency: bool = True
    column_sdtype: ColumnSdtype = "categorical"
    max_rows: int = 0  # fit on a seeded subset of at most this many training rows; 0 = all

    def __post_init__(self) -> None:
        _positive(self, "epochs", "batch_size", "embedding_dim", "generator_dim", "discriminator_dim",
                  "generator_lr", "discriminator_lr", "discriminator_steps", "pac")
        _check_max_rows(self)
        if self.batch_size % 2 or self.batch_size % self.pac:
            raise ValueError(
                f"batch_size ({self.batch_size}) must be even and a multiple of pac ({self.pac})"
            )


class CTGAN(_SDVGenerator):
    """SDV's CTGAN: a conditional GAN with mode-specific normalisation."""

    name = "ctgan"
    description = "SDV CTGANSynthesizer (conditional tabular GAN)"
    Options = CTGANOptions
    uses_torch = True
    default = False  # quick fit + sample takes about 142 s on one core; runs when named
    sdv_class = "CTGANSynthesizer"
    sdv_arguments = ("epochs", "batch_size", "embedding_dim", "generator_dim", "discriminator_dim",
                     "generator_lr", "discriminator_lr", "discriminator_steps", "pac", "log_frequency")
    profiles = {
        "smoke": {"epochs": 1, "batch_size": 20, "embedding_dim": 8, "generator_dim": (16,),
                  "discriminator_dim": (16,), "pac": 2},
        # A step costs about 1 s on one core at 1,071 codes whatever the batch (autograd through
        # one Gumbel softmax per code), and sampling runs in batches of batch_size. quick takes
        # 100 steps of 20 rows (2 epochs on 1,000 rows): 97 s to fit, 45 s to sample 13,956 rows,
        # 15.2 codes per record against 10.7 (60 steps of 100 rows gave 31; 20 steps, 177).
        # Over the ~90 s target, but fewer steps give far too many codes. DESIGN.md §8.
        "quick": {"epochs": 2, "batch_size": 20, "max_rows": 1000},
        "paper": {},
    }

    def _sdv_kwargs(self, ctx: RunContext) -> dict[str, Any]:
        return {**super()._sdv_kwargs(ctx), "enable_gpu": ctx.device.startswith("cuda")}

    def _prepare(self, synthesizer: Any) -> None:
        # SDV prints a "PerformanceAlert" listing every column (1,000+ lines) when the one-hot
        # width passes 1,000; on this data the width is known and handled, so it is skipped.
        synthesizer._print_warning = lambda data: None

    def parameter_count(self) -> int | None:
        model = getattr(self._synthesizer, "_model", None)
        return _network_parameters(getattr(model, "_generator", None))

    def training_log(self) -> dict[str, list[float]]:
        if self._synthesizer is None:
            return {}
        return _epoch_means(
            self._synthesizer.get_loss_values(),
            {"generator_loss": "Generator Loss", "discriminator_loss": "Discriminator Loss"},
        )


@dataclass(frozen=True)
class GaussianCopulaOptions:
    """SDV ``GaussianCopulaSynthesizer`` options; the defaults are SDV's (the ``paper`` profile)."""

    default_distribution: Literal["norm", "beta", "uniform", "truncnorm", "gamma", "gaussian_kde"] = "norm"
    column_sdtype: ColumnSdtype = "numerical"
    max_rows: int = 0  # fit on a seeded subset of at most this many training rows; 0 = all

    def __post_init__(self) -> None:
        _check_max_rows(self)


class GaussianCopula(_SDVGenerator):
    """SDV's Gaussian copula: per-code marginals joined by one correlation matrix."""

    name = "gaussian-copula"
    description = "SDV GaussianCopulaSynthesizer (marginals + Gaussian copula)"
    Options = GaussianCopulaOptions
    # Quick fit + sample: about 93 s on one core, over the default run's budget (DESIGN.md §8).
    default = False
    sdv_class = "GaussianCopulaSynthesizer"
    sdv_arguments = ("default_distribution",)
    profiles = {
        # On one core at 1,071 codes the fit costs about 8 s plus 16 ms per row (39.5 s on 2,000
        # rows, 71 s on 4,000) and sampling about 4 ms per row (56 s for 13,956 rows, whatever
        # the fit size): quick fits on 2,000 rows, 34 s + 60 s in a run; paper, every row.
        "smoke": {},
        "quick": {"max_rows": 2000},
        "paper": {},
    }


@hookimpl
def ehrbench_generators() -> list[type]:
    return [TVAE, CTGAN, GaussianCopula]
