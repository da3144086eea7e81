"""The `ehrbench` command end to end: run, list, evaluate, leaderboard, and bad input (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ehrbench.matrix import EHRMatrix

SMOKE = ["--profile", "smoke", "--repeats", "1", "--dataset-option", "patients=200", "--dataset-option", "codes=40",
         "--metrics", "dimension_wise_probability,pairwise_correlation_difference,prevalence_correlation"]


def test_run_prints_leaderboard_and_paths(cli, tmp_path):
    out = tmp_path / "r"
    result = cli("run", *SMOKE, "--out", out)
    assert result.code == 0, result.err
    assert "Fidelity" in result.out and "train-resample*" in result.out
    assert f"{out / 'leaderboard.md'}" in result.out
    for name in ("run.json", "results.jsonl", "leaderboard.csv", "leaderboard.md"):
        assert (out / name).is_file()


def test_run_from_config_file(cli, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('profile = "smoke"\nrepeats = 1\ngenerators = ["train-resample"]\n'
                      'metrics = ["dimension_wise_probability"]\n[dataset_options]\npatients = 100\ncodes = 20\n')
    result = cli("run", config, "--out", tmp_path / "r")
    assert result.code == 0, result.err
    stored = json.loads((tmp_path / "r" / "run.json").read_text())["config"]
    assert stored["generators"] == ["train-resample"]
    assert stored["dataset_options"] == {"patients": 100, "codes": 20}


def test_leaderboard_rebuilds_from_results_alone(cli, tmp_path):
    out = tmp_path / "r"
    assert cli("run", *SMOKE, "--out", out).code == 0
    original = (out / "leaderboard.csv").read_text()
    (out / "leaderboard.csv").unlink()
    (out / "leaderboard.md").unlink()
    result = cli("leaderboard", out)
    assert result.code == 0
    assert (out / "leaderboard.csv").read_text() == original
    header = original.splitlines()[0]
    assert header == "generator,calibration,category,metric,direction,n,mean,std,rank,ci_low,ci_high,shared_se,noise_floor"


def test_list_shows_everything_and_broken_plugins(cli, plugin_file):
    result = cli("list", "--plugin", plugin_file("broken_import"))
    assert result.code == 0
    for name in ("train-resample", "independent-marginals", "simulated", "matrix", "log_cluster", "Broken plugins"):
        assert name in result.out
    assert "ehrbench_this_module_does_not_exist" in result.out
    only = cli("list", "metrics")
    assert "log_cluster" in only.out and "train-resample" not in only.out


def _write(path: Path, X, codes) -> Path:
    EHRMatrix(np.asarray(X, dtype=float), codes).save(path)
    return path


@pytest.fixture
def matrices(tmp_path):
    rng = np.random.default_rng(0)
    codes = [f"c{j}" for j in range(6)]
    return {name: _write(tmp_path / f"{name}.npz", rng.integers(0, 3, size=(n, 6)), codes)
            for name, n in (("train", 40), ("test", 30), ("synthetic", 25))}


def test_evaluate_json_has_flat_keys(cli, matrices):
    result = cli("evaluate", "--train", matrices["train"], "--test", matrices["test"], "--synthetic", matrices["synthetic"],
                 "--metrics", "dimension_wise_probability,prevalence_correlation", "--json")
    assert result.code == 0, result.err
    scores = json.loads(result.out)
    assert set(scores) == {"dimension_wise_probability", "prevalence_correlation.pearson", "prevalence_correlation.spearman"}
    assert all(isinstance(v, float) for v in scores.values())


def test_evaluate_table(cli, matrices):
    result = cli("evaluate", "--train", matrices["train"], "--test", matrices["test"], "--synthetic", matrices["synthetic"],
                 "--metrics", "codes_per_record")
    assert result.code == 0 and "codes_per_record" in result.out and "lower" in result.out


def test_evaluate_mismatched_codes(cli, matrices, tmp_path):
    other = _write(tmp_path / "other.npz", np.zeros((5, 6)), ["c0", "c1", "c2", "c3", "c4", "x"])
    result = cli("evaluate", "--train", matrices["train"], "--test", matrices["test"], "--synthetic", other)
    assert result.code == 2
    assert "code columns differ" in result.err and "'c5'" in result.err and "other.npz" in result.err
    assert "Traceback" not in result.err


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--generators", "medgan-typo"], "unknown generator 'medgan-typo'"),
        (["run", "--metrics", "dwp"], "unknown metric 'dwp'"),
        (["run", "--dataset", "eicu"], "unknown dataset 'eicu'. Known datasets:"),
        (["run", "--repeats", "0"], "repeats must be at least 1"),
        (["run", "--dataset-option", "patients"], "expects KEY=VALUE"),
        (["run", "--dataset-option", "patients=many"], "option 'patients': expected an integer"),
        (["run", "--dataset-option", "pateints=5"], "unknown option 'pateints' (did you mean 'patients'?)"),
        (["run", "--plugin", "/nonexistent/plugin.py"], "plugin file not found"),
        (["run", "/nonexistent/config.toml"], "configuration file not found"),
        (["run", "--resume", "--out", "/nonexistent/run"], "no run.json here"),
        (["run", "--device", "cuda", "--generators", "train-resample"], None),
        (["leaderboard", "/nonexistent/run"], "no results.jsonl here"),
        (["evaluate", "--train", "/no/t.npz", "--test", "/no/r.npz", "--synthetic", "/no/s.npz"], "/no/t.npz: file not found"),
    ],
)
def test_bad_input_exits_2_with_one_paragraph(cli, args, message):
    result = cli(*args)
    if message is None:  # --device cuda on a machine without CUDA is an error; with CUDA it is not
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
        message = "torch.cuda.is_available() is False"
    assert result.code == 2, (result.out, result.err)
    assert message in result.err
    assert "Traceback" not in result.err and result.err.startswith("error: ")


def test_nan_in_a_matrix_file_dataset(cli, tmp_path):
    csv = tmp_path / "data.csv"
    csv.write_text("401,038\n1,0\n0,nan\n")
    result = cli("run", "--dataset", "matrix", "--dataset-option", f"path={csv}", *SMOKE[:4], "--out", tmp_path / "r")
    assert result.code == 2
    assert "data.csv" in result.err and "038" in result.err


def test_invalid_config_key_names_it(cli, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("repeat = 2\n")
    result = cli("run", config)
    assert result.code == 2 and f"{config}: unknown key 'repeat' (did you mean 'repeats'?)" in result.err


def test_console_script_is_installed():
    result = subprocess.run([sys.executable, "-m", "ehrbench.cli", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and "0.1.0" in result.stdout
