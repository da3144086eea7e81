"""Variants and sweeps: one generator several times in one run, each a row with its own options and seed."""

from __future__ import annotations

import json

import pytest

from ehrbench.config import RunConfig, resolve_config
from ehrbench.errors import ConfigError, EhrbenchError
from ehrbench.execution import variants
from ehrbench.execution.plan import plan_run
from ehrbench.plugins import load_registry

SMALL = ["--profile", "smoke", "--repeats", "1", "--dataset-option", "patients=120", "--dataset-option", "codes=20",
         "--metrics", "dimension_wise_probability"]


@pytest.fixture(scope="module")
def registry(request):
    from conftest import PLUGINS

    return load_registry([PLUGINS / "tunable.py"])


def test_sweep_expands_into_named_variants(registry):
    tables = {"tunable": {"scale": [1, 0.5], "mode": "marginal"},
              "tun-lists": {"generator": "tunable", "widths": [[1, 2], [3]], "mode": ["marginal", "empty"]}}
    rows = variants.expand(tables, registry)
    assert list(rows) == ["tunable-scale-1", "tunable-scale-0.5",
                          "tun-lists-widths-1x2-mode-marginal", "tun-lists-widths-1x2-mode-empty",
                          "tun-lists-widths-3-mode-marginal", "tun-lists-widths-3-mode-empty"]
    assert rows["tunable-scale-0.5"] == variants.Variant("tunable-scale-0.5", "tunable",
                                                         {"scale": 0.5, "mode": "marginal"})
    # A list given to an option that takes a list is its value, not a sweep.
    assert list(variants.expand({"t2": {"generator": "tunable", "widths": [1, 2]}}, registry)) == ["t2"]


@pytest.mark.parametrize("tables, message", [
    ({"x": {"generator": "nope"}}, "variants.x: unknown generator 'nope'"),
    ({"tunable": {"scale": 0.5}}, "the variant name 'tunable' is a registered generator's"),
    ({"x y": {"generator": "tunable"}}, "the variant name 'x y' cannot name a generator row"),
    ({"x": {"generator": "tunable", "mode": ["a/b"]}}, "the sweep value 'a/b' cannot be part of a variant's name"),
    ({"x": {"generator": "tunable", "scale": []}}, "the sweep over 'scale' has no values"),
    ({"x": {"generator": 3}}, "'generator' must be a generator's name"),
    ({"x": 3}, "variants.x must be a table of options"),
])
def test_bad_variants_name_the_problem(registry, tables, message):
    with pytest.raises(ConfigError) as info:
        variants.expand(tables, registry)
    assert message in str(info.value)


def test_plan_resolves_options_in_layers_and_seeds_by_row(registry):
    config = RunConfig(generators=["tunable"], metrics=["dimension_wise_probability"], profile="smoke",
                       generator_options={"tunable": {"mode": "empty"}, "half": {"scale": 0.25}},
                       variants={"half": {"generator": "tunable", "scale": 0.5}, "full": {"generator": "tunable"}})
    plan = plan_run(config, registry)
    assert plan.generators == ["tunable", "half", "full"]
    # base generator_options < the variant's own keys < generator_options of the variant's name
    assert plan.generator_options("half") == {"mode": "empty", "scale": 0.25}
    assert plan.generator_options("full") == {"mode": "empty"}
    seeds = {job.generator: job.seed for job in plan.jobs()}
    assert len(set(seeds.values())) == 3  # the seed derives from the row's name
    bad = RunConfig(generators=["tunable"], variants={"half": {"generator": "tunable", "scale": 2}})
    with pytest.raises(ConfigError, match="variant 'half': generator 'tunable'.*scale must be in"):
        plan_run(bad, registry)
    with pytest.raises(EhrbenchError, match="unknown generator .nope."):
        plan_run(RunConfig(generators=["tunable"], generator_options={"nope": {}}), registry)


@pytest.mark.parametrize("text, expected", [
    ("a=tunable:scale=0.5,mode=empty", ("a", {"generator": "tunable", "scale": "0.5", "mode": "empty"})),
    ("a=tunable", ("a", {"generator": "tunable"})),
])
def test_variant_flag_parses(text, expected):
    assert variants.parse_flag(text) == expected


