"""Wall time of one smoke grid under each executor, and whether their leaderboards agree.

The grid: the two calibration baselines and one torch generator (medgan when available),
3 repeats, every default metric, the smoke dataset and profile, on the CPU. Each executor writes
its own run directory; the leaderboards (every row but the cost rows, which are timings) must be
identical, and the script exits 1 when they are not.

    python benchmarks/bench_executors.py [--executors local,process,ray] [--torch-generator NAME]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from ehrbench.config import resolve_config
from ehrbench.execution.plan import plan_run
from ehrbench.execution.runner import Runner
from ehrbench.plugins import load_registry

from _results import results_section

ROOT = Path(__file__).resolve().parent.parent
TORCH_CANDIDATES = ("medgan", "scoehr")
TEST_TORCH_PLUGIN = ROOT / "tests" / "plugins" / "executor_jobs.py"


def torch_generator(requested: str | None) -> tuple[str, list[Path]]:
    """The torch generator to run and the plugin files it needs (the test one as a last resort)."""
    registry = load_registry()
    available = registry.names("generators", available_only=True)
    if requested:
        return requested, ([TEST_TORCH_PLUGIN] if requested not in available else [])
    for name in TORCH_CANDIDATES:
        if name in available:
            return name, []
    return "torch-autoencoder", [TEST_TORCH_PLUGIN]


def run(executor: str, out: Path, generators: list[str], plugins: list[Path], repeats: int) -> float:
    registry = load_registry(plugins)
    config = resolve_config(ROOT / "benchmarks" / "smoke.toml", {
        "generators": generators, "repeats": repeats, "device": "cpu", "executor": executor, "out": str(out),
    })
    start = time.perf_counter()
    Runner(plan_run(config, registry), registry, out).run()  # writes the leaderboard too
    return time.perf_counter() - start


def board_without_cost(out: Path) -> list[str]:
    return sorted(line for line in (out / "leaderboard.csv").read_text().splitlines() if ",cost," not in line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executors", default="local,process,ray")
    parser.add_argument("--torch-generator")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    name, plugins = torch_generator(args.torch_generator)
    generators = ["independent-marginals", "train-resample", name]
    scratch = Path(tempfile.mkdtemp(prefix="ehrbench-bench-executors-"))
    print(f"grid: {', '.join(generators)} × {args.repeats} repeats, smoke dataset and profile, every default "
          f"metric; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; run directories in {scratch}")
    boards = {}
    for executor in args.executors.split(","):
        out = scratch / executor
        seconds = run(executor, out, generators, plugins, args.repeats)
        boards[executor] = board_without_cost(out)
        print(f"{executor:>8}: {seconds:7.1f} s wall")
    first = next(iter(boards.values()))
    same = all(board == first for board in boards.values())
    print(f"leaderboards (all rows but cost) identical across {', '.join(boards)}: {same}")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    with results_section("Executors: one grid, three executors (bench_executors.py)"):
        main()
