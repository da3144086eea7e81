"""The process executor: every job in a fresh interpreter, so it can be killed and measured.

A fresh interpreter (not a fork) gives each job a clean state (no inherited CUDA context or
thread pools) and a peak RSS of its own. Up to ``jobs`` run at once; results do not depend on how
many (each job has its own seeds and process). The driver hands the job over in an unlinked
temporary file and reads framed messages from a pipe: ``ready``, ``progress``, ``generated`` (the
generation outcome and its sample), ``scored`` (the metric rows). It records each as it arrives,
from one thread, so the run directory has one writer.

The train and test matrices are written once per run into unlinked temporary files that each
job memory-maps read-only: real rows never sit under a file name, a generator cannot modify the
split, and the files vanish with the last process that holds them, even when the driver is killed.

The interpreter starts in safe-path mode (``-P``: the working directory is not put on
``sys.path``) in an empty working directory of its own, so a ``concurrent.py`` (or any module)
in the user's folder is never imported into a job.

A job dies with its driver: its stdin is a lifeline pipe that only the driver holds open, and a
thread in the job kills the job's whole process group when it reads end-of-file; on Linux the
kernel also sends the job SIGKILL when the driver dies (``PR_SET_PDEATHSIG``).

The timeout is hard. It is counted from the moment the job's process is spawned, so it covers
start-up (imports, plugin loading) as well as fit + sample; when it passes, the driver kills the
job's process group. A job that dies (a crash, ``os._exit``, the kernel's out-of-memory killer)
is recorded as failed with its exit status or signal, the last lines it printed, and its peak RSS.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import numpy as np

from ehrbench.execution.job import GenerationOutcome, JobEvents, JobSpec, execute, file_plugin_modules
from ehrbench.matrix import EHRMatrix, Split
from ehrbench.rundir.records import Status

_HEADER = struct.Struct(">Q")
_POLL_SECONDS = 0.5
_EXIT_GRACE_SECONDS = 10.0
_OUTPUT_TAIL_CHARS = 600
# RunContext.cache_dir of every job, inside the run's working directory (gone with it): the models
# fitted on the real split, which every generator of a repeat shares, are fitted once, not per job.
_METRIC_CACHE = "metric-cache"
_SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the folder ehrbench is imported from
# The progress messages of job.generate, mapped to the step names its failure reasons use.
_STEPS = {"loading the saved model": "load", "fitting": "fit", "sampling": "sample"}


class _Channel:
    """The child's end of the pipe: length-prefixed pickles."""

    def __init__(self, fd: int) -> None:
        self.fh = os.fdopen(fd, "wb")

    def send(self, kind: str, value: Any) -> None:
        data = pickle.dumps((kind, value), protocol=pickle.HIGHEST_PROTOCOL)
        self.fh.write(_HEADER.pack(len(data)))
        self.fh.write(data)
        self.fh.flush()


class _FrameReader:
    """The driver's end: collects bytes from the pipe and cuts them into messages."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = bytearray()
        self.eof = False

    def read(self, wait: float) -> list[tuple[str, Any]]:
        """The messages that arrived within ``wait`` seconds (possibly none); sets ``eof``."""
        ready, _, _ = select.select([self.fd], [], [], wait)
        while ready:
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                self.eof = True
                break
            self.buffer += chunk
            ready, _, _ = select.select([self.fd], [], [], 0)
        frames = []
        while len(self.buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self.buffer)
            if len(self.buffer) < _HEADER.size + size:
                break
            frames.append(pickle.loads(self.buffer[_HEADER.size : _HEADER.size + size]))
            del self.buffer[: _HEADER.size + size]
        return frames


@dataclass
class _SharedMatrices:
    """Unlinked temporary files holding the split's matrices, passed to children by descriptor."""

    files: dict[str, IO[bytes]]
    codes: np.ndarray
    ids: dict[str, np.ndarray | None]

    @property
    def fds(self) -> dict[str, int]:
        return {name: fh.fileno() for name, fh in self.files.items()}


