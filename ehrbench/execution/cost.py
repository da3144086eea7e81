"""Measuring what a job costs: wall time, peak CPU resident memory, peak GPU memory.

Peak RSS is per job: on Linux the kernel's high-water mark (VmHWM) is reset before each
measured step through ``/proc/self/clear_refs``; elsewhere the process-wide peak is used.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _reset_peak_rss() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _cuda_in_use(device: str) -> bool:
    torch = sys.modules.get("torch")
    return bool(device.startswith("cuda") and torch is not None and torch.cuda.is_available())


@dataclass
class Measurement:
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    peak_gpu_mb: float | None = None


@contextmanager
def measure(device: str = "cpu") -> Iterator[Measurement]:
    """Time a block and record its peak CPU RSS (and peak CUDA memory when CUDA is used)."""
    m = Measurement()
    _reset_peak_rss()
    cuda = _cuda_in_use(device)
    if cuda:
        torch = sys.modules["torch"]
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    try:
        yield m
    finally:
        if cuda:
            torch.cuda.synchronize()
            m.peak_gpu_mb = torch.cuda.max_memory_allocated() / 2**20
        m.seconds = time.perf_counter() - start
        m.peak_rss_mb = _peak_rss_mb()
