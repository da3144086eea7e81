"""Flags for degenerate samples (mode collapse), recorded with the job instead of scored silently.

A sample can satisfy the contract (right shape, non-negative integers) and still be useless:
all-zero rows, a handful of distinct rows repeated, or whole swathes of common codes never
generated. Each check compares with the real training rows, so a sparse dataset is not flagged.
"""

from __future__ import annotations

import numpy as np

EMPTY_ROW_EXCESS = 0.5  # flag when empty rows exceed the real share by this much
DISTINCT_SHARE = 0.01  # flag when fewer than 1% of rows are distinct (and the real data is not)
COMMON_CODE_PREVALENCE = 0.01  # "common" codes: present in at least 1% of real rows
MISSING_COMMON_SHARE = 0.5  # flag when half of the common codes never occur


def _distinct_rows(present: np.ndarray) -> int:
    packed = np.packbits(present, axis=1)
    return len(np.unique(packed, axis=0))


def sample_warnings(samples: np.ndarray, real: np.ndarray) -> list[str]:
    """Human-readable reasons why ``samples`` look collapsed; empty when they look healthy."""
    if samples.size == 0 or real.size == 0:
        return []
    fake = samples > 0
    true = real > 0
    warnings = []
    empty_fake = float((~fake.any(axis=1)).mean())
    empty_real = float((~true.any(axis=1)).mean())
    if empty_fake >= empty_real + EMPTY_ROW_EXCESS:
        warnings.append(
            f"collapsed: {empty_fake:.0%} of synthetic rows have no code (real: {empty_real:.0%})"
        )
    n_fake = _distinct_rows(fake)
    if n_fake < DISTINCT_SHARE * len(fake):
        real_share = _distinct_rows(true[: len(fake)]) / min(len(true), len(fake))
        if real_share >= 10 * DISTINCT_SHARE:
            warnings.append(
                f"collapsed: only {n_fake} distinct rows among {len(fake)} (real: {real_share:.0%} distinct)"
            )
    common = true.mean(axis=0) >= COMMON_CODE_PREVALENCE
    if common.any():
        missing = int((common & ~fake.any(axis=0)).sum())
        if missing >= MISSING_COMMON_SHARE * common.sum():
            warnings.append(
                f"mode collapse: {missing} of {int(common.sum())} codes present in ≥1% of real rows "
                f"never occur in the sample"
            )
    return warnings
