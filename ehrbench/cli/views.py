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
    """One table per generator: metric (with its direction), A and B, B − A, and the verdict with the
    repeats a close pair would need; narrow enough for 80 columns. Informational rows are in the
    csv and md formats."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from ehrbench.api import INFO_TEXT, parse_direction
    from ehrbench.cli.console import out, wrap_title
    from ehrbench.views.compare import DIGITS, LEGEND, repeats_text
    from ehrbench.views.text import arrow, format_mean_std, format_number

    out.print(Text(f"{run_b.name} (B) against {run_a.name} (A): difference = B − A", style="bold"))
    colours = {"B better": "green", "B worse": "red"}
    ranked = table[table["direction"] != INFO_TEXT]
    for generator, part in ranked.groupby("generator", sort=False):
        view = Table(title=generator, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        view.add_column("metric", overflow="fold")
        view.add_column("A mean ± std\nB mean ± std", justify="right", overflow="fold")
        view.add_column("B − A", justify="right", overflow="fold")
        view.add_column("verdict", overflow="fold")
        for r in part.itertuples():
            metric = wrap_title(f"{r.metric} {arrow(parse_direction(r.direction))}".strip(), max(24, out.width - 56))
            values = (f"{format_mean_std(r.mean_a, r.std_a, DIGITS)}\n"
                      f"{format_mean_std(r.mean_b, r.std_b, DIGITS)}")
            needed = repeats_text(r.repeats_needed)
            verdict = Text(r.verdict, style=colours.get(r.verdict, ""))
            if needed:
                verdict.append(f"\nrepeats: {needed}")
            view.add_row(metric, values, format_number(r.difference, DIGITS), verdict)
        out.print(view)
    hidden = len(table) - len(ranked)
    if hidden:
        out.print(Text(f"{hidden} informational rows are left out here; --format csv or md lists them.", style="dim"))
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
