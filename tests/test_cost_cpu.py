"""Cost records carry CPU seconds (user + system, the job's own) beside wall seconds, everywhere cost is shown."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time

import pytest

from ehrbench.execution.cost import measure

SMALL = ["--profile", "smoke", "--repeats", "1", "--dataset-option", "patients=120", "--dataset-option", "codes=20",
         "--metrics", "dimension_wise_probability"]


def test_cpu_seconds_count_work_not_waiting():
    with measure() as sleeping:
        time.sleep(0.3)
    assert sleeping.seconds >= 0.3 and sleeping.cpu_seconds < 0.1
    with measure() as working:
        start = time.process_time()
        while time.process_time() - start < 0.2:
            pass
    assert working.cpu_seconds >= 0.19


def test_cpu_seconds_include_a_child_the_step_waited_for():
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"
    with measure() as step:
        subprocess.run([sys.executable, "-c", burn], check=True)
    assert step.cpu_seconds >= 0.3


@pytest.mark.parametrize("executor", ["local", "process"])
def test_cpu_seconds_reach_results_the_leaderboard_and_the_report(cli, plugin_file, tmp_path, executor):
    out = tmp_path / "r"
    result = cli("run", *SMALL, "--generators", "busy", "--plugin", plugin_file("newcomer"), "--executor", executor,
                 "--out", out)
    assert result.code == 0, result.err
    [cost] = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()
              if json.loads(line)["type"] == "cost"]
    # busy burns 0.3 s of CPU, then sleeps 0.3 s: wall time counts both, CPU time only the work.
    assert cost["fit_seconds"] >= 0.6 and 0.29 <= cost["fit_cpu_seconds"] < cost["fit_seconds"] - 0.2
    assert cost["sample_cpu_seconds"] >= 0
    rows = {r["metric"]: r for r in csv.DictReader(io.StringIO((out / "leaderboard.csv").read_text()))}
    assert rows["fit_cpu_seconds"]["category"] == "cost" and rows["fit_cpu_seconds"]["direction"] == "lower"
    assert float(rows["fit_cpu_seconds"]["mean"]) == pytest.approx(cost["fit_cpu_seconds"])
    assert "sample_cpu_seconds" in rows
    assert "<th>fit CPU s</th>" in (out / "report.html").read_text()
