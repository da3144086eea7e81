"""``ehrbench.evaluate``: score a synthetic set someone hands you, from arrays, DataFrames or files.

The numbers are those a run records for repeat 0 under the same seed and profile (the same
metric seeds), so a vendor's sample and a run's rows are comparable. Files are read through the
dataset plugin that declares a ``file_option`` (the built-in matrix reader), as ``ehrbench
evaluate`` reads them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ehrbench.api import Metric
from ehrbench.errors import ConfigError, EhrbenchError
from ehrbench.matrix import EHRMatrix, from_arrays
from ehrbench.plugins import Registry, load_registry

MatrixLike = Any  # EHRMatrix | numpy.ndarray | pandas.DataFrame | str | Path


def file_reader(registry: Registry, name: str | None = None) -> type:
    """The dataset class that reads matrix files: ``name``, else the one available that reads a file."""
    if name is not None:
        cls = registry.get("datasets", name)
        if not getattr(cls, "file_option", None):
            raise ConfigError(f"reader '{name}': dataset '{name}' does not read a matrix file (it declares no "
                              f"file_option).")
        return cls
    readers = [n for n in registry.names("datasets", available_only=True)
               if getattr(registry.get("datasets", n), "file_option", None)]
    if len(readers) != 1:
        found = ", ".join(readers) if readers else "none is installed"
        raise ConfigError(f"evaluate reads its files through a dataset that reads a matrix file ({found}); "
                          f"name one as the reader.")
    return registry.get("datasets", readers[0])


def read_file(reader: Any, options: Mapping[str, Any], path: Path, what: str) -> EHRMatrix:
    try:
        return reader.configure({**options, reader.file_option: str(path)}).load()
    except EhrbenchError as exc:
        raise type(exc)(f"{what}: {exc}") from None


def as_matrix(value: MatrixLike, what: str, codes: Any, registry: Registry | None = None,
              reader: str | None = None, reader_options: Mapping[str, Any] | None = None) -> EHRMatrix:
    """An :class:`EHRMatrix` from a matrix, a DataFrame (columns are the codes), an array or a file."""
    if isinstance(value, EHRMatrix):
        return value
    if isinstance(value, (str, Path)):
        registry = registry if registry is not None else load_registry()
        return read_file(file_reader(registry, reader), reader_options or {}, Path(value), what)
    if type(value).__module__.startswith("pandas") and hasattr(value, "columns"):
        return from_arrays(value.to_numpy(), [str(c) for c in value.columns], source=what)
    array = np.asarray(value)
    if array.ndim != 2:
        raise ConfigError(f"{what}: expected a 2-D patients × codes matrix, got shape {array.shape}.")
    names = codes if codes is not None else [f"code_{j}" for j in range(array.shape[1])]
    return from_arrays(array, names, source=what)


def metric_instances(names: Iterable[str | type] | None, registry: Registry, profile: str) -> dict[str, Metric]:
    """Configured metrics from names or classes (classes registered for this call)."""
    chosen = []
    for item in names if names is not None else registry.defaults("metrics"):
        if isinstance(item, type):
            item = registry.add("metrics", item, f"{item.__module__}.{item.__qualname__} (passed to ehrbench)").name
        chosen.append(item)
    if not chosen:
        raise ConfigError("no metrics to compute.")
    return {n: registry.get("metrics", n).configure(None, profile) for n in chosen}


def score(train: EHRMatrix, test: EHRMatrix, synthetic: EHRMatrix, metrics: Mapping[str, Metric], *,
          seed: int, profile: str, representation: str, device: str = "cpu") -> list[dict[str, Any]]:
    """Metric and failure records of one synthetic set, with the metric seeds of a run's repeat 0."""
    from ehrbench.execution.scoring import score_rows

    train, test, synthetic = (m.as_representation(representation) for m in (train, test, synthetic))
    train.check_same_codes(test, "train", "test")
    train.check_same_codes(synthetic, "train", "synthetic")
    return score_rows(metrics, {"repeat": 0}, seed, device, representation, profile, train, test, synthetic)


def evaluate(
    train: MatrixLike,
    test: MatrixLike,
    synthetic: MatrixLike,
    metrics: Iterable[str | type] | None = None,
    *,
    profile: str = "paper",
    seed: int = 0,
    representation: str = "count",
    codes: Iterable[str] | None = None,
    plugins: Iterable[Path | str] = (),
    reader: str | None = None,
    reader_options: Mapping[str, Any] | None = None,
    report: Path | str | None = None,
    name: str = "synthetic",
) -> dict[str, float]:
    """Score ``synthetic`` against the real ``train`` and ``test``: {metric[.key]: value}.

    Each matrix may be an :class:`ehrbench.EHRMatrix`, a 2-D array (``codes`` names its columns,
    default ``code_0``…), a DataFrame (its columns are the codes) or a file path. ``metrics`` takes
    names or :class:`ehrbench.Metric` classes (default: every default metric). A metric that fails
    raises a RuntimeError naming it; bad input raises an :class:`ehrbench.EhrbenchError`. With
    ``report``, also writes there the self-contained report of the set (row ``name``) beside the
    calibration rows fitted on ``train`` on the spot (``ehrbench evaluate --report``).
    """
    from ehrbench.rundir.records import Kind

    registry = load_registry([Path(p) for p in plugins])
    code_list = list(codes) if codes is not None else None
    matrices = [as_matrix(v, what, code_list, registry, reader, reader_options)
                for v, what in ((train, "train"), (test, "test"), (synthetic, "synthetic"))]
    instances = metric_instances(metrics, registry, profile)
    rows = score(*matrices, instances, seed=seed, profile=profile, representation=representation)
    failures = [r for r in rows if r["type"] == Kind.METRIC_FAILURE]
    if failures:
        raise RuntimeError("; ".join(f"metric {r['metric']} failed: {r['reason']}" for r in failures))
    if report is not None:
        from ehrbench.library.handed import write_report

        write_report(*matrices, Path(report), registry, list(instances), name=name, profile=profile, seed=seed,
                     representation=representation)
    return {r["metric"]: float(r["value"]) if math.isfinite(r["value"]) else math.nan
            for r in rows if r["type"] == Kind.METRIC}
