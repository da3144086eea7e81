"""Base classes of the plugin contract (DESIGN.md §3): Generator, Metric, Dataset, RunContext.

Plugins subclass these and return the classes from their hooks; the host instantiates
them through :meth:`configure`, which validates options by name.
"""

from __future__ import annotations

import hashlib
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, get_args

import numpy as np

from ehrbench.options import build_options, options_dict
from ehrbench.seeding import derive_seed

if TYPE_CHECKING:
    from ehrbench.matrix import EHRMatrix

Representation = Literal["count", "binary"]
REPRESENTATIONS: tuple[str, ...] = get_args(Representation)
Profile = Literal["smoke", "quick", "paper"]
PROFILES: tuple[str, ...] = get_args(Profile)
Category = Literal["fidelity", "utility", "privacy"]
# What a metric may declare, in the order every leaderboard shows them.
CATEGORIES: tuple[str, ...] = get_args(Category)
# The host measures cost itself (seconds, memory, parameters); it is a leaderboard category, not a metric's.
COST = "cost"
LEADERBOARD_CATEGORIES: tuple[str, ...] = (*CATEGORIES, COST)
MAIN_KEY = "value"


class ProgressReporter(Protocol):
    """Receives progress from long steps: a message and/or completed/total units."""

    def __call__(
        self, message: str | None = None, *, completed: float | None = None, total: float | None = None
    ) -> None: ...


def null_progress(
    message: str | None = None, *, completed: float | None = None, total: float | None = None
) -> None:
    """A progress reporter that ignores everything (library use, tests)."""


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask, which container limits also set):
    how many jobs the default executor runs at once, and the size of a plugin's thread pool."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class RunContext:
    """What a generator or metric may know about the run it is part of."""

    seed: int
    device: str = "cpu"
    representation: Representation = "count"
    profile: str = "quick"
    scratch_dir: Path | None = None
    progress: ProgressReporter = field(default=null_progress, compare=False)
    # A metric's folder shared by every job of the run (the process executor's), for values that
    # depend only on the real split and the metric seed, such as models fitted on T; None when
    # the jobs share one process (remember them in memory) or no disk (Ray).
    cache_dir: Path | None = field(default=None, compare=False)

    def rng(self, *stream: object) -> np.random.Generator:
        """A NumPy generator for a named stream of this context's seed."""
        return np.random.default_rng(derive_seed(self.seed, *stream))


@dataclass(frozen=True)
class NoOptions:
    """Options of a plugin that takes none."""


def _configure(cls: Any, values: Mapping[str, Any] | None, kind: str) -> Any:
    return cls(build_options(cls.Options, values, f"{kind} '{cls.name}'"))


class _Configurable:
    Options: ClassVar[type] = NoOptions

    def __init__(self, options: Any = None) -> None:
        self.options = options if options is not None else self.Options()

    def options_dict(self) -> dict[str, Any]:
        return options_dict(self.options)


