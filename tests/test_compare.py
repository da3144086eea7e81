"""`ehrbench compare RUN_A RUN_B`: per-generator, per-metric differences with each run's spread."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from _report_run import make_run, shared_run

from ehrbench.views import significance as sig
from ehrbench.views.compare import compare_runs
from ehrbench.rundir.directory import RunDirectory


@pytest.fixture(scope="module")
def run_a(tmp_path_factory) -> Path:
    return shared_run(tmp_path_factory)


def shifted(run_a: Path, tmp_path: Path, metric: str, delta: float) -> Path:
    """A copy of run A whose ``metric`` values are all ``delta`` higher: B − A is exactly ``delta``."""
    b = tmp_path / "b"
    shutil.copytree(run_a, b)
    records = RunDirectory(b).records()
    for r in records:
        if r.get("type") == "metric" and r["metric"] == metric:
            r["value"] += delta
    (b / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return b


def test_differences_and_verdicts_against_a_known_shift(run_a, tmp_path):
    b = shifted(run_a, tmp_path, "pairwise_correlation_difference", 50.0)
    table, warnings = compare_runs(run_a, b)
    assert warnings == []
    pcd = table[table["metric"] == "pairwise_correlation_difference"].set_index("generator")
    assert len(pcd) == 5 and pcd["difference"].tolist() == pytest.approx([50.0] * 5)
    assert pcd["std_b"].tolist() == pytest.approx(pcd["std_a"].tolist()) and (pcd["std_a"] < 5).all()
    assert set(pcd["verdict"]) == {"B worse"}  # PCD: lower is better
    # Welch's test on 2 repeats a run, Holm over the metric's 5 generators
    expected = sig.holm(stats.ttest_ind_from_stats(pcd["mean_a"], pcd["std_a"], 2, pcd["mean_b"], pcd["std_b"], 2,
                                                   equal_var=False).pvalue)
    assert pcd["p_holm"].to_numpy() == pytest.approx(expected, rel=1e-9) and pcd["repeats_needed"].isna().all()
    dwp = table[table["metric"] == "dimension_wise_probability"]
    assert (dwp["difference"] == 0).all() and set(dwp["verdict"]) == {"within noise"}
    assert np.isinf(dwp["repeats_needed"]).all()  # no difference: no number of repeats finds one
    cost = table[table["category"] == "cost"]
    assert not cost.empty and set(cost["metric"]) >= {"fit_seconds", "peak_rss_mb"}


def test_shift_inside_the_spread_is_within_noise(run_a, tmp_path):
    table, _ = compare_runs(run_a, run_a)
    std = table[table["metric"] == "pairwise_correlation_difference"]["std_a"].min()
    b = shifted(run_a, tmp_path, "pairwise_correlation_difference", std / 2)
    table, _ = compare_runs(run_a, b)
    pcd = table[table["metric"] == "pairwise_correlation_difference"]
    assert set(pcd["verdict"]) == {"within noise"}
    # each close pair says roughly how many repeats per run would separate it at the observed spread
    spread = np.sqrt(pcd["std_a"] ** 2 + pcd["std_b"] ** 2)
    assert pcd["repeats_needed"].tolist() == sig.repeats_needed(pcd["difference"], spread, 5).tolist()
    assert (pcd["repeats_needed"] > 2).all()


def test_generators_in_one_run_only_and_differing_settings_are_reported(run_a, tmp_path):
    b = make_run(tmp_path / "b", generators=["independent-marginals"], metrics=["dimension_wise_probability"],
                 dataset_options={"patients": 220, "codes": 40})
    table, warnings = compare_runs(run_a, b)
    only = table[table["generator"] == "train-resample"]
    assert set(only["verdict"]) == {"only in A"}
    assert any(w.startswith("dataset fingerprint differs") for w in warnings)
    assert any(w.startswith("split differs") for w in warnings)


def test_cli_prints_and_writes_csv_and_markdown(run_a, tmp_path, cli):
    b = shifted(run_a, tmp_path, "dimension_wise_probability", -1.0)
    result = cli("compare", run_a, b)
    assert result.code == 0, result.err
    assert "B better" in result.out and "pairwise_correlation_" in result.out  # wrapped at 80 columns
    assert "repeats needed" in result.out and "Welch" in result.out
    result = cli("compare", run_a, b, "--format", "csv", "--output", tmp_path / "diff.csv")
    assert result.code == 0 and "Wrote" in result.err
    frame = pd.read_csv(tmp_path / "diff.csv")
    assert list(frame.columns[:4]) == ["generator", "category", "metric", "direction"]
    row = frame[(frame["metric"] == "dimension_wise_probability") & (frame["generator"] == "independent-marginals")]
    assert row["difference"].iloc[0] == pytest.approx(-1.0) and row["verdict"].iloc[0] == "B better"
    result = cli("compare", run_a, b, "--format", "md")
    assert result.code == 0 and result.out.startswith(f"# Comparison: b (B) against {run_a.name} (A)")
    assert "| independent-marginals | dimension_wise_probability | lower |" in result.out


def test_a_directory_without_results_is_a_clear_error(run_a, tmp_path, cli):
    result = cli("compare", run_a, tmp_path)
    assert result.code == 2 and "no results.jsonl here" in result.err and "Traceback" not in result.err
    result = cli("compare", run_a, run_a, "--format", "csv", "--output", tmp_path)
    assert result.code == 2 and "is a directory" in result.err
