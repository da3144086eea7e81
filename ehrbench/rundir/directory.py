"""The run directory (DESIGN.md §4): the one owner of its layout, ``run.json`` and ``results.jsonl``.

Everything that reads or writes a run goes through :class:`RunDirectory`, so a file name is
spelled once, ``run.json`` has one reader, and a folder that is not a run gives one clear error.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ehrbench.atomic import write_json_atomic
from ehrbench.errors import InputError
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

    def sample_path(self, generator: str, repeat: int) -> Path:
        """A job's synthetic sample (never written for generators that release real rows)."""
        return self.samples_dir / generator / f"repeat-{repeat}.npz"

    def model_dir(self, generator: str, repeat: int) -> Path:
        """Where a job's fitted model is cached (execution/model_cache.py)."""
        return self.path / self.MODELS / generator / f"repeat-{repeat}"

    def scratch_dir(self, generator: str, repeat: int) -> Path:
        """A job's scratch space, given to the generator as ``ctx.scratch_dir``."""
        return self.path / self.SCRATCH / generator / f"repeat-{repeat}"

    # -- state ------------------------------------------------------------------------------------
    def is_empty(self) -> bool:
        """True when the folder does not exist or holds nothing (a new run may start here)."""
        return not self.path.exists() or not any(self.path.iterdir())

    def create(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)

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
        return data

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
