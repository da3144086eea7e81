"""CLI commands that read finished runs: ``report``, ``compare`` and ``leaderboard``.

Registered on the ``ehrbench`` group in cli.py. They read a run directory only; none of them
loads a plugin or the real data.
"""

from __future__ import annotations

from pathlib import Path

import click

from ehrbench.errors import ConfigError


def _weights(text: str | None) -> dict[str, float] | None:
    from ehrbench.views.ranking import parse_weights

    return parse_weights(text) if text is not None else None


_WEIGHTS_HELP = ("Category weights for the overall ranking, e.g. privacy=2,utility=1,fidelity=1 "
                 "(default: the run's config, else fidelity, utility, privacy 1 and cost 0).")


def _write(text: str, output: Path) -> None:
    """Write an export to ``output`` ('-' is stdout)."""
    from ehrbench.rundir.store import write_text_atomic

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
@click.option("--weights", help=_WEIGHTS_HELP)
def report(run_dir: Path, weights: str | None) -> None:
    """Rebuild report.html and figures/ of RUN_DIR from the run directory alone (offline)."""
    from ehrbench.views.report import build_report

    path = build_report(run_dir, _weights(weights))
    click.echo(f"Wrote {path} and {run_dir / 'figures'}/")


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

    from ehrbench.views.compare import format_mean_std, format_number
    from ehrbench.cli.console import out

    view = Table(title=f"{run_b.name} (B) against {run_a.name} (A): difference = B − A", title_justify="left")
    for col in ("generator", "metric", "direction", "A mean ± std", "B mean ± std", "difference", "verdict"):
        view.add_column(col, justify="left" if col in ("generator", "metric", "verdict") else "right")
    colours = {"B better": "green", "B worse": "red"}
    for r in table.itertuples():
        verdict = f"[{colours[r.verdict]}]{r.verdict}[/]" if r.verdict in colours else r.verdict
        view.add_row(r.generator, r.metric, r.direction, format_mean_std(r.mean_a, r.std_a), format_mean_std(r.mean_b, r.std_b),
                     format_number(r.difference), verdict)
    out.print(view)


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["csv", "md", "html", "json"]),
              help="Export in this format to --output (default RUN_DIR/leaderboard.<format>).")
@click.option("--output", type=click.Path(path_type=Path), help="Where the export goes ('-': stdout).")
@click.option("--weights", help=_WEIGHTS_HELP)
def leaderboard(run_dir: Path, fmt: str | None, output: Path | None, weights: str | None) -> None:
    """Rebuild leaderboard.csv and leaderboard.md of RUN_DIR from its results.jsonl alone; export."""
    from ehrbench.views import leaderboard as lb
    from ehrbench.cli.console import out, print_leaderboard
    from ehrbench.views.exports import export
    from ehrbench.views.provenance import read_run_manifest
    from ehrbench.views.ranking import resolve_weights

    board = lb.rebuild(run_dir)
    if fmt is None:
        if output is not None:
            raise ConfigError("--output needs --format (csv, md, html or json).")
        print_leaderboard(board)
        out.print(f"\nWrote {run_dir / 'leaderboard.csv'} and {run_dir / 'leaderboard.md'}")
        return
    chosen = _weights(weights)
    if chosen is None:
        stored = ((read_run_manifest(run_dir, required=False) or {}).get("config") or {}).get("weights")
        chosen = resolve_weights(stored)
    _write(export(board, fmt, chosen, Path(run_dir).name), output or Path(run_dir) / f"leaderboard.{fmt}")
