"""Measuring what a job costs: wall time, CPU time, peak CPU resident memory, peak GPU memory.

CPU seconds are user + system time of the process that runs the step, all its threads (BLAS and
torch's intra-op pools included), plus that of child processes it started and waited for, taken as
the difference of ``getrusage`` before and after the step. The job's own: under the process
executor it is the job's interpreter; under the local executor the driver's other threads (the
progress display) add a few milliseconds a second; a Ray worker runs one task at a time. Unlike
wall time, it does not grow when other programs share the cores, so it is the cost to compare on a
shared machine (it does grow with spin-waiting threads, and it misses time spent on a GPU).

Peak RSS is per job: on Linux the kernel's high-water mark (VmHWM) is reset before each
measured step through ``/proc/self/clear_refs``; elsewhere the process-wide peak is used.
On CUDA a step also gets its GPU seconds, timed by CUDA events on the device's own clock, and
the mean share of that time a kernel was running, as NVML reports it (when NVML can be read).
"""

from __future__ import annotations

import resource
import sys
import threading
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


class _Utilization:
    """Polls NVML's kernel-busy percentage every 0.1 s while a step runs.

    NVML averages over its own sample period (1/6 to 1 s), so this is coarse for short steps. The
    device handle is found here, on the calling thread (torch maps CUDA_VISIBLE_DEVICES to NVML's
    index); the poller then calls NVML alone, never the CUDA runtime, so it cannot disturb a CUDA
    graph being captured.
    """

    def __init__(self, torch) -> None:
        import pynvml

        torch.cuda.utilization()  # raises where NVML cannot start or the device cannot be mapped
        handle = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda._get_nvml_device_index(None))
        self._read = lambda: pynvml.nvmlDeviceGetUtilizationRates(handle).gpu
        self._read()
        self.samples: list[float] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="ehrbench-gpu-utilization", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._done.wait(0.1):
            try:
                self.samples.append(float(self._read()))
            except Exception:
                return

    def stop(self) -> float | None:
        self._done.set()
        self._thread.join()
        return sum(self.samples) / len(self.samples) if self.samples else None


def _utilization(torch) -> _Utilization | None:
    try:
        return _Utilization(torch)
    except Exception:  # no pynvml, or NVML refused: the figure is simply absent
        return None


def cpu_seconds() -> float:
    """User + system seconds of this process (every thread) and of its waited-for children so far."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclass
class Measurement:
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # user + system, this process's threads and waited-for children
    peak_rss_mb: float = 0.0
    peak_gpu_mb: float | None = None
    gpu_seconds: float | None = None  # CUDA-event time from the step's start to its end
    gpu_utilization: float | None = None  # mean % of that time a kernel ran (NVML), when readable


@contextmanager
def measure(device: str = "cpu") -> Iterator[Measurement]:
    """Time a block and record its peak CPU RSS (and peak CUDA memory and GPU time when CUDA is used)."""
    m = Measurement()
    _reset_peak_rss()
    cuda = _cuda_in_use(device)
    if cuda:
        torch = sys.modules["torch"]
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        began, ended = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        busy = _utilization(torch)
        began.record()
    start = time.perf_counter()
    cpu_start = cpu_seconds()
    try:
        yield m
    finally:
        if cuda:
            ended.record()
            torch.cuda.synchronize()
            m.peak_gpu_mb = torch.cuda.max_memory_allocated() / 2**20
            m.gpu_seconds = began.elapsed_time(ended) / 1000
            m.gpu_utilization = busy.stop() if busy is not None else None
        m.seconds = time.perf_counter() - start
        m.cpu_seconds = cpu_seconds() - cpu_start
        m.peak_rss_mb = _peak_rss_mb()


def weighted_utilization(*steps: Measurement) -> float | None:
    """The GPU utilization of several steps together, each weighted by its wall seconds."""
    known = [(m.gpu_utilization, m.seconds) for m in steps if m.gpu_utilization is not None and m.seconds > 0]
    total = sum(seconds for _, seconds in known)
    return sum(u * seconds for u, seconds in known) / total if total > 0 else None
