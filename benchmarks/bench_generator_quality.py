"""Sample quality and cost of every generator, per representation, beside the calibration rows (issue 17).

    python benchmarks/bench_generator_quality.py [--generators a,b] [--representations count,binary]
        [--repeats 3] [--profile quick] [--set scoehr.decode=sample ...] [--dataset-option KEY=VALUE ...]
        [--samples N] [--json FILE]

Runs each job exactly as ``ehrbench run`` does (the same dataset, split, job seeds, profile and
metric seeds, through the same job body), without writing a run directory, and prints per
generator × representation the mean ± std over repeats of: PCD, DWP, detection AUC, log-cluster,
codes per record (synthetic; the real test split's in the header), the share of empty records, the
number of codes that occur in the train split but never in the sample, fit + sample seconds (wall
and CPU: user + system of this process, every thread), and the degeneracy flags
(``ehrbench/collapse.py``) raised in any repeat. The default generators are those of the default
run (``ehrbench run`` with no flag), plus ``tvae`` when SDV is installed.

CPU seconds are the figure to trust on a shared machine; wall seconds include waiting for a core.
Set ``OMP_NUM_THREADS=1`` (or a generator's ``threads`` option) to tune without oversubscribing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import time
from collections import defaultdict
from typing import Any

import numpy as np

from ehrbench.execution.collapse import sample_warnings
from ehrbench.execution.job import GenerationTask, generate
from ehrbench.matrix import EHRMatrix, split
from ehrbench.plugins import load_registry
from ehrbench.execution.scoring import score_rows
from ehrbench.seeding import derive_seed

METRICS = ("pairwise_correlation_difference", "dimension_wise_probability", "detection_auc", "log_cluster")
COLUMNS = ("PCD", "DWP", "det AUC", "log-cl", "codes/rec", "empty", "never", "fit+sample s", "CPU s")


def _parse_sets(pairs: list[str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = defaultdict(dict)
    for pair in pairs:
        target, _, value = pair.partition("=")
        generator, _, key = target.partition(".")
        if not value or not key:
            raise SystemExit(f"--set expects GENERATOR.KEY=VALUE, got {pair!r}")
        out[generator][key] = value
    return out


def sample_stats(samples: np.ndarray, train: np.ndarray) -> dict[str, float]:
    """Codes per record, share of empty records, and train codes the sample never produces."""
    present = samples > 0
    per_record = present.sum(axis=1)
    return {
        "codes_per_record": float(per_record.mean()),
        "empty_share": float((per_record == 0).mean()),
        "never_produced": float(((train > 0).any(axis=0) & ~present.any(axis=0)).sum()),
    }


def run_job(cls: type, options: dict[str, str], profile: str, seed: int, repeat: int, representation: str,
            data: Any, metrics: dict[str, Any], run_seed: int, n_samples: int) -> dict[str, Any]:
    task = GenerationTask(cls, options, profile, repeat, derive_seed(run_seed, "generator", cls.name, repeat),
                          "cpu", representation, n_samples)
    cpu = time.process_time()
    outcome = generate(task, data.train.X)
    cpu = time.process_time() - cpu
    if outcome.status != "ok":
        return {"failed": outcome.reason}
    samples = outcome.samples
    synthetic = EHRMatrix(samples, data.train.codes)
    rows = score_rows(metrics, {"repeat": repeat}, run_seed, "cpu", representation, profile,
                      data.train, data.test, synthetic)
    values = {r["metric"]: r["value"] for r in rows if r["type"] == "metric"}
    failures = [f"{r['metric']}: {r['reason']}" for r in rows if r["type"] == "metric_failure"]
    return {
        **values, **sample_stats(samples, data.train.X),
        "seconds": outcome.cost["fit_seconds"] + outcome.cost["sample_seconds"], "cpu_seconds": cpu,
        "flags": sample_warnings(samples, data.train.X, binary=representation == "binary"),
        "metric_failures": failures,
    }


def _cell(values: list[float], digits: int) -> str:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return "—"
    mean = float(np.mean(finite))
    if len(finite) < 2:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {float(np.std(finite, ddof=1)):.{digits}f}"


def summary_row(name: str, jobs: list[dict[str, Any]]) -> list[str]:
    ok = [j for j in jobs if "failed" not in j]
    if not ok:
        return [name, f"failed: {jobs[0]['failed']}"]

    def col(key: str) -> list[float]:
        return [j.get(key) for j in ok]

    return [
        name,
        _cell(col("pairwise_correlation_difference"), 2),
        _cell(col("dimension_wise_probability"), 4),
        _cell(col("detection_auc"), 3),
        _cell(col("log_cluster"), 2),
        _cell(col("codes_per_record"), 2),
        _cell(col("empty_share"), 3),
        _cell(col("never_produced"), 0),
        _cell(col("seconds"), 1),
        _cell(col("cpu_seconds"), 1),
    ]


def print_table(title: str, rows: list[list[str]], flags: dict[str, list[str]]) -> None:
    print(f"\n### {title}\n")
    print("| generator | " + " | ".join(COLUMNS) + " |")
    print("|" + " --- |" * (len(COLUMNS) + 1))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    flagged = {g: f for g, f in flags.items() if f}
    print()
    if flagged:
        for gen, found in flagged.items():
            print(f"- flags, {gen}: " + "; ".join(sorted(set(found))))
    else:
        print("- no degeneracy flag in any repeat")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generators", help="comma-separated; default: the default run's generators (+ tvae)")
    parser.add_argument("--representations", default="count,binary")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=0, help="rows per sample; 0: the test split's size")
    parser.add_argument("--dataset", default="simulated")
    parser.add_argument("--dataset-option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--set", action="append", default=[], metavar="GENERATOR.KEY=VALUE",
                        help="a generator option (as in [generator_options.GENERATOR])")
    parser.add_argument("--json", help="also write every job's figures to this file")
    args = parser.parse_args(argv)

    registry = load_registry()
    if args.generators:
        names = args.generators.split(",")
    else:
        names = registry.defaults("generators")
        if "tvae" in registry.names("generators", available_only=True):
            names.append("tvae")
    calibration = [n for n in names if registry.get("generators", n).calibration]
    names = calibration + [n for n in names if n not in calibration]
    sets = _parse_sets(args.set)
    metrics = {m: registry.get("metrics", m).configure(None, args.profile) for m in METRICS}
    dataset_options = dict(p.split("=", 1) for p in args.dataset_option)
    matrix = registry.get("datasets", args.dataset).configure(dataset_options).load()
    started, started_cpu = time.perf_counter(), time.process_time()
    print("## Generator quality (`benchmarks/bench_generator_quality.py`)\n")
    print(f"`python {shlex.join(['benchmarks/bench_generator_quality.py', *(argv if argv is not None else sys.argv[1:])])}`"
          f" — {args.dataset} {matrix.n_patients} × {matrix.n_codes}, profile {args.profile}, {args.repeats} "
          f"repeat(s), run seed {args.seed}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start.")
    if sets:
        print(f"Options: {json.dumps(sets)}")
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for representation in args.representations.split(","):
        data = split(matrix.as_representation(representation), args.seed)
        n_samples = args.samples or data.test.n_patients
        real = sample_stats(data.test.X, data.train.X)
        rows, flags = [], {}
        results[representation] = {}
        for name in names:
            cls = registry.get("generators", name)
            jobs = []
            for k in range(args.repeats):
                jobs.append(run_job(cls, sets.get(name, {}), args.profile, args.seed, k, representation,
                                    data, metrics, args.seed, n_samples))
                print(f"  {representation} {name} repeat {k}: " + json.dumps(
                    {key: (round(v, 4) if isinstance(v, float) else v) for key, v in jobs[-1].items()}), flush=True)
            results[representation][name] = jobs
            rows.append(summary_row(name + (" (calibration)" if cls.calibration else ""), jobs))
            flags[name] = [f for j in jobs for f in j.get("flags", [])]
        print_table(
            f"{representation}: real test split {real['codes_per_record']:.2f} codes per record, "
            f"{real['empty_share']:.3f} empty, {real['never_produced']:.0f} train codes absent from it",
            rows, flags,
        )
    print(f"\nTotal: {time.perf_counter() - started:.0f} s wall, {time.process_time() - started_cpu:.0f} s CPU "
          f"(metrics included), load average {os.getloadavg()[0]:.1f} at the end.")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "results": results}, fh, indent=1)


if __name__ == "__main__":
    main()
