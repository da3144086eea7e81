"""Speed benchmark of the utility and privacy metrics (and NNAA) at MIMIC-III scale (issue 7's target).

    python benchmarks/bench_utility_privacy.py [--patients 46520] [--codes 1071] [--synthetic 10240]
                                               [--generator independent-marginals] [--profile paper]
                                               [--device cpu] [--seed 0] [--metrics a,b] [--l1-only]

Builds the ``simulated`` dataset (46,520 × 1,071 by default), splits it 70/30 as a run does,
fits a calibration generator on the train split and samples the synthetic set (10,240 rows),
then times every utility and privacy metric with its ``--profile`` options (``paper``: the
full protocol) and prints seconds, headline values and the total. The target: the whole set
in under 5 minutes on a 2-core CPU. ``--profile quick --synthetic 13956`` is one job of the
default run (its per-job metric cost).

It ends with the L1 search line: a 400 × 100 query block against 400 × 100 references in which
one cell holds 20,000. The search makes one sparse product per distinct count level, so that
cell adds one product; one product per integer up to the largest count took 240 s here.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from ehrbench.api import RunContext
from ehrbench.matrix import split
from ehrbench.plugins import load_registry
from ehrbench_plugins.metrics import _neighbours, adversarial, privacy, utility


def l1_large_count_line(device: str) -> str:
    """Time the L1 search with one huge count (issue 18: linear in distinct levels, not in the count)."""
    rng = np.random.default_rng(0)
    Q = ((rng.random((400, 100)) < 0.1) * rng.integers(1, 6, (400, 100))).astype(np.float32)
    R = ((rng.random((400, 100)) < 0.1) * rng.integers(1, 6, (400, 100))).astype(np.float32)
    Q[0, 0] = R[0, 0] = 20000
    levels, _ = _neighbours._levels("l1", Q, R)
    wall, cpu = time.perf_counter(), time.process_time()
    _neighbours.search(Q, R, distance="l1", k=5, device=device)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return (f"l1 search 400 x 100 against 400 x 100, one cell of 20,000: {len(levels)} levels, "
            f"{wall:.3f} s wall, {cpu:.3f} s cpu")

from _results import results_section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=46520, help="rows of the whole real dataset")
    parser.add_argument("--codes", type=int, default=1071, help="code columns")
    parser.add_argument("--synthetic", type=int, default=10240, help="rows of the synthetic set")
    parser.add_argument("--generator", default="independent-marginals",
                        choices=["independent-marginals", "train-resample"], help="calibration generator to sample")
    parser.add_argument("--profile", default="paper", choices=["smoke", "quick", "paper"], help="metric profile")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--seed", type=int, default=0, help="data, split, generator and metric seed")
    parser.add_argument("--metrics", help="comma-separated subset of the utility and privacy metrics")
    parser.add_argument("--l1-only", action="store_true", help="only the L1 large-count search line")
    args = parser.parse_args(argv)
    if args.l1_only:
        print(l1_large_count_line(args.device))
        return 0

    start = time.perf_counter()
    registry = load_registry()
    data = registry.get("datasets", "simulated").configure(
        {"patients": args.patients, "codes": args.codes, "seed": args.seed}).load()
    parts = split(data, args.seed)
    generator = registry.get("generators", args.generator).configure("quick")
    ctx = RunContext(seed=args.seed, device=args.device)
    generator.fit(parts.train.X, ctx)
    synthetic = parts.train.with_data(generator.sample(args.synthetic, ctx))
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"data: train {parts.train.X.shape}, test {parts.test.X.shape}, synthetic {synthetic.X.shape} "
          f"from {args.generator} (built in {time.perf_counter() - start:.1f} s); profile {args.profile}, "
          f"device {args.device}, {cpus} CPUs, load average {load:.1f}")

    wanted = set(args.metrics.split(",")) if args.metrics else None
    every = utility.METRICS + privacy.METRICS + adversarial.METRICS  # NNAA ranks on fidelity, timed here
    classes = [c for c in every if wanted is None or c.name in wanted]
    width = max(len(c.name) for c in classes)
    print(f"{'metric':<{width}}  {'seconds':>8}  {'cpu s':>8}  {'value':>8}  other keys")
    total = total_cpu = 0.0
    for cls in classes:
        metric = cls.configure(None, args.profile)
        ctx = RunContext(seed=args.seed, device=args.device, profile=args.profile)
        wall, cpu = time.perf_counter(), time.process_time()
        result = metric.compute(parts.train, parts.test, synthetic, ctx)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        total += wall
        total_cpu += cpu
        shown = {k: v for k, v in result.items() if k != "value" and not k.startswith(("target_", "auroc_"))}
        other = ", ".join(f"{k}={v:.4g}" for k, v in shown.items())
        print(f"{cls.name:<{width}}  {wall:8.1f}  {cpu:8.1f}  {result['value']:8.4f}  {other}", flush=True)
    print(f"{'total':<{width}}  {total:8.1f}  {total_cpu:8.1f}")
    print(l1_large_count_line(args.device))
    return 0


if __name__ == "__main__":
    with results_section("Utility and privacy metrics at MIMIC-III scale (bench_utility_privacy.py)"):
        code = main()
    sys.exit(code)
