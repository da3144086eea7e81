"""Flags for degenerate samples, recorded with the job instead of scored silently.

A sample can satisfy the contract (right shape, non-negative integers) and still be useless:
empty records, a handful of distinct rows repeated, records with far too few or far too many
codes, most codes never generated, or a binary matrix of almost only zeros or ones. Each check
compares with the real training rows (so a sparse dataset is not flagged) and works on any
generator's output, third-party ones included. A warning reads ``"<kind>: <reason>"``; the kind
(:data:`KINDS`) is what ``leaderboard.csv`` lists as an informational ``flags`` row.
"""

from __future__ import annotations

import numpy as np

EMPTY_ROW_EXCESS = 0.2  # empty records exceed the real share by 20 points or more
DISTINCT_RATIO = 0.1  # distinct rows below a tenth of the real share (on as many rows)
CODES_PER_RECORD_FACTOR = 2.0  # mean codes per record below half or above twice the real mean
PRODUCED_SHARE = 0.5  # fewer than half the codes that a faithful sample of this size would produce
COMMON_CODE_PREVALENCE = 0.01  # "common" codes: present in at least 1% of real rows
MISSING_COMMON_SHARE = 0.5  # half of the common codes never occur
BINARY_DENSITY_FACTOR = 10.0  # binary: ones below a tenth of the real share, or zeros below a tenth

KINDS = (
    "empty records", "few distinct rows", "codes per record", "codes never produced",
    "common codes missing", "all zeros", "all ones",
)


def _distinct_rows(present: np.ndarray) -> int:
    packed = np.packbits(present, axis=1)
    return len(np.unique(packed, axis=0))


def _is_binary(*matrices: np.ndarray) -> bool:
    return all(m.size == 0 or float(m.max()) <= 1.0 for m in matrices)


def sample_warnings(samples: np.ndarray, real: np.ndarray, binary: bool | None = None) -> list[str]:
    """Human-readable reasons why ``samples`` look degenerate; empty when they look healthy.

    ``binary`` says whether the run's representation is 0/1 (``None``: both matrices hold only
    0 and 1).
    """
    if samples.size == 0 or real.size == 0:
        return []
    if binary is None:
        binary = _is_binary(samples, real)
    fake = samples > 0
    true = real > 0
    warnings = []

    empty_fake = float((~fake.any(axis=1)).mean())
    empty_real = float((~true.any(axis=1)).mean())
    if empty_fake >= empty_real + EMPTY_ROW_EXCESS:
        warnings.append(f"empty records: {empty_fake:.0%} of synthetic rows have no code (real: {empty_real:.0%})")

    n_fake = _distinct_rows(fake)
    rows = min(len(true), len(fake))
    real_share = _distinct_rows(true[:rows]) / rows
    if n_fake / len(fake) < DISTINCT_RATIO * real_share:
        warnings.append(
            f"few distinct rows: only {n_fake} distinct rows among {len(fake)} "
            f"(real: {real_share:.0%} distinct)"
        )

    per_record_fake = float(fake.sum(axis=1).mean())
    per_record_real = float(true.sum(axis=1).mean())
    if per_record_real > 0 and not (
        per_record_real / CODES_PER_RECORD_FACTOR <= per_record_fake <= per_record_real * CODES_PER_RECORD_FACTOR
    ):
        warnings.append(
            f"codes per record: {per_record_fake:.3g} distinct codes per synthetic record against "
            f"{per_record_real:.3g} in the real rows"
        )

    prevalence = true.mean(axis=0)
    # A sample of n rows drawn from the real marginals produces code j with probability 1 − (1 − p_j)^n.
    expected = float((1.0 - np.power(1.0 - prevalence, len(fake))).sum())
    produced = int(fake.any(axis=0).sum())
    if expected >= 1.0 and produced < PRODUCED_SHARE * expected:
        warnings.append(
            f"codes never produced: the sample uses {produced} codes; a sample of its size drawn from "
            f"the real marginals would use about {expected:.0f} (of {int((prevalence > 0).sum())} real codes)"
        )

    common = prevalence >= COMMON_CODE_PREVALENCE
    if common.any():
        missing = int((common & ~fake.any(axis=0)).sum())
        if missing >= MISSING_COMMON_SHARE * common.sum():
            warnings.append(
                f"common codes missing: {missing} of {int(common.sum())} codes present in ≥1% of real rows "
                f"never occur in the sample"
            )

    if binary:
        ones_fake, ones_real = float(fake.mean()), float(true.mean())
        if ones_real > 0 and ones_fake < ones_real / BINARY_DENSITY_FACTOR:
            warnings.append(f"all zeros: {ones_fake:.3%} of the sample's cells are 1 (real: {ones_real:.3%})")
        if ones_real < 1 and 1.0 - ones_fake < (1.0 - ones_real) / BINARY_DENSITY_FACTOR:
            warnings.append(f"all ones: {ones_fake:.3%} of the sample's cells are 1 (real: {ones_real:.3%})")
    return warnings