@pytest.mark.parametrize("text", ["a", "=tunable", "a=", "a=tunable:scale", "a=tunable:generator=x"])
def test_bad_variant_flag(text):
    with pytest.raises(ConfigError, match="--variant"):
        variants.parse_flag(text)


def test_generator_option_flag_merges_into_the_files_table(tmp_path):
    file = tmp_path / "c.toml"
    file.write_text('[generator_options.tunable]\nscale = 0.5\nmode = "empty"\n'
                    '[variants.a]\ngenerator = "tunable"\n[variants.b]\ngenerator = "tunable"\n')
    cfg = resolve_config(file, {"generator_options": {"tunable": {"mode": "marginal"}},
                                "variants": {"b": {"generator": "tunable", "scale": "0.1"}}})
    assert cfg.generator_options == {"tunable": {"scale": 0.5, "mode": "marginal"}}
    assert cfg.variants == {"a": {"generator": "tunable"}, "b": {"generator": "tunable", "scale": "0.1"}}


def test_cli_variant_gives_rows_with_their_options(cli, plugin_file, tmp_path):
    out = tmp_path / "r"
    result = cli("run", *SMALL, "--plugin", plugin_file("tunable"), "--generators", "tunable",
                 "--variant", "tunable-empty=tunable:mode=empty", "--generator-option", "tunable.scale=0.5",
                 "--no-report", "--out", out)
    assert result.code == 0, result.err
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["generators"] == ["tunable", "tunable-empty"]
    assert manifest["variants"] == {"tunable-empty": "tunable"}
    options = manifest["generator_options"]
    assert options["tunable"]["mode"] == "marginal" and options["tunable-empty"]["mode"] == "empty"
    assert options["tunable"]["scale"] == options["tunable-empty"]["scale"] == 0.5
    board = (out / "leaderboard.csv").read_text()
    assert "tunable-empty" in board
    assert (out / "samples").is_dir() and any("tunable-empty" in p.name for p in (out / "samples").rglob("*"))
    # resume: nothing to redo, and the variant may not change
    again = cli("run", *SMALL, "--plugin", plugin_file("tunable"), "--generators", "tunable", "--resume",
                "--variant", "tunable-empty=tunable:mode=empty", "--generator-option", "tunable.scale=0.5",
                "--no-report", "--out", out)
    assert again.code == 0, again.err
    changed = cli("run", *SMALL, "--plugin", plugin_file("tunable"), "--generators", "tunable", "--resume",
                  "--variant", "tunable-empty=tunable:mode=marginal", "--no-report", "--out", out)
    assert changed.code == 2 and "variants" in changed.err


@pytest.mark.parametrize("args, message", [
    (["--variant", "x=nope:a=1"], "unknown generator 'nope'"),
    (["--variant", "tunable=tunable:scale=0.5"], "is a registered generator's"),
    (["--variant", "x=tunable:scale=abc"], "scale"),
    (["--variant", "x=tunable:bogus=1"], "unknown option 'bogus'"),
    (["--variant", "x"], "--variant expects NAME=GENERATOR"),
    (["--generator-option", "tunable=1"], "--generator-option expects GENERATOR.KEY=VALUE"),
    (["--generator-option", "tunable.bogus=1"], "unknown option 'bogus'"),
])
def test_bad_variant_input_exits_2(cli, plugin_file, tmp_path, args, message):
    result = cli("run", *SMALL, "--plugin", plugin_file("tunable"), "--generators", "tunable", *args,
                 "--out", tmp_path / "r")
    assert result.code == 2, result.err
    assert message in result.err
    assert "Traceback" not in result.err


def test_variants_under_the_process_executor_match_local(cli, plugin_file, tmp_path):
    """Each executor runs a variant as a generator: same rows, same numbers (the seed is the row's)."""
    boards = []
    for executor in ("local", "process"):
        out = tmp_path / executor
        result = cli("run", *SMALL, "--plugin", plugin_file("tunable"), "--generators", "tunable",
                     "--variant", "tunable-half=tunable:scale=0.5", "--executor", executor, "--no-report", "--out", out)
        assert result.code == 0, result.err
        rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
        boards.append(sorted((r["generator"], r["metric"], r["value"]) for r in rows if r["type"] == "metric"))
    assert boards[0] == boards[1]
    assert {g for g, _, _ in boards[0]} == {"tunable", "tunable-half"}
