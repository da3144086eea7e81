"""Speed benchmark of the fidelity metrics on a realistic sparse count matrix.

    python benchmarks/bench_fidelity.py [--patients 46520] [--codes 1071] [--synthetic 10000] [--seed 0]
                                        [--same-population]

Builds a real test set (MIMIC-III-sized by default) and a synthetic set drawn with another
seed (or, with --same-population, more rows of the real set's own population), times each
fidelity metric with time.perf_counter and prints seconds and headline values. Data come from
the ``simulated`` dataset plugin.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from ehrbench.api import RunContext
from ehrbench.matrix import EHRMatrix
from ehrbench_plugins.datasets.simulated import SimulatedDataset
from ehrbench_plugins.metrics.fidelity import ehrbench_metrics

from _results import results_section


def simulated(patients: int, codes: int, seed: int) -> EHRMatrix:
    """The ``simulated`` dataset plugin's matrix."""
    return SimulatedDataset.configure({"patients": patients, "codes": codes, "seed": seed}).load()


def build_data(
    patients: int, synthetic: int, codes: int, seed: int, same_population: bool
) -> tuple[EHRMatrix, EHRMatrix]:
    """Real test set and synthetic set: a draw with ``seed + 1``, or more rows of the same draw."""
    if not same_population:
        return simulated(patients, codes, seed), simulated(synthetic, codes, seed + 1)
    both = simulated(patients + synthetic, codes, seed)
    return both.rows(np.arange(patients)), both.with_data(both.X[patients:])


def run(real: EHRMatrix, synthetic: EHRMatrix, seed: int) -> list[tuple[str, float, dict[str, float]]]:
    """(metric name, seconds, result) for every fidelity metric with default options."""
    ctx = RunContext(seed=seed)
    rows = []
    for cls in ehrbench_metrics():
        metric = cls.configure()
        start = time.perf_counter()
        result = metric.compute(real, real, synthetic, ctx)
        rows.append((cls.name, time.perf_counter() - start, result))
    return rows


def print_table(rows: list[tuple[str, float, dict[str, float]]]) -> None:
    width = max(len(name) for name, _, _ in rows)
    print(f"{'metric':<{width}}  {'seconds':>8}  {'headline':>10}  other keys")
    for name, seconds, result in rows:
        head = "value" if "value" in result else next(iter(result))
        other = ", ".join(f"{k}={v:.4g}" for k, v in result.items() if k != head)
        if head != "value":
            other = f"(headline is {head}) {other}"
        print(f"{name:<{width}}  {seconds:8.2f}  {result[head]:10.4f}  {other}")
    print(f"{'total':<{width}}  {sum(s for _, s, _ in rows):8.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=46520, help="rows of the real test set")
    parser.add_argument("--codes", type=int, default=1071, help="code columns")
    parser.add_argument("--synthetic", type=int, default=10000, help="rows of the synthetic set")
    parser.add_argument("--seed", type=int, default=0, help="data and metric seed")
    parser.add_argument(
        "--same-population",
        action="store_true",
        help="draw the synthetic rows from the real set's population (a perfect generator) "
        "instead of from the dataset with seed + 1",
    )
    args = parser.parse_args(argv)

    start = time.perf_counter()
    real, synthetic = build_data(args.patients, args.synthetic, args.codes, args.seed, args.same_population)
    density = np.count_nonzero(real.X) / real.X.size
    print(
        f"data: real {real.X.shape}, synthetic {synthetic.X.shape}, density {density:.4f}, "
        f"{np.count_nonzero(real.X, axis=1).mean():.1f} codes/record "
        f"(built in {time.perf_counter() - start:.1f} s)"
    )
    print_table(run(real, synthetic, args.seed))
    return 0


if __name__ == "__main__":
    with results_section("Fidelity metrics at MIMIC-III scale (bench_fidelity.py)"):
        code = main()
    sys.exit(code)
