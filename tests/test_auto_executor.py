"""``executor = auto`` (the default): every usable core for quick and paper runs on a CPU, in this
process where a fresh interpreter per job would cost more than it saves or cannot import the classes."""

from __future__ import annotations

import json

import pytest

from ehrbench.config import resolve_config
from ehrbench.errors import ConfigError
from ehrbench.execution import executors
from ehrbench.execution.executors import choose_executor, resolve_auto

GRID = 21  # the default run's jobs


@pytest.fixture
def cores(monkeypatch):
    def set_cores(n: int) -> None:
        monkeypatch.setattr(executors, "usable_cores", lambda: n)
        monkeypatch.setattr(executors, "_physical_memory", lambda: 64 * 1024**3)
    return set_cores


@pytest.mark.parametrize("flags, device, importable, expected", [
    ({}, "cpu", True, ("process", 2)),                                    # the default run on 2 cores
    ({"profile": "paper"}, "cpu", True, ("process", 2)),
    ({"profile": "smoke"}, "cpu", True, ("local", 1)),                    # start-up costs more than the job
    ({}, "cuda", True, ("local", 1)),                                     # one device, one job at a time
    ({}, "cuda:1", True, ("local", 1)),
    ({}, "cpu", False, ("local", 1)),                                     # a class from __main__
    ({"profile": "smoke", "jobs": 2}, "cpu", True, ("process", 2)),       # asked for: given
    ({"jobs": 1}, "cpu", True, ("local", 1)),
    ({"jobs": 3}, "cuda", True, ("process", 3)),
])
def test_auto_picks_the_process_executor_only_where_it_pays(cores, flags, device, importable, expected):
    cores(2)
    assert choose_executor(resolve_config(None, flags), device, GRID, importable) == expected


def test_auto_runs_no_more_jobs_than_cores_grid_or_memory(cores, monkeypatch):
    cores(16)
    assert choose_executor(resolve_config(None, {}), "cpu", GRID) == ("process", 16)
    assert choose_executor(resolve_config(None, {}), "cpu", 3) == ("process", 3)
    assert choose_executor(resolve_config(None, {}), "cpu", 1) == ("local", 1)
    monkeypatch.setattr(executors, "_physical_memory", lambda: 6 * 1024**3)  # room for 3 jobs of 2 GiB
    assert choose_executor(resolve_config(None, {}), "cpu", GRID) == ("process", 3)
    cores(1)
    assert choose_executor(resolve_config(None, {}), "cpu", GRID) == ("local", 1)


def test_jobs_a_fresh_interpreter_cannot_import_are_a_user_error(cores):
    cores(2)
    with pytest.raises(ConfigError, match="jobs = 2 runs jobs in fresh interpreters"):
        choose_executor(resolve_config(None, {"jobs": 2}), "cpu", GRID, importable=False)


def test_an_executor_the_user_names_is_kept(cores):
    cores(8)
    for name in ("local", "process", "ray"):
        config = resolve_config(None, {"executor": name})
        assert resolve_auto(config, "cpu", GRID) is config


def test_the_default_cli_run_uses_both_cores_and_records_where_jobs_ran(cli, cores, tmp_path):
    cores(2)
    out = tmp_path / "run"
    result = cli("run", "--generators", "independent-marginals,train-resample", "--repeats", "1",
                 "--metrics", "dimension_wise_probability", "--dataset-option", "patients=300",
                 "--dataset-option", "codes=30", "--out", out, "--no-report")
    assert result.code == 0, result.err
    assert "2 jobs at once (process executor)" in out.joinpath("run.log").read_text()
    manifest = json.loads(out.joinpath("run.json").read_text())
    assert manifest["config"]["executor"] == "auto"
    assert manifest["execution"] == {"executor": "process", "jobs": 2}
    costs = [json.loads(line) for line in out.joinpath("results.jsonl").read_text().splitlines()]
    assert {r["executor"] for r in costs if r["type"] == "cost"} == {"process"}


def test_a_smoke_run_stays_in_this_process(cli, cores, tmp_path):
    cores(2)
    out = tmp_path / "run"
    result = cli("run", "--profile", "smoke", "--generators", "independent-marginals", "--repeats", "2",
                 "--metrics", "dimension_wise_probability", "--out", out, "--no-report")
    assert result.code == 0, result.err
    assert json.loads(out.joinpath("run.json").read_text())["execution"] == {"executor": "local", "jobs": 1}
