"""The run cache of fitted models, training curves in the results, and collapse flags."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pandas as pd

from ehrbench.config import resolve_config
from ehrbench.execution.collapse import sample_warnings
from ehrbench.execution.executors import LocalExecutor
from ehrbench.execution.job import GenerationTask
from ehrbench.execution.plan import plan_run
from ehrbench.execution.runner import Runner
from ehrbench.plugins import load_registry
from ehrbench.rundir.directory import RunDirectory
from ehrbench.views import leaderboard as lb

TINY = {"patients": 200, "codes": 40}


def _run(tmp_path, plugin_file, generators):
    registry = load_registry([plugin_file("cacheable")])
    config = resolve_config(None, {"dataset_options": TINY, "metrics": ["dimension_wise_probability"],
                                   "repeats": 1, "profile": "smoke", "generators": generators})
    out = tmp_path / "run"
    Runner(plan_run(config, registry), registry, out).run()
    return out, registry


def test_fitted_model_is_saved_whole_and_its_curve_recorded(tmp_path, plugin_file):
    out, _ = _run(tmp_path, plugin_file, ["cacheable", "train-resample"])
    model = out / "models" / "cacheable" / "repeat-0"
    assert (model / "COMPLETE").is_file() and (model / "p.npy").is_file()
    assert not (out / "models" / "train-resample").exists()  # real rows never cached
    assert [p.name for p in (out / "models" / "cacheable").iterdir()] == ["repeat-0"]  # no temp leftovers
    training = [r for r in RunDirectory(out).records() if r["type"] == "training"]
    assert [(r["generator"], r["curves"]["loss"][:2]) for r in training] == [("cacheable", [1.0, 0.5])]


def test_a_complete_cached_model_replaces_fit(tmp_path, plugin_file):
    spec = importlib.util.spec_from_file_location("cacheable_direct", plugin_file("cacheable"))
    module = importlib.util.module_from_spec(spec)
    sys.modules["cacheable_direct"] = module
    spec.loader.exec_module(module)
    X = (np.random.default_rng(0).random((50, 40)) < 0.2).astype(np.float32)
    task = GenerationTask(module.Cacheable, {}, "smoke", 0, 7, "cpu", "binary", 30, model_dir=tmp_path / "m")
    first = LocalExecutor().generate(task, X)
    (tmp_path / "m" / "COMPLETE").unlink()  # an incomplete cache is ignored: fitted again
    LocalExecutor().generate(task, X)
    assert module.FITS["count"] == 2
    again = LocalExecutor().generate(task, X)
    assert module.FITS["count"] == 2 and again.cost.get("model_loaded") is True
    np.testing.assert_array_equal(first.samples, again.samples)
    assert again.training_log == {"loss": [1.0, 0.5, 1 / 3, 0.25, 0.2]}


def test_collapsed_samples_are_flagged_in_the_leaderboard(tmp_path, plugin_file):
    out, _ = _run(tmp_path, plugin_file, ["collapsing", "independent-marginals"])
    board = lb.load(out)
    assert list(board.flags["generator"]) == ["collapsing"] * len(board.flags)
    assert any("have no code" in w for w in board.flags["warning"])
    assert "## Flags" in (out / "leaderboard.md").read_text()
    assert "dimension_wise_probability" in set(board.table[board.table.generator == "collapsing"].metric)
    csv = pd.read_csv(out / "leaderboard.csv")
    flagged = csv[csv.category == "flags"]
    assert set(flagged.generator) == {"collapsing"} and set(flagged.direction) == {"info"}
    assert "flags.empty_records" in set(flagged.metric) and flagged["rank"].isna().all()


def test_healthy_sparse_samples_are_not_flagged():
    rng = np.random.default_rng(1)
    real = (rng.random((500, 60)) < 0.03).astype(np.float32)  # many empty rows in the real data too
    fake = (rng.random((400, 60)) < 0.03).astype(np.float32)
    assert sample_warnings(fake, real) == []
    assert any("distinct rows" in w for w in sample_warnings(np.tile(fake[:2], (200, 1)), real))
    half = fake.copy()
    half[:, : 40] = 0
    assert any(w.startswith("common codes missing") for w in sample_warnings(half, np.ones((10, 60), np.float32)))
