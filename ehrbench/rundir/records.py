"""The records of ``results.jsonl``: their kinds, their fields, and which of them count.

Kinds (the ``type`` field), one JSON object per line:

- ``cost``: a job's generation (fit + sample) outcome and its cost; written right after sampling.
- ``metric``: one number (generator, repeat, metric, key) with its category and direction.
- ``metric_failure``: a metric that raised on a job, with the reason.
- ``training``: a generator's per-epoch curves (``curves``: series name → values).
- ``job``: closes a job (status ok/failed, and ``warnings`` such as a collapsed sample). Written in
  the same append as the job's metric rows.

Each record carries the ``attempt`` id of the job execution that wrote it. Only rows of a job's
last closed attempt count, so a run killed at any point and resumed never double-counts. The
metric rows and the ``job`` record of one scoring also share a ``batch`` id: an append cut short
(a full disk, a kill) can leave some metric rows of an attempt without their ``job`` record, and
when that sample is scored again on resume, under the same attempt, only the batch the ``job``
record closes counts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ehrbench.api import Direction
from ehrbench.errors import InputError, path_component

JobKey = tuple[str, int]
Record = dict[str, Any]


class Kind:
    """The ``type`` of a record."""

    COST = "cost"
    METRIC = "metric"
    METRIC_FAILURE = "metric_failure"
    TRAINING = "training"
    JOB = "job"


KINDS = (Kind.COST, Kind.METRIC, Kind.METRIC_FAILURE, Kind.TRAINING, Kind.JOB)
# Record kinds that a scoring writes, in one append with its closing ``job`` record.
SCORING_KINDS = (Kind.METRIC, Kind.METRIC_FAILURE)


class Status:
    """The ``status`` of a ``cost`` or ``job`` record."""

    OK = "ok"
    FAILED = "failed"


def job_key(record: Mapping[str, Any]) -> JobKey:
    return (record["generator"], int(record["repeat"]))


def of_kind(records: list[Record], kind: str) -> list[Record]:
    return [r for r in records if r.get("type") == kind]


def closed_jobs(records: list[Record]) -> dict[JobKey, Record]:
    """The last ``job`` record of each (generator, repeat)."""
    return {job_key(r): r for r in of_kind(records, Kind.JOB)}


def current_records(records: list[Record]) -> list[Record]:
    """Records that belong to the last closed attempt of their job, in file order; of its metric
    rows, only those of the batch its ``job`` record closes (an earlier, torn batch never counts)."""
    closing = closed_jobs(records)

    def counts(r: Record) -> bool:
        job = closing.get(job_key(r))
        if job is None or job["attempt"] != r.get("attempt"):
            return False
        return r.get("type") not in SCORING_KINDS or r.get("batch") == job.get("batch")

    return [r for r in records if counts(r)]


def record_problem(record: Any) -> str | None:
    """Why ``record`` (one parsed line of results.jsonl) is not a record ehrbench wrote, or None."""
    if not isinstance(record, dict):
        return f"expected a JSON object, got {type(record).__name__}"
    kind = record.get("type")
    if kind not in KINDS:
        return f"unknown record type {kind!r}; expected one of {', '.join(KINDS)}"
    try:
        path_component(record.get("generator"), "generator name")
    except InputError as exc:
        return str(exc)
    repeat = record.get("repeat")
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 0:
        return f"field 'repeat' must be a non-negative integer, got {repeat!r}"
    if not isinstance(record.get("attempt"), str):
        return f"field 'attempt' must be a string, got {record.get('attempt')!r}"
    if kind in (Kind.COST, Kind.JOB) and record.get("status") not in (Status.OK, Status.FAILED):
        return f"field 'status' must be '{Status.OK}' or '{Status.FAILED}', got {record.get('status')!r}"
    if kind in SCORING_KINDS and not isinstance(record.get("metric"), str):
        return f"field 'metric' must be a string, got {record.get('metric')!r}"
    if kind == Kind.METRIC:
        value = record.get("value")
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return f"field 'value' must be a number, got {value!r}"
        if not isinstance(record.get("category"), str):
            return f"field 'category' must be a string, got {record.get('category')!r}"
    if kind == Kind.TRAINING and not isinstance(record.get("curves"), dict):
        return f"field 'curves' must be an object, got {record.get('curves')!r}"
    return None


def ok_jobs(records: list[Record]) -> list[JobKey]:
    """The jobs whose last closed attempt succeeded, in the order they closed."""
    closed = closed_jobs(records)
    return [job_key(r) for r in of_kind(records, Kind.JOB) if closed[job_key(r)] is r and r.get("status") == Status.OK]


def open_generation(records: list[Record], key: JobKey) -> Record | None:
    """A successful ``cost`` record of ``key`` written after its last closed attempt, if any.

    Its samples can be scored on resume without fitting again.
    """
    closed = closed_jobs(records).get(key)
    found = None
    for r in of_kind(records, Kind.COST):
        if job_key(r) == key and r.get("status") == Status.OK:
            found = r
    if found is None or (closed is not None and closed["attempt"] == found["attempt"]):
        return None
    return found


def direction_fields(direction: Direction | None) -> Record:
    """How a ``metric`` record (and a leaderboard row) stores a direction; ``None`` is informational."""
    return {
        "higher_is_better": direction.higher_is_better if direction else None,
        "target": direction.target if direction else None,
        "ranked": direction is not None,
    }


def record_direction(record: Mapping[str, Any]) -> Direction | None:
    """The inverse of :func:`direction_fields` (a missing target may be read back as NaN)."""
    if not record.get("ranked"):
        return None
    target = record.get("target")
    if target is None or (isinstance(target, float) and math.isnan(target)):
        return Direction(bool(record["higher_is_better"]), None)
    return Direction(bool(record["higher_is_better"]), float(target))


def flag_kind(warning: str) -> str:
    """The kind of a flag record's warning (its text before the first colon)."""
    return warning.split(":", 1)[0].strip()
