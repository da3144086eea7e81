"""``ehrbench run``: parse the flags, hand the plan to the Runner, print what it wrote."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ehrbench.api import PROFILES, REPRESENTATIONS
from ehrbench.cli import flags as f
from ehrbench.config import DEVICES, EXECUTORS, resolve_config
from ehrbench.errors import ConfigError, InputError, os_error_message


@click.command()
@click.argument("config", required=False, type=click.Path(path_type=Path))
@click.option("--dataset", help="Dataset name (default: the dataset plugin marked default; `ehrbench list datasets`).")
@click.option("--dataset-option", "dataset_option", multiple=True, metavar="KEY=VALUE", help="A dataset option (repeatable).")
@click.option("--generators", help="Comma-separated generator names (default: every available default generator).")
@click.option("--generator-option", "generator_option", multiple=True, metavar="GEN.KEY=VALUE",
              help="A generator's (or variant's) option, e.g. my-gan.epochs=5 (repeatable).")
@click.option("--variant", "variant", multiple=True, metavar="NAME=GEN[:KEY=VALUE,...]",
              help="Run GEN once more as the row NAME with these options, e.g. my-gan-long=my-gan:epochs=500 "
                   "(repeatable; sweeps are [variants] tables of a config file).")
@click.option("--metrics", help="Comma-separated metric names (default: every available default metric).")
@click.option("--repeats", type=int, help="Repeats per generator, each with its own derived seed (default 3; 2 with --profile smoke).")
@click.option("--profile", type=click.Choice(PROFILES), help="Hyperparameter profile (default quick).")
@click.option("--device", type=click.Choice(DEVICES), help="auto picks CUDA when present (default auto).")
@click.option("--seed", type=int, help="Run seed: fixes the split and every derived seed (default 0).")
@click.option("--samples", type=int, help="Synthetic records per repeat (default: size of the test split).")
@click.option("--representation", type=click.Choice(REPRESENTATIONS), help="Counts or presence (default count).")
@click.option("--timeout", type=float, help="Seconds allowed to one job's fit + sample (a hard kill under --executor process).")
@click.option("--executor", type=click.Choice(EXECUTORS), help="Where jobs run: auto (default: one process per job on every usable core for quick and "
                   "paper runs on a CPU, else in this process), local (in this process), process, or Ray tasks.")
@click.option("--ray-address", help="Ray cluster to join ('auto': the one `ray start` runs here); default: start a local Ray runtime.")
@click.option("--gpus-per-job", type=float, help="GPUs each Ray job requests (default 1 on CUDA, else 0).")
@click.option("--cpus-per-job", type=float, help="CPUs each Ray job requests (default 1).")
@click.option("--jobs", type=int, help="Jobs run at once: --executor process runs this many processes (default 1; auto: one per "
              "usable core); "
              "under Ray, a cap on tasks in flight. Results do not depend on it.")
@click.option("--condition", "conditions", multiple=True, metavar="CODE",
              help="Also ask every conditional generator for records with CODE and score them against the real "
                   "test records with it (repeatable; config key `conditions`).")
@click.option("--out", type=click.Path(path_type=Path), help="Run directory (default runs/<dataset>-<profile>-<time>).")
@click.option("--report/--no-report", default=None,
              help="Build report.html and its figures at the end (default yes); `ehrbench report RUN_DIR` builds them later.")
@click.option("--resume", is_flag=True, help="Finish an interrupted run in --out without redoing finished jobs.")
@click.option("--verbose", "-v", is_flag=True,
              help="Print every step of every job and the full traceback of each failure (run.log has them always).")
@click.option("--strict", is_flag=True, help="Exit with status 1 when any job or metric failed (default: only when every job failed).")
@f.plugin_option
def run(config: Path | None, dataset_option: tuple[str, ...], generator_option: tuple[str, ...],
        variant: tuple[str, ...], resume: bool, verbose: bool, strict: bool, plugins: tuple[Path, ...],
        **flags: Any) -> None:
    """Train every generator, sample, score every metric, and write the leaderboard and report.

    Exit status: 0 when the run finished with at least one job done (failures are in the
    leaderboard and run.log); 1 when every job failed, or with --strict when any job or metric
    failed; 2 for bad input; 130 when interrupted.
    """
    from rich.text import Text

    from ehrbench.cli.console import err, out, print_leaderboard
    from ehrbench.cli.progress import ProgressObserver, log, run_logging
    from ehrbench.execution.plan import plan_run
    from ehrbench.execution.runner import Runner
    from ehrbench.rundir.directory import RunDirectory

    registry = f.registry(plugins)
    flags["generators"] = f.split_names(flags["generators"])
    flags["metrics"] = f.split_names(flags["metrics"])
    flags["dataset_options"] = f.key_values(dataset_option, "--dataset-option")
    flags["conditions"] = list(flags["conditions"]) or None
    flags["generator_options"] = f.generator_options(generator_option)
    flags["variants"] = f.variants(variant)
    flags["out"] = str(flags["out"]) if flags["out"] else None
    stored = None
    if resume:
        if not flags["out"]:
            raise ConfigError("--resume needs --out: the run directory to finish.")
        stored = RunDirectory(flags["out"]).stored_config()  # None: killed before run.json, starts afresh
    plan = plan_run(resolve_config(config, flags, stored), registry)
    observer = ProgressObserver()
    runner = Runner(plan, registry, resume=resume, observer=observer)
    cfg, run_dir = plan.config, runner.directory
    header = (f"ehrbench run: dataset {plan.dataset}, {len(plan.generators)} generators × {cfg.repeats} repeats, "
              f"{len(plan.metrics)} metrics, profile {cfg.profile}, device {plan.device}, "
              f"{_where(runner.executor)} → {run_dir}")
    with run_logging(run_dir.log_path, verbose, observer.display):
        if observer.display and not verbose:
            err.print(header, soft_wrap=True)
        log.info(header)
        try:
            with observer:
                finished = runner.run()
        except KeyboardInterrupt:
            log.warning("interrupted")
            err.print(f"\ninterrupted. Finished jobs are saved; continue with: ehrbench run --resume --out {run_dir}")
            sys.exit(130)
        except OSError as exc:  # a full disk, a read-only folder: what is recorded stays; say how to go on
            raise InputError(f"{os_error_message(exc)}. Results recorded so far are kept; fix this and continue "
                             f"with: ehrbench run --resume --out {run_dir}") from None
        status, why = _exit_status(run_dir, strict)
        log.info("finished" if status == 0 else f"finished with exit status {status}: {why}")
    print_leaderboard(finished.leaderboard)
    out.print(f"\nRun directory: {run_dir}")
    written = [run_dir.report_path, run_dir.leaderboard_path("csv"), run_dir.leaderboard_path("md"),
               run_dir.results_path, run_dir.manifest_path, run_dir.log_path]
    for path in written:
        if path.exists():  # report.html is absent when building it failed (logged above)
            out.print(f"  {path}")
    if run_dir.samples_dir.exists():
        out.print(f"  {run_dir.samples_dir}/")
    if not cfg.report:
        out.print(f"  report.html skipped (--no-report); build it with: ehrbench report {run_dir}")
    if status:
        err.print(Text(f"error: {why}; the reasons are in the leaderboard's failures and {run_dir.log_path}.",
                       style="red"))
        sys.exit(status)


def _where(executor: Any) -> str:
    """How the jobs run, for the header: "in this process", "2 jobs at once (process executor)"."""
    jobs = getattr(executor, "jobs", 1)
    if executor.name == "local":
        return "one job at a time in this process"
    return f"{jobs or 'as many jobs as the cluster holds'}{' jobs' if jobs else ''} at once ({executor.name} executor)"


def _exit_status(run_dir: Any, strict: bool) -> tuple[int, str]:
    """1 when every job failed, or (``strict``) when any job or metric failed; else 0. With the reason."""
    from ehrbench.rundir.records import Kind, Status, closed_jobs, current_records, of_kind

    records = run_dir.records()
    jobs = closed_jobs(records)
    failed = sum(1 for r in jobs.values() if r.get("status") == Status.FAILED)
    metric_failures = len(of_kind(current_records(records), Kind.METRIC_FAILURE))
    if jobs and failed == len(jobs):
        return 1, f"every job failed ({failed} of {len(jobs)})"
    if strict and (failed or metric_failures):
        return 1, f"--strict: {failed} of {len(jobs)} jobs failed, {metric_failures} metric computations failed"
    return 0, ""
