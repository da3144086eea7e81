"""The commands that read finished runs: ``report``, ``compare`` and ``leaderboard``.

They read a run directory only; none of them loads a plugin or the real data.
"""

from __future__ import annotations

from pathlib import Path

import click

from ehrbench.cli import flags as f
from ehrbench.errors import ConfigError
from ehrbench.views.exports import FORMATS


def _write(text: str, output: Path) -> None:
    """Write an export to ``output`` ('-' is stdout)."""
    from ehrbench.atomic import write_text_atomic

    if str(output) == "-":
        click.echo(text, nl=False)
        return
    if output.is_dir():
        raise ConfigError(f"--output {output} is a directory; give a file name.")
    try:
        write_text_atomic(output, text)
    except OSError as exc:
        raise ConfigError(f"--output {output}: cannot write ({exc.strerror or exc}).") from None
    click.echo(f"Wrote {output}", err=True)


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--weights", help=f.WEIGHTS_HELP)
def report(run_dir: Path, weights: str | None) -> None:
    """Rebuild report.html and figures/ of RUN_DIR from the run directory alone (offline)."""
    from ehrbench.rundir.directory import RunDirectory
    from ehrbench.views.report import build_report

    run = RunDirectory(run_dir)
    path = build_report(run, f.weights(weights))
    click.echo(f"Wrote {path} and {run.figures_dir}/")


@click.command()
@click.argument("run_a", type=click.Path(path_type=Path))
@click.argument("run_b", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "md"]), default="table", show_default=True,
              help="table prints to the terminal; csv and md are written to --output (default: stdout).")
@click.option("--output", type=click.Path(path_type=Path), default=Path("-"), help="File for csv/md ('-': stdout).")
def compare(run_a: Path, run_b: Path, fmt: str, output: Path) -> None:
    """Per-generator, per-metric differences of RUN_B against RUN_A, with each run's spread."""
    from ehrbench.views import compare as cmp

    table, warnings = cmp.compare_runs(run_a, run_b)
    if fmt == "csv":
        _write(cmp.to_csv(table), output)
    elif fmt == "md":
        _write(cmp.to_markdown(table, run_a, run_b, warnings), output)
    else:
        _print_comparison(table, run_a, run_b)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


def _print_comparison(table, run_a: Path, run_b: Path) -> None:
    from rich.table import Table

    from rich.text import Text

    from ehrbench.cli.console import out
    from ehrbench.views.compare import HEADER, LEGEND, cells

    view = Table(title=f"{run_b.name} (B) against {run_a.name} (A): difference = B − A", title_justify="left")
    for col in HEADER:
        view.add_column(col, justify="left" if col in ("generator", "metric", "verdict") else "right",
                        overflow="fold")
    colours = {"B better": "green", "B worse": "red"}
    for r in table.itertuples():
        row = cells(r)
        if r.verdict in colours:
            row[-1] = f"[{colours[r.verdict]}]{r.verdict}[/]"
        view.add_row(*row)
    out.print(view)
    out.print(Text(LEGEND, style="dim"))


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              help="Export in this format to --output (default RUN_DIR/leaderboard.<format>).")
@click.option("--output", type=click.Path(path_type=Path), help="Where the export goes ('-': stdout).")
@click.option("--weights", help=f.WEIGHTS_HELP)
def leaderboard(run_dir: Path, fmt: str | None, output: Path | None, weights: str | None) -> None:
    """Rebuild leaderboard.csv and leaderboard.md of RUN_DIR from its results.jsonl alone; export."""
    from ehrbench.cli.console import out, print_leaderboard
    from ehrbench.rundir.directory import RunDirectory
    from ehrbench.views import leaderboard as lb
    from ehrbench.views.exports import export_run

    run = RunDirectory(run_dir)
    if fmt is None:
        if output is not None:
            raise ConfigError(f"--output needs --format ({', '.join(FORMATS)}).")
        print_leaderboard(lb.rebuild(run))
        out.print(f"\nWrote {run.leaderboard_path('csv')} and {run.leaderboard_path('md')}")
        return
    _write(export_run(run, fmt, f.weights(weights)), output or run.leaderboard_path(fmt))
