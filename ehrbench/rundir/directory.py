"""The run directory (DESIGN.md §4): the one owner of its layout, ``run.json`` and ``results.jsonl``.

Everything that reads or writes a run goes through :class:`RunDirectory`, so a file name is
spelled once, ``run.json`` has one reader, and a folder that is not a run gives one clear error.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ehrbench.atomic import TEMPORARY_FILE, write_json_atomic
from ehrbench.errors import InputError, path_component
from ehrbench.rundir.records import Record
from ehrbench.rundir.store import ResultStore


class RunDirectory:
    """A run directory on disk; path-like, so ``Path(run)``, ``run / "x"`` and ``open`` accept it."""

    MANIFEST = "run.json"
    RESULTS = "results.jsonl"
    LEADERBOARD = "leaderboard"  # leaderboard.csv, leaderboard.md and the exports leaderboard.<format>
    REPORT = "report.html"
    FIGURES = "figures"
    REFERENCE = "reference.npz"
    SAMPLES = "samples"
    MODELS = "models"
    SCRATCH = "scratch"
    LOG = "run.log"  # the run's progress lines and failures' tracebacks, appended by `ehrbench run`
    LOCK = ".ehrbench.lock"  # held (fcntl) by the one process that writes the run
    # What a writer killed mid-write leaves: atomic.py's temporary files, the model cache's
    # temporary directories (execution/model_cache.py). Removed when a run (re)starts here.
    TEMPORARY_DIR = re.compile(r"\..+\.tmp-[0-9a-f]{8}")
    # Top-level fields of run.json that readers open as tables or lists.
    _MANIFEST_TABLES = ("config", "dataset", "split", "device", "environment", "metric_options",
                       "generator_options", "variants", "tradeoff_axes")
    _MANIFEST_LISTS = ("generators", "metrics", "resumed_at")

    def __init__(self, path: Path | str | RunDirectory) -> None:
        self.path = Path(path)
        self.store = ResultStore(self.path / self.RESULTS)

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def __str__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.path.name

    # -- layout -----------------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.path / self.MANIFEST

    @property
    def results_path(self) -> Path:
        return self.store.path

    def leaderboard_path(self, fmt: str) -> Path:
        """``leaderboard.csv`` / ``.md`` (written by every run) or an export's ``leaderboard.<fmt>``."""
        return self.path / f"{self.LEADERBOARD}.{fmt}"

    @property
    def log_path(self) -> Path:
        return self.path / self.LOG

    @property
    def report_path(self) -> Path:
        return self.path / self.REPORT

    @property
    def figures_dir(self) -> Path:
        return self.path / self.FIGURES

    @property
    def reference_path(self) -> Path:
        return self.path / self.REFERENCE

    @property
    def samples_dir(self) -> Path:
        return self.path / self.SAMPLES

    def _job_path(self, folder: Path, generator: str, repeat: int, suffix: str = "") -> Path:
        """``folder/<generator>/repeat-<k><suffix>``, the names checked where the path is built: a
        name from a crafted results.jsonl never leads outside the run directory."""
        if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 0:
            raise InputError(f"{self.path}: repeat {repeat!r} is not a non-negative integer.")
        return folder / path_component(generator, "generator name") / f"repeat-{repeat}{suffix}"

    def sample_path(self, generator: str, repeat: int) -> Path:
        """A job's synthetic sample (never written for generators that release real rows)."""
        return self._job_path(self.samples_dir, generator, repeat, ".npz")

    def model_dir(self, generator: str, repeat: int) -> Path:
        """Where a job's fitted model is cached (execution/model_cache.py)."""
        return self._job_path(self.path / self.MODELS, generator, repeat)

    def scratch_dir(self, generator: str, repeat: int) -> Path:
        """A job's scratch space, given to the generator as ``ctx.scratch_dir``."""
        return self._job_path(self.path / self.SCRATCH, generator, repeat)

    def figure_path(self, name: str) -> Path:
        """``figures/<name>``; the name (built from generator names) is checked here."""
        return self.figures_dir / path_component(name, "figure name")

    # -- state ------------------------------------------------------------------------------------
    def _leftover(self, path: Path) -> bool:
        """Whether ``path`` is something ehrbench leaves behind without it being a run: the lock
        file, run.log, a killed write's temporary file or directory."""
        name = path.name
        if name in (self.LOCK, self.LOG):  # run.log: lines logged before a run wrote anything
            return True
        return bool(TEMPORARY_FILE.fullmatch(name) or self.TEMPORARY_DIR.fullmatch(name))

    def _check_is_directory(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise InputError(f"{self.path}: is a file, not a run directory; choose another --out.")

    def is_empty(self) -> bool:
        """True when the folder does not exist or holds nothing but leftovers of a run killed before
        it wrote anything (a new run may start here)."""
        self._check_is_directory()
        return not self.path.exists() or all(self._leftover(p) for p in self.path.iterdir())

    def never_started(self) -> bool:
        """True when the folder exists and holds only what a run killed during its first write
        leaves (the lock file, a temporary run.json): ``--resume`` starts that run afresh."""
        self._check_is_directory()
        return self.path.is_dir() and self.is_empty() and any(True for _ in self.path.iterdir())

    def create(self) -> None:
        self._check_is_directory()
        self.path.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run's advisory lock, so that a second writer (another run or ``--resume`` in
        the same folder) is refused with a clear message instead of doing the work twice."""
        try:
            import fcntl
        except ImportError:  # not POSIX: no advisory locks; one writer is then the user's care
            yield
            return
        path = self.path / self.LOCK
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
                who = f" (process {holder})" if holder.isdigit() else ""
                raise InputError(
                    f"{self.path}: another ehrbench process{who} is writing this run directory (a run or a "
                    f"--resume). Wait for it to finish, stop it, or choose another --out."
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)  # releases the lock; the file stays (removing it would race another writer)

    def remove_temporaries(self) -> list[Path]:
        """Delete what killed writes left (temporary files, half-saved models); returns them.

        Called by the run's writer, under :meth:`lock`, before it writes anything else.
        """
        removed = []
        for root, dirs, files in os.walk(self.path):
            for name in files:
                if TEMPORARY_FILE.fullmatch(name):
                    path = Path(root) / name
                    path.unlink(missing_ok=True)
                    removed.append(path)
            for name in list(dirs):
                if self.TEMPORARY_DIR.fullmatch(name):
                    path = Path(root) / name
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(path)
                    dirs.remove(name)
        return removed

    # -- run.json ---------------------------------------------------------------------------------
    def read_manifest(self) -> dict[str, Any]:
        """``run.json``; an absent or unreadable one is an InputError naming it."""
        data = self.read_manifest_if_present()
        if data is None:
            raise InputError(f"{self.path}: no run.json here; is this an ehrbench run directory?")
        return data

    def read_manifest_if_present(self) -> dict[str, Any] | None:
        """``run.json``, or None when there is none; an unreadable one is an InputError."""
        path = self.manifest_path
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: not valid JSON ({exc}).") from None
        if not isinstance(data, dict):
            raise InputError(f"{path}: expected a JSON object, got {type(data).__name__}.")
        for key, kind in [*((k, dict) for k in self._MANIFEST_TABLES), *((k, list) for k in self._MANIFEST_LISTS)]:
            if data.get(key) is not None and not isinstance(data[key], kind):
                raise InputError(f"{path}: field '{key}' must be a JSON {'object' if kind is dict else 'array'}, "
                                 f"got {type(data[key]).__name__}; the file is damaged.")
        return data

    def stored_config(self) -> dict[str, Any] | None:
        """The configuration ``--resume`` continues: ``run.json``'s ``config``, or None for a run that
        was killed before it wrote ``run.json`` (it starts afresh). Anything else is an InputError."""
        data = self.read_manifest_if_present()
        if data is None:
            if self.never_started():
                return None
            self.read_manifest()  # the error: no run here
        assert data is not None
        config = data.get("config")
        if not isinstance(config, dict):
            raise InputError(f"{self.manifest_path}: has no 'config' table; the file is damaged.")
        return config

    def write_manifest(self, data: dict[str, Any]) -> None:
        write_json_atomic(self.manifest_path, data)

    def update_manifest(self, **fields: Any) -> None:
        """Set top-level fields of ``run.json`` (e.g. ``finished_at``), keeping the rest."""
        data = self.read_manifest()
        data.update(fields)
        self.write_manifest(data)

    # -- results.jsonl ----------------------------------------------------------------------------
    def require_results(self) -> None:
        """The check every reader of a finished run makes first."""
        if not self.store.exists():
            raise InputError(f"{self.path}: no results.jsonl here; is this an ehrbench run directory?")

    def records(self) -> list[Record]:
        """Every complete record of ``results.jsonl``; the file must exist."""
        self.require_results()
        return self.store.read()
