"""The run directory: one owner of its layout, run.json and results.jsonl; the record kinds; directions as text."""

from __future__ import annotations

import json
import math

import pytest

from ehrbench.api import Direction, direction_text, parse_direction
from ehrbench.errors import InputError
from ehrbench.rundir.directory import RunDirectory
from ehrbench.rundir.records import (Kind, Status, closed_jobs, current_records, direction_fields, ok_jobs,
                                     open_generation, record_direction)


def test_paths_are_keyed_by_generator_and_repeat(tmp_path):
    run = RunDirectory(tmp_path / "r")
    assert run.sample_path("my-gan", 2) == tmp_path / "r" / "samples" / "my-gan" / "repeat-2.npz"
    assert run.model_dir("my-gan", 0) == tmp_path / "r" / "models" / "my-gan" / "repeat-0"
    assert run.scratch_dir("my-gan", 1) == tmp_path / "r" / "scratch" / "my-gan" / "repeat-1"
    assert run.leaderboard_path("csv").name == "leaderboard.csv" and run.leaderboard_path("json").name == "leaderboard.json"
    assert (run.manifest_path.name, run.results_path.name, run.reference_path.name) == ("run.json", "results.jsonl",
                                                                                         "reference.npz")
    assert (run.report_path.name, run.figures_dir.name) == ("report.html", "figures")
    assert str(run) == str(tmp_path / "r") and run / "x" == tmp_path / "r" / "x" and RunDirectory(run).path == run.path
    assert run.is_empty()
    run.create()
    assert run.is_empty()
    (run / "x").write_text("")
    assert not run.is_empty()


def test_a_folder_that_is_not_a_run_is_one_clear_error(tmp_path):
    run = RunDirectory(tmp_path)
    with pytest.raises(InputError, match="no run.json here; is this an ehrbench run directory"):
        run.read_manifest()
    assert run.read_manifest_if_present() is None
    with pytest.raises(InputError, match="no results.jsonl here; is this an ehrbench run directory"):
        run.records()
    run.manifest_path.write_text("{not json")
    with pytest.raises(InputError, match=r"run\.json: not valid JSON"):
        run.read_manifest_if_present()
    run.manifest_path.write_text("[1, 2]")
    with pytest.raises(InputError, match="expected a JSON object, got list"):
        run.read_manifest()


def test_manifest_written_atomically_and_updated_in_place(tmp_path):
    run = RunDirectory(tmp_path)
    run.write_manifest({"created_at": "t0", "finished_at": None})
    run.update_manifest(finished_at="t1")
    assert json.loads(run.manifest_path.read_text()) == {"created_at": "t0", "finished_at": "t1"}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # no temporary left


def _record(kind, generator, repeat, attempt, **fields):
    return {"type": kind, "generator": generator, "repeat": repeat, "attempt": attempt, **fields}


def test_only_the_last_closed_attempt_counts_and_ok_jobs_in_closing_order(tmp_path):
    records = [
        _record(Kind.COST, "b", 0, "old", status=Status.OK),
        _record(Kind.COST, "a", 0, "a1", status=Status.OK),
        _record(Kind.METRIC, "a", 0, "a1", value=1.0),
        _record(Kind.JOB, "a", 0, "a1", status=Status.OK),
        _record(Kind.COST, "c", 0, "c1", status=Status.FAILED),
        _record(Kind.JOB, "c", 0, "c1", status=Status.FAILED),
        _record(Kind.COST, "b", 0, "new", status=Status.OK),
        _record(Kind.JOB, "b", 0, "new", status=Status.OK),
        _record(Kind.COST, "d", 0, "d1", status=Status.OK),  # sampled, never closed: scored on resume
    ]
    assert list(closed_jobs(records)) == [("a", 0), ("c", 0), ("b", 0)]
    assert [r["attempt"] for r in current_records(records)] == ["a1", "a1", "a1", "c1", "c1", "new", "new"]
    assert ok_jobs(records) == [("a", 0), ("b", 0)]
    assert open_generation(records, ("d", 0))["attempt"] == "d1"
    assert open_generation(records, ("b", 0)) is None and open_generation(records, ("c", 0)) is None


@pytest.mark.parametrize("direction, text", [
    (Direction(True), "higher"), (Direction(False), "lower"), (Direction(False, 0.5), "toward 0.5"),
    (Direction(False, 0.0), "toward 0"), (None, "info"),
])
def test_one_direction_text_both_ways_and_one_record_form(direction, text):
    assert direction_text(direction) == text and parse_direction(text) == direction
    fields = direction_fields(direction)
    assert record_direction(fields) == direction
    if direction is not None and direction.target is None:
        assert record_direction({**fields, "target": math.nan}) == direction  # as a pandas row holds it


def test_unknown_direction_text_is_an_error():
    for text in ("up", "toward", "toward x", ""):
        with pytest.raises(ValueError, match="not a direction"):
            parse_direction(text)
