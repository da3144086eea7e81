"""Run configuration: a TOML file and CLI flags with the same keys, validated by name.

Precedence: built-in defaults < TOML file < explicit CLI flags. On ``--resume`` the
configuration stored in ``run.json`` is the base, and anything the user states again
must agree with it.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from ehrbench.api import COST, LEADERBOARD_CATEGORIES, Profile, Representation
from ehrbench.errors import ConfigError, InputError, path_component
from ehrbench.options import build_options

Device = Literal["auto", "cpu", "cuda"]
DEVICES: tuple[str, ...] = get_args(Device)
# Where jobs run (ehrbench.execution.executors): in this process, one interpreter per job, Ray tasks;
# auto: one interpreter per job on every usable core where that pays, else in this process.
ExecutorName = Literal["auto", "local", "process", "ray"]
EXECUTORS: tuple[str, ...] = get_args(ExecutorName)
# Category weights of the overall ranking. Cost is shown beside the others but, by default, does not
# decide which generator is best.
DEFAULT_WEIGHTS: dict[str, float] = {**dict.fromkeys(LEADERBOARD_CATEGORIES, 1.0), COST: 0.0}

# Repeats of a smoke run unless the user sets them: the fewest that give an interval and a paired
# test, so every step of a run is exercised, in under a minute on 2 cores (benchmarks/bench_smoke.py).
SMOKE_REPEATS = 2

# Keys that may change between an interrupted run and its resumption without changing results.
RESUMABLE_KEYS = {"timeout", "out", "device", "weights", "report"}  # weights only re-rank
# Where jobs run does not change their results, so a run may resume under another executor.
RESUMABLE_KEYS |= {"executor", "ray_address", "gpus_per_job", "cpus_per_job", "jobs"}


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run; field names are the TOML keys and CLI flags."""

    name: str | None = None
    dataset: str | None = None  # None: the dataset plugin marked default
    dataset_options: dict[str, Any] = field(default_factory=dict)
    generators: list[str] | None = None
    generator_options: dict[str, Any] = field(default_factory=dict)
    # Generator rows made from a registered generator with other options, and sweeps of them:
    # {name: {generator = "my-gan", option = value or [values]}} (execution/variants.py).
    variants: dict[str, Any] = field(default_factory=dict)
    metrics: list[str] | None = None
    metric_options: dict[str, Any] = field(default_factory=dict)
    repeats: int = 3  # with profile = "smoke" and no repeats given: SMOKE_REPEATS
    profile: Profile = "quick"
    device: Device = "auto"
    seed: int = 0
    samples: int | None = None
    representation: Representation = "count"
    test_fraction: float = 0.3
    timeout: float | None = None
    out: str | None = None
    executor: ExecutorName = "auto"
    ray_address: str | None = None  # None: start a local Ray runtime; "auto": join a running cluster
    gpus_per_job: float | None = None  # Ray resources per job; None: 1 on CUDA, else 0
    cpus_per_job: float = 1.0
    # Jobs run at once: the process executor's processes (default 1; auto: one per usable core), a cap
    # on Ray's tasks in flight (default: as many as the cluster holds). The local executor runs one at a time.
    jobs: int | None = None
    # Use-case weights per category for the overall ranking, e.g. {privacy = 2} (views/ranking.py).
    weights: dict[str, float] = field(default_factory=dict)
    # Codes (as the dataset names them) to generate conditionally: every generator that can
    # (Generator.conditional) samples records with each code, scored against the real test records with it.
    conditions: list[str] = field(default_factory=list)
    # False: skip report.html and its figures (about 30 s for 20 figures); `ehrbench report` builds them later.
    report: bool = True

    def __post_init__(self) -> None:
        if self.name is not None:
            try:  # the name becomes a folder under runs/ (RunPlan.default_directory checks it again)
                path_component(self.name, "name")
            except InputError as exc:
                raise ValueError(str(exc)) from None
        if self.repeats < 1:
            raise ValueError(f"repeats must be at least 1, got {self.repeats}")
        if self.samples is not None and self.samples < 1:
            raise ValueError(f"samples must be at least 1, got {self.samples}")
        if self.timeout is not None and not (self.timeout > 0):  # NaN fails this too
            raise ValueError(f"timeout must be a positive number of seconds (inf: no timeout), got {self.timeout}")
        if self.timeout == math.inf:
            object.__setattr__(self, "timeout", None)  # an infinite deadline is no deadline
        for key in ("gpus_per_job", "cpus_per_job"):
            value = getattr(self, key)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{key} must be a finite number, got {value}")
        if self.gpus_per_job is not None and self.gpus_per_job < 0:
            raise ValueError(f"gpus_per_job must be 0 or more, got {self.gpus_per_job}")
        if self.cpus_per_job <= 0:
            raise ValueError(f"cpus_per_job must be positive, got {self.cpus_per_job}")
        if self.jobs is not None and self.jobs < 1:
            raise ValueError(f"jobs must be at least 1, got {self.jobs}")
        if self.jobs is not None and self.jobs > 1 and self.executor == "local":
            raise ValueError(f"jobs = {self.jobs} needs executor 'process' or 'ray' (--executor); the local "
                             f"executor runs one job at a time in this process")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction must be between 0 and 1, got {self.test_fraction}")
        try:
            resolve_weights(self.weights)
        except ConfigError as exc:  # re-raised as ValueError so the message names the file
            raise ValueError(str(exc)) from None
        bad = [c for c in self.conditions if not isinstance(c, str) or not c.strip()]
        if bad:
            raise ValueError(f"conditions must be code names (strings), got {bad[0]!r}")
        if len(set(self.conditions)) != len(self.conditions):
            raise ValueError(f"conditions name a code twice: {self.conditions}")
        for key in ("generator_options", "metric_options", "variants"):
            for name, table in getattr(self, key).items():
                if not isinstance(table, dict):
                    raise ValueError(f"{key}.{name} must be a table of options, got {table!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def resolve_weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    """The defaults with the user's category weights on top; bad values are a ConfigError."""
    merged = dict(DEFAULT_WEIGHTS)
    for category, value in (weights or {}).items():
        if category not in DEFAULT_WEIGHTS:
            raise ConfigError(
                f"weights: unknown category '{category}'; expected some of {', '.join(LEADERBOARD_CATEGORIES)}."
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"weights: '{category}' must be a non-negative number, got {value!r}.")
        merged[category] = float(value)
    if not any(merged.values()):
        raise ConfigError("weights: every category weight is 0; give at least one a positive weight.")
    return merged


def parse_weights(text: str) -> dict[str, float]:
    """``privacy=2,utility=1`` (the CLI's --weights) → a weights mapping."""
    out: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not key.strip():
            raise ConfigError(f"--weights expects CATEGORY=NUMBER pairs separated by commas, got {part!r}.")
    return resolve_weights(out)


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file, turning every failure into a :class:`ConfigError` naming the file."""
    if not path.is_file():
        raise ConfigError(f"{path}: configuration file not found.")
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}).") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc}).") from None


def build_config(values: dict[str, Any], where: str) -> RunConfig:
    """Validate ``values`` into a :class:`RunConfig`; unknown keys are named in the error."""
    return build_options(RunConfig, values, where, noun="key")


# Tables whose keys a flag adds to, instead of replacing the whole table: `--dataset-option seed=1`
# changes one option of the file's [dataset_options] and keeps the others.
# A `--variant NAME=...` replaces the file's [variants.NAME] and keeps the other variants.
MERGED_TABLES = ("dataset_options", "variants")
# Tables of tables merged one level deeper: `--generator-option my-gan.epochs=5` changes one
# option of [generator_options.my-gan] and keeps its others.
MERGED_NESTED_TABLES = ("generator_options",)


def _merge_tables(given: dict[str, Any], under: Mapping[str, Any]) -> None:
    """Put the keys of ``under``'s tables beneath ``given``'s, for :data:`MERGED_TABLES`."""
    for key in MERGED_TABLES:
        if isinstance(given.get(key), Mapping) and isinstance(under.get(key), Mapping):
            given[key] = {**under[key], **given[key]}
    for key in MERGED_NESTED_TABLES:
        if isinstance(given.get(key), Mapping) and isinstance(under.get(key), Mapping):
            merged = dict(under[key])
            for name, table in given[key].items():
                below = merged.get(name)
                both = isinstance(below, Mapping) and isinstance(table, Mapping)
                merged[name] = {**below, **table} if both else table
            given[key] = merged


def resolve_config(
    file: Path | None, overrides: dict[str, Any], stored: dict[str, Any] | None = None
) -> RunConfig:
    """Merge defaults, the TOML ``file`` and explicit ``overrides`` (CLI flags that were given).

    With ``stored`` (a resumed run's configuration) the stored values are the base and any
    value the user gives again must match, except the keys in :data:`RESUMABLE_KEYS`.
    """
    from_file = read_toml(file) if file else {}
    where = str(file) if file else "configuration"
    build_config(from_file, where)  # name unknown keys against the file they are in
    given = {**from_file, **{k: v for k, v in overrides.items() if v is not None}}
    _merge_tables(given, from_file)
    if stored is None:
        if given.get("profile") == "smoke" and "repeats" not in given:
            given["repeats"] = SMOKE_REPEATS
        return build_config(given, where)
    base = build_config(stored, "run.json")
    _merge_tables(given, base.to_dict())
    merged = build_config({**base.to_dict(), **given}, where)
    changed = [
        k
        for k in given
        if k not in RESUMABLE_KEYS and getattr(merged, k) != getattr(base, k)
    ]
    if changed:
        details = "; ".join(f"{k}: {getattr(base, k)!r} → {getattr(merged, k)!r}" for k in changed)
        raise ConfigError(
            f"--resume continues a run with its stored configuration, but these differ: {details}. "
            f"Drop those options, or start a new run with another --out."
        )
    return merged
