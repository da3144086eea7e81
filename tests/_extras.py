"""Optional extras in the test suite: a skip mark that names the extra, and the guard on `make test`.

A test that needs an optional extra (``pyproject.toml``'s ``[project.optional-dependencies]``)
is marked ``@needs_extra("sdv")``: without the extra it is skipped with a reason that names it.
`make test` (the README's test command) installs every extra the suite needs and says so in
``EHRBENCH_TEST_EXTRAS``; under it, a test skipped for want of an extra is a failure, because then
the README's set-up does not install what the suite tests. Loaded as a plugin by conftest.py.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = "EHRBENCH_TEST_EXTRAS"
_SKIP = re.compile(r"needs the '([\w-]+)' extra|could not import '([\w.]+)'")


def extras() -> dict[str, list[str]]:
    """Each optional extra of pyproject.toml and the distributions it installs."""
    with open(ROOT / "pyproject.toml", "rb") as fh:
        table = tomllib.load(fh)["project"].get("optional-dependencies", {})
    return {extra: [re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0] for req in reqs] for extra, reqs in table.items()}


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.version(distribution)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def extra_installed(extra: str) -> bool:
    return all(_installed(d) for d in extras()[extra])


def needs_extra(extra: str) -> pytest.MarkDecorator:
    """Skip, naming the extra, when it is not installed."""
    if extra not in extras():
        raise ValueError(f"pyproject.toml has no extra '{extra}'")
    return pytest.mark.skipif(
        not extra_installed(extra), reason=f"needs the '{extra}' extra (pip install 'ehrbench[{extra}]')"
    )


def extra_of_skip(reason: str) -> str | None:
    """The extra a skip reason says is missing (a module named by importorskip counts by its
    distribution's name), or None for a skip that is not about an extra."""
    found = _SKIP.search(reason)
    if not found:
        return None
    if found.group(1):
        return found.group(1)
    module = found.group(2).split(".")[0].replace("_", "-").lower()
    return next((e for e, dists in extras().items() if module in (d.lower() for d in dists)), None)


def _guard(report: pytest.TestReport | pytest.CollectReport) -> None:
    installed = os.environ.get(ENV)
    if installed is None or not report.skipped:
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    extra = extra_of_skip(reason)
    if extra is None:
        return
    report.outcome = "failed"
    report.longrepr = (
        f"skipped for want of the '{extra}' extra ({reason}), but `make test` (the README's test command) "
        f"installed only '{installed}': the README's set-up must install every extra the suite tests. "
        f"Add '{extra}' to TEST_EXTRAS in the Makefile (or repair the environment)."
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    outcome = yield
    _guard(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> object:
    outcome = yield
    _guard(outcome.get_result())
