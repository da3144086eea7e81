"""Scoring one synthetic sample with every metric of a run, into ``results.jsonl`` rows.

Shared by the runner (in-process scoring) and by job workers (process and Ray executors), so a
metric value does not depend on where the job ran.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ehrbench.api import Metric, ProgressReporter, RunContext, flat_key, null_progress, standard_error_key
from ehrbench.execution import failure
from ehrbench.matrix import EHRMatrix
from ehrbench.rundir.records import Kind, direction_fields
from ehrbench.seeding import derive_seed


def compute_metric(
    metric: Metric, train: EHRMatrix, test: EHRMatrix, synthetic: EHRMatrix, ctx: RunContext
) -> dict[str, float]:
    """Run a metric and check it returned ``{str: number}``; anything else is the metric's bug."""
    values = metric.compute(train, test, synthetic, ctx)
    if not isinstance(values, dict) or not values:
        raise TypeError(f"compute() returned {values!r}; expected a non-empty dict of numbers")
    out = {}
    for key, value in values.items():
        if not isinstance(key, str) or isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise TypeError(f"compute() returned {key!r}: {value!r}; expected str keys and numeric values")
        out[key] = float(value)
    return out


def score_rows(
    metrics: Mapping[str, Metric],
    base: dict[str, Any],
    run_seed: int,
    device: str,
    representation: str,
    profile: str,
    train: EHRMatrix,
    test: EHRMatrix,
    synthetic: EHRMatrix,
    progress: ProgressReporter = null_progress,
    cache_dir: Path | None = None,
) -> list[dict[str, Any]]:
    """``metric`` and ``metric_failure`` records of one job; ``base`` holds its identifying fields.

    Metric seeds are ``(run seed, "metric", name, repeat)`` (DESIGN.md §8), the same for every
    generator of a repeat.
    """
    rows = []
    for name, metric in metrics.items():
        progress(f"scoring {name}")
        ctx = RunContext(
            seed=derive_seed(run_seed, "metric", name, base["repeat"]),
            device=device,
            representation=representation,  # type: ignore[arg-type]
            profile=profile,
            cache_dir=cache_dir,
        )
        start = time.perf_counter()
        try:
            values = compute_metric(metric, train, test, synthetic, ctx)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 a metric's failure (sys.exit included) is recorded beside the others
            rows.append({**base, "type": Kind.METRIC_FAILURE, "metric": name,
                         "reason": failure.describe(exc, type(metric)),
                         "traceback": failure.format_traceback(exc, type(metric))})
            continue
        seconds = time.perf_counter() - start
        # A declared standard error travels on its key's record, not as a number of its own.
        errors = {standard_error_key(k): k for k in metric.standard_errors if metric.direction(k) is not None}
        for key, value in values.items():
            if key in errors:
                continue
            extra = {}
            if key in errors.values():
                se = values.get(standard_error_key(key))
                extra["standard_error"] = se if se is not None and np.isfinite(se) and se >= 0 else None
            rows.append({
                **base,
                "type": Kind.METRIC,
                "metric": flat_key(name, key),
                "category": metric.category,
                **direction_fields(metric.direction(key)),
                "ranked_alone": metric.direction(key) is not None and key in metric.ranked_alone,
                "value": value,
                "seconds": seconds,
                **extra,
            })
    return rows
