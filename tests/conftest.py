"""Shared test helpers: run the CLI in-process and locate the test plugin files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from _extras import pytest_make_collect_report, pytest_runtest_makereport  # noqa: F401  (the `make test` guard)

from ehrbench.cli import main

PLUGINS = Path(__file__).parent / "plugins"


@pytest.fixture(scope="session")
def correlated_counts() -> np.ndarray:
    """Sparse counts with a correlated pair of codes, 240 patients × 12 codes (the torch families' tests)."""
    rng = np.random.default_rng(3)
    X = (rng.random((240, 12)) < 0.15) * rng.integers(1, 4, (240, 12))
    shared = rng.random(240) < 0.4
    X[:, 0] = shared * 2
    X[:, 1] = shared
    return X.astype(np.float32)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "reliability: the heavy kill and disk-full loops of tests/test_reliability.py (also marked slow; "
        "run with -m reliability)")


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys, monkeypatch):
    """Call ``ehrbench ARGS...`` in this process; returns exit code, stdout and stderr."""
    monkeypatch.setenv("COLUMNS", "200")

    def invoke(*args: str) -> CliResult:
        code = 0
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return invoke


@pytest.fixture
def plugin_file():
    def path(name: str) -> Path:
        return PLUGINS / f"{name}.py"

    return path
