"""Failures a newcomer meets: the full traceback with the plugin's own line, run.log, --verbose, exit
statuses, and text that looks like terminal markup (``[/data/train]``) printed as written, never a crash."""

from __future__ import annotations

import json
import re

import pytest

SMALL = ["--profile", "smoke", "--repeats", "1", "--dataset-option", "patients=120", "--dataset-option", "codes=20",
         "--metrics", "dimension_wise_probability", "--no-report"]


def records(out):
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def jobs(out):
    return {r["generator"]: r for r in records(out) if r["type"] == "job"}


def plugin_line(plugin_file, text: str) -> int:
    lines = plugin_file("newcomer").read_text().splitlines()
    return next(i for i, line in enumerate(lines, start=1) if text in line)


def test_a_run_whose_every_job_failed_exits_1_with_each_traceback(cli, plugin_file, tmp_path):
    out = tmp_path / "r"
    result = cli("run", *SMALL[:-1], "--generators", "bracketed,numpy-deep", "--plugin", plugin_file("newcomer"),
                 "--out", out)
    assert result.code == 1, result.err
    assert "every job failed (2 of 2)" in result.err and "Traceback" not in result.err
    failed = jobs(out)
    assert {r["status"] for r in failed.values()} == {"failed"}
    # The reason names the plugin's own line, and where numpy raised.
    line = plugin_line(plugin_file, "np.linalg.inv(singular)")
    reason = failed["numpy-deep"]["reason"]
    assert re.fullmatch(rf"fit: LinAlgError: Singular matrix at newcomer\.py:{line} \(raised in \w+\.py:\d+\)", reason)
    # The full traceback: every frame, the plugin's own marked with ">".
    trace = failed["numpy-deep"]["traceback"]
    assert trace.startswith("Traceback (most recent call last):") and "numpy" in trace and "job.py" in trace
    [marked] = [t for t in trace.splitlines() if t.startswith("> ")]
    assert marked.startswith(f'> File "{plugin_file("newcomer")}", line {line}, in fit')
    line = plugin_line(plugin_file, 'raise RuntimeError("could not open')
    assert failed["bracketed"]["reason"] == f"fit: RuntimeError: could not open [/data/train] file at newcomer.py:{line}"
    # run.log holds the tracebacks; the report shows them (escaped) beside each reason.
    log = (out / "run.log").read_text()
    assert "numpy-deep · repeat 0: FAILED" in log and f'> File "{plugin_file("newcomer")}", line {line}' in log
    assert cli("report", out).code == 0
    html = (out / "report.html").read_text()
    assert "<summary>traceback</summary>" in html and "could not open [/data/train] file" in html
    assert "&gt; File" in html


def test_strict_fails_a_run_with_any_failure(cli, plugin_file, tmp_path):
    args = [*SMALL, "--generators", "bracketed,train-resample", "--plugin", plugin_file("newcomer")]
    lenient = cli("run", *args, "--out", tmp_path / "a")
    assert lenient.code == 0, lenient.err
    strict = cli("run", *args, "--strict", "--out", tmp_path / "b")
    assert strict.code == 1 and "--strict: 1 of 2 jobs failed" in strict.err
    metric = cli("run", *SMALL[:-2], "sigma_failing,dimension_wise_probability", "--no-report", "--generators",
                 "train-resample", "--plugin", plugin_file("newcomer"), "--strict", "--out", tmp_path / "c")
    assert metric.code == 1 and "1 metric computations failed" in metric.err
    [failure] = [r for r in records(tmp_path / "c") if r["type"] == "metric_failure"]
    assert "> File" in failure["traceback"] and "newcomer.py" in failure["reason"]


def test_verbose_prints_every_step_and_the_traceback(cli, plugin_file, tmp_path):
    quiet = cli("run", *SMALL, "--generators", "numpy-deep", "--plugin", plugin_file("newcomer"), "--out", tmp_path / "a")
    assert "Traceback" not in quiet.err and "numpy-deep · repeat 0: FAILED" in quiet.err
    loud = cli("run", *SMALL, "--generators", "numpy-deep", "--plugin", plugin_file("newcomer"), "--verbose",
               "--out", tmp_path / "b")
    assert "Traceback (most recent call last)" in loud.err and "numpy-deep · repeat 0: fitting" in loud.err


def test_markup_like_text_prints_as_written_and_never_crashes_a_later_command(cli, plugin_file, tmp_path):
    out = tmp_path / "runs [/x] [bold]"
    args = [*SMALL, "--generators", "bracketed,train-resample", "--plugin", plugin_file("newcomer")]
    first = cli("run", *args, "--out", out)
    assert first.code == 0, first.err
    assert "could not open [/data/train] file" in first.err and "MarkupError" not in first.err
    assert str(out) in first.out  # the --out path, brackets and all
    board = cli("leaderboard", out)
    assert board.code == 0 and "could not open [/data/train] file" in board.out
    resumed = cli("run", *args, "--resume", "--out", out)
    assert resumed.code == 0 and "could not open [/data/train] file" in resumed.out
    broken = cli("run", *args, "--plugin", plugin_file("broken_bracket"), "--out", tmp_path / "b")
    assert broken.code == 0 and "cannot find [/opt/lib] [red]" in broken.err
    listed = cli("list", "--plugin", plugin_file("broken_bracket"))
    assert listed.code == 0 and "cannot find [/opt/lib] [red]" in listed.out


def test_a_process_jobs_last_output_with_brackets_is_printed_as_written(cli, plugin_file, tmp_path):
    out = tmp_path / "r"
    result = cli("run", *SMALL, "--generators", "loud-crash", "--plugin", plugin_file("newcomer"),
                 "--executor", "process", "--out", out)
    assert result.code == 1
    reason = jobs(out)["loud-crash"]["reason"]
    assert "exited with status 3" in reason and "cannot map [/dev/shm] [bold]x" in reason
    assert "cannot map [/dev/shm] [bold]x" in result.err and "MarkupError" not in result.err


@pytest.mark.parametrize("status_args, expected", [([], 0), (["--strict"], 0)])
def test_a_clean_run_exits_0_even_when_strict(cli, tmp_path, status_args, expected):
    result = cli("run", *SMALL, "--generators", "train-resample", *status_args, "--out", tmp_path / "r")
    assert result.code == expected, result.err
