"""report.html and figures/, tested ranks, the weighted overall ranking, exports, paper configs."""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _report_run import make_run, shared_run

from ehrbench.config import parse_weights, resolve_config, resolve_weights
from ehrbench.errors import ConfigError
from ehrbench.views.figures import pareto_front
from ehrbench.rundir.directory import RunDirectory
from ehrbench.rundir.reference import build_reference, read_reference
from ehrbench.views import significance as sig
from ehrbench.views.ranking import category_entries, category_mean_ranks, overall_ranking

ROOT = Path(__file__).resolve().parent.parent
STATISTICS_FIGURES = {"intervals-fidelity.png", "intervals-utility.png", "intervals-privacy.png",
                      "critical-difference.png"}
FIGURE_FILES = {
    "prevalence-independent-marginals.png", "correlation-difference-independent-marginals.png",
    "prevalence-cacheable.png", "correlation-difference-cacheable.png", "codes-per-record.png",
    "fidelity-vs-privacy.png", "fidelity-vs-cost.png", "training-cacheable.png", *STATISTICS_FIGURES,
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return shared_run(tmp_path_factory)


def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(run_dir, target)
    return target


# -- ranks ------------------------------------------------------------------------------------
def test_leaderboard_ranks_by_paired_tests_among_generators_that_are_not_calibration_rows(run_dir):
    from ehrbench.views import leaderboard as lb
    from ehrbench.views.ranking import badness_matrix

    board = lb.load(run_dir)
    csv = pd.read_csv(run_dir / "leaderboard.csv")
    assert list(csv.columns) == lb.CSV_COLUMNS
    for metric in ("pairwise_correlation_difference", "copied_row_share"):
        part = csv[csv["metric"] == metric].set_index("generator")
        assert part.loc[["independent-marginals", "train-resample"], "rank"].isna().all()  # the scale, not contestants
        contenders = ["cacheable", "train-copy", "train-copy-perturbed"]
        row = board.table[board.table["metric"] == metric].iloc[0]
        from ehrbench.rundir.records import record_direction

        bad = badness_matrix(board.values, metric, contenders, record_direction(row), [0, 1])
        expected = sig.significance_ranks(bad, sig.pair_tests(bad))
        assert part.loc[contenders, "rank"].tolist() == expected.tolist()
    copies = csv[csv["metric"] == "copied_row_share"].set_index("generator")
    assert copies.loc["train-copy", "rank"] == 3  # it copies every row in every repeat: the others beat it
    assert board.notice and "SIMULATED DATA" in board.notice


def test_leaderboard_intervals_are_the_mean_interval_of_the_repeats(run_dir):
    from ehrbench.views import leaderboard as lb

    board = lb.load(run_dir)
    csv = pd.read_csv(run_dir / "leaderboard.csv")
    # the built-in DWP reports the real test rows' standard error; the test plugin's metric reports none
    shared = csv.set_index(["metric", "generator"])["shared_se"]
    assert shared["dimension_wise_probability"].gt(0).all() and shared["copied_row_share"].isna().all()
    for metric in ("dimension_wise_probability", "pairwise_correlation_difference", "copied_row_share"):
        for gen in ("train-resample", "cacheable"):
            values = board.values[(board.values["generator"] == gen) & (board.values["metric"] == metric)]
            interval = sig.mean_interval(values["value"].to_numpy(), values["standard_error"].to_numpy(dtype=float))
            row = csv[(csv["generator"] == gen) & (csv["metric"] == metric)].iloc[0]
            assert row["ci_low"] == pytest.approx(interval.low, rel=1e-9)
            assert row["ci_high"] == pytest.approx(interval.high, rel=1e-9)
            assert row["ci_low"] <= row["mean"] <= row["ci_high"]


def test_overall_ranking_is_the_weighted_mean_of_category_mean_ranks():
    rows = [  # generator, category, metric, rank
        ("a", "fidelity", "f1", 1), ("a", "fidelity", "f2", 2), ("a", "privacy", "p", 3), ("a", "cost", "c", 1),
        ("b", "fidelity", "f1", 2), ("b", "fidelity", "f2", 1), ("b", "privacy", "p", 1), ("b", "cost", "c", 2),
        ("c", "fidelity", "f1", 3), ("c", "fidelity", "f2", 3), ("c", "privacy", "p", 2), ("c", "cost", "c", 3),
    ]
    table = pd.DataFrame([{"generator": g, "calibration": g == "c", "category": c, "metric": m, "ranked": True,
                           "rank": float(r)} for g, c, m, r in rows])
    equal = overall_ranking(table).set_index("generator")
    # fidelity means 1.5, 1.5, 3; privacy 3, 1, 2; cost weighs 0 by default.
    assert equal.loc[["a", "b", "c"], "score"].tolist() == [2.25, 1.25, 2.5]
    assert equal.loc[["a", "b", "c"], "overall_rank"].tolist() == [2, 1, 3]
    assert equal.loc["a", "categories_used"] == "fidelity,privacy" and bool(equal.loc["c", "calibration"])
    fidelity_first = overall_ranking(table, {"fidelity": 3, "privacy": 1}).set_index("generator")
    assert fidelity_first.loc["a", "score"] == pytest.approx((3 * 1.5 + 3) / 4)
    cost_only = overall_ranking(table, {"fidelity": 0, "privacy": 0, "utility": 0, "cost": 1})
    assert cost_only["generator"].tolist() == ["a", "b", "c"]


def test_category_means_count_each_metric_once():
    """Headline only; a metric without a headline once (mean of its keys); declared sub-keys alone."""
    rows = [  # metric, ranked_alone, rank of a, rank of b
        ("attack", False, 1, 2), ("attack.accuracy", False, 1, 2), ("attack.area", False, 1, 2),
        ("copies", False, 2, 1), ("copies.rare", True, 2, 1),
        ("correlation.pearson", False, 1, 2), ("correlation.spearman", False, 2, 2),
    ]
    table = pd.DataFrame([{"generator": g, "calibration": False, "category": "privacy", "metric": m, "ranked": True,
                           "ranked_alone": alone, "rank": float(ra if g == "a" else rb)}
                          for m, alone, ra, rb in rows for g in ("a", "b")])
    entries = category_entries(table)
    assert sorted(set(entries["entry"])) == ["attack", "copies", "copies.rare", "correlation"]
    means = category_mean_ranks(table)["privacy"]
    assert means["a"] == (1 + 2 + 2 + 1.5) / 4 and means["b"] == (2 + 1 + 1 + 2) / 4
    # Without the column (results written before it existed) sub-keys never count alone.
    older = category_mean_ranks(table.drop(columns="ranked_alone"))["privacy"]
    assert older["a"] == (1 + 2 + 1.5) / 3


def test_weights_are_validated_by_category_and_value(tmp_path):
    assert resolve_weights({"privacy": 2})["privacy"] == 2.0 and resolve_weights(None)["cost"] == 0.0
    assert parse_weights("privacy=2, utility=0.5") == {"fidelity": 1.0, "utility": 0.5, "privacy": 2.0, "cost": 0.0}
    for bad, needle in [({"privcy": 1}, "unknown category 'privcy'"), ({"privacy": -1}, "non-negative"),
                        ({"fidelity": 0, "utility": 0, "privacy": 0}, "every category weight is 0")]:
        with pytest.raises(ConfigError, match=needle):
            resolve_weights(bad)
    with pytest.raises(ConfigError, match="CATEGORY=NUMBER"):
        parse_weights("privacy=lots")
    path = tmp_path / "w.toml"
    path.write_text("[weights]\nprivacy = 2\nspeed = 1\n")
    with pytest.raises(ConfigError, match=r"w\.toml.*unknown category 'speed'"):
        resolve_config(path, {})


def test_pareto_front_keeps_points_no_other_beats_on_both_axes():
    x = np.array([1.0, 2.0, 3.0, 2.5, 1.0])
    y = np.array([3.0, 1.0, 0.5, 2.0, 4.0])
    # (2.5, 2) is beaten by (2, 1); (1, 4) by (1, 3).
    assert pareto_front(x, y).tolist() == [True, True, True, False, False]


def test_tradeoff_axes_are_the_metrics_declared_choice(run_dir):
    from ehrbench.views import leaderboard as lb
    from ehrbench.views.report import _axis_metric

    axes = json.loads((run_dir / "run.json").read_text())["tradeoff_axes"]
    assert axes == {"pairwise_correlation_difference": 1, "dimension_wise_probability": 2}  # declared by the metrics
    table = lb.load(run_dir).table
    assert _axis_metric(table, "fidelity", axes) == "pairwise_correlation_difference"
    assert _axis_metric(table, "fidelity", {**axes, "dimension_wise_probability": 0}) == "dimension_wise_probability"
    assert _axis_metric(table, "privacy", axes) == "copied_row_share"  # no privacy metric asks: the first ranked
    html = (run_dir / "report.html").read_text()
    assert "pairwise_correlation_difference against copied_row_share" in html


# -- aggregates -------------------------------------------------------------------------------
def test_reference_holds_aggregates_only_and_matches_a_hand_computation(run_dir):
    X = np.array([[1, 0, 2], [0, 0, 1], [3, 1, 0], [1, 0, 0]], dtype=np.float32)
    ref = build_reference(X, np.array(["a", "b", "c"]), k=2)
    assert ref.real.prevalence.tolist() == [0.75, 0.25, 0.5]
    assert ref.top_index.tolist() == [0, 2]
    assert ref.real.codes_per_record.tolist() == [0, 2, 2]  # rows have 2, 1, 2, 1 codes
    # presence of a = [1,0,1,1], c = [1,1,0,0]: Pearson −1/√3.
    assert ref.real.top_corr[0, 1] == pytest.approx(-1 / np.sqrt(3))
    with np.load(run_dir / "reference.npz") as npz:
        assert set(npz.files) == {"codes", "top_index", "n_rows", "prevalence", "codes_per_record", "top_corr"}
        assert npz["prevalence"].shape == (40,) and npz["top_corr"].shape == (30, 30)
    manifest = json.loads((run_dir / "run.json").read_text())
    assert int(read_reference(RunDirectory(run_dir).reference_path).real.n_rows) == manifest["split"]["n_test"]


# -- the report -------------------------------------------------------------------------------
def test_run_writes_a_self_contained_report_with_every_section(run_dir):
    html = (run_dir / "report.html").read_text()
    for anchor in ("lb-fidelity", "lb-utility", "lb-privacy", "lb-cost", "overall", "figures", "failures", "manifest"):
        assert f'id="{anchor}"' in html
    assert 'id="simulated-notice"' in html and "SIMULATED DATA" in html
    assert 'id="published"' not in html and "0.0019" not in html  # simulated: no published values
    assert {p.name for p in (run_dir / "figures").iterdir()} == FIGURE_FILES
    assert html.count('src="data:image/png;base64,') == len(FIGURE_FILES)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?https?:""", html)  # nothing fetched
    assert "Category weights: <strong>fidelity 1, utility 1, privacy 1, cost 0</strong>" in html
    assert "No saved samples for train-resample" in html
    assert 'class="best"' in html


def test_report_rebuilds_offline_from_the_run_directory_with_weights(run_dir, tmp_path, cli):
    copy = copy_run(run_dir, tmp_path)
    (copy / "report.html").unlink()
    shutil.rmtree(copy / "figures")
    result = cli("report", copy, "--weights", "privacy=3,cost=1")
    assert result.code == 0, result.err
    assert {p.name for p in (copy / "figures").iterdir()} == FIGURE_FILES
    assert "fidelity 1, utility 1, privacy 3, cost 1" in (copy / "report.html").read_text()


def test_report_without_reference_or_samples_still_builds(run_dir, tmp_path, cli):
    copy = copy_run(run_dir, tmp_path)
    (copy / "reference.npz").unlink()
    shutil.rmtree(copy / "samples")
    shutil.rmtree(copy / "figures")
    assert cli("report", copy).code == 0
    html = (copy / "report.html").read_text()
    assert "No reference.npz" in html and 'id="lb-fidelity"' in html
    assert {p.name for p in (copy / "figures").iterdir()} == {"fidelity-vs-privacy.png", "fidelity-vs-cost.png",
                                                              "training-cacheable.png", *STATISTICS_FIGURES}


def test_failed_jobs_are_listed_with_their_reason(tmp_path, plugin_file):
    from ehrbench.config import resolve_config
    from ehrbench.plugins import load_registry
    from ehrbench.execution.plan import plan_run
    from ehrbench.execution.runner import Runner

    registry = load_registry([plugin_file("faulty")])
    config = resolve_config(None, {"dataset_options": {"patients": 120, "codes": 20}, "repeats": 1, "profile": "smoke",
                                   "generators": ["independent-marginals", "nan-output"],
                                   "metrics": ["dimension_wise_probability"]})
    Runner(plan_run(config, registry), registry, tmp_path / "run").run()
    section = (tmp_path / "run" / "report.html").read_text().split('id="failures"')[1].split("</section>")[0]
    assert "nan-output" in section and "NaN" in section


def test_published_values_come_from_the_dataset_plugin_and_only_for_real_data(tmp_path, plugin_file, cli):
    from ehrbench.execution.plan import plan_run
    from ehrbench.execution.runner import Runner
    from ehrbench.plugins import load_registry

    registry = load_registry([plugin_file("published_dataset")])
    config = resolve_config(None, {"dataset": "published-cohort", "repeats": 1, "profile": "smoke",
                                   "generators": ["independent-marginals"], "representation": "binary",
                                   "metrics": ["dimension_wise_probability", "pairwise_correlation_difference"]})
    out = Runner(plan_run(config, registry), registry, tmp_path / "run").run().directory
    stored = json.loads((out / "run.json").read_text())["dataset"]["published"]
    assert stored == [registry.get("datasets", "published-cohort").published[0].to_dict()]
    html = (out / "report.html").read_text()
    section = html.split('id="published"')[1].split("</section>")[0]
    assert "PUBLISHED values" in section and "published (paper)" in section and "Example et al. 2024" in section
    assert '<td class="published">0.0019</td>' in section and '<td class="published">0.87</td>' in section
    assert "not measured in this run" in section  # not-in-this-run did not run here
    assert "not directly comparable" not in section  # the run is binary, as the paper was
    assert "SIMULATED DATA" not in html
    # published numbers never enter the leaderboard tables
    leaderboard = html.split('id="lb-fidelity"')[1].split("</section>")[0]
    assert "0.0019" not in leaderboard
    # the same run marked simulated shows none
    manifest = json.loads((out / "run.json").read_text())
    manifest["dataset"]["simulated"] = True
    (out / "run.json").write_text(json.dumps(manifest))
    assert cli("report", out).code == 0
    assert 'id="published"' not in (out / "report.html").read_text()


def test_a_report_error_is_logged_and_the_run_keeps_its_results(tmp_path, monkeypatch, caplog):
    import ehrbench.views.report as report

    def explode(*args, **kwargs):
        raise RuntimeError("figure engine on fire")

    monkeypatch.setattr(report, "build_report", explode)
    with caplog.at_level(logging.WARNING, logger="ehrbench.views.report"):
        out = make_run(tmp_path / "run", generators=["independent-marginals"], metrics=["dimension_wise_probability"],
                       repeats=1)
    assert "figure engine on fire" in caplog.text and "ehrbench report" in caplog.text
    assert not (out / "report.html").exists()
    assert any(r["type"] == "job" and r["status"] == "ok" for r in RunDirectory(out).records())
    assert (out / "reference.npz").exists()


def test_report_of_a_directory_that_is_not_a_run_is_a_clear_error(tmp_path, cli):
    result = cli("report", tmp_path / "nowhere")
    assert result.code == 2 and "no run.json here" in result.err and "Traceback" not in result.err
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "run.json").write_text("{not json")
    result = cli("report", tmp_path / "bad")
    assert result.code == 2 and "run.json: not valid JSON" in result.err
    result = cli("report", tmp_path / "bad", "--weights", "privacy")
    assert result.code == 2 and "CATEGORY=NUMBER" in result.err


# -- exports ----------------------------------------------------------------------------------
def test_leaderboard_exports_every_format(run_dir, tmp_path, cli):
    copy = copy_run(run_dir, tmp_path)
    for fmt in ("csv", "md", "html", "json"):
        result = cli("leaderboard", copy, "--format", fmt)
        assert result.code == 0, result.err
        assert (copy / f"leaderboard.{fmt}").is_file()
    assert (copy / "leaderboard.csv").read_text().splitlines()[0] == \
        "generator,calibration,category,metric,direction,n,mean,std,rank,ci_low,ci_high,shared_se,noise_floor"
    assert "**SIMULATED DATA" in (copy / "leaderboard.md").read_text()
    data = json.loads((copy / "leaderboard.json").read_text())
    assert data["notice"].startswith("SIMULATED DATA") and data["weights"]["cost"] == 0.0
    assert {r["generator"] for r in data["overall"]} == {"independent-marginals", "train-resample", "cacheable",
                                                        "train-copy", "train-copy-perturbed"}
    assert all(r["score"] is None for r in data["overall"] if r["calibration"])
    assert all(r["score_low"] <= r["score"] <= r["score_high"] for r in data["overall"] if not r["calibration"])
    assert {(p["a"], p["b"]) for p in data["pairs"] if p["metric"] == "copied_row_share"} == {
        ("cacheable", "train-copy"), ("cacheable", "train-copy-perturbed"), ("train-copy", "train-copy-perturbed")}
    dwp = [r for r in data["leaderboard"] if r["metric"] == "dimension_wise_probability"]
    assert len(dwp) == 5 and all(r["n"] == 2 for r in dwp)
    html = (copy / "leaderboard.html").read_text()
    assert 'id="lb-fidelity"' in html and 'id="overall"' in html and "SIMULATED DATA" in html
    result = cli("leaderboard", copy, "--format", "json", "--output", "-", "--weights", "privacy=2")
    assert json.loads(result.out)["weights"]["privacy"] == 2.0
    result = cli("leaderboard", copy, "--output", tmp_path / "x.csv")
    assert result.code == 2 and "--output needs --format" in result.err


def test_terminal_summary_says_the_data_is_simulated(tmp_path, cli):
    result = cli("run", "--dataset-option", "patients=100", "--dataset-option", "codes=20", "--repeats", "1",
                 "--profile", "smoke", "--generators", "independent-marginals", "--metrics",
                 "dimension_wise_probability", "--out", tmp_path / "run")
    assert result.code == 0, result.err
    assert "SIMULATED DATA" in result.out and "report.html" in result.out


# -- the paper protocol -----------------------------------------------------------------------
@pytest.mark.parametrize("name, representation", [("paper.toml", "binary"), ("paper-counts.toml", "count")])
def test_paper_configs_state_the_protocol(name, representation):
    cfg = resolve_config(ROOT / "benchmarks" / name, {})
    assert cfg.representation == representation and cfg.profile == "paper"
    assert cfg.samples == 10240 and cfg.repeats >= 3 and cfg.test_fraction == 0.3
    assert {"medgan", "medbgan", "medwgan", "scoehr", "raw-diffusion", "tvae",
            "train-resample", "independent-marginals"} <= set(cfg.generators)
    assert {"dimension_wise_probability", "pairwise_correlation_difference", "log_cluster",
            "synthetic_ranking_agreement", "membership_inference", "attribute_inference",
            "nn_adversarial_accuracy", "distance_to_closest_record"} <= set(cfg.metrics)
    assert cfg.metric_options["log_cluster"]["clusters"] == 20
    assert cfg.dataset == "simulated" and not cfg.dataset_options  # --dataset mimic3 swaps in the real files


def test_no_report_skips_the_report_but_keeps_what_rebuilds_it(tmp_path, cli):
    out = tmp_path / "run"
    result = cli("run", "--no-report", "--profile", "smoke", "--repeats", "1", "--generators", "independent-marginals",
                 "--metrics", "dimension_wise_probability", "--dataset-option", "patients=120",
                 "--dataset-option", "codes=20", "--out", out)
    assert result.code == 0, result.err
    assert f"report.html skipped (--no-report); build it with: ehrbench report {out}" in result.out
    assert not (out / "report.html").exists() and not (out / "figures").exists()
    assert (out / "leaderboard.csv").exists() and (out / "reference.npz").exists()
    assert json.loads((out / "run.json").read_text())["config"]["report"] is False
    assert cli("report", out).code == 0
    assert "codes-per-record.png" in {p.name for p in (out / "figures").iterdir()}
