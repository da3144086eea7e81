"""The run's model cache (``models/<generator>/repeat-<k>/``): saved whole or not at all.

A generator saves into a fresh temporary directory beside the target; a ``COMPLETE`` marker is
written last and the directory is renamed into place, so a run killed while saving leaves no
half-written model that ``--resume`` would load.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ehrbench.api import Generator

MARKER = "COMPLETE"


def is_complete(directory: Path) -> bool:
    return (Path(directory) / MARKER).is_file()


def save(generator: Generator, directory: Path) -> None:
    """Save ``generator`` into ``directory``, replacing any incomplete leftover."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.parent / f".{directory.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        generator.save(tmp)
        (tmp / MARKER).write_text("ok\n")
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(tmp, directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
