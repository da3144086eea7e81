"""``ehrbench.run`` and ``ehrbench.load_run``: a benchmark from a notebook, and its results as pandas.

A :class:`Run` reads a run directory lazily: the leaderboard, the per-repeat results and the
manifest on access, samples one at a time on demand. ``run`` takes the same keys as the TOML file
and the CLI flags, plus generator and metric *classes*, registered for that run only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ehrbench.config import RunConfig, resolve_config
from ehrbench.errors import ConfigError, InputError
from ehrbench.matrix import EHRMatrix
from ehrbench.plugins import Registry, load_registry
from ehrbench.rundir.directory import RunDirectory

if TYPE_CHECKING:
    import pandas as pd


class Run:
    """A run directory, read as tables: :attr:`leaderboard`, :attr:`results`, :attr:`manifest`."""

    def __init__(self, path: Path | str | RunDirectory) -> None:
        self.directory = RunDirectory(path)
        if not self.directory.manifest_path.is_file():
            raise InputError(f"{self.directory}: not a run directory (no run.json).")

    def __repr__(self) -> str:
        return f"Run({str(self.directory.path)!r})"

    @property
    def path(self) -> Path:
        return self.directory.path

    @property
    def manifest(self) -> dict[str, Any]:
        """``run.json``: configuration, dataset, every generator's resolved options, environment."""
        return self.directory.read_manifest()

    @property
    def generators(self) -> list[str]:
        """The run's generator rows (variants included), in the order the run lists them."""
        return list(self.manifest.get("generators") or [])

    @property
    def leaderboard(self) -> pd.DataFrame:
        """One row per generator × metric: category, direction, n, mean, std, rank (leaderboard.csv's columns)."""
        from ehrbench.views import leaderboard as lb

        return lb.load(self.directory).table[list(lb.CSV_COLUMNS)].reset_index(drop=True)

    @property
    def failures(self) -> pd.DataFrame:
        """Jobs that failed, with the reason."""
        from ehrbench.views import leaderboard as lb

        return lb.load(self.directory).failures.reset_index(drop=True)

    @property
    def results(self) -> pd.DataFrame:
        """One row per generator × repeat × metric key: the numbers the leaderboard summarises."""
        import pandas as pd

        from ehrbench.rundir.records import Kind, current_records, of_kind

        rows = of_kind(current_records(self.directory.records()), Kind.METRIC)
        columns = ["generator", "repeat", "seed", "calibration", "category", "metric", "value", "seconds"]
        frame = pd.DataFrame(rows)
        if frame.empty:
            return pd.DataFrame(columns=columns)
        return frame[[c for c in columns if c in frame.columns]].reset_index(drop=True)

    def samples(self, generator: str, repeat: int = 0) -> EHRMatrix:
        """A job's synthetic sample, read from disk (never kept for generators that release real rows)."""
        path = self.directory.sample_path(generator, repeat)
        if not path.is_file():
            known = ", ".join(self.generators) or "none"
            raise InputError(f"{self.directory}: no saved sample of generator '{generator}', repeat {repeat} "
                             f"(generators: {known}; calibration rows that release real records keep none).")
        return EHRMatrix.load(path)

    def report(self, weights: Mapping[str, float] | None = None) -> Path:
        """Write (or rewrite) ``report.html`` and its figures from the directory alone; returns its path."""
        from ehrbench.views.report import build_report

        return build_report(self.directory, weights)


def load_run(path: Path | str) -> Run:
    """Open a finished (or interrupted) run directory."""
    return Run(path)


def _names(items: Iterable[Any] | None, kind: str, registry: Registry) -> list[str] | None:
    """Registry names for ``items`` (names or classes); classes are registered for this run."""
    if items is None:
        return None
    if isinstance(items, (str, type)):
        items = [items]
    names = []
    for item in items:
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, type):
            source = f"{item.__module__}.{item.__qualname__} (passed to ehrbench.run)"
            names.append(registry.add(kind, item, source).name)
        else:
            raise ConfigError(f"{kind}: expected names or classes, got {item!r}.")
    return names


def _check_picklable(config: RunConfig, registry: Registry, classes: list[type]) -> None:
    """The process executor starts fresh interpreters, which import a job's classes by module name."""
    if config.executor != "process":
        return
    for cls in classes:
        if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
            raise ConfigError(f"{cls.__qualname__} is defined in {'a function' if '<locals>' in cls.__qualname__ else 'the main script or notebook'}, "
                              f"which a job's fresh interpreter (executor 'process') cannot import. Use executor "
                              f"'local' or 'ray', or define the class in an importable module.")


def run(
    config: RunConfig | Mapping[str, Any] | Path | str | None = None,
    *,
    generators: Iterable[str | type] | None = None,
    metrics: Iterable[str | type] | None = None,
    plugins: Iterable[Path | str] = (),
    resume: bool = False,
    observer: Any = None,
    **options: Any,
) -> Run:
    """Run a benchmark and return it as a :class:`Run`.

    ``config`` is a TOML file, a mapping of its keys or a :class:`RunConfig`; ``options`` are the
    same keys (``profile="smoke"``, ``repeats=1``, ``variants={...}``, ``out=...``) and override it.
    ``generators`` and ``metrics`` take registry names or classes (subclasses of
    :class:`ehrbench.Generator` / :class:`ehrbench.Metric`), which need no file or entry point.
    ``plugins`` are ``--plugin`` files. Bad input raises an :class:`ehrbench.EhrbenchError`.
    """
    from ehrbench.execution.plan import plan_run
    from ehrbench.execution.runner import Runner

    registry = load_registry([Path(p) for p in plugins])
    given = [c for c in [*(generators or ()), *(metrics or ())] if isinstance(c, type)]
    overrides: dict[str, Any] = dict(options)
    overrides["generators"] = _names(generators, "generators", registry)
    overrides["metrics"] = _names(metrics, "metrics", registry)
    if "out" in overrides and overrides["out"] is not None:
        overrides["out"] = str(overrides["out"])
    file = None
    if isinstance(config, (str, Path)):
        file = Path(config)
    elif isinstance(config, RunConfig):
        overrides = {**{k: v for k, v in config.to_dict().items()}, **{k: v for k, v in overrides.items() if v is not None}}
    elif isinstance(config, Mapping):
        overrides = {**config, **{k: v for k, v in overrides.items() if v is not None}}
    elif config is not None:
        raise ConfigError(f"config: expected a TOML path, a mapping or a RunConfig, got {config!r}.")
    stored = None
    if resume:
        if not overrides.get("out"):
            raise ConfigError("resume=True needs out=: the run directory to finish.")
        stored = RunDirectory(overrides["out"]).stored_config()
    resolved = resolve_config(file, overrides, stored)
    _check_picklable(resolved, registry, given)
    plan = plan_run(resolved, registry)
    finished = Runner(plan, registry, resume=resume, observer=observer).run()
    return Run(finished.directory)
