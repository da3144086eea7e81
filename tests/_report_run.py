"""A small finished run for the report, compare and export tests (built through the runner)."""

from __future__ import annotations

from pathlib import Path

from ehrbench.config import resolve_config
from ehrbench.plugins import load_registry
from ehrbench.execution.plan import plan_run
from ehrbench.execution.runner import Runner

PLUGINS = Path(__file__).parent / "plugins"
# Three generators that are not calibration rows, so there are pairs to test and a critical-difference
# diagram; the two copiers release real rows, so they add no sample figure.
GENERATORS = ["independent-marginals", "train-resample", "cacheable", "train-copy", "train-copy-perturbed"]
METRICS = ["dimension_wise_probability", "pairwise_correlation_difference", "prevalence_agreement", "copied_row_share"]


def make_run(out: Path, **overrides) -> Path:
    """2 repeats of the calibration rows, a test generator that logs a training curve, and two copiers."""
    registry = load_registry([PLUGINS / "cacheable.py", PLUGINS / "report_metrics.py", PLUGINS / "degenerate.py"])
    values = {"dataset_options": {"patients": 200, "codes": 40}, "generators": GENERATORS, "metrics": METRICS,
              "repeats": 2, "profile": "smoke", **overrides}
    Runner(plan_run(resolve_config(None, values), registry), registry, out).run()
    return out


def shared_run(tmp_path_factory) -> Path:
    """One :func:`make_run` per test session, reused read-only by every module that asks."""
    out = tmp_path_factory.getbasetemp() / "shared-report-run"
    if not (out / "run.json").exists() or not (out / "report.html").exists():
        if out.exists():
            import shutil

            shutil.rmtree(out)
        make_run(out)
    return out
