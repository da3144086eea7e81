"""``ehrbench list``: the registered generators, metrics and datasets, and plugins that failed to load."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from ehrbench.cli import flags as f
from ehrbench.plugins import KINDS, load_registry


@click.command(name="list")
@click.argument("kind", required=False, type=click.Choice(list(KINDS)))
@f.plugin_option
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
