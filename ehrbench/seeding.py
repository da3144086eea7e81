"""Seed derivation: every random stream in a run comes from the run seed and a label.

Labels make streams independent of execution order, so a job's result depends only on
(run seed, generator, repeat), never on which jobs ran before it or on a global RNG.
"""

from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(*parts: object) -> int:
    """A stable 31-bit seed from any printable parts (stable across Python versions)."""
    text = "/".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little") & 0x7FFFFFFF


def rng(*parts: object) -> np.random.Generator:
    """A NumPy generator seeded from ``derive_seed(*parts)``."""
    return np.random.default_rng(derive_seed(*parts))
