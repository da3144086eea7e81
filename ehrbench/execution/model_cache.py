"""The run's model cache (``models/<generator>/repeat-<k>/``): saved whole or not at all.

A generator saves into a fresh temporary directory beside the target; a ``COMPLETE`` marker is
written last and the directory is renamed into place, so a run killed while saving leaves no
half-written model that ``--resume`` would load (and the run's writer removes such leftovers when
it restarts: ``RunDirectory.remove_temporaries``). Saving is best effort: a failure is reported,
never the job's failure.
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


def save(generator: Generator, directory: Path) -> str | None:
    """Save ``generator`` into ``directory``, replacing any incomplete leftover.

    Best effort: the cache only spares a resumed run a fit, so a failed save (a full disk, a
    read-only folder, a generator's ``save`` that raises) removes what it wrote and returns the
    reason instead of failing the job. A Ctrl-C still stops the run.
    """
    directory = Path(directory)
    tmp = directory.parent / f".{directory.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        generator.save(tmp)
        (tmp / MARKER).write_text("ok\n")
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(tmp, directory)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 (a plugin's save may raise anything, sys.exit included)
        return f"{type(exc).__name__}: {exc}"
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return None
