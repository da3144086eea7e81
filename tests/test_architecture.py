"""The host's shape, read from its source with ``ast``: rooms by stage, no import cycle, no model knowledge.

Layers, lowest first: the contract (top-level modules plugins may use), ``rundir/`` (the run
directory), ``views/`` (built from a run directory), ``execution/`` (runs a benchmark and writes
its directory), ``testing/`` (the conformance kit, which runs plugin classes as a job does),
``library/`` (the Python API: run, evaluate, load_run), ``cli/``; the package's ``__init__`` re-exports and sits above them all. A module
imports only from its own layer or lower ones, and nothing in the host names a built-in plugin.
The checks are functions, tried first on a small package made to break each rule.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from ehrbench.plugins import load_registry

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = {"api", "hookspecs", "options", "matrix", "text_arrays", "seeding", "errors", "atomic", "plugins", "config"}
STAGES = ("rundir", "views", "execution", "testing", "library", "cli")  # in layer order, above the contract
# Built-in names that are also words of the host's own vocabulary, each for a reason of its own.
HOST_WORDS = {
    "matrix": "EHRMatrix and its .npz files are the contract",
    "simulated": "Dataset.simulated and run.json's dataset.simulated are the contract",
    "codes_per_record": "the report's own codes-per-record histogram, a key of reference.npz",
}
TOKEN = re.compile(r"[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)*")


# -- the checks ---------------------------------------------------------------------------------
def modules(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name → file, for every module of ``package`` under ``root``."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def layer(module: str) -> int:
    """0 contract, 1–4 the stages in order, 5 the package's façade; unplaced modules fail the test."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1:] == ["__main__"]:  # the façade: __init__, and `python -m ehrbench`
        return len(STAGES) + 1
    if parts[1] in STAGES:
        return STAGES.index(parts[1]) + 1
    if parts[1] in CONTRACT:
        return 0
    raise AssertionError(f"{module} is in no room: add it to the contract or move it into a stage")


def imports(path: Path, module: str, known: set[str]) -> set[str]:
    """The modules ``path`` imports (anywhere in it, function bodies included), as dotted names;
    a name inside ``known`` when it is one, else the name as written."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in known else base)
    return found


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Each module of ``package`` → the modules of ``package`` it imports."""
    found = modules(root, package)
    known = set(found)
    return {m: {t for t in imports(p, m, known) if t in known and t != m} for m, p in found.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first repeated last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Imports from a higher layer: a contract module importing a stage, a view importing the runner."""
    return [f"{m} imports {t}" for m, targets in graph.items() for t in sorted(targets) if layer(t) > layer(m)]


def strings(path: Path) -> Iterator[tuple[int, str]]:
    """Every string constant of a module (docstrings and f-string parts included), with its line."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def named(path: Path, names: set[str]) -> list[str]:
    """Where a string of ``path`` holds one of ``names`` as a whole word (kebab- or snake_case)."""
    return [f"{path.name}:{line}: {token}" for line, text in strings(path)
            for token in TOKEN.findall(text) if token in names]


def builtin_names() -> set[str]:
    """Registry names of the built-in generators, datasets and metrics, and the commands they add."""
    registry = load_registry()
    entries = [*(e for kind in registry.entries.values() for e in kind.values()),
               *(e for group in registry.commands.values() for e in group.values())]
    return {e.name for e in entries if "(ehrbench_plugins." in e.source}  # entry point (module, distribution)


# -- the checks, tried on a package built to break them -------------------------------------------
@pytest.fixture
def broken_package(tmp_path: Path) -> Path:
    pkg = tmp_path / "ehrbench"
    for folder in (pkg, pkg / "views", pkg / "execution"):
        folder.mkdir(exist_ok=True)
        (folder / "__init__.py").write_text('"""x"""\n')
    (pkg / "api.py").write_text("def f():\n    from ehrbench.views.report import build\n")  # contract → stage
    (pkg / "views" / "report.py").write_text("from . import table\nbuild = 1\n")
    (pkg / "views" / "table.py").write_text("from ehrbench.views.report import build\n")  # a cycle, through a relative import
    (pkg / "execution" / "run.py").write_text('AXIS = "pairwise_correlation_difference.constant_codes"\n')
    return tmp_path


def test_the_checks_find_a_cycle_an_upward_import_and_a_named_metric(broken_package):
    graph = import_graph(broken_package, "ehrbench")
    assert find_cycle(graph) == ["ehrbench.views.report", "ehrbench.views.table", "ehrbench.views.report"]
    assert upward_imports(graph) == ["ehrbench.api imports ehrbench.views.report"]
    offending = broken_package / "ehrbench" / "execution" / "run.py"
    assert named(offending, {"pairwise_correlation_difference"}) == ["run.py:1: pairwise_correlation_difference"]
    assert named(offending, {"constant"}) == []  # whole words only


# -- the host -------------------------------------------------------------------------------------
def test_the_host_has_no_import_cycle():
    graph = import_graph(ROOT, "ehrbench")
    assert len(graph) > 30
    assert find_cycle(graph) is None


def test_every_module_imports_only_its_own_layer_or_lower_ones():
    graph = import_graph(ROOT, "ehrbench")
    contract = [m for m in graph if layer(m) == 0]
    assert {m.split(".")[1] for m in contract} == CONTRACT
    assert upward_imports(graph) == []


def test_plugins_import_only_the_contract():
    known = set(modules(ROOT, "ehrbench"))
    for module, path in modules(ROOT, "plugins").items():
        host = {t for t in imports(path, module, known) if t == "ehrbench" or t.startswith("ehrbench.")}
        beyond = sorted(t for t in host if t != "ehrbench" and layer(t) > 0)
        assert not beyond, f"{path.relative_to(ROOT)} imports {beyond}"


def test_no_host_module_names_a_builtin_plugin():
    names = builtin_names()
    assert {"scoehr", "mimic3", "pairwise_correlation_difference", "train-resample", "simulate"} <= names
    assert set(HOST_WORDS) <= names  # an exemption that no longer names a built-in is removed
    forbidden = names - set(HOST_WORDS)
    found = modules(ROOT, "ehrbench")
    hits = [hit for path in found.values() for hit in named(path, forbidden)]
    assert hits == [], "the host names built-in plugins; let the plugin declare it instead"
    plugin_imports = [m for m, p in found.items() if any(t.startswith("ehrbench_plugins") for t in imports(p, m, set()))]
    assert plugin_imports == []
