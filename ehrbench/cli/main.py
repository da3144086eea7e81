"""The ``ehrbench`` command. User errors print one paragraph and exit with status 2."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from ehrbench.views import leaderboard as lb
from ehrbench.api import RunContext, flat_key
from ehrbench.config import DEVICES, RunConfig, resolve_config
from ehrbench.errors import ConfigError, EhrbenchError
from ehrbench.plugins import KINDS, Registry, load_registry

PROFILES = ("smoke", "quick", "paper")


def _plugin_option(func: Callable) -> Callable:
    return click.option(
        "--plugin", "plugins", multiple=True, type=click.Path(path_type=Path),
        help="Load a plugin module from this Python file (repeatable).",
    )(func)


def _registry(plugins: tuple[Path, ...]) -> Registry:
    from ehrbench.cli.console import err

    registry = load_registry(list(plugins))
    for broken in registry.broken:
        err.print(f"[yellow]warning:[/yellow] plugin {broken.source} is broken: {broken.error}")
    return registry


def _split_names(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise ConfigError(f"expected a comma-separated list of names, got {value!r}.")
    return names


def _key_values(pairs: tuple[str, ...], flag: str) -> dict[str, str] | None:
    if not pairs:
        return None
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} expects KEY=VALUE, got {pair!r}.")
        out[key.strip()] = value.strip()
    return out


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ehrbench")
def cli() -> None:
    """Benchmark generators of synthetic electronic health records."""


@cli.command()
@click.argument("config", required=False, type=click.Path(path_type=Path))
@click.option("--dataset", help="Dataset name (default: simulated).")
@click.option("--dataset-option", "dataset_option", multiple=True, metavar="KEY=VALUE", help="A dataset option (repeatable).")
@click.option("--generators", help="Comma-separated generator names (default: every available default generator).")
@click.option("--metrics", help="Comma-separated metric names (default: every available default metric).")
@click.option("--repeats", type=int, help="Repeats per generator, each with its own derived seed (default 3).")
@click.option("--profile", type=click.Choice(PROFILES), help="Hyperparameter profile (default quick).")
@click.option("--device", type=click.Choice(DEVICES), help="auto picks CUDA when present (default auto).")
@click.option("--seed", type=int, help="Run seed: fixes the split and every derived seed (default 0).")
@click.option("--samples", type=int, help="Synthetic records per repeat (default: size of the test split).")
@click.option("--representation", type=click.Choice(["count", "binary"]), help="Counts or presence (default count).")
@click.option("--timeout", type=float, help="Seconds allowed to one job's fit + sample (a hard kill under --executor process).")
@click.option("--executor", type=click.Choice(["local", "process", "ray"]), help="Where jobs run: in this process (default), one process per job, or Ray tasks.")
@click.option("--ray-address", help="Ray cluster to join ('auto': the one `ray start` runs here); default: start a local Ray runtime.")
@click.option("--gpus-per-job", type=float, help="GPUs each Ray job requests (default 1 on CUDA, else 0).")
@click.option("--cpus-per-job", type=float, help="CPUs each Ray job requests (default 1).")
@click.option("--out", type=click.Path(path_type=Path), help="Run directory (default runs/<dataset>-<profile>-<time>).")
@click.option("--report/--no-report", default=None,
              help="Build report.html and its figures at the end (default yes); `ehrbench report RUN_DIR` builds them later.")
@click.option("--resume", is_flag=True, help="Finish an interrupted run in --out without redoing finished jobs.")
@_plugin_option
def run(config: Path | None, dataset_option: tuple[str, ...], resume: bool, plugins: tuple[Path, ...], **flags: Any) -> None:
    """Train every generator, sample, score every metric, and write the leaderboard."""
    from ehrbench.cli.console import ProgressObserver, err, out, print_leaderboard
    from ehrbench.execution.runner import Runner, default_run_dir, plan_run, read_manifest

    registry = _registry(plugins)
    flags["generators"] = _split_names(flags["generators"])
    flags["metrics"] = _split_names(flags["metrics"])
    flags["dataset_options"] = _key_values(dataset_option, "--dataset-option")
    flags["out"] = str(flags["out"]) if flags["out"] else None
    stored = None
    if resume:
        if not flags["out"]:
            raise ConfigError("--resume needs --out: the run directory to finish.")
        stored = read_manifest(Path(flags["out"]))["config"]
    cfg: RunConfig = resolve_config(config, flags, stored)
    plan = plan_run(cfg, registry)
    run_dir = Path(cfg.out) if cfg.out else default_run_dir(cfg)
    if cfg.out is None:
        cfg = resolve_config(None, {**cfg.to_dict(), "out": str(run_dir)})
        plan.config = cfg
    err.print(
        f"ehrbench run: dataset {cfg.dataset}, {len(plan.generators)} generators × {cfg.repeats} repeats, "
        f"{len(plan.metrics)} metrics, profile {cfg.profile}, device {plan.device} → {run_dir}"
    )
    try:
        with ProgressObserver() as observer:
            Runner(plan, registry, run_dir, resume=resume, observer=observer).run()
    except KeyboardInterrupt:
        err.print(f"\ninterrupted. Finished jobs are saved; continue with: ehrbench run --resume --out {run_dir}")
        sys.exit(130)
    board = lb.rebuild(run_dir)
    print_leaderboard(board)
    out.print(f"\nRun directory: {run_dir}")
    for name in ("report.html", "leaderboard.csv", "leaderboard.md", "results.jsonl", "run.json"):
        if (run_dir / name).exists():  # report.html is absent when building it failed (logged above)
            out.print(f"  {run_dir / name}")
    if (run_dir / "samples").exists():
        out.print(f"  {run_dir / 'samples'}/")
    if not cfg.report:
        out.print(f"  report.html skipped (--no-report); build it with: ehrbench report {run_dir}")


@cli.command(name="list")
@click.argument("kind", required=False, type=click.Choice(list(KINDS)))
@_plugin_option
def list_(kind: str | None, plugins: tuple[Path, ...]) -> None:
    """List registered generators, metrics and datasets, and plugins that failed to load."""
    from rich.table import Table

    from ehrbench.cli.console import out

    registry = load_registry(list(plugins))
    for k in [kind] if kind else list(KINDS):
        table = Table(title=k.capitalize(), title_justify="left")
        for col in ("name", "description", "status", "source"):
            table.add_column(col)
        if k == "metrics":
            table.add_column("category")
        for name in registry.names(k):
            e = registry.entries[k][name]
            # Escaped: an install hint such as "ehrbench[sdv]" is not rich markup.
            status = f"[yellow]unavailable: {escape(e.unavailable)}[/yellow]" if e.unavailable else "[green]available[/green]"
            row = [name, getattr(e.cls, "description", ""), status, e.source]
            if k == "metrics":
                row.append(e.cls.category)
            table.add_row(*row)
        out.print(table)
    if registry.broken:
        table = Table(title="Broken plugins", title_justify="left", style="red")
        table.add_column("source")
        table.add_column("error")
        for b in registry.broken:
            table.add_row(b.source, b.error)
        out.print(table)


@cli.command()
@click.option("--train", "train_path", required=True, type=click.Path(path_type=Path), help="Real training matrix (.npz).")
@click.option("--test", "test_path", required=True, type=click.Path(path_type=Path), help="Real held-out matrix (.npz).")
@click.option("--synthetic", "synthetic_path", required=True, type=click.Path(path_type=Path), help="Synthetic matrix (.npz).")
@click.option("--metrics", help="Comma-separated metric names (default: every available default metric).")
@click.option("--representation", type=click.Choice(["count", "binary"]), default="count", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--profile", type=click.Choice(PROFILES), default="paper", show_default=True,
              help="Metric profile: paper is the full protocol; smoke/quick subsample where a metric allows.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: metric[.submetric] → number.")
@_plugin_option
def evaluate(train_path: Path, test_path: Path, synthetic_path: Path, metrics: str | None,
             representation: str, seed: int, profile: str, as_json: bool, plugins: tuple[Path, ...]) -> None:
    """Score your own synthetic matrix against real train/test matrices, without a plugin."""
    from ehrbench.matrix import EHRMatrix
    from ehrbench.execution.runner import compute_metric
    from ehrbench.seeding import derive_seed

    registry = _registry(plugins)
    names = _split_names(metrics) or registry.defaults("metrics")
    instances = {n: registry.get("metrics", n).configure(None, profile) for n in names}
    train, test, synthetic = (
        EHRMatrix.load(p).as_representation(representation) for p in (train_path, test_path, synthetic_path)
    )
    train.check_same_codes(test, f"--train {train_path}", f"--test {test_path}")
    train.check_same_codes(synthetic, f"--train {train_path}", f"--synthetic {synthetic_path}")
    results: dict[str, float] = {}
    failures: dict[str, str] = {}
    for name, metric in instances.items():
        ctx = RunContext(seed=derive_seed(seed, "metric", name, 0), representation=representation,  # type: ignore[arg-type]
                         profile=profile)
        try:
            for key, value in compute_metric(metric, train, test, synthetic, ctx).items():
                results[flat_key(name, key)] = value
        except Exception as exc:
            failures[name] = f"{type(exc).__name__}: {exc}"
    if as_json:
        clean = {k: (v if math.isfinite(v) else None) for k, v in results.items()}
        click.echo(json.dumps(clean, sort_keys=False))
    else:
        _print_scores(results, registry)
    for name, reason in failures.items():
        click.echo(f"error: metric {name} failed: {reason}", err=True)
    if failures:
        sys.exit(1)


def _print_scores(results: dict[str, float], registry: Registry) -> None:
    from rich.table import Table

    from ehrbench.cli.console import out

    table = Table(title="Scores", title_justify="left")
    for col in ("metric", "category", "direction", "value"):
        table.add_column(col)
    for key, value in results.items():
        metric, _, sub = key.partition(".")
        cls = registry.get("metrics", metric)
        direction = cls.direction(sub or "value")
        table.add_row(key, cls.category, direction.describe() if direction else "info", f"{value:.6g}")
    out.print(table)


from ehrbench.cli.views import compare, leaderboard, report  # noqa: E402  (report, compare, leaderboard exports)

for _command in (report, compare, leaderboard):
    cli.add_command(_command)

from ehrbench_plugins.datasets.mimic3_cli import prepare, simulate  # noqa: E402  (prepare mimic3, simulate)

cli.add_command(prepare)
cli.add_command(simulate)


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one paragraph on stderr and exit status 2."""
    try:
        cli.main(args=argv, prog_name="ehrbench", standalone_mode=False)
    except EhrbenchError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
