"""User-facing errors: each one becomes a one-paragraph message and exit status 2.

Anything raised as an :class:`EhrbenchError` is the user's input being wrong (a file,
a name, a config key), never a bug in ehrbench, so the CLI prints it without a traceback.
"""

from __future__ import annotations

import difflib
import errno
import re
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


# A name that becomes one component of a path: letters, digits, ".", "_", "-", not starting with a
# dot (so never "." or ".."), never a separator. Registry names and run names fit it.
_PATH_COMPONENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,199}")


def path_component(name: object, what: str) -> str:
    """``name`` when it is safe as one component of a path, else an :class:`InputError`.

    Checked where a path is built from a name (a run's name, a generator's folder, a figure's
    file), so a crafted name can never lead outside the directory it belongs in.
    """
    if type(name) is not str or not _PATH_COMPONENT.fullmatch(name):
        raise InputError(
            f"{what} {name!r} cannot name a file or folder: use letters, digits, '.', '_' and '-' "
            f"(not starting with '.'), at most 200 characters."
        )
    return name


def _is_file(name: object) -> bool:
    import os

    try:
        return os.path.isfile(name)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


_OS_HINTS = {
    errno.ENOSPC: "no space left on the device; free some space",
    errno.EDQUOT: "the disk quota is exceeded; free some space",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a part of this path is a file, not a directory",
    errno.EISDIR: "is a directory; give a file name",
    errno.ENOENT: "no such file or directory",
    errno.EEXIST: "already exists",
    errno.ENAMETOOLONG: "the name is too long",
    errno.EMFILE: "too many open files",
}


def os_error_message(exc: OSError) -> str:
    """One line for an operating-system error: the file, what went wrong, in words."""
    what = _OS_HINTS.get(exc.errno, exc.strerror or str(exc)) if exc.errno is not None else str(exc)
    if exc.errno in (errno.EEXIST, errno.ENOTDIR) and exc.filename and _is_file(exc.filename):
        what = "is a file, not a directory"  # e.g. mkdir(parents=True) where a file is in the way
    where = f"{exc.filename}: " if exc.filename else ""
    if exc.filename2:
        where = f"{exc.filename} → {exc.filename2}: "
    return f"{where}{what} ({type(exc).__name__}, errno {exc.errno})" if exc.errno is not None else f"{where}{what}"