@contextmanager
def _share(data: Split) -> Iterator[_SharedMatrices]:
    files: dict[str, IO[bytes]] = {}
    try:
        for name, matrix in (("train", data.train), ("test", data.test)):
            fh = tempfile.TemporaryFile()
            files[name] = fh
            np.save(fh, matrix.X, allow_pickle=False)
            fh.flush()
        yield _SharedMatrices(files, data.train.codes, {"train": data.train.ids, "test": data.test.ids})
    finally:
        for fh in files.values():
            fh.close()


def _open_shared(fd: int) -> np.ndarray:
    """Memory-map a matrix the driver shared, read-only: no job can change the split."""
    os.lseek(fd, 0, os.SEEK_SET)  # where /dev/fd/N duplicates the descriptor (macOS), its offset is shared
    return np.load(f"/dev/fd/{fd}", mmap_mode="r", allow_pickle=False)


@dataclass
class _Watch:
    """What the driver knows about a running job."""

    step: str = "start"
    generated: GenerationOutcome | None = None
    scored: bool = False
    timed_out: bool = False


@dataclass
class _Running:
    """A job's process and the driver's ends of its pipes."""

    spec: JobSpec
    proc: subprocess.Popen
    reader: _FrameReader
    lifeline: IO[bytes]  # the child's stdin: closing it (or the driver dying) ends the child
    output: IO[bytes]
    deadline: float | None  # monotonic; from spawn, for fit + sample (start-up included)
    watch: _Watch = field(default_factory=_Watch)
    grace: float | None = None  # set when the pipe closed: the child has this long to exit


# Safe-path mode (Python 3.11+, which ehrbench requires): ``-m`` does not put the working directory
# first on ``sys.path``.
_SAFE_PATH = "-P"


