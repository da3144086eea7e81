"""What the intervals, tests and their figures add to a run, in CPU seconds (issue 19).

    python benchmarks/bench_intervals.py RUN_DIR [--run-cpu SECONDS]

Two parts. (1) The metrics' standard errors: each fidelity metric that reports one is timed on the
default dataset (46,520 × 1,071, 13,956 synthetic rows from independent-marginals) as it is, and
with its bootstrap emptied (no resample), so the difference is the bootstrap's cost per job.
(2) The views: on RUN_DIR (a finished run; a default run has 7 generators × 3 repeats), the CPU
seconds of building the leaderboard with its intervals and tests, the overall ranking's bootstrap,
Friedman's test, the interval figures, the critical-difference diagram and the pairwise section.
With ``--run-cpu`` (the run's own user + system seconds) it prints what all of it adds, as a share.
Ends by printing its section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _results import results_section

METRICS = ("dimension_wise_probability", "dimension_wise_average", "prevalence_correlation", "codes_per_record",
           "pairwise_correlation_difference")


def cpu(fn: Callable[[], object], times: int = 3) -> float:
    """The smallest CPU time (user + system, this process) of ``times`` calls."""
    best = float("inf")
    for _ in range(times):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def metric_overhead() -> tuple[dict[str, tuple[float, float]], int]:
    from ehrbench.api import RunContext
    from ehrbench.matrix import split
    from ehrbench.plugins import load_registry
    from ehrbench_plugins.metrics import fidelity

    registry = load_registry()
    data = registry.get("datasets", "simulated").configure().load()
    parts = split(data, seed=0)
    generator = registry.get("generators", "independent-marginals").configure("quick")
    ctx = RunContext(seed=1)
    generator.fit(parts.train.X, ctx)
    synthetic = parts.train.with_data(generator.sample(parts.test.n_patients, ctx))
    # "without": every bootstrap step replaced by an empty result (no resample drawn, no product taken)
    empty = {
        (fidelity, "_bootstrap"): lambda ctx, metric, n: np.zeros((0, n), dtype=np.int64),
        (fidelity, "_resampled_means"): lambda X, counts: np.zeros((0, X.shape[1])),
        (fidelity, "integer_wasserstein"): lambda real, synthetic, counts: np.zeros(0),
        (fidelity.PairwiseCorrelationDifference, "_standard_error"): lambda self, R, corr_s, ctx: float("nan"),
    }
    out = {}
    for name in METRICS:
        metric = registry.get("metrics", name).configure(profile="quick")
        with_se = cpu(lambda: metric.compute(parts.train, parts.test, synthetic, ctx))
        saved = {key: getattr(*key) for key in empty}
        for (owner, attribute), replacement in empty.items():
            setattr(owner, attribute, replacement)
        try:
            without = cpu(lambda: metric.compute(parts.train, parts.test, synthetic, ctx))
        finally:
            for (owner, attribute), original in saved.items():
                setattr(owner, attribute, original)
        out[name] = (with_se, without)
    return out, parts.test.n_patients


def view_costs(run_dir: Path) -> dict[str, float]:
    from ehrbench.rundir.directory import RunDirectory
    from ehrbench.views import leaderboard as lb
    from ehrbench.views import report
    from ehrbench.views.ranking import friedman_test, overall_with_interval

    records = RunDirectory(run_dir).records()
    data = report.read_run_data(run_dir)
    board = data.board
    return {
        "leaderboard build (intervals, paired tests, ranks, noise floors)": cpu(lambda: lb.build(records)),
        "overall ranking with its bootstrap interval (1,000 replicates)": cpu(
            lambda: overall_with_interval(board, board.weights)),  # not board.overall(): that one is cached
        "Friedman test and Nemenyi CD": cpu(lambda: friedman_test(board)),
        "interval figures (one per category)": cpu(lambda: report.interval_figures(data), times=1),
        "critical-difference diagram": cpu(lambda: report.critical_difference_figure(data), times=1),
        "pairwise section": cpu(lambda: report.pairs_section(board)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--run-cpu", type=float, help="the run's own user + system CPU seconds")
    args = parser.parse_args()
    from ehrbench.rundir.directory import RunDirectory
    from ehrbench.rundir.records import Kind, of_kind, ok_jobs

    records = RunDirectory(args.run_dir).records()
    jobs = len(ok_jobs(records))
    generators = len({r["generator"] for r in of_kind(records, Kind.JOB)})
    with results_section("Intervals and tests: what they cost (bench_intervals.py)"):
        report(args.run_dir, args.run_cpu, jobs, generators)


def report(run_dir: Path, run_cpu: float | None, jobs: int, generators: int) -> None:
    metrics, n_test = metric_overhead()
    views = view_costs(run_dir)
    print(f"CPU seconds (user + system, this process; the best of 3 calls). Metrics on the default dataset, "
          f"{n_test:,} real test and synthetic rows:\n")
    print("| metric | with its standard error | without | added per job |")
    print("| --- | --- | --- | --- |")
    per_job = 0.0
    for name, (with_se, without) in metrics.items():
        per_job += with_se - without
        print(f"| {name} | {with_se:.3f} | {without:.3f} | {with_se - without:.3f} |")
    print(f"| all five | | | {per_job:.3f} |\n")
    print(f"Views of {run_dir.name} ({generators} generators, {jobs} jobs):\n")
    print("| step | CPU s |")
    print("| --- | --- |")
    for step, seconds in views.items():
        print(f"| {step} | {seconds:.3f} |")
    # A run builds the leaderboard and its overall ranking twice (the leaderboard files and the terminal,
    # then the report), the rest once. The whole build counts as added, though it aggregated before too.
    build, overall = list(views.values())[:2]
    view_total = sum(views.values()) + build + overall
    added = per_job * jobs + view_total
    print(f"\nPer run: {per_job:.3f} s × {jobs} jobs + {view_total:.2f} s of views (the leaderboard and the overall "
          f"ranking built twice, the whole build counted) = {added:.1f} CPU s", end="")
    if run_cpu:
        print(f", {100 * added / run_cpu:.1f} % of the run's {run_cpu:.0f} CPU s.")
    else:
        print(".")


if __name__ == "__main__":
    main()
