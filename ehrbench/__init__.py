"""ehrbench: benchmark generators of synthetic electronic health records.

One face for users and plugin authors. Plugin authors need :data:`hookimpl`, the base classes,
:class:`EHRMatrix` (and :func:`from_arrays`), the errors, :func:`derive_seed`,
:data:`null_progress` and :func:`usable_cores`, all re-exported here; the built-in plugins import nothing else from the
host. Notebooks and scripts call :func:`run`, :func:`evaluate` and :func:`load_run`, loaded on
first use so that ``import ehrbench`` stays light (no pandas, no execution machinery).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ehrbench.api import (
    INFO,
    MAIN_KEY,
    Dataset,
    Direction,
    Generator,
    Metric,
    NoOptions,
    ProgressReporter,
    PublishedResults,
    RunContext,
    null_progress,
    usable_cores,
)
from ehrbench.errors import ConfigError, EhrbenchError, InputError
from ehrbench.hookspecs import hookimpl
from ehrbench.matrix import EHRMatrix, from_arrays
from ehrbench.seeding import derive_seed

if TYPE_CHECKING:
    from ehrbench.config import RunConfig
    from ehrbench.library.evaluate import evaluate
    from ehrbench.library.runs import Run, load_run, run

__version__ = "0.1.0"
__all__ = [
    "INFO", "MAIN_KEY", "ConfigError", "Dataset", "Direction", "EHRMatrix", "EhrbenchError", "Generator",
    "InputError", "Metric", "NoOptions", "ProgressReporter", "PublishedResults", "Run", "RunConfig", "RunContext",
    "derive_seed", "evaluate", "from_arrays", "hookimpl", "load_run", "null_progress", "run", "usable_cores",
]

# name → module; imported on first access (PEP 562).
_LAZY = {
    "run": "ehrbench.library.runs",
    "load_run": "ehrbench.library.runs",
    "Run": "ehrbench.library.runs",
    "evaluate": "ehrbench.library.evaluate",
    "RunConfig": "ehrbench.config",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ehrbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
