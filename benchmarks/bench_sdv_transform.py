"""Time ctgan's DataTransformer.transform with SDV's joblib path and with ehrbench's workaround.

ctgan sends every column to joblib as a bound method, so the whole fitted transformer is
pickled once per column and the parallel path grows with the square of the column count;
ehrbench runs ctgan's own sequential path instead (plugins/generators/sdv/speedup.py).
This script fits one transformer per width on the simulated cohort, transforms the same
rows both ways, checks that the two matrices are identical, and prints seconds per path.
It also times SDV's data validation of numerical columns with and without the shortcut.

    python benchmarks/bench_sdv_transform.py                       # 10,000 rows; 50, 100, 200 codes
    python benchmarks/bench_sdv_transform.py --codes 1071 --skip-parallel
    python benchmarks/bench_sdv_transform.py --sdtype numerical --codes 50,100
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import pandas as pd

from ehrbench_plugins.datasets.simulated import SimulatedDataset
from ehrbench_plugins.generators.sdv.synthesizers import column_names, metadata_dict
from ehrbench_plugins.generators.sdv.environment import import_sdv
from ehrbench_plugins.generators.sdv.speedup import numeric_validation_shortcut, sequential_column_transform

from _results import results_section


def frame(X: np.ndarray, d: int) -> pd.DataFrame:
    return pd.DataFrame(X[:, :d].astype(np.int32), columns=column_names(d))


def time_transform(df: pd.DataFrame, sdtype: str, parallel: bool) -> tuple[float, float, np.ndarray]:
    """Seconds to fit and to transform ``df``, and the transformed matrix."""
    from ctgan.data_transformer import DataTransformer

    transformer = DataTransformer()
    start = time.perf_counter()
    transformer.fit(df, list(df.columns) if sdtype == "categorical" else [])
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    if parallel:
        out = transformer.transform(df)
    else:
        with sequential_column_transform():
            out = transformer.transform(df)
    return fit_seconds, time.perf_counter() - start, out


def time_validation(df: pd.DataFrame, shortcut: bool) -> float:
    sdv = import_sdv()
    metadata = sdv.Metadata.load_from_dict(metadata_dict(list(df.columns), "numerical"))
    start = time.perf_counter()
    if shortcut:
        with numeric_validation_shortcut():
            metadata.validate_data({"ehr": df})
    else:
        metadata.validate_data({"ehr": df})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--codes", default="50,100,200", help="comma-separated column counts (≤ 1071)")
    parser.add_argument("--sdtype", choices=("categorical", "numerical"), default="categorical")
    parser.add_argument("--skip-parallel", action="store_true", help="time only the sequential path")
    args = parser.parse_args()
    widths = [int(w) for w in args.codes.split(",")]
    import_sdv()
    warnings.filterwarnings("ignore")
    X = SimulatedDataset.configure({"patients": args.rows, "codes": max(widths)}).load().X
    print(f"ctgan DataTransformer.transform, {args.rows} rows, {args.sdtype} columns, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"{'codes':>6} {'fit s':>8} {'sequential s':>13} {'joblib s':>10} {'speed-up':>9}  identical")
    for d in widths:
        df = frame(X, d)
        fit_s, seq_s, seq_out = time_transform(df, args.sdtype, parallel=False)
        if args.skip_parallel:
            print(f"{d:>6} {fit_s:>8.2f} {seq_s:>13.2f} {'-':>10} {'-':>9}  -")
            continue
        _, par_s, par_out = time_transform(df, args.sdtype, parallel=True)
        same = par_out.shape == seq_out.shape and np.array_equal(par_out, seq_out)
        print(f"{d:>6} {fit_s:>8.2f} {seq_s:>13.2f} {par_s:>10.2f} {par_s / seq_s:>8.1f}x  {same}")
    print("\nSDV validate_data on numerical columns")
    print(f"{'codes':>6} {'per-value s':>12} {'shortcut s':>11}")
    for d in widths:
        df = frame(X, d)
        print(f"{d:>6} {time_validation(df, False):>12.2f} {time_validation(df, True):>11.3f}")


if __name__ == "__main__":
    with results_section("SDV: the transform and validation workarounds (bench_sdv_transform.py)"):
        main()
