"""`ehrbench list` and `ehrbench show`: every name whole at any width, defaults marked, options shown."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from ehrbench.plugins import KINDS, load_registry


@pytest.mark.parametrize("columns", ["80", "40"])
def test_list_in_a_pipe_shows_every_name_whole(columns):
    env = {**os.environ, "COLUMNS": columns}
    done = subprocess.run([sys.executable, "-m", "ehrbench.cli", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    listed = {m.group(2) for m in re.finditer(r"^  ([* ]) (\S+)", done.stdout, re.MULTILINE)}
    registry = load_registry()
    for kind in KINDS:
        names = set(registry.names(kind))
        assert names and names <= listed, names - listed
    assert "…" not in done.stdout


def test_list_marks_the_defaults(cli):
    text = cli("list").out
    registry = load_registry()
    for kind in KINDS:
        for name in registry.names(kind):
            marked = re.search(rf"^  \* {re.escape(name)}( |$)", text, re.MULTILINE) is not None
            default = name in registry.defaults(kind) or (kind == "datasets" and registry.get(kind, name).default)
            assert marked == default, (kind, name)
    assert "(* runs by default)" in text and re.search(r"^    tvae ", text, re.MULTILINE)


def test_list_options_and_show_give_defaults_and_profile_values(cli):
    generators = cli("list", "generators", "--options").out
    assert re.search(r"^      epochs: int = 1000   \[smoke 20; quick 4\]$", generators, re.MULTILINE), generators
    shown = cli("show", "simulated")
    assert shown.code == 0
    assert "  patients: int = 46520   [smoke 2000]" in shown.out and "the default dataset" in shown.out
    assert "  path: Path (required)" in cli("show", "matrix").out
    metric = cli("show", "log_cluster").out
    assert "metric" in metric and "fidelity, lower is better" in metric
    unknown = cli("show", "medgn")
    assert unknown.code == 2 and "did you mean 'medgan'?" in unknown.err


def test_list_and_show_as_json(cli):
    data = json.loads(cli("list", "--format", "json").out)
    registry = load_registry()
    assert [g["name"] for g in data["generators"]] == registry.names("generators")
    assert {g["name"] for g in data["generators"] if g["default"]} == set(registry.defaults("generators"))
    medgan = next(g for g in data["generators"] if g["name"] == "medgan")
    epochs = next(o for o in medgan["options"] if o["name"] == "epochs")
    assert epochs == {"name": "epochs", "type": "int", "required": False, "default": 1000,
                      "profiles": {"smoke": 20, "quick": 4, "paper": 1000}}
    assert data["broken"] == []
    one = json.loads(cli("show", "detection_auc", "--format", "json").out)
    assert one["kind"] == "metric" and one["category"] == "fidelity" and one["direction"] == "toward 0.5"
