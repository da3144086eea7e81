"""Flag helpers the commands share: ``--plugin``, name lists, KEY=VALUE pairs, weights, the registry."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from ehrbench.config import parse_weights
from ehrbench.errors import ConfigError
from ehrbench.plugins import Registry, load_registry


def plugin_option(func: Callable) -> Callable:
    return click.option(
        "--plugin", "plugins", multiple=True, type=click.Path(path_type=Path),
        help="Load a plugin module from this Python file (repeatable).",
    )(func)


def registry(plugins: tuple[Path, ...]) -> Registry:
    """The plugins, with a warning on stderr for each one that failed to load."""
    from rich.text import Text

    from ehrbench.cli.console import err

    loaded = load_registry(list(plugins))
    for broken in loaded.broken:
        err.print(Text.assemble(("warning:", "yellow"), f" plugin {broken.source} is broken: {broken.error}"))
    return loaded


def split_names(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise ConfigError(f"expected a comma-separated list of names, got {value!r}.")
    return names


def key_values(pairs: tuple[str, ...], flag: str) -> dict[str, str] | None:
    if not pairs:
        return None
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} expects KEY=VALUE, got {pair!r}.")
        out[key.strip()] = value.strip()
    return out


def generator_options(pairs: tuple[str, ...]) -> dict[str, dict[str, str]] | None:
    """``--generator-option GEN.KEY=VALUE`` flags → {GEN: {KEY: VALUE}} (None when none is given)."""
    from ehrbench.execution.variants import parse_generator_option

    if not pairs:
        return None
    out: dict[str, dict[str, str]] = {}
    for pair in pairs:
        generator, key, value = parse_generator_option(pair)
        out.setdefault(generator, {})[key] = value
    return out


def variants(texts: tuple[str, ...]) -> dict[str, dict[str, str]] | None:
    """``--variant NAME=GEN:KEY=VALUE,...`` flags → {NAME: table} (None when none is given)."""
    from ehrbench.execution.variants import parse_flag

    if not texts:
        return None
    out: dict[str, dict[str, str]] = {}
    for text in texts:
        name, table = parse_flag(text)
        if name in out:
            raise ConfigError(f"--variant names '{name}' twice.")
        out[name] = table
    return out


def weights(text: str | None) -> dict[str, float] | None:
    return parse_weights(text) if text is not None else None


WEIGHTS_HELP = ("Category weights for the overall ranking, e.g. privacy=2,utility=1,fidelity=1 "
                "(default: the run's config, else fidelity, utility, privacy 1 and cost 0).")
