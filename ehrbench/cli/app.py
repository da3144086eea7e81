"""The ``ehrbench`` command group: the built-in commands, the ones plugins add, and ``main``.

User errors print one paragraph and exit with status 2. Plugins add commands through the
``ehrbench_commands`` and ``ehrbench_prepare_commands`` hooks; they are loaded only when a
command the host does not have is asked for (or for ``--help``), so ``ehrbench report`` and
the other built-ins never import a plugin they do not need.
"""

from __future__ import annotations

import sys
from functools import lru_cache

import click

from ehrbench.cli.evaluate import evaluate
from ehrbench.cli.listing import list_, show
from ehrbench.cli.run import run
from ehrbench.cli.views import compare, leaderboard, report
from ehrbench.errors import EhrbenchError, PluginError, os_error_message
from ehrbench.plugins import Registry, load_registry


@lru_cache(maxsize=1)
def _plugins() -> Registry:
    return load_registry()


class _PluginCommands(click.Group):
    """A command group whose built-in commands come first and whose plugin commands load on demand."""

    def __init__(self, *args, plugin_group: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.plugin_group = plugin_group

    def _plugin_commands(self) -> dict[str, click.Command]:
        found = {}
        for name, entry in _plugins().commands[self.plugin_group].items():
            if name in self.commands:
                raise PluginError(f"command name '{name}' is registered twice: by ehrbench itself and by "
                                  f"{entry.source}. Uninstall or rename the plugin's command.")
            found[name] = entry.cls
        return found

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self._plugin_commands()})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self.commands.get(name) or self._plugin_commands().get(name)


@click.group(cls=_PluginCommands, plugin_group="ehrbench", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ehrbench")
def cli() -> None:
    """Benchmark generators of synthetic electronic health records."""


@cli.group(cls=_PluginCommands, plugin_group="prepare")
def prepare() -> None:
    """Build an ehrbench matrix (.npz) from a dataset's raw files (one command per dataset that offers it)."""


for _command in (run, list_, show, evaluate, report, compare, leaderboard):
    cli.add_command(_command)


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
    except OSError as exc:  # the operating system refused (no space, read-only, not a directory): one line
        click.echo(f"error: {os_error_message(exc)}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
