"""How long `ehrbench run --profile smoke` takes, with no other flag: the newcomer's first command.

Runs the command as a user does (a fresh process, every default generator, the smoke default of 2
repeats, every default metric, the report), once per thread setting, and prints its wall and CPU seconds (user +
system of the command and its children), the machine's load before and after, and where the time
went: each generator's fit + sample (wall and CPU, summed over repeats, from results.jsonl), the
metrics, and the report (from run.log's timestamps). The budget is 60 s on 2 cores.

    python benchmarks/bench_smoke.py [--threads default,1]

``--threads 1`` sets OMP_NUM_THREADS=1 (torch, BLAS and OpenMP use one thread): on a shared
machine that keeps spin-waiting threads from burning the other programs' cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from _results import results_section

BUDGET_SECONDS = 60.0


def _children_cpu() -> float:
    t = os.times()
    return t.children_user + t.children_system


def _stamp(line: str) -> datetime:
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")


def run_once(threads: str, out: Path) -> None:
    env = dict(os.environ)
    if threads != "default":
        env["OMP_NUM_THREADS"] = threads
    ehrbench = shutil.which("ehrbench") or str(Path(sys.executable).with_name("ehrbench"))
    load_before = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run([ehrbench, "run", "--profile", "smoke", "--out", str(out)], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall, cpu = time.perf_counter() - wall, _children_cpu() - cpu
    if done.returncode != 0:
        print(f"threads {threads}: exit status {done.returncode}\n{done.stderr[-2000:]}")
        return
    verdict = "within" if wall <= BUDGET_SECONDS else "OVER"
    print(f"threads {threads}: {wall:.1f} s wall, {cpu:.1f} s CPU ({verdict} the {BUDGET_SECONDS:.0f} s budget); "
          f"load {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    manifest = json.loads((out / "run.json").read_text())
    print(f"  dataset {manifest['dataset']['name']} {manifest['dataset']['n_patients']} × "
          f"{manifest['dataset']['n_codes']}, {len(manifest['generators'])} generators × "
          f"{manifest['config']['repeats']} repeats, {len(manifest['metrics'])} metrics")
    per_generator: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for r in records:
        if r["type"] == "cost" and r.get("status") == "ok":
            per_generator[r["generator"]][0] += r["fit_seconds"] + r["sample_seconds"]
            per_generator[r["generator"]][1] += r.get("fit_cpu_seconds", 0) + r.get("sample_cpu_seconds", 0)
    metric_seconds = sum(r.get("seconds", 0) for r in records if r["type"] == "metric" and "." not in r["metric"])
    print("  fit + sample over the repeats (wall s / CPU s):")
    for name, (w, c) in sorted(per_generator.items(), key=lambda kv: -kv[1][0]):
        print(f"    {name:<24}{w:7.1f} {c:7.1f}")
    print(f"  metrics (headline rows, summed): {metric_seconds:.1f} s wall")
    log = (out / "run.log").read_text().splitlines()
    started = _stamp(log[0])
    report = next((_stamp(line) for line in log if "writing report.html" in line), None)
    finished = _stamp(log[-1])
    if report is not None:
        print(f"  from start to the report: {(report - started).total_seconds():.1f} s; "
              f"report: {(finished - report).total_seconds():.1f} s; "
              f"start-up before run.log's first line (imports): {wall - (finished - started).total_seconds():.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="default,1", help="OMP_NUM_THREADS settings to time (default,1)")
    args = parser.parse_args()
    with results_section("Smoke run: `ehrbench run --profile smoke` (bench_smoke.py)"):
        with tempfile.TemporaryDirectory(prefix="ehrbench-smoke-") as tmp:
            for threads in args.threads.split(","):
                run_once(threads.strip(), Path(tmp) / f"threads-{threads.strip()}")


if __name__ == "__main__":
    main()
