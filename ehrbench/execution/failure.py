"""A plugin's failure as text: a one-line reason that names the plugin's own line, and the full traceback.

The innermost frame of an exception is often inside a library (numpy, torch), which says little
about what the plugin did. The reason therefore cites the innermost frame that lies in the plugin's
own code (the files of the top-level package its class comes from, or its ``--plugin`` file), and
the traceback marks that frame with ``>``, so a reader finds the plugin's line at once.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

PLUGIN_FRAME_MARK = "   <-- the plugin's own code"


def plugin_root(cls: type) -> Path | None:
    """The folder of the top-level package ``cls`` comes from, or the file of a single-module plugin."""
    top = sys.modules.get(cls.__module__.split(".")[0])
    file = getattr(top, "__file__", None)
    if not file:
        return None
    path = Path(file).resolve()
    return path.parent if path.name == "__init__.py" else path


def _inside(filename: str, root: Path) -> bool:
    try:
        path = Path(filename).resolve()
    except (OSError, ValueError):
        return False
    return path == root or root in path.parents


def _plugin_index(frames: traceback.StackSummary, cls: type | None) -> int | None:
    """The index of the innermost frame in ``cls``'s plugin code."""
    root = plugin_root(cls) if cls is not None else None
    if root is None:
        return None
    return next((i for i in range(len(frames) - 1, -1, -1) if _inside(frames[i].filename, root)), None)


def plugin_frame(exc: BaseException, cls: type | None) -> traceback.FrameSummary | None:
    """The innermost frame of ``exc``'s traceback that is in ``cls``'s plugin code."""
    frames = traceback.extract_tb(exc.__traceback__)
    index = _plugin_index(frames, cls)
    return None if index is None else frames[index]


def describe(exc: BaseException, cls: type | None = None) -> str:
    """``Type: message at file.py:N``: the plugin's own line, plus where it was raised when that differs."""
    frames = traceback.extract_tb(exc.__traceback__)
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, SystemExit):  # its message is only the exit code: say what happened
        text = f"SystemExit: the plugin called sys.exit({exc.code!r})"
    if not frames:
        return text
    raised = frames[-1]
    index = _plugin_index(frames, cls)
    if index is None:
        return f"{text} at {Path(raised.filename).name}:{raised.lineno}"
    mine = frames[index]
    text += f" at {Path(mine.filename).name}:{mine.lineno}"
    if index != len(frames) - 1:
        text += f" (raised in {Path(raised.filename).name}:{raised.lineno})"
    return text


def format_traceback(exc: BaseException, cls: type | None = None) -> str:
    """The full traceback (with its causes), the plugin's innermost frame marked with ``>``."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    mine = plugin_frame(exc, cls)
    if mine is None:
        return text
    header = f'  File "{mine.filename}", line {mine.lineno}, in {mine.name}\n'
    at = text.rfind(header)  # the exception's own stack is printed last, after its causes
    if at < 0:
        return text
    marked = f'> File "{mine.filename}", line {mine.lineno}, in {mine.name}{PLUGIN_FRAME_MARK}\n'
    return text[:at] + marked + text[at + len(header):]
