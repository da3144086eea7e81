"""The process executor: every job in a fresh interpreter, so it can be killed and measured.

A fresh interpreter (not a fork) gives each job a clean state (no inherited CUDA context or
thread pools) and a peak RSS of its own. The driver sends the job on the child's stdin and reads
framed messages from a pipe: ``ready``, ``progress``, ``generated`` (the generation outcome and
its sample), ``scored`` (the metric rows). It records each as it arrives, so the run directory
has one writer.

The train and test matrices are written once per run into unlinked temporary files that each
job memory-maps (copy-on-write): real rows never sit under a file name, and the files vanish
with the last process that holds them, even when the driver is killed.

The timeout is hard. It covers fit + sample, as in the local executor, counted from the moment
the job's interpreter is ready; when it passes, the driver kills the job's process group. A job
that dies (a crash, ``os._exit``, the kernel's out-of-memory killer) is recorded as failed with
its exit status or signal, the last lines it printed, and its peak RSS.
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
from dataclasses import dataclass, replace
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
    """Memory-map a matrix the driver shared; copy-on-write, so a generator may modify it."""
    os.lseek(fd, 0, os.SEEK_SET)
    return np.load(f"/dev/fd/{fd}", mmap_mode="c", allow_pickle=False)


@dataclass
class _Watch:
    """What the driver knows about a running job."""

    step: str = "start"
    generated: GenerationOutcome | None = None
    scored: bool = False
    timed_out: bool = False


class ProcessExecutor:
    """Runs jobs one at a time, each in its own interpreter."""

    name = "process"
    requires: tuple[str, ...] = ()

    def run(self, specs: list[JobSpec], data: Split, events: JobEvents) -> None:
        if not specs:
            return
        with _share(data) as shared:
            for spec in specs:
                events.started(spec)
                self._run_one(spec, shared, events)

    def _run_one(self, spec: JobSpec, shared: _SharedMatrices, events: JobEvents) -> None:
        child_spec = replace(spec, task=replace(spec.task, timeout=None))  # the driver enforces it
        read_fd, write_fd = os.pipe()
        payload = pickle.dumps({
            "plugins": [m.__file__ for m in file_plugin_modules(spec)],
            "spec": pickle.dumps(child_spec, protocol=pickle.HIGHEST_PROTOCOL),
            "matrices": shared.fds,
            "codes": shared.codes,
            "ids": shared.ids,
            "channel": write_fd,
        }, protocol=pickle.HIGHEST_PROTOCOL)
        output = tempfile.TemporaryFile()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(_SOURCE_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "ehrbench.execution.executor_process"], stdin=subprocess.PIPE, stdout=output,
                stderr=output, pass_fds=(write_fd, *shared.fds.values()), start_new_session=True, env=env,
            )
        finally:
            os.close(write_fd)
        watch = _Watch()
        try:
            try:
                assert proc.stdin is not None
                proc.stdin.write(payload)
                proc.stdin.close()
            except BrokenPipeError:  # the child died at once; its exit status tells why
                pass
            self._follow(proc, _FrameReader(read_fd), spec, events, watch)
        except BaseException:  # Ctrl-C or a failed write: the job (in its own session) must not linger
            _kill_group(proc.pid)
            raise
        finally:
            os.close(read_fd)
            code, peak_rss_mb = _reap(proc)
            tail = _tail(output)
            output.close()
        if watch.generated is None:
            reason = _death_reason(watch, code, tail, spec.task.timeout)
            cost = {"device": spec.task.device, "n_samples": spec.task.n_samples, "peak_rss_mb": peak_rss_mb}
            events.generated(spec, GenerationOutcome(Status.FAILED, reason, cost=cost))
        elif watch.generated.status == Status.OK and not watch.scored:
            events.lost(spec, _death_reason(watch, code, tail, None))

    def _follow(self, proc: subprocess.Popen, reader: _FrameReader, spec: JobSpec, events: JobEvents,
                watch: _Watch) -> None:
        """Relay the child's messages until it exits; kill it when the timeout passes."""
        deadline: float | None = None
        while True:
            wait = _POLL_SECONDS
            if deadline is not None and watch.generated is None:
                wait = max(0.0, min(wait, deadline - time.monotonic()))
            # Once the child has exited, everything it wrote is in the pipe: read it and stop, even
            # if a leftover grandchild still holds the pipe open.
            exited = _poll(proc) is not None
            for kind, value in reader.read(0 if exited else wait):
                if kind == "ready" and spec.task.timeout is not None:
                    deadline = time.monotonic() + spec.task.timeout
                elif kind == "progress":
                    watch.step = _STEPS.get(value[0], watch.step)
                    events.progress(spec, *value)
                elif kind == "generated":
                    watch.generated, watch.step = value, "scoring"
                    events.generated(spec, value)
                elif kind == "scored":
                    watch.scored = True
                    events.scored(spec, value)
            if exited or reader.eof:
                return
            if deadline is not None and watch.generated is None and time.monotonic() >= deadline:
                watch.timed_out = True
                _kill_group(proc.pid)
                return


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


def _child() -> None:
    """The job's interpreter: load the job, report ``ready``, run it, send its results."""
    from ehrbench.plugins import load_plugin_file

    payload = pickle.load(sys.stdin.buffer)
    channel = _Channel(payload["channel"])
    for path in payload["plugins"]:
        load_plugin_file(Path(path))
    spec: JobSpec = pickle.loads(payload["spec"])
    train, test = (
        EHRMatrix(_open_shared(payload["matrices"][name]), payload["codes"], payload["ids"][name])
        for name in ("train", "test")
    )
    if spec.task.generator_cls.uses_torch:
        import torch  # noqa: F401  (imported before the clock starts, as in a warm local run)
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
    _child()
