"""Atomic file replacement: write a temporary file beside the target, fsync, then rename.

A reader (or a resumed run) therefore sees either the old file or the complete new one. The
temporary file is created with mode 0666 and the kernel applies the umask, as for a plain
``open`` (mkstemp would force 0600), so a run directory is shared the way the user's umask says.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

_CREATE_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
# The name of a temporary file beside its target: what a write killed before its rename leaves.
TEMPORARY_FILE = re.compile(r"\..+\.[0-9a-f]{12}\.tmp")


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new, uniquely named file beside ``path`` (O_EXCL: never an existing one)."""
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, _CREATE_NEW, 0o666), tmp
        except FileExistsError:
            continue


@contextmanager
def atomic_open(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file for writing that replaces ``path`` only when the block succeeds."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a directory; give a file name", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = _create_temporary(path)
    except OSError as exc:  # name the file the user asked for, not its temporary sibling
        raise type(exc)(exc.errno, exc.strerror, str(path)) from None
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename in (None, str(tmp)):
            raise type(exc)(exc.errno, exc.strerror, str(path)) from None
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Atomically replace a text file (leaderboards, reports, exports)."""
    with atomic_open(path) as fh:
        fh.write(text)


def write_json_atomic(path: Path, data: Any) -> None:
    """Atomically replace ``path`` with ``data`` as indented JSON."""
    with atomic_open(path) as fh:
        json.dump(data, fh, indent=2, sort_keys=True, default=str)
        fh.write("\n")
