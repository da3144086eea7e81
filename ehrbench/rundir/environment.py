"""What a run ran on, for ``run.json``: package versions, the git commit, the platform, timestamps.

The versions are those of the packages the run's plugins use, found from what they declare: the
distribution each plugin comes from with its requirements, and the modules each one ``requires``.
"""

from __future__ import annotations

import importlib.metadata
import platform
import re
import subprocess
import sys
from collections.abc import Iterable
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _requirements(distribution: str) -> list[str]:
    """The distributions ``distribution`` always needs (its requirements outside any extra)."""
    try:
        declared = importlib.metadata.requires(distribution) or []
    except importlib.metadata.PackageNotFoundError:
        return []
    names = []
    for requirement in declared:
        _, _, marker = requirement.partition(";")
        match = _NAME.match(requirement.strip())
        if match and "extra" not in marker:
            names.append(match.group(0))
    return names


@lru_cache(maxsize=1)
def _module_distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def _distributions_of_module(module: str) -> list[str]:
    top = module.split(".")[0]
    return _module_distributions().get(top) or [top]


def package_versions(distributions: Iterable[str], modules: Iterable[str] = ()) -> dict[str, str]:
    """Python's version, then by name: ehrbench's distribution, each of ``distributions`` (the
    plugins'), their requirements, and the distributions that provide ``modules``."""
    names: list[str] = []
    for distribution in [*_distributions_of_module(__name__), *distributions]:
        names += [distribution, *_requirements(distribution)]
    for module in modules:
        names += _distributions_of_module(module)
    unique = {re.sub(r"[-_.]+", "-", name).lower(): name for name in reversed(names)}  # PEP 503 names
    versions = {"python": platform.python_version()}
    for key in sorted(unique):
        version = _version(unique[key])
        if version is not None:
            versions[unique[key]] = version
    return versions


def git_commit() -> str | None:
    """The commit of the ehrbench source tree when it is a git checkout, else None."""
    source = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment(distributions: Iterable[str], modules: Iterable[str] = ()) -> dict[str, Any]:
    """``run.json``'s ``environment``: versions (see :func:`package_versions`), commit, platform, command."""
    return {
        "versions": package_versions(distributions, modules),
        "git_commit": git_commit(),
        "platform": platform.platform(),
        "command": sys.argv,
    }
