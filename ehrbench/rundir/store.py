"""The append-only result store (``results.jsonl``) and atomic JSON writes.

Record types, one JSON object per line:
- ``cost``: a job's generation (fit + sample) outcome and its cost; written right after sampling.
- ``metric``: one number (generator, repeat, metric, key) with its category and direction.
- ``metric_failure``: a metric that raised on a job, with the reason.
- ``training``: a generator's per-epoch curves (``curves``: series name → values).
- ``job``: closes a job (status ok/failed, and ``warnings`` such as a collapsed sample). Written in the same append as the job's metric rows.

Each record carries the ``attempt`` id of the job execution that wrote it. Only rows of a job's
last closed attempt count, so a run killed at any point and resumed never double-counts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ehrbench.atomic import atomic_open
from ehrbench.errors import InputError

JobKey = tuple[str, int]


def write_json_atomic(path: Path, data: Any) -> None:
    """Atomically replace ``path`` with ``data`` as indented JSON."""
    with atomic_open(path) as fh:
        json.dump(data, fh, indent=2, sort_keys=True, default=str)
        fh.write("\n")


def write_text_atomic(path: Path, text: str) -> None:
    """Atomically replace a text file (leaderboards, reports)."""
    with atomic_open(path) as fh:
        fh.write(text)


class ResultStore:
    """``results.jsonl`` in a run directory: fsync'd appends, tolerant of a torn last line."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / "results.jsonl"

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
        lines = self.path.read_text(encoding="utf-8").split("\n")
        records = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                if number == len(lines):  # torn last line (no newline after it): ignored
                    break
                raise InputError(f"{self.path}: line {number} is not valid JSON ({exc}).") from None
        return records


def job_key(record: dict[str, Any]) -> JobKey:
    return (record["generator"], int(record["repeat"]))


def closed_jobs(records: list[dict[str, Any]]) -> dict[JobKey, dict[str, Any]]:
    """The last ``job`` record of each (generator, repeat)."""
    return {job_key(r): r for r in records if r.get("type") == "job"}


def current_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records that belong to the last closed attempt of their job, in file order."""
    attempts = {key: job["attempt"] for key, job in closed_jobs(records).items()}
    return [r for r in records if attempts.get(job_key(r)) == r.get("attempt")]


def open_generation(records: list[dict[str, Any]], key: JobKey) -> dict[str, Any] | None:
    """A successful ``cost`` record of ``key`` written after its last closed attempt, if any.

    Its samples can be scored on resume without fitting again.
    """
    closed = closed_jobs(records).get(key)
    found = None
    for r in records:
        if r.get("type") == "cost" and job_key(r) == key and r.get("status") == "ok":
            found = r
    if found is None or (closed is not None and closed["attempt"] == found["attempt"]):
        return None
    return found
