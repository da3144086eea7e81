"""The grid the executor tests share: the calibration rows and a small torch generator."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from ehrbench.config import resolve_config
from ehrbench.execution.executors import Executor
from ehrbench.execution.plan import plan_run
from ehrbench.plugins import load_registry
from ehrbench.execution.runner import Runner
from ehrbench.rundir.directory import RunDirectory
from ehrbench.rundir.records import current_records

PLUGINS = Path(__file__).parent / "plugins"
GRID = ["independent-marginals", "train-resample", "torch-autoencoder"]
METRICS = ["dimension_wise_probability", "pairwise_correlation_difference", "prevalence_correlation"]
ROWS_PER_JOB = 6  # DWP; PCD with .constant_codes and .constant_share; prevalence's .pearson and .spearman
TINY = {"patients": 200, "codes": 40}


def run_grid(out: Path, generators=GRID, executor: Executor | None = None, observer=None, plugins=(), **overrides) -> Path:
    registry = load_registry([PLUGINS / "executor_jobs.py", *plugins])
    values = {"dataset_options": TINY, "generators": list(generators), "metrics": METRICS, "repeats": 1,
              "profile": "smoke", "device": "cpu", **overrides}
    Runner(plan_run(resolve_config(None, values), registry), registry, out, observer=observer, executor=executor).run()
    return out


def records(out: Path) -> list[dict]:
    return RunDirectory(out).records()


def metric_values(out: Path) -> dict[tuple, float]:
    """(generator, repeat, metric) → value over the current attempts: what a leaderboard is built from."""
    return {(r["generator"], r["repeat"], r["metric"]): r["value"]
            for r in current_records(records(out)) if r["type"] == "metric"}


def jobs(out: Path) -> dict[tuple, dict]:
    return {(r["generator"], r["repeat"]): r for r in records(out) if r["type"] == "job"}


def leaderboard_without_cost(out: Path) -> list[str]:
    """leaderboard.csv rows of every category but cost (timings and memory differ run to run), sorted:
    under Ray, jobs finish, and are recorded, in any order."""
    lines = (out / "leaderboard.csv").read_text().splitlines()
    return sorted(line for line in lines if ",cost," not in line)


@functools.lru_cache(maxsize=1)
def local_reference() -> Path:
    """The grid under the local executor, run once per test session (removed at exit)."""
    scratch = Path(tempfile.mkdtemp(prefix="ehrbench-local-grid-"))
    atexit.register(shutil.rmtree, scratch, True)
    return run_grid(scratch / "run")
