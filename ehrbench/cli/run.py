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
@click.option("--metrics", help="Comma-separated metric names (default: every available default metric).")
@click.option("--repeats", type=int, help="Repeats per generator, each with its own derived seed (default 3).")
@click.option("--profile", type=click.Choice(PROFILES), help="Hyperparameter profile (default quick).")
@click.option("--device", type=click.Choice(DEVICES), help="auto picks CUDA when present (default auto).")
@click.option("--seed", type=int, help="Run seed: fixes the split and every derived seed (default 0).")
@click.option("--samples", type=int, help="Synthetic records per repeat (default: size of the test split).")
@click.option("--representation", type=click.Choice(REPRESENTATIONS), help="Counts or presence (default count).")
@click.option("--timeout", type=float, help="Seconds allowed to one job's fit + sample (a hard kill under --executor process).")
@click.option("--executor", type=click.Choice(EXECUTORS), help="Where jobs run: in this process (default), one process per job, or Ray tasks.")
@click.option("--ray-address", help="Ray cluster to join ('auto': the one `ray start` runs here); default: start a local Ray runtime.")
@click.option("--gpus-per-job", type=float, help="GPUs each Ray job requests (default 1 on CUDA, else 0).")
@click.option("--cpus-per-job", type=float, help="CPUs each Ray job requests (default 1).")
@click.option("--jobs", type=int, help="Jobs run at once: --executor process runs this many processes (default 1); "
              "under Ray, a cap on tasks in flight. Results do not depend on it.")
@click.option("--out", type=click.Path(path_type=Path), help="Run directory (default runs/<dataset>-<profile>-<time>).")
@click.option("--report/--no-report", default=None,
              help="Build report.html and its figures at the end (default yes); `ehrbench report RUN_DIR` builds them later.")
@click.option("--resume", is_flag=True, help="Finish an interrupted run in --out without redoing finished jobs.")
@f.plugin_option
def run(config: Path | None, dataset_option: tuple[str, ...], resume: bool, plugins: tuple[Path, ...], **flags: Any) -> None:
    """Train every generator, sample, score every metric, and write the leaderboard and report."""
    from ehrbench.cli.console import ProgressObserver, err, out, print_leaderboard
    from ehrbench.execution.plan import plan_run
    from ehrbench.execution.runner import Runner
    from ehrbench.rundir.directory import RunDirectory

    registry = f.registry(plugins)
    flags["generators"] = f.split_names(flags["generators"])
    flags["metrics"] = f.split_names(flags["metrics"])
    flags["dataset_options"] = f.key_values(dataset_option, "--dataset-option")
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
    err.print(
        f"ehrbench run: dataset {plan.dataset}, {len(plan.generators)} generators × {cfg.repeats} repeats, "
        f"{len(plan.metrics)} metrics, profile {cfg.profile}, device {plan.device} → {run_dir}"
    )
    try:
        with observer:
            finished = runner.run()
    except KeyboardInterrupt:
        err.print(f"\ninterrupted. Finished jobs are saved; continue with: ehrbench run --resume --out {run_dir}")
        sys.exit(130)
    except OSError as exc:  # a full disk, a read-only folder: what is recorded stays; say how to go on
        raise InputError(f"{os_error_message(exc)}. Results recorded so far are kept; fix this and continue "
                         f"with: ehrbench run --resume --out {run_dir}") from None
    print_leaderboard(finished.leaderboard)
    out.print(f"\nRun directory: {run_dir}")
    written = [run_dir.report_path, run_dir.leaderboard_path("csv"), run_dir.leaderboard_path("md"),
               run_dir.results_path, run_dir.manifest_path]
    for path in written:
        if path.exists():  # report.html is absent when building it failed (logged above)
            out.print(f"  {path}")
    if run_dir.samples_dir.exists():
        out.print(f"  {run_dir.samples_dir}/")
    if not cfg.report:
        out.print(f"  report.html skipped (--no-report); build it with: ehrbench report {run_dir}")
