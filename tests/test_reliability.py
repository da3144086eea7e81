"""Reliability and containment (issue 23): no silently wrong leaderboard, no code run from the working
directory, no job outliving its driver or its timeout, plugins that cost their own job only, a
run directory with one writer, and operating-system errors as one clear message.

The heavier loops (random SIGKILLs and resume, a full tmpfs) are marked ``reliability`` and
``slow``: ``pytest -m reliability`` runs them.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _executor_grid import PLUGINS, jobs, leaderboard_without_cost, local_reference, metric_values, records, run_grid

from ehrbench.execution.executor_process import ProcessExecutor
from ehrbench.execution.executors import LocalExecutor
from ehrbench.execution.runner import SilentObserver
from ehrbench.matrix import EHRMatrix
from ehrbench.rundir.directory import RunDirectory
from ehrbench.rundir.records import current_records
from ehrbench.rundir.store import ResultStore

HOSTILE = PLUGINS / "hostile.py"
TORN_ARGS = ["--generators", "train-resample,independent-marginals",
             "--metrics", "dimension_wise_probability,prevalence_correlation,pairwise_correlation_difference",
             "--repeats", "3", "--profile", "smoke", "--dataset-option", "patients=300",
             "--dataset-option", "codes=30", "--no-report"]


def _cli_subprocess(args: list, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ehrbench.cli", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}, timeout=300, **kwargs)


def _cut_last_metric_batch_in_half(run: Path) -> int:
    """Drop the closing ``job`` record of the last job and the second half of its metric rows, as
    a full disk or a kill in the middle of that append would."""
    path = run / "results.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    kinds = [json.loads(line)["type"] for line in lines]
    last_job = max(i for i, k in enumerate(kinds) if k == "job")
    start = last_job
    while kinds[start - 1] == "metric":
        start -= 1
    assert last_job - start >= 2, "the last job must have metric rows to cut"
    cut = start + (last_job - start) // 2
    path.write_text("".join(lines[:cut]))
    return last_job - cut


# -- 1. a torn metric batch --------------------------------------------------------------------
def test_a_torn_metric_batch_resumes_to_the_uninterrupted_leaderboard(cli, tmp_path):
    whole, torn = tmp_path / "whole", tmp_path / "torn"
    assert cli("run", *TORN_ARGS, "--out", whole).code == 0
    shutil.copytree(whole, torn)
    assert _cut_last_metric_batch_in_half(torn) > 0
    # The last job (independent-marginals, repeat 2) saved its sample: resume scores it again.
    resumed = cli("run", *TORN_ARGS, "--out", torn, "--resume")
    assert resumed.code == 0, resumed.err
    assert (torn / "leaderboard.csv").read_text() == (whole / "leaderboard.csv").read_text()
    counted = [r for r in current_records(RunDirectory(torn).records()) if r["type"] == "metric"]
    keys = [(r["generator"], r["repeat"], r["metric"]) for r in counted]
    assert len(keys) == len(set(keys)) == 2 * 3 * 6  # PCD adds .constant_codes and .constant_share


def test_the_leaderboard_refuses_two_values_for_one_repeat(cli, tmp_path):
    run = tmp_path / "run"
    assert cli("run", *TORN_ARGS, "--repeats", "1", "--out", run).code == 0
    lines = (run / "results.jsonl").read_text().splitlines(keepends=True)
    metric = next(line for line in lines if json.loads(line)["type"] == "metric")
    (run / "results.jsonl").write_text("".join(lines) + metric)  # the same counted row once more
    result = cli("leaderboard", run)
    assert result.code == 2 and "Traceback" not in result.err
    assert "counts 2 values for generator 'train-resample', repeat 0, metric 'dimension_wise_probability'" in result.err


# -- 3. nothing imported from the working directory -------------------------------------------
def test_process_jobs_never_import_a_module_from_the_working_directory(tmp_path, monkeypatch):
    folder = tmp_path / "cwd"
    folder.mkdir()
    marker = tmp_path / "imported"
    (folder / "concurrent.py").write_text(f"open({str(marker)!r}, 'a').write('imported\\n')\n")
    monkeypatch.chdir(folder)
    out = run_grid(tmp_path / "run", ["independent-marginals", "torch-autoencoder"], executor=ProcessExecutor())
    assert not marker.exists(), "a job imported concurrent.py from the working directory"
    assert {j["status"] for j in jobs(out).values()} == {"ok"}


# -- 5. a read-only training array ------------------------------------------------------------
@pytest.mark.parametrize("executor", [LocalExecutor, ProcessExecutor], ids=["local", "process"])
def test_a_generator_that_writes_its_training_array_fails_alone(tmp_path, executor):
    out = run_grid(tmp_path / "run", ["writes-train", "independent-marginals", "torch-autoencoder"],
                   executor=executor(), plugins=[HOSTILE])
    done = jobs(out)
    assert done[("writes-train", 0)]["status"] == "failed"
    assert "fit: ValueError: assignment destination is read-only" in done[("writes-train", 0)]["reason"]
    local = local_reference()  # the other jobs saw the untouched split: their results are the reference's
    for generator in ("independent-marginals", "torch-autoencoder"):
        path = f"samples/{generator}/repeat-0.npz"
        np.testing.assert_array_equal(EHRMatrix.load(out / path).X, EHRMatrix.load(local / path).X)
    values = {k: v for k, v in metric_values(local).items() if k[0] != "train-resample"}
    assert metric_values(out) == values


def test_a_metric_cannot_modify_the_real_split(tmp_path):
    out = run_grid(tmp_path / "run", ["independent-marginals"], plugins=[HOSTILE],
                   metrics=["writes_test", "dimension_wise_probability"])
    failures = [r for r in records(out) if r["type"] == "metric_failure"]
    assert [f["metric"] for f in failures] == ["writes_test"]
    assert "read-only" in failures[0]["reason"]
    key = ("independent-marginals", 0, "dimension_wise_probability")
    assert metric_values(out)[key] == metric_values(local_reference())[key]  # scored on the untouched split


# -- 6. a job dies with its driver; the timeout counts start-up ----------------------------
def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killing_the_driver_kills_its_process_jobs(tmp_path):
    pid_file = tmp_path / "job.pid"
    driver = subprocess.Popen(
        [sys.executable, "-m", "ehrbench.cli", "run", "--plugin", HOSTILE, "--generators", "sleeper",
         "--metrics", "dimension_wise_probability", "--repeats", "1", "--profile", "smoke", "--executor", "process",
         "--dataset-option", "patients=200", "--dataset-option", "codes=20", "--out", tmp_path / "run"],
        env={**os.environ, "HOSTILE_PID_FILE": str(pid_file), "HOSTILE_SLEEP": "120"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline and driver.poll() is None, "the job never started"
            time.sleep(0.1)
        job = int(pid_file.read_text())
        assert _alive(job)
        driver.kill()
        driver.wait()
        deadline = time.monotonic() + 10
        while _alive(job) and time.monotonic() < deadline:
            time.sleep(0.1)
        alive = _alive(job)
    finally:
        driver.kill()
        driver.wait()
    if alive:
        os.kill(job, signal.SIGKILL)
    assert not alive, "the job kept running after its driver was killed"


def test_the_process_timeout_counts_a_job_stuck_starting_up(tmp_path, monkeypatch):
    monkeypatch.setenv("HOSTILE_HANG_AT_IMPORT", "60")  # the job's interpreter imports hostile.py, then hangs
    monkeypatch.setenv("HOSTILE_SLEEP", "0")
    start = time.monotonic()
    out = run_grid(tmp_path / "run", ["sleeper"], executor=ProcessExecutor(), plugins=[HOSTILE], timeout=3)
    assert time.monotonic() - start < 40
    assert jobs(out)[("sleeper", 0)]["reason"] == \
        "timed out after 3 s (--timeout); the job's process was killed"


# -- 10. --jobs N ------------------------------------------------------------------------------
class _Concurrency(SilentObserver):
    def __init__(self) -> None:
        self.running: set = set()
        self.most = 0

    def job_started(self, job) -> None:
        self.running.add(job)
        self.most = max(self.most, len(self.running))

    def job_finished(self, job, status, reason) -> None:
        self.running.discard(job)


def test_process_jobs_at_once_give_the_results_of_one_at_a_time(tmp_path):
    grid = ["independent-marginals", "train-resample", "torch-autoencoder"]
    observer = _Concurrency()
    together = run_grid(tmp_path / "together", grid, executor=ProcessExecutor(jobs=3), observer=observer, repeats=2)
    alone = run_grid(tmp_path / "alone", grid, executor=ProcessExecutor(jobs=1), repeats=2)
    assert observer.most == 3
    assert leaderboard_without_cost(together) == leaderboard_without_cost(alone)
    # Not only the same set of rows: the same file, in the same order, whatever order jobs finished in.
    strip = [line for line in (alone / "leaderboard.csv").read_text().splitlines() if ",cost," not in line]
    assert [line for line in (together / "leaderboard.csv").read_text().splitlines() if ",cost," not in line] == strip
    for generator in ("independent-marginals", "torch-autoencoder"):
        for k in range(2):
            path = f"samples/{generator}/repeat-{k}.npz"
            np.testing.assert_array_equal(EHRMatrix.load(together / path).X, EHRMatrix.load(alone / path).X)
    assert len([r for r in records(together) if r["type"] == "job"]) == 6


def test_jobs_needs_an_executor_that_can_run_them_at_once(cli, tmp_path):
    result = cli("run", "--generators", "train-resample", "--jobs", "2", "--executor", "local", "--out", tmp_path / "run")
    assert result.code == 2 and "needs executor 'process' or 'ray'" in result.err
    result = cli("run", "--generators", "train-resample", "--jobs", "0", "--executor", "process", "--out", tmp_path / "r")
    assert result.code == 2 and "jobs must be at least 1" in result.err


# -- 13. plugins contained ---------------------------------------------------------------------
@pytest.mark.parametrize("executor", [LocalExecutor, ProcessExecutor], ids=["local", "process"])
def test_sys_exit_and_base_exceptions_in_a_plugin_fail_that_job_only(tmp_path, executor):
    out = run_grid(tmp_path / "run", ["exits-in-fit", "raises-base", "independent-marginals"], executor=executor(),
                   plugins=[HOSTILE], metrics=["exits_in_compute", "dimension_wise_probability"])
    done = jobs(out)
    assert done[("exits-in-fit", 0)]["reason"].startswith("fit: SystemExit: the plugin called sys.exit(3)")
    assert done[("raises-base", 0)]["reason"].startswith("fit: Escape: escaped the job")
    assert done[("independent-marginals", 0)]["status"] == "ok"
    [failure] = [r for r in records(out) if r["type"] == "metric_failure"]
    assert failure["reason"].startswith("SystemExit: the plugin called sys.exit('metric gave up')")


def test_list_reports_a_plugin_that_exits_at_import_as_broken(cli, plugin_file):
    result = cli("list", "--plugin", plugin_file("exits_at_import"))
    assert result.code == 0, result.err
    text = " ".join((result.out + result.err).split())
    assert "exits_at_import.py" in text and "sys.exit('this plugin refuses to load')" in text


def test_generator_classes_without_sample_or_with_a_crafted_name_are_refused(tmp_path):
    from ehrbench.plugins import load_registry

    registry = load_registry([PLUGINS / "half_generators.py"], entry_points=False)
    assert registry.names("generators") == []
    reasons = " | ".join(b.error for b in registry.broken)
    assert "NoSample (no-sample) does not implement sample()" in reasons
    assert "Sneaky.name must be a kebab-case string" in reasons
    assert "Climbs.name must be a kebab-case string, got '../climbs'" in reasons


# -- 8. values a float32 cannot hold -------------------------------------------------------
def test_samples_beyond_float32_or_complex_fail_the_job_naming_the_cell(tmp_path):
    out = run_grid(tmp_path / "run", ["overflows", "complex-sample"], plugins=[HOSTILE])
    done = jobs(out)
    assert ("invalid sample: sample(): row 1, column 2: value 1e+39 is beyond the range of float32"
            in done[("overflows", 0)]["reason"])
    assert ("invalid sample: sample(): row 4, column 0: value 1j is a complex number (dtype complex128)"
            in done[("complex-sample", 0)]["reason"])


# -- 7. the model cache is best effort -----------------------------------------------------
def test_a_failed_model_save_never_fails_the_job(tmp_path):
    out = run_grid(tmp_path / "run", ["saves-badly"], plugins=[HOSTILE])
    assert jobs(out)[("saves-badly", 0)]["status"] == "ok"
    [cost] = [r for r in records(out) if r["type"] == "cost"]
    assert cost["model_save_error"] == "OSError: [Errno 28] No space left on device"
    models = out / "models" / "saves-badly"
    assert not models.exists() or not any(models.iterdir())  # no half-saved model left behind


# -- 7. operating-system errors: one message, exit 2, nothing recorded lost ----------------------
def test_a_full_disk_during_a_run_is_one_message_and_resume_finishes_it(cli, tmp_path, monkeypatch):
    reference = tmp_path / "reference"
    assert cli("run", *TORN_ARGS, "--out", reference).code == 0
    appends = []
    original = ResultStore.append

    def fills_up(self, batch):
        batch = list(batch)
        appends.append(len(batch))
        if len(appends) == 5:  # the third job's metric batch: half of it lands, then the disk is full
            text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in batch)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(text[: len(text) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, batch)

    monkeypatch.setattr(ResultStore, "append", fills_up)
    run = tmp_path / "run"
    full = cli("run", *TORN_ARGS, "--out", run)
    assert full.code == 2 and "Traceback" not in full.err
    assert "no space left on the device" in full.err and f"ehrbench run --resume --out {run}" in full.err
    kept = RunDirectory(run).records()  # the torn last line is ignored, nothing before it is lost
    assert [r["type"] for r in kept][:3] == ["cost", "metric", "metric"]
    monkeypatch.setattr(ResultStore, "append", original)
    resumed = cli("run", *TORN_ARGS, "--out", run, "--resume")
    assert resumed.code == 0, resumed.err
    assert leaderboard_without_cost_csv(run) == leaderboard_without_cost_csv(reference)


def leaderboard_without_cost_csv(run: Path) -> list[str]:
    return [line for line in (run / "leaderboard.csv").read_text().splitlines() if ",cost," not in line]


def test_an_out_that_is_a_file_is_a_clear_error(cli, tmp_path):
    file = tmp_path / "taken"
    file.write_text("x")
    for args in (["run", "--out", file], ["run", "--out", file, "--resume"], ["run", "--out", file / "sub"]):
        result = cli(*args, "--generators", "train-resample", "--dataset-option", "patients=200")
        assert result.code == 2 and "Traceback" not in result.err
        assert str(file) in result.err and ("is a file" in result.err or "not a directory" in result.err), result.err


def _mount_read_only(source: Path, target: Path) -> None:
    target.mkdir()
    done = subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount here (needs root or a user namespace): {done.stderr.decode().strip()}")
    done = subprocess.run(["mount", "-o", "remount,ro,bind", str(target)], capture_output=True)
    if done.returncode != 0:
        subprocess.run(["umount", str(target)])
        pytest.skip(f"cannot remount read-only here: {done.stderr.decode().strip()}")


@pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("mount") is None, reason="needs mount")
def test_a_read_only_run_directory_is_read_and_refused_clearly(cli, tmp_path):
    run = tmp_path / "run"
    assert cli("run", *TORN_ARGS, "--out", run).code == 0
    ro = tmp_path / "ro"
    _mount_read_only(run, ro)
    try:
        exported = cli("leaderboard", ro, "--format", "json", "--output", "-")
        assert exported.code == 0, exported.err
        assert json.loads(exported.out)["leaderboard"]
        for args in (["leaderboard", ro], ["report", ro], ["run", *TORN_ARGS, "--out", ro, "--resume"]):
            result = cli(*args)
            assert result.code == 2 and "Traceback" not in result.err, (args, result.err)
            assert "the file system is read-only" in result.err and str(ro) in result.err, result.err
    finally:
        subprocess.run(["umount", str(ro)])


# -- 11. one writer; crash windows ---------------------------------------------------------------
def test_a_second_writer_is_refused_with_a_clear_message(cli, tmp_path):
    run = tmp_path / "run"
    assert cli("run", *TORN_ARGS, "--repeats", "1", "--out", run).code == 0
    with RunDirectory(run).lock():  # another process writing this run
        result = cli("run", *TORN_ARGS, "--repeats", "1", "--out", run, "--resume")
    assert result.code == 2 and "Traceback" not in result.err
    assert "another ehrbench process" in result.err and f"(process {os.getpid()})" in result.err
    assert cli("run", *TORN_ARGS, "--repeats", "1", "--out", run, "--resume").code == 0  # released


def test_two_concurrent_resumes_do_the_work_once(tmp_path):
    run = tmp_path / "run"
    args = ["run", "--plugin", HOSTILE, "--generators", "sleeper", "--metrics", "dimension_wise_probability",
            "--repeats", "1", "--profile", "smoke", "--dataset-option", "patients=200", "--dataset-option", "codes=20",
            "--out", run, "--no-report"]
    first = subprocess.Popen([sys.executable, "-m", "ehrbench.cli", *map(str, args)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "HOSTILE_SLEEP": "120", "HOSTILE_PID_FILE": str(tmp_path / "pid"),
                                  "HOSTILE_RELEASE_FILE": str(tmp_path / "release")})
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "pid").exists():
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.1)
        second = _cli_subprocess([*args, "--resume"], env={"HOSTILE_SLEEP": "0"})
        assert second.returncode == 2 and "another ehrbench process" in second.stderr
        (tmp_path / "release").write_text("")  # the first holds the run until the second has been refused
        assert first.wait(timeout=120) == 0, first.stderr.read()
    finally:
        first.kill()
        first.wait()
    assert [r["type"] for r in records(run)].count("job") == 1


def test_a_run_killed_during_its_first_run_json_write_can_be_resumed_or_reused(cli, tmp_path):
    for flags in ([], ["--resume"]):
        run = tmp_path / f"run{len(flags)}"
        run.mkdir()
        (run / ".ehrbench.lock").write_text("")
        (run / ".run.json.0123456789ab.tmp").write_text('{"config": {"na')  # the first write, cut short
        result = cli("run", *TORN_ARGS, "--repeats", "1", "--out", run, *flags)
        assert result.code == 0, result.err
        assert not (run / ".run.json.0123456789ab.tmp").exists()
        assert len([r for r in records(run) if r["type"] == "job"]) == 2


def test_resume_removes_what_killed_writes_left(cli, tmp_path):
    run = tmp_path / "run"
    args = ["--plugin", PLUGINS / "cacheable.py", "--generators", "cacheable", "--metrics",
            "dimension_wise_probability", "--repeats", "1", "--profile", "smoke",
            "--dataset-option", "patients=200", "--dataset-option", "codes=20", "--no-report", "--out", run]
    assert cli("run", *args).code == 0
    leftovers = [run / ".leaderboard.csv.0123456789ab.tmp", run / "samples" / "cacheable" / ".repeat-0.npz.abcdefabcdef.tmp",
                 run / "models" / "cacheable" / ".repeat-0.tmp-0badc0de"]
    for path in leftovers[:2]:
        path.write_bytes(b"half")
    leftovers[2].mkdir(parents=True)
    (leftovers[2] / "weights.bin").write_bytes(b"half a model")
    assert cli("run", *args, "--resume").code == 0
    assert not any(p.exists() for p in leftovers)
    assert (run / "models" / "cacheable" / "repeat-0" / "COMPLETE").exists()  # the complete model stays


# -- 10. names that become paths -----------------------------------------------------------------
def test_a_crafted_generator_name_in_results_never_becomes_a_path(cli, tmp_path):
    run = tmp_path / "run"
    assert cli("run", *TORN_ARGS, "--repeats", "1", "--out", run).code == 0
    path = run / "results.jsonl"
    path.write_text(path.read_text().replace('"generator": "train-resample"', '"generator": "../../../escape"'))
    for command in ("report", "leaderboard"):
        result = cli(command, run)
        assert result.code == 2 and "Traceback" not in result.err
        assert "generator name '../../../escape' cannot name a file or folder" in result.err
    assert not list(tmp_path.rglob("*escape*"))


def test_figure_labels_with_dollar_signs_are_drawn_as_text():
    from ehrbench.views import figures as fg

    labels = ["$\\notacommand$", "a$b", "$x^2$"]
    png = fg.png_bytes(fg.correlation_difference(np.eye(3), np.eye(3), labels, "gen$x$"))
    assert png.startswith(b"\x89PNG")
    png = fg.png_bytes(fg.codes_per_record(np.array([1, 2]), {"$\\bad$": np.array([2, 1])}))
    assert png.startswith(b"\x89PNG")


def test_a_report_on_codes_named_like_math_text_is_built(cli, tmp_path):
    rng = np.random.default_rng(0)
    codes = [f"c{j}" for j in range(18)] + ["$\\notacommand$", "50$"]
    EHRMatrix((rng.random((120, 20)) < 0.4).astype(np.float32), codes).save(tmp_path / "m.npz")
    result = cli("run", "--dataset", "matrix", "--dataset-option", f"path={tmp_path / 'm.npz'}",
                 "--generators", "independent-marginals", "--metrics", "dimension_wise_probability",
                 "--repeats", "1", "--profile", "smoke", "--out", tmp_path / "run")
    assert result.code == 0, result.err
    assert (tmp_path / "run" / "figures" / "correlation-difference-independent-marginals.png").exists()
    assert "report not built" not in result.err


# -- the heavy loops (pytest -m reliability) ------------------------------------------------
@pytest.mark.slow
@pytest.mark.reliability
@pytest.mark.parametrize("executor", ["local", "process"])
def test_random_sigkills_then_resume_give_the_uninterrupted_results(tmp_path, executor):
    args = ["run", "--generators", "train-resample,independent-marginals,medgan", "--metrics",
            "dimension_wise_probability,pairwise_correlation_difference", "--repeats", "2", "--profile", "smoke",
            "--dataset-option", "patients=300", "--dataset-option", "codes=30", "--executor", executor, "--no-report"]
    reference = tmp_path / "reference"
    assert _cli_subprocess([*args, "--out", reference]).returncode == 0
    rng = np.random.default_rng(23)
    kills = 0
    for trial in range(5):
        run = tmp_path / f"kill{trial}"
        delay = float(rng.uniform(0.5, 6.0))
        for attempt in range(20):  # kill, resume, kill again... until a resume finishes
            proc = subprocess.Popen([sys.executable, "-m", "ehrbench.cli", *map(str, args), "--out", run,
                                     *(["--resume"] if run.exists() else [])],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                    env={**os.environ, "OMP_NUM_THREADS": "1"})
            try:
                code = proc.wait(timeout=delay * (attempt + 1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                kills += 1
                continue
            assert code == 0, proc.stderr.read()
            break
        assert leaderboard_without_cost_csv(run) == leaderboard_without_cost_csv(reference), trial
        for path in (reference / "samples").rglob("*.npz"):
            np.testing.assert_array_equal(EHRMatrix.load(run / path.relative_to(reference)).X, EHRMatrix.load(path).X)
    print(f"{executor}: {kills} SIGKILLs over 5 runs, each resumed to the uninterrupted leaderboard and samples")
    assert kills >= 5, f"only {kills} kills: the loop did not interrupt the runs"


@pytest.mark.slow
@pytest.mark.reliability
@pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("mount") is None, reason="needs mount")
def test_a_full_tmpfs_stops_runs_cleanly_and_resume_completes_them(tmp_path):
    args = ["run", "--generators", "train-resample,independent-marginals", "--metrics",
            "dimension_wise_probability,pairwise_correlation_difference", "--repeats", "2", "--profile", "smoke",
            "--dataset-option", "patients=400", "--dataset-option", "codes=30"]
    reference = tmp_path / "reference"
    assert _cli_subprocess([*args, "--out", reference]).returncode == 0
    # What a run must write (the report is a by-product: a report that does not fit is logged, not fatal).
    size = sum(p.stat().st_size for p in reference.rglob("*")
               if p.is_file() and p.name != "report.html" and "figures" not in p.parts)
    full_disks = 0
    for trial, fraction in enumerate((0.1, 0.3, 0.5, 0.7, 0.9)):
        disk = tmp_path / f"disk{trial}"
        disk.mkdir()
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={max(int(size * fraction), 4096)}",
                                  "tmpfs", str(disk)], capture_output=True)
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")
        try:
            run = disk / "run"
            full = _cli_subprocess([*args, "--out", run])
            if full.returncode != 0:
                full_disks += 1
                assert full.returncode == 2 and "Traceback" not in full.stderr, full.stderr
                assert "no space left on the device" in full.stderr, full.stderr
            kept = RunDirectory(run).records() if (run / "results.jsonl").exists() else []
            moved = tmp_path / f"moved{trial}"
            shutil.copytree(run, moved, dirs_exist_ok=True) if run.exists() else moved.mkdir()
        finally:
            subprocess.run(["umount", str(disk)])
        resumed = _cli_subprocess([*args, "--out", moved, *(["--resume"] if (moved / "run.json").exists() else [])])
        assert resumed.returncode == 0, resumed.stderr
        assert RunDirectory(moved).records()[: len(kept)] == kept  # nothing recorded was lost
        assert leaderboard_without_cost_csv(moved) == leaderboard_without_cost_csv(reference), trial
    print(f"tmpfs trials that ran out of space: {full_disks} of 5")
    assert full_disks >= 3, f"the disk filled up in {full_disks} of 5 trials only"


# -- 12. no aggregates of a tiny split -------------------------------------------------------
def test_aggregates_of_fewer_than_ten_real_rows_are_never_written(tmp_path):
    from ehrbench.errors import InputError
    from ehrbench.rundir.reference import build_reference, write_reference

    one_patient = np.array([[3, 0, 1, 7]], dtype=np.float32)  # a 1-row test split is that patient's row
    with pytest.raises(InputError, match="the test split has 1 patient"):
        write_reference(tmp_path / "reference.npz", build_reference(one_patient, np.array(list("abcd"))))
    assert not list(tmp_path.iterdir())
    write_reference(tmp_path / "reference.npz", build_reference(np.ones((10, 4), np.float32), np.array(list("abcd"))))
