"""The Python API: ehrbench.run with classes passed directly, load_run as pandas, evaluate on arrays."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

import ehrbench
from ehrbench import EHRMatrix, Generator, Metric

SMALL = {"profile": "smoke", "repeats": 2, "dataset_options": {"patients": 120, "codes": 20}, "report": False}


class Ones(Generator):
    """Defined in the test module: used without a file or an entry point."""

    name = "ones-in-a-notebook"
    default = False

    @dataclass(frozen=True)
    class Options:
        rate: float = 0.5

    def fit(self, X_train, ctx):
        self.d = X_train.shape[1]

    def sample(self, n, ctx):
        return (ctx.rng("s").random((n, self.d)) < self.options.rate).astype(np.float32)


class Density(Metric):
    name = "notebook_density"
    category = "fidelity"
    higher_is_better = False

    def compute(self, real_train, real_test, synthetic, ctx):
        return {"value": abs(float((synthetic.X > 0).mean()) - float((real_test.X > 0).mean()))}


def test_import_stays_light():
    code = "import sys, ehrbench; print(sorted(m for m in ('pandas', 'torch', 'ehrbench.execution') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_run_with_classes_and_load_run(tmp_path):
    run = ehrbench.run(generators=[Ones, "independent-marginals"], metrics=[Density, "dimension_wise_probability"],
                       variants={"ones-rare": {"generator": "ones-in-a-notebook", "rate": 0.05}},
                       out=tmp_path / "r", **SMALL)
    assert isinstance(run, ehrbench.Run)
    board = run.leaderboard
    assert isinstance(board, pd.DataFrame)
    assert set(board["generator"]) == {"ones-in-a-notebook", "independent-marginals", "ones-rare"}
    assert run.generators == ["ones-in-a-notebook", "independent-marginals", "ones-rare"]
    results = run.results
    assert len(results[results["metric"] == "notebook_density"]) == 3 * 2  # rows × repeats
    manifest = run.manifest
    assert manifest["generator_options"]["ones-rare"] == {"rate": 0.05}
    assert "passed to ehrbench.run" in manifest["plugins"]["generators"]["ones-in-a-notebook"]
    sample = run.samples("ones-rare", 1)
    assert isinstance(sample, EHRMatrix) and 0 < sample.X.mean() < 0.2
    # the same run, read again from disk
    again = ehrbench.load_run(tmp_path / "r")
    pd.testing.assert_frame_equal(again.leaderboard, board)
    report = again.report()
    assert report.is_file() and report.name == "report.html"
    with pytest.raises(ehrbench.InputError, match="no saved sample of generator 'nope'"):
        again.samples("nope")


def test_run_rejects_bad_input(tmp_path):
    with pytest.raises(ehrbench.ConfigError, match="unknown key 'repeatz'"):
        ehrbench.run(generators=[Ones], repeatz=2, out=tmp_path / "a")
    with pytest.raises(ehrbench.EhrbenchError, match="not a subclass of ehrbench.Generator"):
        ehrbench.run(generators=[Density], out=tmp_path / "b")
    with pytest.raises(ehrbench.ConfigError, match="executor 'process'"):
        ehrbench.run(generators=[_local_class()], executor="process", out=tmp_path / "c", **SMALL)
    with pytest.raises(ehrbench.InputError, match="not a run directory"):
        ehrbench.load_run(tmp_path)


def test_a_class_from_a_function_runs_in_this_process_under_the_default_executor(tmp_path, monkeypatch):
    # executor auto would run a quick run's jobs in fresh interpreters on 2 cores; they cannot
    # import a class defined in a function, so the run stays in this process instead of failing.
    from ehrbench.execution import executors

    monkeypatch.setattr(executors, "usable_cores", lambda: 2)
    run = ehrbench.run(generators=[_local_class()], out=tmp_path / "run",
                       **{**SMALL, "profile": "quick", "metrics": ["dimension_wise_probability"]})
    assert run.manifest["execution"] == {"executor": "local", "jobs": 1}
    assert "local-one" in set(run.leaderboard["generator"])


def _local_class():
    class Local(Ones):
        name = "local-one"

    return Local


def test_evaluate_on_arrays_frames_and_files(tmp_path):
    rng = np.random.default_rng(0)
    train, test = (rng.poisson(0.3, (n, 6)).astype(np.float32) for n in (80, 40))
    synthetic = rng.poisson(0.3, (50, 6)).astype(np.float32)
    metrics = ["dimension_wise_probability", Density]
    scores = ehrbench.evaluate(train, test, synthetic, metrics=metrics)
    assert set(scores) >= {"dimension_wise_probability", "notebook_density"}
    assert scores["notebook_density"] == abs(float((synthetic > 0).mean()) - float((test > 0).mean()))
    codes = [f"c{j}" for j in range(6)]
    frames = [pd.DataFrame(m, columns=codes) for m in (train, test, synthetic)]
    assert ehrbench.evaluate(*frames, metrics=metrics) == scores
    paths = []
    for i, m in enumerate((train, test, synthetic)):
        EHRMatrix(m, codes).save(tmp_path / f"{i}.npz")
        paths.append(tmp_path / f"{i}.npz")
    assert ehrbench.evaluate(*paths, metrics=metrics) == scores
    report = tmp_path / "vendor.html"
    assert ehrbench.evaluate(*paths, metrics=metrics, report=report, name="vendor") == scores
    assert "vendor" in report.read_text() and "train-resample" in report.read_text()
    with pytest.raises(ehrbench.InputError, match="synthetic"):
        ehrbench.evaluate(train, test, synthetic[:, :5], metrics=metrics)
    with pytest.raises(ehrbench.InputError, match="synthetic"):
        ehrbench.evaluate(train, test, -synthetic - 1, metrics=metrics)


def test_plugin_authors_face():
    for name in ("Generator", "Metric", "Dataset", "RunContext", "EHRMatrix", "hookimpl", "Direction", "derive_seed",
                 "ConfigError", "InputError", "PublishedResults", "NoOptions", "INFO", "MAIN_KEY"):
        assert hasattr(ehrbench, name), name


def test_run_from_a_toml_file_and_resume(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('profile = "smoke"\nrepeats = 1\nreport = false\ngenerators = ["independent-marginals"]\n'
                      'metrics = ["dimension_wise_probability"]\n[dataset_options]\npatients = 100\ncodes = 12\n'
                      '[variants.independent-marginals-again]\ngenerator = "independent-marginals"\n')
    first = ehrbench.run(config, out=tmp_path / "r")
    assert first.generators == ["independent-marginals", "independent-marginals-again"]
    again = ehrbench.run(config, out=tmp_path / "r", resume=True)  # nothing left to do: the same numbers
    pd.testing.assert_frame_equal(again.results, first.results)
    with pytest.raises(ehrbench.ConfigError, match="--resume continues a run"):
        ehrbench.run(config, out=tmp_path / "r", resume=True, seed=5)
