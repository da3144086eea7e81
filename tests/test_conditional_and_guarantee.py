"""The host's conditional protocol (--condition) and privacy-guarantee rows (ε, δ), through the CLI and the views."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from _extras import needs_extra

from ehrbench.execution.job import checked_guarantee
from ehrbench.views import leaderboard as lb
from ehrbench.views.html import leaderboard_sections

FAST = ["--profile", "smoke", "--repeats", "1", "--no-report",
        "--metrics", "dimension_wise_probability,pairwise_correlation_difference,codes_per_record"]


def _cost(generator, **extra):
    return {"type": "cost", "generator": generator, "repeat": 0, "seed": 1, "attempt": "a", "calibration": False,
            "status": "ok", "fit_seconds": 1.0, **extra}


def _records(*costs):
    out = []
    for cost in costs:
        key = {k: cost[k] for k in ("generator", "repeat", "seed", "attempt", "calibration")}
        out += [cost, {**key, "type": "metric", "metric": "m", "category": "fidelity", "higher_is_better": False,
                       "target": None, "ranked": True, "value": 1.0, "batch": "b"},
                {**key, "type": "job", "status": "ok", "warnings": [], "batch": "b"}]
    return out


def test_guarantee_rows_are_informational_and_empty_for_generators_without_one():
    board = lb.build(_records(_cost("dp-gen", epsilon=1.5, delta=1e-5), _cost("plain")))
    rows = board.table[board.table["metric"].isin(["dp_epsilon", "dp_delta"])].set_index(["generator", "metric"])
    assert rows.loc[("dp-gen", "dp_epsilon"), "mean"] == 1.5 and rows.loc[("dp-gen", "dp_delta"), "mean"] == 1e-5
    assert math.isnan(rows.loc[("plain", "dp_epsilon"), "mean"])  # empty, never 0
    assert not rows["ranked"].any() and set(rows["category"]) == {"privacy"} and rows["rank"].isna().all()
    csv_rows = {(r["generator"], r["metric"]): r for r in csv.DictReader(board.to_csv().splitlines())}
    assert csv_rows[("plain", "dp_epsilon")]["mean"] == "" and csv_rows[("dp-gen", "dp_epsilon")]["direction"] == "info"
    assert board.guarantees() == (["generator", "ε (dp_epsilon)", "δ (dp_delta)"],
                                  [["dp-gen", "1.5", "1e-05"], ["plain", "—", "—"]])
    assert "## Privacy guarantee" in board.to_markdown()
    assert any(anchor == "lb-guarantee" for anchor, _, _ in leaderboard_sections(board))


def test_no_guarantee_rows_when_no_generator_has_one():
    board = lb.build(_records(_cost("a"), _cost("b")))
    assert not board.table["metric"].isin(["dp_epsilon", "dp_delta"]).any()
    assert board.guarantees()[1] == [] and "Privacy guarantee" not in board.to_markdown()


@pytest.mark.parametrize("bad", [{"epsilon": 0, "delta": 1e-5}, {"epsilon": -1, "delta": 0}, {"epsilon": float("nan"),
                                 "delta": 0}, {"epsilon": 1, "delta": 1}, {"epsilon": 1}, "eps"])
def test_a_malformed_guarantee_is_an_error(bad):
    with pytest.raises(ValueError, match="privacy_guarantee"):
        checked_guarantee(bad)
    assert checked_guarantee(None) == {} and checked_guarantee({"epsilon": 2, "delta": 0}) == {"epsilon": 2.0, "delta": 0.0}


def test_an_unknown_condition_code_is_exit_2(cli, tmp_path):
    result = cli("run", *FAST, "--generators", "cvae", "--condition", "4289", "--out", tmp_path / "run")
    assert result.code == 2 and "condition '4289'" in result.err and "428" in result.err
    config = tmp_path / "c.toml"
    config.write_text('conditions = ["428", "428"]\n')
    twice = cli("run", config, *FAST, "--generators", "cvae", "--out", tmp_path / "run2")
    assert twice.code == 2 and "twice" in twice.err


@needs_extra("dp")
def test_cli_scores_conditional_samples_and_records_epsilon(cli, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('conditions = ["428"]\n[generator_options.synthvae]\ndp = true\ntarget_epsilon = 3\n')
    out = tmp_path / "run"
    result = cli("run", config, *FAST, "--generators", "synthvae,cvae,independent-marginals", "--out", out)
    assert result.code == 0, result.err
    assert "Privacy guarantee" in result.out and "conditional[428]." in result.out  # titles wrap at dots
    assert json.loads((out / "run.json").read_text())["config"]["conditions"] == ["428"]
    costs = {r["generator"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())
             if r["type"] == "cost"}
    assert 0 < costs["synthvae"]["epsilon"] <= 3 and "epsilon" not in costs["cvae"]
    table = {(r["generator"], r["metric"]): r for r in csv.DictReader((out / "leaderboard.csv").read_text().splitlines())}
    assert table[("synthvae", "dp_epsilon")]["mean"] == f"{costs['synthvae']['epsilon']:.10g}"  # the CSV's precision
    assert table[("cvae", "dp_epsilon")]["mean"] == ""
    for generator in ("synthvae", "cvae", "independent-marginals"):  # capable or scored by rejection
        row = table[(generator, "conditional[428].dimension_wise_probability")]
        assert row["category"] == "conditional" and row["direction"] == "lower" and row["mean"]
        assert bool(row["rank"]) == (generator != "independent-marginals")  # calibration rows are never ranked
    markdown = (out / "leaderboard.md").read_text()
    assert "## Conditional" in markdown and "## Privacy guarantee" in markdown
    assert not np.isnan(float(table[("cvae", "conditional[428].codes_per_record")]["mean"]))


def test_conditional_records_without_their_code_are_a_metric_failure(cli, plugin_file, tmp_path):
    out = tmp_path / "run"
    result = cli("run", *FAST, "--plugin", plugin_file("conditional_liar"), "--generators", "conditional-liar",
                 "--condition", "428", "--out", out)
    assert result.code == 0, result.err
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    failures = [r for r in records if r["type"] == "metric_failure"]
    assert [f["metric"] for f in failures] == ["conditional[428].*"]
    assert "drawn with code 428 do not contain it" in failures[0]["reason"]
    assert not any(r["type"] == "metric" and r["metric"].startswith("conditional[") for r in records)
    assert any(r["type"] == "metric" and r["metric"] == "dimension_wise_probability" for r in records)


@pytest.mark.parametrize("with_epsilon", [2, 1])
def test_the_report_draws_fidelity_against_epsilon_when_two_generators_have_one(with_epsilon):
    from ehrbench.views.report import RunData, tradeoff_figures

    costs = [_cost("a", epsilon=1.0, delta=1e-5), _cost("b", epsilon=8.0, delta=1e-5) if with_epsilon == 2 else _cost("b")]
    records = _records(*costs)
    for r in records:
        if r["type"] == "metric":
            r["metric"] = "pairwise_correlation_difference"
    board = lb.build(records)
    data = RunData(None, {}, records, board, {}, None)
    names = [f.filename for f in tradeoff_figures(data)]
    assert ("fidelity-vs-epsilon.png" in names) == (with_epsilon == 2) and "fidelity-vs-cost.png" in names
