"""A run's progress: each step its own total on a terminal; plain lines, a heartbeat and run.log elsewhere."""

from __future__ import annotations

import logging
import time

from ehrbench.cli.progress import ProgressObserver
from ehrbench.execution.job import Job

JOB = Job("medgan", 0, 1)
SMALL = ["--profile", "smoke", "--repeats", "1", "--dataset-option", "patients=120", "--dataset-option", "codes=20",
         "--metrics", "dimension_wise_probability"]


def shown(observer: ProgressObserver) -> list:
    return [t for t in observer.progress.tasks if t.visible]


def test_each_step_shows_its_own_total():
    observer = ProgressObserver(display=True)
    observer.jobs_planned(3, 0)
    observer.job_started(JOB)
    observer.job_progress(JOB, "epochs", 0, 600)
    observer.job_progress(JOB, None, 240, None)
    jobs, step = shown(observer)
    assert (step.description, step.completed, step.total) == ("medgan · repeat 0: epochs", 240, 600)
    observer.stage("writing report.html and figures")
    jobs, step = shown(observer)
    assert step.description == "writing report.html and figures" and step.total is None and step.completed == 0
    observer.job_progress(JOB, "sampling", None, None)
    assert shown(observer)[1].total is None
    assert jobs.total == 3


def test_a_run_without_a_terminal_prints_plain_lines_and_writes_run_log(cli, plugin_file, tmp_path):
    out = tmp_path / "r"
    result = cli("run", *SMALL, "--generators", "counting,train-resample", "--plugin", plugin_file("newcomer"),
                 "--out", out)
    assert result.code == 0, result.err
    lines = result.err.splitlines()
    for text in ("loading dataset simulated", "2 jobs to run", "counting · repeat 0: started (job 1 of 2)",
                 "counting · repeat 0: finished after", "train-resample · repeat 0: finished after",
                 "writing report.html and figures"):
        assert any(text in line for line in lines), (text, result.err)
    assert all(line.startswith("[0:") for line in lines if line.strip()), result.err  # no bars, no control codes
    assert "\x1b" not in result.err and "0/600" not in result.err
    log = (out / "run.log").read_text()
    assert "DEBUG   counting · repeat 0: epochs" in log and "INFO    finished" in log
    assert str(out / "run.log") in result.out
    resumed = cli("run", *SMALL, "--generators", "counting,train-resample", "--plugin", plugin_file("newcomer"),
                  "--resume", "--out", out)
    assert resumed.code == 0 and "resuming: 2 of 2 jobs already finished" in resumed.err
    assert (out / "run.log").read_text().startswith(log)  # appended, never rewritten


def test_a_quiet_stretch_gets_a_heartbeat_naming_what_runs():
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("ehrbench.run")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        with ProgressObserver(display=False, heartbeat=0.2) as observer:
            observer.jobs_planned(4, 1)
            observer.job_started(JOB)
            observer.job_progress(JOB, "adversarial epoch 3/10", None, None)
            time.sleep(0.7)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    beats = [m for m in seen if m.startswith("still running")]
    assert beats and beats[0] == "still running medgan · repeat 0 (adversarial epoch 3/10); 1 of 4 jobs finished"
    assert len(beats) <= 4  # one per quiet interval, not a flood
