"""Reading MIMIC-III CSV tables in both dialects users have, with errors that point at a cell.

- The credentialed v1.4 release: upper-case quoted headers (``"SUBJECT_ID"``), quoted string
  values (``"0414"``), usually gzip-compressed.
- The public demo: lower-case unquoted headers and values.

Either may have CRLF or LF line ends. Quotes are removed by the CSV parser, never by cutting
characters off a value (a well-known script cuts the first and last character of every code,
which corrupts unquoted files). Headers match case-insensitively. Compression is recognised by
the file's first bytes, not its name.

Every value is read as text with no NA conversion, so ``038`` stays ``038`` and an empty cell is
``""``. Errors name the file, the line and the column; the line is found by re-reading the file
with Python's csv module only when there is an error, so the fast path stays pandas' C parser.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ehrbench import InputError

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
_DIGITS = re.compile(r"[0-9]+")  # ASCII only: int() would read other scripts' digits too
_READ_ERRORS = (OSError, EOFError, UnicodeDecodeError, zlib.error)


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _compression(path: Path) -> str | None:
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic.startswith(ZIP_MAGIC):
        raise InputError(
            f"{path}: is a zip archive, not a CSV file; unzip it first (.csv or .csv.gz are read)."
        )
    return "gzip" if magic.startswith(GZIP_MAGIC) else None


def _open_text(path: Path, compression: str | None) -> io.TextIOBase:
    raw = gzip.open(path, "rb") if compression == "gzip" else open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")


def _check_text(path: Path, compression: str | None) -> None:
    """Reject binary content (a NUL byte in the first 8 KiB) before pandas guesses at it."""
    try:
        opener = gzip.open if compression == "gzip" else open
        with opener(path, "rb") as fh:
            head = fh.read(8192)
    except _READ_ERRORS as exc:
        raise InputError(f"{path}: cannot be read as {compression or 'plain'} text ({_short(exc)}).") from None
    if b"\x00" in head:
        raise InputError(f"{path}: is not a CSV text file (it holds binary data).")
    if not head.strip():
        raise InputError(f"{path}: the file is empty; expected a header row and data rows.")


def line_of_row(path: Path, row: int) -> int:
    """The 1-based line where data row ``row`` (0-based, blank lines skipped) starts."""
    with _open_text(path, _compression(path)) as fh:
        reader = csv.reader(fh)
        start, k = 1, -1  # k = -1 while the header is next
        for record in reader:
            if record:
                if k == row:
                    return start
                k += 1
            start = reader.line_num + 1
    return start


def _header(path: Path, compression: str | None) -> list[str]:
    with _open_text(path, compression) as fh:
        first = next(csv.reader(fh), [])
    return [h.strip() for h in first]


def read_table(path: Path, required: Sequence[str], table: str) -> pd.DataFrame:
    """The ``required`` columns of a MIMIC-III table, as text, named in lower case.

    ``table`` (e.g. ``"ADMISSIONS"``) is only used in messages. The frame keeps the header's
    spelling of each column in ``frame.attrs["columns"]`` (lower-case name → (spelling, position))
    so later errors can name the column as the user wrote it.
    """
    if not path.exists():
        raise InputError(f"{path}: file not found (expected the MIMIC-III {table} table).")
    if not path.is_file():
        raise InputError(f"{path}: is not a file (expected the MIMIC-III {table} table).")
    compression = _compression(path)
    _check_text(path, compression)
    header = _header(path, compression)
    positions: dict[str, int] = {}
    for j, name in enumerate(header):
        key = name.lower()
        if key in positions:
            raise InputError(
                f"{path}: line 1 (header): column '{name}' (column {j + 1}) repeats column "
                f"'{header[positions[key]]}' (column {positions[key] + 1}); column names must be "
                f"unique, ignoring case."
            )
        positions[key] = j
    for name in required:
        if name not in positions:
            shown = ", ".join(header[:8]) + (", …" if len(header) > 8 else "")
            raise InputError(
                f"{path}: line 1 (header): no column '{name.upper()}' (matched ignoring case); "
                f"a MIMIC-III {table} table needs the columns {', '.join(n.upper() for n in required)}. "
                f"The header has: {shown or 'nothing'}."
            )
    use = [positions[n] for n in required]
    try:
        # Every column is parsed (not only ``use``): the C parser then rejects a row with more fields
        # than the header, which would otherwise shift silently under ``usecols``.
        frame = pd.read_csv(
            path,
            compression=compression,
            dtype=str,
            na_filter=False,
            encoding="utf-8-sig",
            encoding_errors="replace",
            engine="c",
        )
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty; expected a header row and data rows.") from None
    except pd.errors.ParserError as exc:
        raise InputError(f"{path}: not a well-formed CSV file ({_short(exc)}).") from None
    except _READ_ERRORS as exc:
        raise InputError(f"{path}: not a readable CSV file ({_short(exc)}).") from None
    frame = frame.iloc[:, use]
    frame.columns = list(required)
    frame.attrs["columns"] = {n: (header[positions[n]], positions[n] + 1) for n in required}
    frame.attrs["path"] = str(path)
    return frame


def _where(frame: pd.DataFrame, column: str, row: int) -> str:
    path = Path(frame.attrs["path"])
    spelling, position = frame.attrs["columns"][column]
    return f"{path}: line {line_of_row(path, row)}, column '{spelling}' (column {position})"


def integer_column(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A column of non-negative integer ids (SUBJECT_ID, HADM_ID) as int64.

    Values are checked once per distinct value, so a 651k-row table costs little more than
    its ~60k distinct ids.
    """
    codes, uniques = pd.factorize(frame[column], sort=False)
    text = pd.Series(uniques, dtype=object).astype(str)
    ok = text.str.fullmatch(_DIGITS).to_numpy(dtype=bool) & (text.str.len() <= 18).to_numpy(dtype=bool)
    if not ok.all():
        bad = int(np.flatnonzero(~ok)[0])
        row = int(np.argmax(codes == bad))
        value = text.iloc[bad]
        what = "is empty" if value == "" else f"{value!r} is not a whole number"
        raise InputError(
            f"{_where(frame, column, row)}: {what}; expected a non-negative integer id."
        )
    values = text.astype(np.int64).to_numpy()
    return values[codes]


def raise_at(frame: pd.DataFrame, column: str, row: int, message: str) -> None:
    """Raise an InputError for one cell, located by file, line and column."""
    raise InputError(f"{_where(frame, column, row)}: {message}")
