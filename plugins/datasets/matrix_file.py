"""The ``matrix`` dataset: a user's own patient × code matrix from a file.

Formats, chosen by extension:

- ``.npz``: ehrbench's own format (keys ``X``, ``codes``, optional ``ids``), read by
  :meth:`EHRMatrix.load`;
- ``.npy``: a plain 2-D numeric array; its columns are named ``0`` … ``d-1``;
- ``.csv`` / ``.csv.gz``: a header row of code names (kept exactly as written, so ``038``
  stays ``038``) and one row per patient; ``id_column`` names a column of patient ids.

Every problem with the file is an :class:`InputError` that names the file and, where it
can, the line and column, so a user can fix it in an editor.
"""

from __future__ import annotations

import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ehrbench import ConfigError, Dataset, EHRMatrix, InputError, from_arrays, hookimpl

SUFFIXES: tuple[str, ...] = (".npz", ".npy", ".csv", ".csv.gz")
# Errors that reading a damaged or non-text file can raise, beyond pandas' own.
_READ_ERRORS = (OSError, EOFError, UnicodeDecodeError, zlib.error)


def file_format(path: Path) -> str:
    """The supported suffix ``path`` ends with (case-insensitive), or an InputError."""
    name = path.name.lower()
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    raise InputError(
        f"{path}: unsupported file type; a matrix file must end with one of "
        f"{', '.join(SUFFIXES)} (.npz as written by ehrbench, .npy a 2-D numeric array, "
        f".csv/.csv.gz a header row of code names and one row per patient)."
    )