class ProcessExecutor:
    """Runs jobs each in its own interpreter, up to ``jobs`` at a time."""

    name = "process"
    requires: tuple[str, ...] = ()

    def __init__(self, jobs: int = 1) -> None:
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
        self.jobs = jobs

    def run(self, specs: list[JobSpec], data: Split, events: JobEvents) -> None:
        if not specs:
            return
        queue = list(specs)
        running: list[_Running] = []
        with _share(data) as shared, tempfile.TemporaryDirectory(prefix="ehrbench-job-") as workdir:
            (Path(workdir) / _METRIC_CACHE).mkdir()
            try:
                while queue or running:
                    while queue and len(running) < self.jobs:
                        spec = queue.pop(0)
                        events.started(spec)
                        running.append(self._start(spec, shared, Path(workdir)))
                    for job in self._step(running, events):
                        running.remove(job)
                        self._finish(job, events)
            except BaseException:  # Ctrl-C or a failed write: no job (each in its own session) may linger
                for job in running:
                    _kill_group(job.proc.pid)
                for job in running:
                    _close(job)
                    _reap(job.proc)
                raise

    def _start(self, spec: JobSpec, shared: _SharedMatrices, workdir: Path) -> _Running:
        """Spawn the job's interpreter; its deadline starts now."""
        # The driver enforces the timeout; the metrics of every job share one cache folder.
        child_spec = replace(spec, task=replace(spec.task, timeout=None), cache_dir=workdir / _METRIC_CACHE)
        read_fd, write_fd = os.pipe()
        payload = tempfile.TemporaryFile()  # unlinked: the ids and the job never sit under a name
        pickle.dump({
            "plugins": [m.__file__ for m in file_plugin_modules(spec)],
            "spec": pickle.dumps(child_spec, protocol=pickle.HIGHEST_PROTOCOL),
            "matrices": shared.fds,
            "codes": shared.codes,
            "ids": shared.ids,
            "channel": write_fd,
            "driver": os.getpid(),
        }, payload, protocol=pickle.HIGHEST_PROTOCOL)
        payload.flush()
        payload.seek(0)
        output = tempfile.TemporaryFile()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(_SOURCE_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
        timeout = spec.task.timeout
        try:
            proc = subprocess.Popen(
                [sys.executable, _SAFE_PATH, "-m", "ehrbench.execution.executor_process",
                 str(payload.fileno())],
                stdin=subprocess.PIPE, stdout=output, stderr=output, cwd=workdir,
                pass_fds=(write_fd, payload.fileno(), *shared.fds.values()), start_new_session=True, env=env,
            )
        except BaseException:
            os.close(read_fd)
            output.close()
            raise
        finally:
            os.close(write_fd)
            payload.close()
        assert proc.stdin is not None
        deadline = time.monotonic() + timeout if timeout is not None else None
        return _Running(spec, proc, _FrameReader(read_fd), proc.stdin, output, deadline)

    def _step(self, running: list[_Running], events: JobEvents) -> list[_Running]:
        """Wait for messages (at most until the nearest deadline), relay them; return ended jobs."""
        now = time.monotonic()
        wait = _POLL_SECONDS
        for job in running:
            if job.deadline is not None and job.watch.generated is None:
                wait = min(wait, max(0.0, job.deadline - now))
        listening = [job.reader.fd for job in running if job.grace is None]
        if listening:
            select.select(listening, [], [], wait)
        else:
            time.sleep(min(wait, 0.02))
        ended = []
        for job in running:
            # Once the child has exited, everything it wrote is in the pipe: read it and stop, even
            # if a leftover grandchild still holds the pipe open.
            exited = _poll(job.proc) is not None
            if job.grace is None:
                for kind, value in job.reader.read(0):
                    self._relay(job, kind, value, events)
            if exited:
                ended.append(job)
            elif job.grace is None and job.reader.eof:
                job.grace = time.monotonic() + _EXIT_GRACE_SECONDS  # interpreter teardown
            elif job.grace is not None and time.monotonic() >= job.grace:
                _kill_group(job.proc.pid)
                ended.append(job)
            elif (job.deadline is not None and job.watch.generated is None
                  and time.monotonic() >= job.deadline):
                job.watch.timed_out = True
                _kill_group(job.proc.pid)
                ended.append(job)
        return ended

    @staticmethod
    def _relay(job: _Running, kind: str, value: Any, events: JobEvents) -> None:
        spec, watch = job.spec, job.watch
        if kind == "progress":
            watch.step = _STEPS.get(value[0], watch.step)
            events.progress(spec, *value)
        elif kind == "generated":
            watch.generated, watch.step = value, "scoring"
            events.generated(spec, value)
        elif kind == "scored":
            watch.scored = True
            events.scored(spec, value)

    def _finish(self, job: _Running, events: JobEvents) -> None:
        """Reap an ended job and record what it did not report itself."""
        _close(job)
        code, peak_rss_mb = _reap(job.proc)
        tail = _tail(job.output)
        job.output.close()
        spec, watch = job.spec, job.watch
        if watch.generated is None:
            reason = _death_reason(watch, code, tail, spec.task.timeout)
            cost = {"device": spec.task.device, "n_samples": spec.task.n_samples, "peak_rss_mb": peak_rss_mb}
            events.generated(spec, GenerationOutcome(Status.FAILED, reason, cost=cost))
        elif watch.generated.status == Status.OK and not watch.scored:
            events.lost(spec, _death_reason(watch, code, tail, None))


def _close(job: _Running) -> None:
    """Close the driver's ends of a job's pipes (the lifeline last: the child's group dies with it)."""
    if job.reader.fd >= 0:
        os.close(job.reader.fd)
        job.reader.fd = -1
    try:
        job.lifeline.close()
    except OSError:
        pass


def _poll(proc: subprocess.Popen) -> tuple[int, float] | None:
    """(exit code, peak RSS in MB) once the child has exited, else None; reaps it with its rusage."""
    if proc.returncode is not None:
        return proc.returncode, proc.peak_rss_mb  # type: ignore[attr-defined]
    pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
    if pid == 0:
        return None
    proc.returncode = os.waitstatus_to_exitcode(status)
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    proc.peak_rss_mb = usage.ru_maxrss / scale  # type: ignore[attr-defined]
    return proc.returncode, proc.peak_rss_mb  # type: ignore[attr-defined]


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _reap(proc: subprocess.Popen) -> tuple[int, float]:
    """Wait for the child, then kill what is left of its process group: (exit code, peak RSS MB).

    A child that closed its pipe gets a grace period to exit (interpreter teardown), then is killed.
    """
    grace = time.monotonic() + _EXIT_GRACE_SECONDS
    while (done := _poll(proc)) is None and time.monotonic() < grace:
        time.sleep(0.02)
    if done is None:
        _kill_group(proc.pid)
        while (done := _poll(proc)) is None:
            time.sleep(0.02)
    _kill_group(proc.pid)  # grandchildren it left behind (the group outlives its leader)
    return done


def _tail(output: IO[bytes]) -> str:
    output.seek(0, os.SEEK_END)
    size = output.tell()
    output.seek(max(0, size - 4 * _OUTPUT_TAIL_CHARS))
    lines = [line.strip() for line in output.read().decode("utf-8", "replace").splitlines() if line.strip()]
    return " | ".join(lines)[-_OUTPUT_TAIL_CHARS:]


def _death_reason(watch: _Watch, code: int, tail: str, timeout: float | None) -> str:
    if watch.timed_out and timeout is not None:
        return f"timed out after {timeout:g} s (--timeout); the job's process was killed"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        what = f"was killed by {name}"
        if -code == signal.SIGKILL:
            what += " (the kernel's out-of-memory killer sends SIGKILL when memory runs out)"
    elif code > 0:
        what = f"exited with status {code}"
    else:
        what = "exited without reporting its result"
    reason = f"{watch.step}: the job's process {what}"
    return f"{reason}; its last output: {tail}" if tail else reason


def _die_with_driver(driver: int) -> None:
    """End this job's whole process group when the driver goes, however it goes."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: the kernel kills this process with its parent
        except (OSError, AttributeError):
            pass
    if os.getppid() != driver:  # the driver died before the line above ran
        os._exit(1)

    def watch_lifeline() -> None:
        while True:
            try:
                if not os.read(0, 4096):  # end-of-file: the driver closed the pipe or died
                    break
            except InterruptedError:
                continue
            except OSError:
                break
        os.killpg(os.getpgrp(), signal.SIGKILL)  # grandchildren too (the job leads its own group)

    import threading

    threading.Thread(target=watch_lifeline, name="ehrbench-lifeline", daemon=True).start()


def _child(payload_fd: int) -> None:
    """The job's interpreter: load the job, report ``ready``, run it, send its results."""
    with os.fdopen(payload_fd, "rb") as fh:
        payload = pickle.load(fh)
    _die_with_driver(payload["driver"])
    from ehrbench.plugins import load_plugin_file

    channel = _Channel(payload["channel"])
    for path in payload["plugins"]:
        load_plugin_file(Path(path))
    spec: JobSpec = pickle.loads(payload["spec"])
    train, test = (
        EHRMatrix(_open_shared(payload["matrices"][name]), payload["codes"], payload["ids"][name])
        for name in ("train", "test")
    )
    if spec.task.generator_cls.uses_torch:
        import torch  # noqa: F401  (imported before fit, as in a warm local run)
    channel.send("ready", None)

    def progress(message: str | None = None, *, completed: float | None = None, total: float | None = None) -> None:
        channel.send("progress", (message, completed, total))

    def generated(outcome: GenerationOutcome) -> None:
        channel.send("generated", outcome if spec.keep_samples else replace(outcome, samples=None))

    rows = execute(spec, train, test, progress, generated)
    if rows is not None:
        channel.send("scored", rows)
    channel.fh.close()


if __name__ == "__main__":
    _child(int(sys.argv[1]))