class Generator(_Configurable, ABC):
    """A synthetic-EHR generator: fit on the real train matrix, then sample rows.

    ``Options`` is the hyperparameter dataclass; ``profiles`` maps ``smoke``/``quick``/``paper``
    to the values each profile uses (anything not given keeps the dataclass default).
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    profiles: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    requires: ClassVar[tuple[str, ...]] = ()
    install_hint: ClassVar[str] = ""
    default: ClassVar[bool] = True
    calibration: ClassVar[bool] = False
    releases_real_records: ClassVar[bool] = False
    uses_torch: ClassVar[bool] = False
    # Conditional generation (optional): a generator that sets this implements :meth:`sample_conditional`,
    # and `ehrbench run --condition CODE` scores its records with a code against the real ones with it.
    conditional: ClassVar[bool] = False

    @classmethod
    def configure(cls, profile: str, overrides: Mapping[str, Any] | None = None) -> Generator:
        values = {**cls.profiles.get(profile, {}), **(overrides or {})}
        return _configure(cls, values, "generator")

    @abstractmethod
    def fit(self, X_train: np.ndarray, ctx: RunContext) -> None:
        """Learn from the real training rows (float32, patients × codes)."""

    @abstractmethod
    def sample(self, n: int, ctx: RunContext) -> np.ndarray:
        """Return ``n`` synthetic rows: finite, non-negative, integer counts (0/1 if binary)."""

    def parameter_count(self) -> int | None:
        """Number of trainable parameters, when the model has any."""
        return None

    def sample_conditional(self, n: int, ctx: RunContext, codes: Sequence[int]) -> np.ndarray:
        """``n`` rows that each contain every code of ``codes`` (column indices), for generators
        that declare ``conditional = True``; the same value contract as :meth:`sample`."""
        raise NotImplementedError(f"{self.name} does not generate conditionally")

    def privacy_guarantee(self) -> Mapping[str, float] | None:
        """The fitted model's formal differential-privacy guarantee, ``{"epsilon": ε, "delta": δ}``.

        None (the default) for a generator trained without one. The host records it with the job's
        cost and shows it as an informational privacy row; it is never ranked.
        """
        return None

    def save(self, directory: Path) -> None:
        """Write the fitted model into ``directory`` (exists, empty) so the run cache can reuse it.

        Optional: a generator that does not override it is refitted on ``--resume``. The host
        writes into a temporary directory and renames it, so ``save`` need not be atomic.
        """
        raise NotImplementedError

    def load(self, directory: Path, ctx: RunContext) -> None:
        """Restore what :meth:`save` wrote, onto ``ctx.device``; replaces :meth:`fit`."""
        raise NotImplementedError

    @classmethod
    def can_save(cls) -> bool:
        """Whether this generator overrides :meth:`save` and :meth:`load`."""
        return cls.save is not Generator.save and cls.load is not Generator.load

    def training_log(self) -> dict[str, list[float]]:
        """Per-epoch training curves by series name (e.g. ``{"generator_loss": [...]}``).

        Stored in ``results.jsonl`` and drawn in the report, so users can see divergence or
        mode collapse. Empty when the generator has no training loop.
        """
        return {}


@dataclass(frozen=True)
class Direction:
    """How a metric value ranks: higher or lower is better, or closer to ``target``."""

    higher_is_better: bool
    target: float | None = None

    def badness(self, value: float) -> float:
        """A number that is smaller for better values (used to rank)."""
        if self.target is not None:
            return abs(value - self.target)
        return -value if self.higher_is_better else value

    def describe(self) -> str:
        """The direction as text: ``higher``, ``lower`` or ``toward X`` (see :func:`direction_text`)."""
        return direction_text(self)


INFO_TEXT = "info"
_TOWARD = "toward "


def direction_text(direction: Direction | None) -> str:
    """The one text form of a direction, in ``leaderboard.csv`` and every view: ``higher``, ``lower``,
    ``toward X``, or ``info`` for an informational number (``None``)."""
    if direction is None:
        return INFO_TEXT
    if direction.target is not None:
        return f"{_TOWARD}{direction.target:g}"
    return "higher" if direction.higher_is_better else "lower"


def parse_direction(text: str) -> Direction | None:
    """The inverse of :func:`direction_text`; ``None`` for ``info``. Unknown text is a ValueError."""
    if text == INFO_TEXT:
        return None
    if text in ("higher", "lower"):
        return Direction(text == "higher")
    if text.startswith(_TOWARD):
        try:
            return Direction(False, float(text[len(_TOWARD):]))
        except ValueError:
            pass
    raise ValueError(f"not a direction: {text!r} (expected higher, lower, toward X or info)")


# The ``key_directions`` value of an informational number: reported, never ranked.
INFO = None


class Metric(_Configurable, ABC):
    """Scores a synthetic matrix against the real train and test splits.

    ``compute`` returns ``{key: value}``; the key ``"value"`` is the headline number and is
    reported under the bare metric name, other keys as ``metric.key``. ``key_directions``
    overrides the class direction for a key; ``None`` marks a key as informational (not ranked).
    """

    name: ClassVar[str]
    category: ClassVar[Category]
    higher_is_better: ClassVar[bool]
    target: ClassVar[float | None] = None
    description: ClassVar[str] = ""
    key_directions: ClassVar[Mapping[str, Direction | None]] = {}
    # Ranked sub-keys that enter the category's mean rank as entries of their own. Otherwise a
    # metric counts once there: by its headline, or (no headline) by the mean of its ranked keys.
    ranked_alone: ClassVar[frozenset[str]] = frozenset()
    # Ranked keys whose standard error compute() also returns, under standard_error_key(key): the
    # noise of the value that every repeat shares (e.g. a bootstrap over the real test rows, which
    # are the same in every repeat, so the spread over repeats never sees it). Optional: without it
    # a value's interval comes from its repeats alone. The host stores it on the key's record.
    standard_errors: ClassVar[frozenset[str]] = frozenset()
    requires: ClassVar[tuple[str, ...]] = ()
    install_hint: ClassVar[str] = ""
    default: ClassVar[bool] = True
    profiles: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    # Whether the headline value can be an axis of the report's trade-off figures, and how strongly it
    # asks to be: among a category's ranked metrics the smallest number wins; None never asks. A
    # category where no metric asks uses its first ranked metric.
    tradeoff_axis: ClassVar[int | None] = None
    # Also scored on conditional samples (`ehrbench run --condition CODE`), against the real records
    # with the code: a metric that compares distributions of codes, cheap on a few hundred rows.
    conditional: ClassVar[bool] = False

    @classmethod
    def configure(cls, overrides: Mapping[str, Any] | None = None, profile: str = "paper") -> Metric:
        """Options = dataclass defaults (the faithful protocol), then ``profiles[profile]``, then overrides.

        Profiles let a metric subsample in ``smoke``/``quick`` runs; the values used are part of
        the run manifest, so a number can be reproduced.
        """
        values = {**cls.profiles.get(profile, {}), **(overrides or {})}
        return _configure(cls, values, "metric")

    @abstractmethod
    def compute(
        self, real_train: EHRMatrix, real_test: EHRMatrix, synthetic: EHRMatrix, ctx: RunContext
    ) -> dict[str, float]:
        """Score ``synthetic``; matrices share their code columns, row counts may differ."""

    @classmethod
    def direction(cls, key: str) -> Direction | None:
        if key in {standard_error_key(k) for k in cls.standard_errors}:
            return INFO
        if key in cls.key_directions:
            return cls.key_directions[key]
        return Direction(cls.higher_is_better, cls.target)


def standard_error_key(key: str) -> str:
    """The key under which ``compute`` returns the standard error of ``key`` (``Metric.standard_errors``):
    ``se`` for the headline, ``<key>_se`` for a sub-key."""
    return "se" if key == MAIN_KEY else f"{key}_se"


def flat_key(metric: str, key: str) -> str:
    """``metric`` for the headline value, ``metric.key`` for a sub-metric."""
    return metric if key == MAIN_KEY else f"{metric}.{key}"


@dataclass(frozen=True)
class PublishedResults:
    """Numbers a paper published on a dataset, shown beside a run's own and never ranked with them.

    ``values`` maps a generator's registry name to {metric name: value}, as printed in ``source``;
    ``representation`` is the one the paper measured on, so a report can say when a run's differs.
    """

    source: str
    representation: Representation
    values: Mapping[str, Mapping[str, float]]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in ``run.json`` (``dataset.published``)."""
        return {"source": self.source, "representation": self.representation,
                "values": {g: dict(v) for g, v in self.values.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PublishedResults:
        return cls(str(data["source"]), data["representation"],
                   {str(g): {str(m): float(x) for m, x in v.items()} for g, v in data["values"].items()})


class Dataset(_Configurable, ABC):
    """Produces the real patient × code matrix; ``fingerprint`` identifies its content."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    simulated: ClassVar[bool] = False
    requires: ClassVar[tuple[str, ...]] = ()
    install_hint: ClassVar[str] = ""
    # The dataset a run uses when none is named; exactly one available dataset may claim it.
    default: ClassVar[bool] = False
    # Published results on this dataset (e.g. a paper's table), shown in the report of a run on the
    # real data (never on simulated data), in their own column.
    published: ClassVar[tuple[PublishedResults, ...]] = ()
    # Option values per run profile, like a generator's: e.g. a smaller simulated cohort for ``smoke``.
    # A run applies ``profiles[profile]`` under the user's own options; the values used are in run.json.
    profiles: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    # The option that names the one matrix file this dataset reads (e.g. "path"), if it reads one:
    # `ehrbench evaluate` reads its --train/--test/--synthetic files through such a dataset.
    file_option: ClassVar[str | None] = None

    @classmethod
    def configure(cls, overrides: Mapping[str, Any] | None = None, profile: str | None = None) -> Dataset:
        """Options = dataclass defaults, then ``profiles[profile]`` (a run's profile), then ``overrides``."""
        values = {**(cls.profiles.get(profile, {}) if profile else {}), **(overrides or {})}
        return _configure(cls, values, "dataset")

    @abstractmethod
    def load(self) -> EHRMatrix:
        """Build or read the matrix; raise :class:`ehrbench.errors.InputError` on bad input."""

    def input_files(self) -> list[Path]:
        """Files whose content defines the dataset (hashed into the fingerprint)."""
        return []

    def fingerprint(self) -> str:
        """Hash of the dataset name, its options and the content of its input files."""
        h = hashlib.sha256()
        h.update(json.dumps([self.name, self.options_dict()], sort_keys=True).encode())
        for path in self.input_files():
            h.update(file_digest(path).encode())
        return h.hexdigest()[:16]


def file_digest(path: Path) -> str:
    """SHA-256 of a file's content, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