def _require_file(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: file not found (dataset 'matrix', option 'path').")
    if not path.is_file():
        raise InputError(f"{path}: is not a file; option 'path' must name a matrix file.")


def _line(row: int) -> int:
    """The editor line of data row ``row`` (0-based): the header is line 1."""
    return row + 2


# --------------------------------------------------------------------------- .npy


def load_npy(path: Path) -> EHRMatrix:
    """A plain 2-D numeric array; columns get the names ``0`` … ``d-1``."""
    try:
        X = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise InputError(
            f"{path}: not a readable .npy array without pickle ({exc}); expected a 2-D "
            f"numeric array of patients × codes."
        ) from None
    except _READ_ERRORS as exc:
        raise InputError(f"{path}: not a readable .npy file ({exc}).") from None
    if not isinstance(X, np.ndarray):
        X.close()
        raise InputError(
            f"{path}: holds a .npz archive, not a single array; rename it to .npz if it is "
            f"in ehrbench's format (arrays X, codes, ids)."
        )
    if X.ndim != 2:
        raise InputError(
            f"{path}: expected a 2-D patients × codes array, got {X.ndim} dimension(s) "
            f"with shape {X.shape}."
        )
    codes = [str(j) for j in range(X.shape[1])]
    return from_arrays(X, codes, None, {"source": str(path), "format": "npy"}, source=str(path))


# --------------------------------------------------------------------------- .csv


def _read_header(path: Path) -> list[str]:
    """The header row exactly as written (strings, no NA conversion, no renaming)."""
    try:
        head = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise InputError(
            f"{path}: the CSV file is empty; expected a header row of code names "
            f"and one row per patient."
        ) from None
    except (pd.errors.ParserError, *_READ_ERRORS) as exc:
        raise InputError(f"{path}: not a readable CSV file ({_short(exc)}).") from None
    return [str(v) for v in head.iloc[0].tolist()]


def _check_header(path: Path, header: list[str], id_column: str | None) -> int | None:
    """Reject unnamed and duplicate columns; return the id column's position."""
    for j, name in enumerate(header):
        if name.strip() == "":
            raise InputError(
                f"{path}: line 1 (header), column {j + 1} has no name; every column needs "
                f"a code name (or be the id column)."
            )
    seen: dict[str, int] = {}
    for j, name in enumerate(header):
        if name in seen:
            raise InputError(
                f"{path}: line 1 (header): column name '{name}' appears twice (columns "
                f"{seen[name] + 1} and {j + 1}); code names must be unique."
            )
        seen[name] = j
    if id_column is None:
        return None
    if id_column not in seen:
        raise InputError(
            f"{path}: id column '{id_column}' (option 'id_column') is not in the header "
            f"(line 1); the header has {len(header)} columns, starting "
            f"{', '.join(repr(h) for h in header[:5])}."
        )
    return seen[id_column]


def _read_body(path: Path, header: list[str], dtype: Any) -> pd.DataFrame:
    """The data rows under the header; blank lines stay as empty rows so lines keep counting."""
    try:
        return pd.read_csv(
            path,
            header=None,
            skiprows=1,
            names=list(range(len(header))),
            index_col=False,
            skip_blank_lines=False,
            dtype=dtype,
        )
    except pd.errors.EmptyDataError:
        raise InputError(
            f"{path}: the CSV file has a header (line 1) but no patient rows."
        ) from None
    except pd.errors.ParserError as exc:
        raise InputError(f"{path}: not a well-formed CSV file ({_short(exc)}).") from None
    except _READ_ERRORS as exc:
        raise InputError(f"{path}: not a readable CSV file ({_short(exc)}).") from None


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _first_non_numeric(
    path: Path, header: list[str], id_pos: int | None
) -> tuple[int, int, str] | None:
    """(row, column, text) of the first cell, in file order, that is not a number."""
    dtype = {id_pos: str} if id_pos is not None else None
    with warnings.catch_warnings():
        # Mixed-type columns are exactly what this pass is looking for.
        warnings.simplefilter("ignore", pd.errors.DtypeWarning)
        frame = _read_body(path, header, dtype)
    found: tuple[int, int, str] | None = None
    for j in frame.columns:
        col = frame[j]
        if j == id_pos or pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            continue
        bad = pd.to_numeric(col, errors="coerce").isna() & col.notna()
        if bad.any():
            i = int(np.argmax(bad.to_numpy()))
            if found is None or i < found[0]:
                found = (i, int(j), str(col.iloc[i]))
    return found


def _drop_trailing_blank_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Empty lines at the end of a file are not patients."""
    filled = frame.notna().any(axis=1).to_numpy()
    last = len(filled) - int(np.argmax(filled[::-1])) if filled.any() else 0
    return frame.iloc[:last]


def _read_numeric(path: Path, header: list[str], id_pos: int | None) -> pd.DataFrame:
    """Parse code columns straight to float32; on a bad cell, find and name it."""
    dtype: dict[int, Any] = {j: np.float32 for j in range(len(header)) if j != id_pos}
    if id_pos is not None:
        dtype[id_pos] = str
    try:
        with warnings.catch_warnings():  # a value beyond float32 overflows to inf: named afterwards
            warnings.simplefilter("ignore", RuntimeWarning)
            frame = _read_body(path, header, dtype)
    except ValueError as exc:
        bad = _first_non_numeric(path, header, id_pos)
        if bad is None:
            raise InputError(
                f"{path}: cannot read the values as numbers ({_short(exc)})."
            ) from None
        row, col, text = bad
        raise InputError(
            f"{path}: line {_line(row)}, column '{header[col]}': {text!r} is not a number; "
            f"expected a non-negative integer count (or 0/1) in every code column."
        ) from None
    frame = _drop_trailing_blank_rows(frame)
    if len(frame) == 0:
        raise InputError(f"{path}: the CSV file has a header (line 1) but no patient rows.")
    return frame


def _patient_ids(path: Path, ids: pd.Series, id_column: str) -> np.ndarray:
    """Patient ids as strings; each must be present and unique (one row per patient)."""
    missing = ids.isna().to_numpy()
    if missing.any():
        row = int(np.argmax(missing))
        raise InputError(
            f"{path}: line {_line(row)}, column '{id_column}': the patient id is empty; "
            f"every row needs an id."
        )
    values = ids.astype(str).to_numpy().astype(str)
    uniq, first, counts = np.unique(values, return_index=True, return_counts=True)
    if (counts > 1).any():
        k = int(np.argmax(counts > 1))
        later = np.flatnonzero(values == uniq[k])[1]
        raise InputError(
            f"{path}: column '{id_column}': patient id '{uniq[k]}' appears on line "
            f"{_line(int(first[k]))} and again on line {_line(int(later))}; expected one "
            f"row per patient."
        )
    return values


def _check_finite_as_written(path: Path, header: list[str], frame: pd.DataFrame, X: np.ndarray) -> None:
    """Name the first cell that is not a finite float32 as the file writes it.

    Values are parsed straight to float32, so a number beyond its range (``1e39``) arrives as
    infinity; the error path re-reads the cell's text to say which it was.
    """
    bad = ~np.isfinite(X)
    if not bad.any():
        return
    row, j = (int(v) for v in np.argwhere(bad)[0])
    column = int(frame.columns[j])
    text = str(_read_body(path, header, str).iloc[row, column]).strip()
    where = f"{path}: line {_line(row)}, column '{header[column]}'"
    if text in ("", "nan"):
        raise InputError(f"{where}: the cell is empty; every code column needs a count (0 when absent).")
    try:
        written = float(text)
    except ValueError:
        written = float("nan")
    if np.isfinite(written):
        raise InputError(f"{where}: {text!r} is beyond the range of float32, ehrbench's working precision "
                         f"(largest 3.4e38); expected a count.")
    raise InputError(f"{where}: {text!r} is not a finite number; expected a non-negative integer count.")


def load_csv(path: Path, id_column: str | None, fmt: str) -> EHRMatrix:
    """A CSV (optionally gzip-compressed) with a header of code names."""
    header = _read_header(path)
    id_pos = _check_header(path, header, id_column)
    frame = _read_numeric(path, header, id_pos)
    ids = None
    if id_pos is not None and id_column is not None:
        ids = _patient_ids(path, frame[id_pos], id_column)
        frame = frame.drop(columns=[id_pos])
    codes = [header[j] for j in frame.columns]
    if not codes:
        raise InputError(f"{path}: the CSV file has no code columns besides the id column.")
    X = frame.to_numpy(dtype=np.float32)
    _check_finite_as_written(path, header, frame, X)
    meta = {"source": str(path), "format": fmt.lstrip(".")}
    try:
        return from_arrays(X, codes, ids, meta, source=str(path))
    except InputError as exc:
        raise InputError(
            f"{exc} (Rows count patients from 0 after the header, so row k is line k + 2 "
            f"of the file; an empty cell reads as NaN.)"
        ) from None


# --------------------------------------------------------------------------- plugin


@dataclass(frozen=True)
class MatrixFileOptions:
    """Where the matrix lives and, for CSV, which column holds patient ids."""

    path: Path
    id_column: str | None = None


class MatrixFileDataset(Dataset):
    """A patient × code matrix read from a user's .npz, .npy, .csv or .csv.gz file."""

    name = "matrix"
    description = "a patient × code matrix from a .npz, .npy, .csv or .csv.gz file"
    simulated = False
    Options = MatrixFileOptions
    file_option = "path"  # `ehrbench evaluate` reads its files through this dataset

    def input_files(self) -> list[Path]:
        """The matrix file: its content, not its name, enters the fingerprint."""
        _require_file(self.options.path)
        return [self.options.path]

    def load(self) -> EHRMatrix:
        path = self.options.path
        _require_file(path)
        fmt = file_format(path)
        if self.options.id_column is not None and fmt not in (".csv", ".csv.gz"):
            raise ConfigError(
                f"dataset 'matrix': option 'id_column' applies to .csv and .csv.gz files only; "
                f"{path} is a {fmt} file (an ehrbench .npz carries its ids in the array 'ids')."
            )
        if fmt == ".npz":
            return EHRMatrix.load(path)
        if fmt == ".npy":
            return load_npy(path)
        return load_csv(path, self.options.id_column, fmt)


@hookimpl
def ehrbench_datasets() -> list[type]:
    return [MatrixFileDataset]
