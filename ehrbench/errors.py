"""User-facing errors: each one becomes a one-paragraph message and exit status 2.

Anything raised as an :class:`EhrbenchError` is the user's input being wrong (a file,
a name, a config key), never a bug in ehrbench, so the CLI prints it without a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class EhrbenchError(Exception):
    """A problem with the user's input, reported as a message, exit status 2."""

    exit_code = 2


class InputError(EhrbenchError):
    """A data file is missing, unreadable or holds values outside the contract."""


class ConfigError(EhrbenchError):
    """A configuration file or option is invalid."""


class UnknownNameError(EhrbenchError):
    """A generator, metric or dataset name that no loaded plugin registers."""


class PluginError(EhrbenchError):
    """Plugins conflict with each other or a --plugin file cannot be used."""


def suggest(word: str, candidates: Iterable[str]) -> str:
    """Return ' (did you mean 'x'?)' when a close candidate exists, else ''."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
