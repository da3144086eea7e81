"""Gaming tests (issue 18): degenerate generators (tests/plugins/degenerate.py) run through
`ehrbench run` beside the calibration rows on a small simulated cohort. A benchmark that
noise, empty records or a copy of the training set could win is wrong, whatever its numbers
say. Also checks that a "toward 0" direction reads the same in every output."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rich.console import Console

from ehrbench.cli.console import leaderboard_tables
from ehrbench.plugins import load_registry
from ehrbench.views import html as report_html
from ehrbench.views import leaderboard as lb
from ehrbench.rundir.directory import RunDirectory
from ehrbench.views.compare import compare_runs
from ehrbench.views.ranking import category_mean_ranks, overall_ranking

PLUGIN = Path(__file__).parent / "plugins" / "degenerate.py"
NOISE_LIKE = ("uniform-noise", "all-empty", "all-ones")
COPIERS = ("train-resample", "train-copy", "train-copy-perturbed")
RANKED_COPIERS = ("train-copy", "train-copy-perturbed")  # train-resample is a calibration row: the scale, never ranked
CALIBRATION = ("train-resample", "independent-marginals")
REFERENCES = ("holdout-resample",)  # the ideal generator; the calibration rows have no rank
GENERATORS = ("train-resample", "independent-marginals", "holdout-resample", *NOISE_LIKE, "train-copy",
              "train-copy-perturbed")
ATTACKS = ("membership_inference", "attribute_inference", "distance_to_closest_record")
PRIVACY_HEADLINES = ("membership_inference", "exact_copies", "attribute_inference", "distance_to_closest_record")


@pytest.fixture(scope="module")
def gaming_run(tmp_path_factory):
    """One run: 2,400 patients × 120 codes (smoke metric profile, 3 repeats); 1,200 more patients of
    the same cohort, never in the run, are the pool that holdout-resample draws from."""
    from ehrbench.cli import main

    root = tmp_path_factory.mktemp("gaming")
    cohort = load_registry().get("datasets", "simulated").configure({"patients": 3600, "codes": 120}).load()
    order = np.random.default_rng(18).permutation(cohort.n_patients)
    cohort.rows(np.sort(order[:2400])).save(root / "cohort.npz")
    cohort.rows(np.sort(order[2400:])).save(root / "pool.npz")
    config = root / "gaming.toml"
    config.write_text(
        'dataset = "matrix"\nprofile = "smoke"\nrepeats = 3\nseed = 0\nreport = false\n'
        f"generators = {list(GENERATORS)!r}\n".replace("'", '"')
        + f'[dataset_options]\npath = "{root / "cohort.npz"}"\n'
        + f'[generator_options.holdout-resample]\npath = "{root / "pool.npz"}"\n'
        # The attacks use every test row (720), so an ideal generator's chance spread is small.
        + "".join(f"[metric_options.{m}]\nmax_rows = 720\n" for m in ATTACKS)
    )
    out = root / "run"
    try:
        main(["run", str(config), "--plugin", str(PLUGIN), "--out", str(out)])
    except SystemExit as exc:
        assert not exc.code, f"ehrbench run failed with status {exc.code}"
    return out, lb.load(out)


def means(board: lb.Leaderboard, metric: str) -> pd.Series:
    part = board.table[board.table["metric"] == metric]
    return part.set_index("generator")["mean"]


def badness(board: lb.Leaderboard, metric: str) -> pd.Series:
    part = board.table[board.table["metric"] == metric]
    target = part["direction"].iloc[0]
    values = part.set_index("generator")["mean"]
    if target.startswith("toward"):
        return (values - float(target.split()[-1])).abs()
    return -values if target == "higher" else values


def test_every_job_ran(gaming_run):
    _, board = gaming_run
    assert board.failures.empty, board.failures.to_string()
    assert set(board.generators()) == set(GENERATORS)


def test_calibration_rows_are_shown_but_never_ranked(gaming_run):
    _, board = gaming_run
    rows = board.table[board.table["generator"].isin(CALIBRATION) & board.table["ranked"]]
    assert not rows.empty and rows["rank"].isna().all() and rows["mean"].notna().any()
    overall = overall_ranking(board.table).set_index("generator")
    assert overall.loc[list(CALIBRATION), "score"].isna().all() and overall.loc[list(CALIBRATION), "overall_rank"].isna().all()
    assert list(overall.index[-2:]) == sorted(CALIBRATION, key=list(overall.index).index)  # listed last, for reference
    html = report_html.category_table(board, "fidelity")
    best = [cell for cell in html.split("<tr")[1:] if 'class="best"' in cell]
    assert best and not any(name in cell.split("</td>")[0] for cell in best for name in CALIBRATION)


def test_no_degenerate_generator_ranks_first_in_any_category(gaming_run):
    _, board = gaming_run
    ranks = category_mean_ranks(board.table)
    for category in ("fidelity", "utility", "privacy"):
        best_reference = ranks.loc[list(REFERENCES), category].min()
        for name in NOISE_LIKE:
            assert ranks.loc[name, category] > best_reference, (category, name, ranks[category].to_dict())
        for name in ("train-copy", "train-copy-perturbed"):  # real rows: they may tie train-resample
            assert ranks.loc[name, category] >= best_reference, (category, name, ranks[category].to_dict())
    overall = overall_ranking(board.table)
    assert overall.iloc[0]["generator"] in REFERENCES, overall.to_string()


def test_copiers_rank_last_on_privacy(gaming_run):
    _, board = gaming_run
    privacy = category_mean_ranks(board.table)["privacy"]
    honest = privacy.drop(list(RANKED_COPIERS))
    for name in RANKED_COPIERS:
        assert privacy[name] > honest.max(), privacy.to_dict()
    assert privacy["holdout-resample"] == privacy.min(), privacy.to_dict()  # the ideal generator


def test_noise_and_empty_rank_last_on_fidelity_and_utility(gaming_run):
    _, board = gaming_run
    ranks = category_mean_ranks(board.table)
    for category in ("fidelity", "utility"):
        with_signal = ranks.loc[["holdout-resample", "train-copy", "train-copy-perturbed"], category]
        for name in NOISE_LIKE:
            assert ranks.loc[name, category] > with_signal.max(), (category, ranks[category].to_dict())
    # independent-marginals keeps every marginal; these keep none: worse on each marginal metric, and marked
    # as no better than the worst calibration row there
    for metric in ("dimension_wise_probability", "dimension_wise_average", "prevalence_correlation.pearson"):
        bad = badness(board, metric)
        floor = board.table[board.table["metric"] == metric].set_index("generator")["noise_floor"]
        for name in NOISE_LIKE:
            assert bad[name] > bad["independent-marginals"], (metric, bad.to_dict())
            assert "no_better_than:" in floor[name], (metric, floor.to_dict())


def test_releases_of_real_records_have_the_worst_privacy_values(gaming_run):
    """Every privacy headline: no generator is further from the ideal than the worst copier, and
    no generator beats the ideal generator (holdout-resample) by more than the repeat spread."""
    _, board = gaming_run
    for metric in PRIVACY_HEADLINES:
        bad = badness(board, metric).dropna()
        worst_copier = bad[list(COPIERS)].max()
        assert bad.drop(list(COPIERS)).max() <= worst_copier, (metric, bad.to_dict())
        assert bad["train-resample"] > bad[["independent-marginals", "holdout-resample"]].max(), (metric, bad.to_dict())
    for metric in ("exact_copies", "distance_to_closest_record"):  # the headlines that can tell noise apart
        bad = badness(board, metric)
        for name in ("uniform-noise", "all-empty", "all-ones"):
            assert bad[name] > bad["holdout-resample"], (metric, bad.to_dict())


def test_category_mean_counts_each_privacy_metric_once(gaming_run):
    _, board = gaming_run
    part = board.table[(board.table["category"] == "privacy") & board.table["ranked"]]
    assert set(part["metric"]) == set(PRIVACY_HEADLINES)  # sub-keys are informational
    for gen in set(board.generators()) - set(CALIBRATION):
        mine = part[part["generator"] == gen]["rank"].dropna()
        assert category_mean_ranks(board.table).loc[gen, "privacy"] == mine.mean()
    header, rows = board.wide("privacy")
    mean_rank = {r[0].replace(" (calibration)", ""): r[-1] for r in rows}
    assert mean_rank["train-copy"] == f"{part[part['generator'] == 'train-copy']['rank'].mean():.2f}"


def test_not_applicable_is_nan_never_a_perfect_score(gaming_run):
    _, board = gaming_run
    ai = means(board, "attribute_inference")
    assert math.isnan(ai["all-empty"])
    row = board.table[(board.table["metric"] == "attribute_inference") & (board.table["generator"] == "all-empty")]
    assert row["rank"].isna().all()


def test_toward_zero_reads_the_same_in_every_output(gaming_run, cli, tmp_path):
    """exact_copies ranks toward 0: a negative value can beat a larger positive one, and every
    output names the direction."""
    out, board = gaming_run
    csv = pd.read_csv(out / "leaderboard.csv")
    rows = csv[csv["metric"] == "exact_copies"].set_index("generator")
    assert set(rows["direction"]) == {"toward 0"}
    ranked = rows.dropna(subset=["rank"])
    order = ranked["mean"].abs().sort_values().index
    assert ranked.loc[order, "rank"].is_monotonic_increasing  # ranks follow |mean − 0|
    assert rows.loc["train-copy", "rank"] > rows.loc["holdout-resample", "rank"]
    md = (out / "leaderboard.md").read_text()
    assert "exact_copies →0" in md and "→x closer to x is better" in md
    assert "exact_copies →0" in report_html.category_table(board, "privacy")
    result = cli("leaderboard", out, "--format", "json", "--output", "-")
    assert result.code == 0 and '"toward 0"' in result.out
    compared = cli("compare", out, out, "--format", "csv", "--output", "-")
    assert compared.code == 0
    table, _ = compare_runs(out, out)
    assert set(table[table["metric"] == "exact_copies"]["direction"]) == {"toward 0"}
    assert set(table[table["metric"] == "exact_copies"]["verdict"]) == {"within noise"}
    console = Console(record=True, width=400)
    for table in leaderboard_tables(board, width=400):
        console.print(table)
    assert "exact_copies →0" in console.export_text()
    # compare tests the distance to 0 on either side: the same values with their signs flipped are no change
    mirror = tmp_path / "mirror"
    shutil.copytree(out, mirror)
    records = RunDirectory(mirror).records()
    for r in records:
        if r.get("type") == "metric" and r["metric"] == "exact_copies":
            r["value"] = -r["value"]
    (mirror / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    table, _ = compare_runs(out, mirror)
    copies = table[table["metric"] == "exact_copies"].set_index("generator")
    assert copies.loc["train-copy", "difference"] < -1 and set(copies["verdict"]) == {"within noise"}
