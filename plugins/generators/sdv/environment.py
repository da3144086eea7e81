"""Importing SDV without letting it write into the user's home directory.

On import, SDV 2.x (``sdv.logging.utils.get_sdv_logger_config``) creates
``platformdirs.user_data_dir('sdv', 'sdv-dev')`` (``~/.local/share/sdv`` on Linux), copies
its logger config there, and, when that config enables the local log registry, appends
usage events (fit, sample, row and column counts) to ``sdv_logs.csv`` in the same folder.
The loggers are configured once, at import (``get_sdv_logger`` is cached), so the import is
the one place to redirect them: :func:`import_sdv` points SDV's data dir at a private
temporary folder for the duration of the import, removes it at exit, and silences SDV's
usage loggers.

Network: SDV 2.0.0, ctgan 0.12.1, rdt 2.0.0 and copulas 0.14.1 make no telemetry or
update-check call on import, fit or sample (their only network code is the demo-dataset
downloaders, ``sdv.datasets.demo`` and ``ctgan.demo``, which ehrbench never calls). The
test suite holds this to account by running an import, fit and sample with sockets blocked.
"""

from __future__ import annotations

import atexit
import importlib
import logging
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

# SDV's usage loggers (sdv/logging/sdv_logger_config.yml); they carry no diagnostics.
SDV_USAGE_LOGGERS = ("SingleTableSynthesizer", "MultiTableSynthesizer", "Metadata", "SingleTableMetadata")

_private_dir: Path | None = None


def sdv_data_dir() -> Path:
    """The private folder SDV sees as its user data dir (created once per process)."""
    global _private_dir
    if _private_dir is None:
        _private_dir = Path(tempfile.mkdtemp(prefix="ehrbench-sdv-"))
        atexit.register(shutil.rmtree, _private_dir, True)
    return _private_dir


@contextmanager
def _redirected_user_data_dir() -> Iterator[None]:
    """Make ``platformdirs.user_data_dir('sdv', ...)`` answer :func:`sdv_data_dir`."""
    import platformdirs

    original = platformdirs.user_data_dir

    def user_data_dir(appname: str | None = None, *args: object, **kwargs: object) -> str:
        if appname == "sdv":
            return str(sdv_data_dir())
        return original(appname, *args, **kwargs)  # type: ignore[arg-type]

    platformdirs.user_data_dir = user_data_dir  # type: ignore[assignment]
    try:
        yield
    finally:
        platformdirs.user_data_dir = original  # type: ignore[assignment]


def import_sdv() -> SimpleNamespace:
    """SDV's ``Metadata`` and single-table synthesizers, imported without touching ``$HOME``.

    If something else imported SDV earlier in this process, its loggers are already
    configured; they are still silenced here, but files SDV wrote then are not ours to move.
    """
    if "sdv" not in sys.modules:
        with _redirected_user_data_dir():
            importlib.import_module("sdv")
    for name in SDV_USAGE_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()
        logger.addHandler(logging.NullHandler())
        logger.propagate = False
    from sdv.metadata import Metadata
    from sdv.single_table import CTGANSynthesizer, GaussianCopulaSynthesizer, TVAESynthesizer

    return SimpleNamespace(
        Metadata=Metadata,
        TVAESynthesizer=TVAESynthesizer,
        CTGANSynthesizer=CTGANSynthesizer,
        GaussianCopulaSynthesizer=GaussianCopulaSynthesizer,
    )
