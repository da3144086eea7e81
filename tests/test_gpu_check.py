"""benchmarks/gpu/check.sh: its dry run end to end, its quick failure, and the agreement tests it applies.

The dry run is the same script and stages on the CPU at tiny sizes, so the device check cannot rot
between the rare sessions that have a GPU.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu" / "check.sh"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "gpu" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


agreement = _module("agreement")


def _check(tmp: Path, *args: str, dry: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp / "out"), "TMPDIR": str(tmp),
           "OMP_NUM_THREADS": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    flags = ["--dry-run"] if dry else []
    return subprocess.run(["bash", str(SCRIPT), *flags, *args], cwd=tmp, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    tmp = tmp_path_factory.mktemp("gpu-check")
    return tmp, _check(tmp)


def test_the_dry_run_passes_every_stage_and_writes_its_results(dry_run):
    tmp, proc = dry_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = tmp / "out"
    assert sorted(p.name for p in out.iterdir()) == ["check.json", "check.log", "check.md"]
    results = json.loads((out / "check.json").read_text())
    assert results["dry_run"] and results["status"] == "ok"
    assert {s: r["status"] for s, r in results["stages"].items()} == dict.fromkeys(
        ["preflight", "pytest", "speed", "e2e", "paper"], "ok")
    stages = results["stages"]
    assert stages["preflight"]["generators"] == dict.fromkeys(
        ["scoehr", "raw-diffusion", "medgan", "medwgan", "medbgan", "train-resample", "independent-marginals"], "available")
    assert stages["pytest"]["passed"] > 5 and not stages["pytest"].get("failed")  # the CUDA tests' CPU rehearsal
    m = stages["speed"]["figures"]["measurements"]
    assert all(t["steps_per_second"] > 0 for t in m["training"]) and len(m["training"]) == 7
    assert {s["setting"] for s in m["sampling"]} >= {"default: torchsde, fp32, torch TF32", "direct + cuda graph, bf16"}
    assert m["sampling-full"] and m["raw-diffusion-sampling"]
    e2e = stages["e2e"]
    assert e2e["reproducible"]["identical"] and set(e2e["reproducible"]["generators"]) == {
        "scoehr", "raw-diffusion", "medgan", "medwgan", "medbgan"}
    assert e2e["agreement"]["agree"] and e2e["agreement"]["tested"] >= 25
    assert 0 <= stages["paper"]["figures"]["dimension_wise_probability"] <= 1
    summary = (out / "check.md").read_text()
    assert "**Dry run**" in summary and "holds" in summary and "identical" in summary
    assert "== e2e" in (out / "check.log").read_text()


def test_a_changed_metric_and_a_changed_sample_are_caught(dry_run):
    """The agreement tests can fail: shift one generator's DWP and one saved sample, and both notice."""
    tmp, proc = dry_run
    assert proc.returncode == 0
    work = tmp / "ehrbench-gpu-check"
    a, b = work / "e2e-cuda_a", tmp / "shifted"
    shutil.copytree(work / "e2e-cpu", b)
    lines = []
    for line in (b / "results.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["type"] == "metric" and record["generator"] == "medgan" and record["metric"] == "dimension_wise_probability":
            record["value"] += 5.0  # far outside the spread: two repeats give Welch's test little power
        lines.append(json.dumps(record))
    (b / "results.jsonl").write_text("\n".join(lines) + "\n")
    verdict = agreement.statistical_agreement(a, b)
    assert not verdict["agree"]
    assert [(d["generator"], d["metric"]) for d in verdict["disagreeing"]] == [("medgan", "dimension_wise_probability")]
    c = tmp / "changed"
    shutil.copytree(a, c)
    sample = c / "samples" / "scoehr" / "repeat-1.npz"
    data = dict(np.load(sample, allow_pickle=False))
    data["X"] = data["X"].copy()
    data["X"][0, 0] += 1
    np.savez(sample, **data)
    same = agreement.identical_runs(a, c)
    assert not same["identical"] and same["generators"]["scoehr"]["identical_samples"] == 1
    assert same["generators"]["scoehr"]["max_abs_difference"] == 1 and same["generators"]["medgan"]["identical"]


@pytest.mark.parametrize(
    ("p", "alpha", "expected"),
    [  # Holm: sorted p against alpha/m, alpha/(m−1), …; stop at the first that is larger
        ([0.001, 0.04, 0.03, 0.2], 0.05, [True, False, False, False]),  # 0.001 ≤ .0125; 0.03 > .0167
        ([0.01, 0.012, 0.02], 0.05, [True, True, True]),  # ≤ .0167, ≤ .025, ≤ .05
        ([0.5], 0.01, [False]),
        ([], 0.01, []),
    ],
)
def test_holm_rejects_by_hand(p, alpha, expected):
    assert agreement.holm_rejections(p, alpha) == expected


def test_rows_without_spread_agree_only_when_equal():
    assert agreement._p_value(0.2, 0.0, 3, 0.2, 0.0, 3) == 1.0
    assert agreement._p_value(0.2, 0.0, 3, 0.3, 0.0, 3) == 0.0
    assert agreement._p_value(0.2, 0.01, 5, 0.2, 0.01, 5) == pytest.approx(1.0)


def test_without_cuda_the_real_check_fails_in_seconds_and_says_why(tmp_path):
    proc = _check(tmp_path, dry=False)
    assert proc.returncode == 1
    results = json.loads((tmp_path / "out" / "check.json").read_text())
    assert results["status"] == "failed" and results["stage"] == "install" and "CUDA" in results["reason"]
    assert results["seconds"] < 60 and "Failed at install" in (tmp_path / "out" / "check.md").read_text()


def test_an_unknown_stage_is_refused(tmp_path):
    proc = _check(tmp_path, "--stages", "preflight,warp")
    assert proc.returncode == 2 and "unknown stage" in proc.stdout + proc.stderr
