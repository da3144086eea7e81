"""Each benchmark ends by printing its own section of benchmarks/RESULTS.md.

The section says which command produced the figures, on what machine and load, in how many
wall and CPU seconds (user + system, child processes included), then repeats what the script
printed. Paste it over the script's section in RESULTS.md to refresh the figures.
"""

from __future__ import annotations

import contextlib
import io
import os
import platform
import shlex
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class _Tee(io.TextIOBase):
    def __init__(self, *streams: io.TextIOBase) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@contextlib.contextmanager
def results_section(title: str) -> Iterator[None]:
    """Run the block, echoing what it prints; then print it again as a RESULTS.md section."""
    captured = io.StringIO()
    wall, cpu = time.perf_counter(), _cpu_seconds()
    try:
        with contextlib.redirect_stdout(_Tee(sys.stdout, captured)):
            yield
    finally:
        script = Path(sys.argv[0]).resolve()
        shown = script.relative_to(ROOT) if script.is_relative_to(ROOT) else script
        command = shlex.join(["python", str(shown), *sys.argv[1:]])
        load = f", load {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
        print("\n---- the section of benchmarks/RESULTS.md ----\n")
        print(f"## {title}\n")
        print(f"`{command}`: {platform.machine()}, {os.cpu_count()} CPUs{load}, {time.strftime('%Y-%m-%d')}; "
              f"{time.perf_counter() - wall:.0f} s wall, {_cpu_seconds() - cpu:.0f} s CPU.\n")
        print("```")
        print(captured.getvalue().rstrip())
        print("```")
