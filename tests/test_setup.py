"""The newcomer's path: the README's set-up and test command, CI, the package's metadata.

`make test` is the README's test command and CI's only command; it installs every extra the
suite tests (TEST_EXTRAS), and `_extras.py` turns a test skipped for a missing extra into a
failure under it.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

from _extras import ENV, extra_of_skip, extras

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"


def make_test_extras() -> set[str]:
    found = re.search(r"^TEST_EXTRAS\s*:?=\s*(\S+)\s*$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert found, "the Makefile sets TEST_EXTRAS, the extras `make test` installs"
    return set(found.group(1).split(","))


def test_the_readme_test_command_is_make_test_and_ci_runs_exactly_it():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## The two commands", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make run", "make test"]
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.strip().startswith("#")]
    makes = [line for line in ci if re.search(r"\bmake\b", line) and "apt-get" not in line]
    assert makes == ["exec make test"], "CI runs the README's test command as it is, with no extra flags or extras"
    assert not any("pip install" in line or "EXTRAS" in line for line in ci)


def test_make_test_installs_every_extra_the_suite_needs():
    declared = set(extras())
    installed = make_test_extras()
    assert installed <= declared, f"TEST_EXTRAS names extras pyproject.toml does not declare: {installed - declared}"
    needed = {"test"}
    for path in TESTS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name == "needs_extra":
                needed.add(node.args[0].value)
            elif name == "importorskip":
                extra = extra_of_skip(f"could not import '{node.args[0].value}'")
                if extra is not None:
                    needed.add(extra)
    assert needed - installed == set(), f"tests need extras `make test` does not install: {needed - installed}"
    assert {"sdv", "ray"} <= needed  # the scan sees the suite's own marks
    without_make = re.search(r'pip install -e "\.\[([\w,]+)\]"', (ROOT / "README.md").read_text())
    assert without_make and set(without_make.group(1).split(",")) == installed, \
        "the README's set-up without make installs the same extras as `make test`"


def test_a_test_skipped_for_a_missing_extra_fails_under_make_test(tmp_path):
    (tmp_path / "test_probe.py").write_text(textwrap.dedent("""
        import pytest

        @pytest.mark.skip(reason="needs the 'sdv' extra (pip install 'ehrbench[sdv]')")
        def test_needs_sdv():
            pass

        @pytest.mark.skip(reason="Chromium is not installed")
        def test_needs_a_browser():
            pass
    """))

    def run(env: dict[str, str]) -> subprocess.CompletedProcess:
        environ = {k: v for k, v in os.environ.items() if k != ENV}
        environ.update(env, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
        return subprocess.run([sys.executable, "-m", "pytest", "-p", "_extras", "-p", "no:cacheprovider", "-q",
                               "-rfs", str(tmp_path)], cwd=tmp_path, env=environ, capture_output=True, text=True,
                              timeout=120)

    alone = run({})
    assert alone.returncode == 0 and "2 skipped" in alone.stdout, alone.stdout
    guarded = run({ENV: "test"})
    assert guarded.returncode == 1 and "1 skipped, 1 error" in guarded.stdout, guarded.stdout
    assert "Add 'sdv' to TEST_EXTRAS" in guarded.stdout


# Standard-library modules newer than some Python 3 release: importing one needs that release.
NEWER_STDLIB = {"tomllib": (3, 11), "zoneinfo": (3, 9), "graphlib": (3, 9)}


def test_requires_python_covers_the_standard_library_it_imports():
    spec = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    found = re.fullmatch(r">=\s*3\.(\d+)", spec.strip())
    assert found, f"requires-python is a lower bound: {spec}"
    floor = (3, int(found.group(1)))
    imported: set[str] = set()
    for path in [*(ROOT / "ehrbench").rglob("*.py"), *(ROOT / "plugins").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    needs = {m: v for m, v in NEWER_STDLIB.items() if m in imported}
    assert all(v <= floor for v in needs.values()), f"requires-python {spec}, but ehrbench imports {needs}"
    assert sys.version_info[:2] >= floor


def test_license_typing_marker_and_python_m_ehrbench():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["license"] == {"text": "MIT"}
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert (ROOT / "ehrbench" / "py.typed").is_file()
    assert "py.typed" in meta["tool"]["setuptools"]["package-data"]["ehrbench"]
    done = subprocess.run([sys.executable, "-m", "ehrbench", "--version"], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0 and "ehrbench" in done.stdout and "version" in done.stdout, done.stderr
