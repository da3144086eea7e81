"""Cost records' GPU figures: how several steps' utilization combine, and that CPU jobs carry none."""

from __future__ import annotations

import json

import pytest

from ehrbench.execution.cost import Measurement, measure, weighted_utilization
from ehrbench.execution.device import describe_device
from ehrbench.views.leaderboard import COST_DIRECTIONS


def test_utilization_of_two_steps_is_weighted_by_their_wall_seconds():
    fit = Measurement(seconds=30.0, gpu_utilization=90.0)
    sample = Measurement(seconds=10.0, gpu_utilization=50.0)
    assert weighted_utilization(fit, sample) == pytest.approx((30 * 90 + 10 * 50) / 40)  # 80
    assert weighted_utilization(fit, Measurement(seconds=5.0)) == 90.0  # an unknown step is left out
    assert weighted_utilization(Measurement(seconds=1.0), Measurement(seconds=2.0)) is None


def test_a_cpu_step_has_no_gpu_figures():
    with measure("cpu") as m:
        sum(range(1000))
    assert m.seconds > 0 and m.peak_rss_mb > 0
    assert (m.peak_gpu_mb, m.gpu_seconds, m.gpu_utilization) == (None, None, None)
    assert describe_device("cpu") == {"device": "cpu"}


def test_gpu_time_and_utilization_are_informational_cost_rows():
    assert COST_DIRECTIONS["gpu_seconds"] is None and COST_DIRECTIONS["gpu_utilization"] is None


def test_a_cpu_run_writes_no_gpu_keys_and_no_gpu_rows(cli, tmp_path):
    out = tmp_path / "run"
    result = cli("run", "--dataset", "simulated", "--dataset-option", "patients=200", "--dataset-option", "codes=20",
                 "--generators", "independent-marginals", "--repeats", "1", "--metrics", "dimension_wise_probability",
                 "--device", "cpu", "--no-report", "--out", out)
    assert result.code == 0, result.err
    cost = next(json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()
                if json.loads(line)["type"] == "cost")
    assert not {"gpu_seconds", "fit_gpu_seconds", "gpu_utilization", "fit_peak_gpu_mb"} & set(cost)
    assert "gpu_seconds" not in (out / "leaderboard.csv").read_text()
