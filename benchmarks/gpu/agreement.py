"""Do two ehrbench runs agree? Statistically (CUDA against CPU) and exactly (CUDA against CUDA).

- :func:`statistical_agreement`: per (generator, metric) of one category, Welch's t-test of the two
  runs' repeat means (each run's repeats are independent draws: other seeds' noise on the CPU and on
  CUDA), with Holm's correction over all rows at a family-wise ``alpha``. Two runs "agree" when no
  row is rejected. A row whose repeats have no spread in either run agrees only if equal.
- :func:`identical_runs`: every saved sample of run A equals run B's cell for cell, and so does
  every leaderboard mean: what "reproducible with the same seed on the same device" means.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from ehrbench.views.compare import compare_runs


def holm_rejections(p_values: list[float], alpha: float) -> list[bool]:
    """Holm's step-down procedure: which hypotheses are rejected at family-wise level ``alpha``."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    rejected = [False] * len(p_values)
    for rank, i in enumerate(order):
        if p_values[i] > alpha / (len(p_values) - rank):
            break
        rejected[i] = True
    return rejected


def _p_value(mean_a: float, std_a: float, n_a: int, mean_b: float, std_b: float, n_b: int) -> float:
    if std_a == 0 and std_b == 0:
        return 1.0 if mean_a == mean_b else 0.0
    return float(stats.ttest_ind_from_stats(mean_a, std_a, n_a, mean_b, std_b, n_b, equal_var=False).pvalue)


def statistical_agreement(run_a: Path, run_b: Path, category: str = "fidelity", alpha: float = 0.01) -> dict[str, Any]:
    """Welch + Holm over every (generator, metric) row of ``category`` present in both runs."""
    table, warnings = compare_runs(run_a, run_b)
    rows = table[(table["category"] == category) & table["mean_a"].notna() & table["mean_b"].notna()]
    tested, skipped = [], []
    for r in rows.to_dict("records"):
        n_a, n_b = int(r["n_a"]), int(r["n_b"])
        if n_a < 2 or n_b < 2 or any(math.isnan(float(r[k])) for k in ("std_a", "std_b", "mean_a", "mean_b")):
            skipped.append({"generator": r["generator"], "metric": r["metric"], "reason": "fewer than 2 repeats or NaN"})
            continue
        p = _p_value(float(r["mean_a"]), float(r["std_a"]), n_a, float(r["mean_b"]), float(r["std_b"]), n_b)
        tested.append({"generator": r["generator"], "metric": r["metric"], "mean_a": float(r["mean_a"]),
                       "std_a": float(r["std_a"]), "mean_b": float(r["mean_b"]), "std_b": float(r["std_b"]),
                       "n_a": n_a, "n_b": n_b, "p": p})
    for row, rejected in zip(tested, holm_rejections([t["p"] for t in tested], alpha)):
        row["disagree"] = rejected
    disagree = [t for t in tested if t["disagree"]]
    return {"category": category, "alpha": alpha, "tested": len(tested), "skipped": skipped,
            "disagreeing": disagree, "agree": bool(tested) and not disagree,
            "smallest_p": min((t["p"] for t in tested), default=None), "rows": tested, "warnings": warnings}


def identical_runs(run_a: Path, run_b: Path) -> dict[str, Any]:
    """Per generator: are all saved samples and leaderboard means of the two runs equal, exactly?"""
    per_generator: dict[str, dict[str, Any]] = {}
    for sample_a in sorted(Path(run_a, "samples").glob("*/repeat-*.npz")):
        name = sample_a.parent.name
        sample_b = Path(run_b, "samples", name, sample_a.name)
        entry = per_generator.setdefault(name, {"samples": 0, "identical_samples": 0, "max_abs_difference": 0.0})
        entry["samples"] += 1
        if not sample_b.is_file():
            entry.setdefault("missing_in_b", []).append(sample_a.name)
            continue
        a, b = np.load(sample_a)["X"], np.load(sample_b)["X"]
        if a.shape == b.shape and np.array_equal(a, b):
            entry["identical_samples"] += 1
        else:
            diff = float(np.abs(a - b).max()) if a.shape == b.shape else math.inf
            entry["max_abs_difference"] = max(entry["max_abs_difference"], diff)
            entry["differing_cells"] = entry.get("differing_cells", 0) + (int((a != b).sum()) if a.shape == b.shape else a.size)
    table, _ = compare_runs(run_a, run_b)
    measured = table[table["category"] != "cost"]
    differing_means = measured[~np.isclose(measured["mean_a"], measured["mean_b"], rtol=0, atol=0, equal_nan=True)]
    for name, entry in per_generator.items():
        entry["identical"] = entry["identical_samples"] == entry["samples"] and "missing_in_b" not in entry
        entry["differing_metric_means"] = int((differing_means["generator"] == name).sum())
    return {"identical": bool(per_generator) and all(e["identical"] and e["differing_metric_means"] == 0
                                                       for e in per_generator.values()),
            "generators": per_generator}
