"""EHRMatrix: the patient × code matrix with its code names, ids, binary view, I/O and split.

Every matrix that enters ehrbench (a dataset, a user's file, a generator's sample)
passes through :func:`check_values`, so metrics can rely on finite, non-negative,
integer-valued data.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ehrbench.atomic import atomic_open
from ehrbench.errors import InputError
from ehrbench.seeding import derive_seed
from ehrbench.text_arrays import read_text_array


def _first_bad(mask: np.ndarray) -> tuple[int, int]:
    row, col = np.argwhere(mask)[0]
    return int(row), int(col)


WORKING_DTYPE = np.float32  # every matrix is held and scored in this dtype (DESIGN.md §3)
_ROW_BLOCK = 8192


def check_values(X: np.ndarray, codes: np.ndarray | None, source: str, binary: bool = False) -> None:
    """Raise :class:`InputError` naming the first row/column that breaks the value contract.

    The checks run on the values as ehrbench will hold them, after the cast to float32: a value
    that is finite in float64 but beyond float32's range (1e39) would become infinity, and a
    complex value would lose its imaginary part, so both are errors that name the cell.
    """

    def column(j: int) -> str:
        return f"column '{codes[j]}'" if codes is not None else f"column {j}"

    def fail(row: int, col: int, value: Any, what: str) -> InputError:
        return InputError(f"{source}: row {row}, {column(col)}: value {value!r} {what}.")

    if X.ndim != 2:
        raise InputError(f"{source}: expected a 2-D patients × codes matrix, got shape {X.shape}.")
    if np.iscomplexobj(X):
        imaginary = X.imag != 0
        r, c = _first_bad(imaginary) if imaginary.any() else (0, 0)
        if X.size == 0:
            raise InputError(f"{source}: holds complex numbers (dtype {X.dtype}); expected real counts.")
        raise fail(r, c, X[r, c].item(), f"is a complex number (dtype {X.dtype}); expected real counts")
    if not np.issubdtype(X.dtype, np.number) and X.dtype != bool:
        raise InputError(f"{source}: expected numbers, got values of type {X.dtype}.")
    if X.shape[1] == 0:
        raise InputError(f"{source}: the matrix has no code columns (shape {X.shape}); expected patients × codes.")
    if X.shape[0] == 0:
        raise InputError(f"{source}: the matrix has no rows (shape {X.shape}); expected at least one patient.")
    checks = [
        (lambda a: a < 0, "is negative; expected non-negative counts"),
        (lambda a: a != np.round(a), "is not an integer; expected counts or 0/1"),
    ]
    if binary:
        checks.append((lambda a: a > 1, "is above 1; expected 0/1 for binary data"))
    # Rows in blocks, so a 50k × 1k check never allocates a second full-size array at once.
    for start in range(0, X.shape[0], _ROW_BLOCK):
        block = np.asarray(X[start : start + _ROW_BLOCK])
        with np.errstate(over="ignore", invalid="ignore"):
            cast = block.astype(WORKING_DTYPE)
        finite = np.isfinite(cast)
        if not finite.all():
            r, c = _first_bad(~finite)
            original = block[r, c].item()
            what = ("is beyond the range of float32, ehrbench's working precision (largest 3.4e38)"
                    if np.isfinite(original) else "is not a finite number (NaN or infinity)")
            raise fail(start + r, c, original, what)
        for bad, what in checks:
            with np.errstate(invalid="ignore"):
                mask = bad(cast)
            if mask.any():
                r, c = _first_bad(mask)
                raise fail(start + r, c, block[r, c].item(), what)


@dataclass
class EHRMatrix:
    """Patients × codes, float32, non-negative counts or 0/1, with unique code names."""

    X: np.ndarray
    codes: np.ndarray
    ids: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.X = np.asarray(self.X, dtype=np.float32)
        self.codes = np.asarray([str(c) for c in self.codes], dtype=str)
        if self.X.ndim != 2:
            raise InputError(f"expected a 2-D patients × codes matrix, got shape {self.X.shape}.")
        if len(self.codes) != self.X.shape[1]:
            raise InputError(
                f"{len(self.codes)} code names for a matrix of {self.X.shape[1]} columns."
            )
        uniq, counts = np.unique(self.codes, return_counts=True)
        if (counts > 1).any():
            raise InputError(f"code name '{uniq[counts > 1][0]}' appears more than once.")
        if self.ids is not None:
            self.ids = np.asarray(self.ids)
            if len(self.ids) != self.X.shape[0]:
                raise InputError(f"{len(self.ids)} patient ids for {self.X.shape[0]} rows.")

    @property
    def n_patients(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_codes(self) -> int:
        return int(self.X.shape[1])

    def binary(self) -> EHRMatrix:
        """The presence view: 1 where the count is above 0."""
        return EHRMatrix((self.X > 0).astype(np.float32), self.codes, self.ids, dict(self.meta))

    def as_representation(self, representation: str) -> EHRMatrix:
        return self.binary() if representation == "binary" else self

    def rows(self, index: np.ndarray) -> EHRMatrix:
        ids = self.ids[index] if self.ids is not None else None
        return EHRMatrix(self.X[index], self.codes, ids, dict(self.meta))

    def with_data(self, X: np.ndarray) -> EHRMatrix:
        """Another matrix over the same codes, without ids (e.g. a synthetic sample)."""
        return EHRMatrix(X, self.codes)

    def check_same_codes(self, other: EHRMatrix, name: str, other_name: str) -> None:
        """Raise :class:`InputError` unless both matrices have the same columns in the same order."""
        if np.array_equal(self.codes, other.codes):
            return
        mine, theirs = set(self.codes), set(other.codes)
        missing = [c for c in self.codes if c not in theirs]
        extra = [c for c in other.codes if c not in mine]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"{len(missing)} codes missing from {other_name} (first: '{missing[0]}')")
            if extra:
                parts.append(f"{len(extra)} codes in {other_name} not in {name} (first: '{extra[0]}')")
            raise InputError(f"code columns differ between {name} and {other_name}: {'; '.join(parts)}.")
        j = int(np.argmax(self.codes != other.codes))
        raise InputError(
            f"code columns of {name} and {other_name} are in a different order: column {j} is "
            f"'{self.codes[j]}' in {name} but '{other.codes[j]}' in {other_name}."
        )

    def save(self, path: Path | str) -> None:
        """Write ``.npz`` (keys X, codes, ids, meta) atomically: temporary file, then rename."""
        arrays: dict[str, np.ndarray] = {"X": self.X, "codes": self.codes}
        if self.ids is not None:
            arrays["ids"] = self.ids
        if self.meta:
            arrays["meta"] = np.array(json.dumps(self.meta))
        with atomic_open(path, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    @classmethod
    def load(cls, path: Path | str) -> EHRMatrix:
        """Read an ehrbench ``.npz``; every problem is an :class:`InputError` naming the file."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: file not found.")
        if not zipfile.is_zipfile(path):
            raise InputError(
                f"{path}: not a readable .npz file (expected a NumPy .npz archive with arrays X and codes)."
            )
        try:
            with np.load(path, allow_pickle=False) as npz:
                keys = set(npz.files)
                if "X" not in keys or "codes" not in keys:
                    raise InputError(
                        f"{path}: missing array {'X' if 'X' not in keys else 'codes'}; an ehrbench "
                        f".npz holds X (patients × codes), codes (column names) and optionally ids "
                        f"(found: {', '.join(sorted(keys)) or 'no arrays'})."
                    )
                X = npz["X"]
                codes = _array_or_text(npz, path, "codes")
                ids = _array_or_text(npz, path, "ids", integers=True) if "ids" in keys else None
                meta = json.loads(str(npz["meta"])) if "meta" in keys else {}
                if not isinstance(meta, dict):
                    raise InputError(f"{path}: its array 'meta' must hold a JSON object, got {type(meta).__name__}.")
                if not isinstance(meta.get("simulated", False), bool):
                    raise InputError(f"{path}: meta 'simulated' must be true or false, got {meta['simulated']!r}.")
        except InputError:
            raise
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: its array 'meta' is not valid JSON ({exc}).") from None
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise InputError(f"{path}: not a readable .npz file ({exc}).") from None
        except ValueError as exc:
            raise InputError(f"{path}: cannot read its arrays without pickle ({exc}).") from None
        return from_arrays(X, codes, ids, meta, source=str(path))


