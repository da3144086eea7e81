"""The hook specifications: the whole contract between the host and its plugins.

Each hook returns a list of classes (subclasses of the bases in :mod:`ehrbench.api`);
the host instantiates them. A plugin implements any subset, marking functions with
:data:`hookimpl`.
"""

from __future__ import annotations

import pluggy

PROJECT = "ehrbench"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def ehrbench_generators() -> list[type]:
    """Return generator classes (subclasses of ehrbench.api.Generator)."""


@hookspec
def ehrbench_metrics() -> list[type]:
    """Return metric classes (subclasses of ehrbench.api.Metric)."""


@hookspec
def ehrbench_datasets() -> list[type]:
    """Return dataset classes (subclasses of ehrbench.api.Dataset)."""
