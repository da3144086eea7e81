"""Time ``prepare mimic3`` on a full-size MIMIC-III extract written by the simulator.

The issue's budget: preparing 651,047 diagnosis rows / 58,976 admissions takes under 10 s.
Also times the simulator itself (every default run loads it) and, with ``--million``, a
1M-patient cohort built as a sparse matrix.

    python benchmarks/bench_prepare.py [--repeats 3] [--million]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from ehrbench.plugins import load_registry
from ehrbench_plugins.datasets import simulated as sim

from _results import results_section


def timed(func, repeats: int):
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--million", action="store_true", help="also draw 1,000,000 patients (sparse)")
    args = parser.parse_args()
    registry = load_registry()
    simulated = registry.get("datasets", "simulated").configure({})
    mimic3 = registry.get("datasets", "mimic3")
    print(f"CPU cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")

    def cold_load():
        sim.build_model.cache_clear()  # time the calibration too, as a fresh process pays it
        return simulated.load()

    seconds, matrix = timed(cold_load, args.repeats)
    print(f"simulated (default, {matrix.n_patients:,} × {matrix.n_codes:,}) load incl. calibration: "
          f"{seconds:.2f} s (best of {args.repeats})")
    cohort = simulated.cohort()
    with tempfile.TemporaryDirectory(prefix="ehrbench-bench-") as tmp:
        started = time.perf_counter()
        adm, dx = simulated.write_tables(cohort, Path(tmp))
        print(f"wrote ADMISSIONS/DIAGNOSES_ICD .csv.gz in {time.perf_counter() - started:.2f} s "
              f"({dx.stat().st_size / 1e6:.1f} MB gzip)")
        dataset = mimic3.configure({"admissions": str(adm), "diagnoses": str(dx)})
        seconds, prepared = timed(dataset.load, args.repeats)
        s = prepared.meta["summary"]
        print(f"prepare mimic3: {s['diagnosis_rows']:,} diagnosis rows, {s['admissions']:,} admissions → "
              f"{prepared.n_patients:,} × {prepared.n_codes:,} in {seconds:.2f} s "
              f"({s['diagnosis_rows'] / seconds / 1e6:.2f} M rows/s; best of {args.repeats}; budget 10 s)")
        same = (prepared.X == matrix.X).all() and list(prepared.codes) == list(matrix.codes)
        print(f"round trip reproduces the simulator's matrix: {bool(same)}")
    if args.million:
        started = time.perf_counter()
        big = sim.simulate_cohort(1_000_000, matrix.n_codes, 0)
        X = big.counts()
        print(f"1,000,000 patients: {big.dx_adm.size:,} rows, sparse {X.nnz:,} non-zeros "
              f"({(X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 1e6:.0f} MB) in "
              f"{time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    with results_section("Preparing MIMIC-III, and the simulator (bench_prepare.py)"):
        main()