def _array_or_text(npz: Any, path: Path, key: str, integers: bool = False) -> np.ndarray:
    """``npz[key]``; an object-dtype array (``np.array(df.columns)``) is read as text, without pickle's code."""
    try:
        return npz[key]
    except ValueError:  # NumPy saved it as a pickle
        return read_text_array(path, key, integers)


def from_arrays(
    X: np.ndarray,
    codes: Any,
    ids: Any = None,
    meta: dict[str, Any] | None = None,
    source: str = "matrix",
    binary: bool = False,
) -> EHRMatrix:
    """Validate raw arrays and wrap them, with errors that name ``source``."""
    X = np.asarray(X)
    check_values(X, np.asarray(codes) if codes is not None else None, source, binary=binary)
    try:
        return EHRMatrix(X, codes, ids, meta or {})
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from None


@dataclass(frozen=True)
class Split:
    """The held-out protocol: generators see ``train`` only; metrics score against ``test``."""

    train: EHRMatrix
    test: EHRMatrix
    seed: int
    test_fraction: float

    def manifest(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "test_fraction": self.test_fraction,
            "n_train": self.train.n_patients,
            "n_test": self.test.n_patients,
        }


# The fewest patients either side of a split may hold. Metrics on fewer are noise, and the report's
# aggregates of the test split (reference.npz: per-code prevalence, codes per record) would give
# away the rows of a split that small.
MIN_SPLIT_PATIENTS = 10


def split(matrix: EHRMatrix, seed: int, test_fraction: float = 0.3) -> Split:
    """A seeded, stratification-free patient split (70/30 by default)."""
    n = matrix.n_patients
    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"test fraction must be between 0 and 1, got {test_fraction}.")
    n_test = min(n - 1, max(1, int(round(n * test_fraction)))) if n >= 2 else n
    if min(n_test, n - n_test) < MIN_SPLIT_PATIENTS:
        raise InputError(
            f"the dataset has {n} patient(s), so a split with test fraction {test_fraction:g} leaves "
            f"{n - n_test} for training and {n_test} for testing; each split needs at least "
            f"{MIN_SPLIT_PATIENTS} patients (metrics on fewer are noise, and aggregates of so few rows "
            f"would reveal them). Use a larger dataset."
        )
    order = np.random.default_rng(derive_seed(seed, "split")).permutation(n)
    test_idx = np.sort(order[:n_test])
    train_idx = np.sort(order[n_test:])
    return Split(matrix.rows(train_idx), matrix.rows(test_idx), seed, test_fraction)
