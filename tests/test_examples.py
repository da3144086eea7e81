"""The examples/ scripts run as a user runs them, at the smoke profile."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_python_api_example_runs(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, EXAMPLES / "benchmark_in_python.py", out, "smoke"], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["generators"] == ["scoehr", "shrunk-marginals", "scoehr-threshold",
                                      "shrunk-marginals-shrinkage-0.25", "shrunk-marginals-shrinkage-0.75"]
    options = manifest["generator_options"]
    assert options["scoehr-threshold"]["decode"] == "threshold" != options["scoehr"]["decode"]
    assert [options[f"shrunk-marginals-shrinkage-{s}"]["shrinkage"] for s in ("0.25", "0.75")] == [0.25, 0.75]
    assert (out / "report.html").is_file()
    assert f"report: {out / 'report.html'}" in done.stdout
