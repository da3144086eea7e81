"""The append-only result store, ``results.jsonl``: one JSON record per line (kinds in records.py).

Appends are one write each, then fsync, so a batch lands whole or is torn at its end; a torn last
line (a killed process) is cut by :meth:`ResultStore.repair` and ignored by :meth:`ResultStore.read`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ehrbench.errors import InputError
from ehrbench.rundir.records import record_problem


class ResultStore:
    """``results.jsonl`` at ``path``: fsync'd appends, tolerant of a torn last line."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def exists(self) -> bool:
        return self.path.exists()

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        """Append records in one write, then fsync, so a batch lands whole or is torn at the end."""
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
        if not text:
            return
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())

    def repair(self) -> int:
        """Cut a torn final line left by a killed process; returns the bytes removed."""
        if not self.path.exists():
            return 0
        data = self.path.read_bytes()
        if not data or data.endswith(b"\n"):
            return 0
        keep = data.rfind(b"\n") + 1
        with open(self.path, "r+b") as fh:
            fh.truncate(keep)
            fh.flush()
            os.fsync(fh.fileno())
        return len(data) - keep

    def read(self) -> list[dict[str, Any]]:
        """All complete records; a corrupt line other than a torn last one is an error."""
        if not self.path.exists():
            return []
        try:
            lines = self.path.read_text(encoding="utf-8").split("\n")
        except UnicodeDecodeError as exc:
            raise InputError(f"{self.path}: not UTF-8 text ({exc}); the file is damaged.") from None
        records = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                if number == len(lines):  # torn last line (no newline after it): ignored
                    break
                raise InputError(f"{self.path}: line {number} is not valid JSON ({exc}).") from None
            problem = record_problem(record)
            if problem:
                raise InputError(f"{self.path}: line {number} is not an ehrbench record: {problem}.")
            records.append(record)
        return records
