"""``report.html`` and ``figures/``: built from a run directory alone, offline.

Inputs are ``run.json``, ``results.jsonl``, ``reference.npz`` (the real test split's
aggregates, written by :func:`finish_run`) and the saved synthetic samples. A generator whose
samples are not saved (one that releases real rows) is simply absent from the sample-based
figures. Building a report never makes a run fail: :func:`finish_run` logs the error and
leaves the results as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ehrbench.api import parse_direction
from ehrbench.atomic import atomic_open, write_text_atomic
from ehrbench.matrix import EHRMatrix
from ehrbench.rundir.directory import RunDirectory
from ehrbench.rundir.environment import now
from ehrbench.rundir.records import Kind, Status, current_records, job_key, of_kind, ok_jobs, record_direction
from ehrbench.rundir.reference import Aggregates, Reference, aggregate, build_reference, read_reference, write_reference
from ehrbench.views import figures as fg
from ehrbench.views import html as rh
from ehrbench.views import leaderboard as lb
from ehrbench.views.exports import run_weights
from ehrbench.views.provenance import dataset_notice, published_results
from ehrbench.api import COST
from ehrbench.views import significance as sig
from ehrbench.views.ranking import friedman_test
from ehrbench.views.text import MISSING, better, floor_legend, format_number

log = logging.getLogger(__name__)


@dataclass
class Figure:
    anchor: str
    title: str
    caption: str
    filename: str
    png: bytes


@dataclass
class RunData:
    """Everything the report reads, loaded once."""

    run: RunDirectory
    manifest: dict[str, Any]
    records: list[dict[str, Any]]
    board: lb.Leaderboard
    weights: dict[str, float]
    reference: Reference | None
    notes: list[str] = field(default_factory=list)


def read_run_data(run: RunDirectory | Path, weights: Mapping[str, float] | None = None) -> RunData:
    """Read a run directory; ``weights`` override the ones stored in its config."""
    run = RunDirectory(run)
    manifest = run.read_manifest()
    records = run.records()
    board = lb.build(records, manifest.get("generators"))
    board.notice = dataset_notice(manifest)
    board.weights = run_weights(manifest, weights)
    return RunData(run, manifest, records, board, board.weights, read_reference(run.reference_path))


# -- synthetic aggregates ---------------------------------------------------------------------
def synthetic_aggregates(data: RunData) -> dict[str, list[Aggregates]]:
    """Aggregates of every saved sample of a finished job, by generator (in job order)."""
    out: dict[str, list[Aggregates]] = {}
    if data.reference is None:
        return out
    for gen, repeat in ok_jobs(data.records):
        path = data.run.sample_path(gen, repeat)
        if not path.is_file():
            continue  # a generator that releases real rows: they were never saved
        sample = EHRMatrix.load(path)
        if not np.array_equal(sample.codes, data.reference.codes):
            data.notes.append(f"{path}: its code columns differ from reference.npz's; left out of the figures.")
            continue
        out.setdefault(gen, []).append(aggregate(sample.X, data.reference.top_index))
    return out


def _mean_hist(hists: list[np.ndarray]) -> np.ndarray:
    width = max(len(h) for h in hists)
    return np.mean([np.pad(h / max(h.sum(), 1), (0, width - len(h))) for h in hists], axis=0)


# -- figures ----------------------------------------------------------------------------------
def sample_figures(data: RunData) -> list[Figure]:
    """Prevalence scatter and correlation difference per generator, codes per record for all."""
    ref = data.reference
    if ref is None:
        data.notes.append("No reference.npz (real-data aggregates) in this run directory, so the prevalence, "
                          "correlation and codes-per-record figures are missing; they are written when a run finishes.")
        return []
    synthetic = synthetic_aggregates(data)
    missing = [g for g in data.board.generators() if g not in synthetic]
    if missing:
        data.notes.append("No saved samples for " + ", ".join(missing) + " (a generator that releases real rows, "
                          "or jobs that failed), so they have no sample-based figure.")
    labels = [str(c) for c in ref.codes[ref.top_index]]
    figs = []
    for gen, aggs in synthetic.items():
        prevalence = np.mean([a.prevalence for a in aggs], axis=0)
        n_synth = int(np.mean([a.n_rows for a in aggs]))
        figs.append(Figure(f"prevalence-{gen}", f"{gen}: code prevalence, real vs synthetic",
                           f"Each point is a code; the dashed line is identity. Mean over {len(aggs)} saved repeat(s).",
                           f"prevalence-{gen}.png",
                           fg.png_bytes(fg.prevalence_scatter(ref.real.prevalence, prevalence, gen, ref.real.n_rows, n_synth))))
        corr = np.mean([a.top_corr for a in aggs], axis=0)
        figs.append(Figure(f"corrdiff-{gen}", f"{gen}: correlation difference",
                           f"corr(synthetic) − corr(real) over the {len(labels)} most prevalent real codes "
                           f"(presence view), mean over {len(aggs)} repeat(s). Red: too correlated; blue: too little.",
                           f"correlation-difference-{gen}.png",
                           fg.png_bytes(fg.correlation_difference(ref.real.top_corr, corr, labels, gen))))
    hists = {g: _mean_hist([a.codes_per_record for a in aggs]) for g, aggs in synthetic.items()}
    figs.append(Figure("codes-per-record", "Codes per record",
                       "Distribution of distinct codes per record: the real test split (thick) and each generator's samples.",
                       "codes-per-record.png", fg.png_bytes(fg.codes_per_record(ref.real.codes_per_record, hists))))
    return figs


def _axis_metric(table: pd.DataFrame, category: str, axes: Mapping[str, int]) -> str | None:
    """The metric a trade-off axis shows: the category's ranked metric that asks most strongly
    (``Metric.tradeoff_axis``, stored in ``run.json``), else its first ranked metric."""
    ranked = table[(table["category"] == category) & table["ranked"]]
    names = list(dict.fromkeys(ranked["metric"]))
    asking = sorted((axes[m], i) for i, m in enumerate(names) if m in axes)
    return names[asking[0][1]] if asking else (names[0] if names else None)


def _total_seconds(records: list[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """Mean and std over repeats of fit + sample seconds, from finished jobs' cost records."""
    ok = set(ok_jobs(records))
    rows = [(r["generator"], float(r.get("fit_seconds") or 0) + float(r.get("sample_seconds") or 0))
            for r in of_kind(current_records(records), Kind.COST)
            if r.get("status") == Status.OK and job_key(r) in ok]
    if not rows:
        return {}
    frame = pd.DataFrame(rows, columns=["generator", "seconds"]).groupby("generator", sort=False)["seconds"]
    return {g: (float(m), float(s)) for g, m, s in zip(frame.mean().index, frame.mean(), frame.std())}


def _badness(row: pd.Series) -> float:
    return record_direction(row).badness(float(row["mean"]))  # type: ignore[union-attr]  (ranked rows only)


def _points(table: pd.DataFrame, x_metric: str, y: Mapping[str, tuple[float, float, float]]) -> list[fg.TradeoffPoint]:
    points = []
    for _, row in table[table["metric"] == x_metric].iterrows():
        if row.generator not in y or pd.isna(row["mean"]):
            continue
        x_bad = _badness(row)
        y_mean, y_std, y_bad = y[row.generator]
        points.append(fg.TradeoffPoint(row.generator, float(row["mean"]), float(row["std"]), y_mean, y_std, x_bad, y_bad,
                                       bool(row.calibration)))
    return points


def _metric_axis(table: pd.DataFrame, metric: str) -> dict[str, tuple[float, float, float]]:
    out = {}
    for _, row in table[table["metric"] == metric].iterrows():
        if pd.isna(row["mean"]):
            continue
        out[row.generator] = (float(row["mean"]), float(row["std"]), _badness(row))
    return out


def _label(table: pd.DataFrame, metric: str) -> str:
    return f"{metric} ({better(parse_direction(table[table['metric'] == metric]['direction'].iloc[0]))})"


def tradeoff_figures(data: RunData) -> list[Figure]:
    """Fidelity against privacy and against cost, each with its Pareto front."""
    table = data.board.table
    axes = data.manifest.get("tradeoff_axes") or {}
    x_metric = _axis_metric(table, "fidelity", axes)
    if x_metric is None:
        data.notes.append("No ranked fidelity metric, so there is no trade-off figure.")
        return []
    figs = []
    y_metric = _axis_metric(table, "privacy", axes)
    if y_metric is None:
        data.notes.append("No privacy metric in this run, so the fidelity-vs-privacy figure is missing.")
    else:
        points = _points(table, x_metric, _metric_axis(table, y_metric))
        figs.append(Figure("fidelity-privacy", "Fidelity vs privacy",
                           f"{x_metric} against {y_metric}, mean ± std over repeats. Circled and joined by a dotted "
                           f"line: the Pareto front, generators no other beats on both. Grey squares: calibration rows.",
                           "fidelity-vs-privacy.png",
                           fg.png_bytes(fg.tradeoff_scatter(points, _label(table, x_metric), _label(table, y_metric),
                                                            "Fidelity vs privacy"))))
    guaranteed = table[(table["metric"] == lb.GUARANTEE_METRICS["epsilon"]) & table["mean"].notna()]
    epsilon = {r.generator: (float(r.mean), float(r.std), float(r.mean)) for r in guaranteed.itertuples()}
    if len(epsilon) >= 2:  # a privacy–fidelity curve: several generators (or settings) with an ε
        points = _points(table, x_metric, epsilon)
        figs.append(Figure("fidelity-epsilon", "Fidelity vs ε (differential privacy)",
                           f"{x_metric} against the formal ε of each generator with a DP guarantee (log scale), "
                           f"mean ± std; circled: the Pareto front. Generators without a guarantee are not drawn.",
                           "fidelity-vs-epsilon.png",
                           fg.png_bytes(fg.tradeoff_scatter(points, _label(table, x_metric), "ε (lower is more private)",
                                                            "Fidelity vs ε", log_y=True))))
    seconds = {g: (m, s, m) for g, (m, s) in _total_seconds(data.records).items()}
    if seconds:
        points = _points(table, x_metric, seconds)
        figs.append(Figure("fidelity-cost", "Fidelity vs cost",
                           f"{x_metric} against fit + sample seconds per repeat (log scale), mean ± std; "
                           f"circled: the Pareto front. Timings depend on the machine and its load.",
                           "fidelity-vs-cost.png",
                           fg.png_bytes(fg.tradeoff_scatter(points, _label(table, x_metric),
                                                            "fit + sample seconds (lower is better)",
                                                            "Fidelity vs cost", log_y=True))))
    return figs


def interval_figures(data: RunData) -> list[Figure]:
    """Per category: every ranked metric's means with their 95 % intervals, over the calibration band."""
    board = data.board
    figs = []
    for category in board.categories():
        if category == COST:
            continue
        panels = {}
        for metric in board.ranked_metrics(category):
            rows = []
            for gen in board.generators():
                row = board.row(gen, metric)
                if row is not None:
                    rows.append(fg.IntervalRow(gen, float(row["mean"]), float(row["ci_low"]), float(row["ci_high"]),
                                               bool(row["calibration"]), lb.marks_text(row["noise_floor"])))
            if rows:
                panels[board.header(metric)] = rows
        if panels:
            figs.append(Figure(f"intervals-{category}", f"{category.capitalize()}: means and 95 % intervals",
                               "Each generator's mean over repeats with its 95 % confidence interval; grey squares "
                               "are the calibration rows and the shaded band runs between them. " + floor_legend(),
                               f"intervals-{category}.png",
                               fg.png_bytes(fg.interval_panels(panels, f"{category.capitalize()}: 95 % intervals"))))
    return figs


def critical_difference_figure(data: RunData) -> tuple[Figure | None, str]:
    """Demšar's diagram over the ranked metrics, and a sentence stating the Friedman test."""
    result = friedman_test(data.board, data.weights)
    if result is None:
        return None, ("No critical-difference diagram: it needs at least 3 generators that are not calibration rows "
                      "and 2 ranked metrics that all of them have.")
    verdict = "some generators differ" if result.p <= sig.ALPHA else "no generator can be told apart from the others"
    text = (f"Friedman's test over {result.blocks} ranked metrics (each metric one block, generators ranked by mean, "
            f"ties averaged; categories of weight 0 left out): χ² = {result.statistic:.2f}, p = {result.p:.3g}, so "
            f"{verdict} at the 5 % level. Nemenyi's critical difference at 5 %: {result.critical_difference:.2f}; a "
            f"thick line joins generators whose average ranks differ by less (Demšar 2006). This view weighs every "
            f"metric alike, unlike the weighted score above.")
    title = (f"Average rank over {result.blocks} metrics; Friedman p = {result.p:.3g}; "
             f"Nemenyi CD = {result.critical_difference:.2f} (α = 0.05)")
    fig = Figure("critical-difference", "Critical-difference diagram", text, "critical-difference.png",
                 fg.png_bytes(fg.critical_difference(result.names, result.average_ranks, result.critical_difference,
                                                     title)))
    return fig, text


def pairs_section(board: lb.Leaderboard) -> str:
    """Per metric, how many pairs the tests separate, and every close pair with the repeats it would need."""
    pairs = board.pairs
    if pairs.empty:
        return ('<p class="note">No pair to test: it takes two generators that are not calibration rows and at '
                'least 2 repeats.</p>')
    intro = ("<p>Per metric, every pair of generators that are not calibration rows is compared repeat by repeat "
             "(repeat k of every generator shares its metric seed): a paired t-test on the differences in distance "
             "from the ideal, two-sided, Holm-corrected over the metric's pairs (5 % family-wise). <em>Repeats "
             "needed</em> is roughly how many repeats would separate a close pair with 80 % power if its observed "
             "mean difference and spread held (Bonferroni level; a rough figure, since a spread from a few repeats is "
             "itself uncertain).</p>")
    summary = []
    for metric, part in pairs.groupby("metric", sort=False):
        separated = int((part["verdict"] != lb.TIE).sum())
        summary.append([rh.esc(metric), f"{separated} of {len(part)}"])
    close = pairs[pairs["verdict"] == lb.TIE]
    rows = []
    means = board.table.set_index(["generator", "metric"])["mean"]
    for r in close.itertuples():
        needed = "never (no difference)" if not np.isfinite(r.repeats_needed) else (
            f"more than {sig.MAX_REPEATS}" if r.repeats_needed > sig.MAX_REPEATS else f"≈ {int(r.repeats_needed)}")
        rows.append([rh.esc(r.metric), rh.esc(f"{r.a} ({format_number(means[(r.a, r.metric)])})"),
                     rh.esc(f"{r.b} ({format_number(means[(r.b, r.metric)])})"), rh.esc(str(r.n)),
                     format_number(r.p_holm), rh.esc(needed)])
    body = intro + rh.table(["metric", "pairs separated"], summary)
    if rows:
        body += ("<h3>Close pairs: not distinguishable at these repeats</h3>"
                 + rh.table(["metric", "generator (mean)", "generator (mean)", "repeats", "p (Holm)",
                             "repeats needed"], rows, "pairs"))
    return body


def training_figures(data: RunData) -> list[Figure]:
    """One figure per generator that recorded per-epoch curves."""
    curves: dict[str, dict[str, dict[int, list[float]]]] = {}
    for r in of_kind(current_records(data.records), Kind.TRAINING):
        for name, values in (r.get("curves") or {}).items():
            clean = [float(v) if v is not None else float("nan") for v in values]
            if clean:
                curves.setdefault(r["generator"], {}).setdefault(name, {})[int(r["repeat"])] = clean
    if not curves:
        data.notes.append("No generator in this run recorded training curves.")
    return [Figure(f"training-{gen}", f"{gen}: training curves", "Per-epoch series the generator recorded, one line per repeat.",
                   f"training-{gen}.png", fg.png_bytes(fg.training_curves(series, gen)))
            for gen, series in curves.items()]


# -- manifest ---------------------------------------------------------------------------------
def manifest_section(data: RunData) -> str:
    m = data.manifest
    ds, sp, cfg = m.get("dataset") or {}, m.get("split") or {}, m.get("config") or {}
    env = m.get("environment") or {}
    device = m.get("device") or {}
    pairs = [
        ("dataset", ds.get("name")),
        ("simulated", "yes: not real patients" if ds.get("simulated") else "no"),
        ("size", f"{ds.get('n_patients')} patients × {ds.get('n_codes')} codes"),
        ("representation", ds.get("representation")),
        ("dataset options", ds.get("options")),
        ("dataset fingerprint", ds.get("fingerprint")),
        ("dataset notice", ds.get("notice") or MISSING),
        ("dataset summary", ds.get("summary") or MISSING),
        ("split", f"seed {sp.get('seed')}, test fraction {sp.get('test_fraction')}: {sp.get('n_train')} train / {sp.get('n_test')} test"),
        ("run seed", cfg.get("seed")),
        ("profile", cfg.get("profile")),
        ("repeats", cfg.get("repeats")),
        ("synthetic records per repeat", m.get("n_samples")),
        ("generators", ", ".join(m.get("generators") or [])),
        ("metrics", ", ".join(m.get("metrics") or [])),
        *((f"options of {g}", o or "—") for g, o in (m.get("generator_options") or {}).items()),
        ("device", ", ".join(f"{k}: {v}" for k, v in device.items())),
        ("started", m.get("created_at")),
        ("resumed", ", ".join(m.get("resumed_at") or []) or "never"),
        ("finished", m.get("finished_at") or "not finished"),
        ("git commit", env.get("git_commit")),
        ("platform", env.get("platform")),
        ("versions", ", ".join(f"{k} {v}" for k, v in (env.get("versions") or {}).items())),
    ]
    current = current_records(data.records)
    jobs = {job_key(r): r for r in of_kind(current, Kind.JOB)}
    costs = {job_key(r): r for r in of_kind(current, Kind.COST)}
    rows = []
    for key, job in jobs.items():
        c = costs.get(key, {})
        rows.append([rh.esc(key[0]), rh.esc(key[1]), rh.esc(job.get("seed")), rh.esc(job.get("status")),
                     format_number(c.get("fit_seconds")), format_number(c.get("sample_seconds")),
                     format_number(c.get("fit_cpu_seconds")), format_number(c.get("sample_cpu_seconds")),
                     format_number(c.get("peak_rss_mb")),
                     rh.esc("yes" if c.get("model_loaded") else "no")])
    timings = rh.table(["generator", "repeat", "seed", "status", "fit s", "sample s", "fit CPU s", "sample CPU s",
                        "peak RSS MB", "model loaded"], rows)
    return rh.key_value_table(pairs) + "<h3>Jobs: seeds and timings</h3>" + timings


# -- the report -------------------------------------------------------------------------------
def build_report(run: RunDirectory | Path, weights: Mapping[str, float] | None = None) -> Path:
    """Write ``report.html`` and ``figures/*.png`` of a run; returns the report's path."""
    data = read_run_data(run, weights)
    cd, cd_text = critical_difference_figure(data)
    figs = interval_figures(data) + sample_figures(data) + tradeoff_figures(data) + training_figures(data)
    for f in figs + ([cd] if cd else []):
        with atomic_open(data.run.figure_path(f.filename), "wb") as fh:
            fh.write(f.png)
    sections = list(rh.leaderboard_sections(data.board))
    overall = rh.overall_table(data.board.overall(data.weights), data.weights)
    overall += rh.figure_html(cd.title, cd.png, cd.caption, cd.filename) if cd else f'<p class="note">{rh.esc(cd_text)}</p>'
    sections.append(("overall", "Overall ranking", overall))
    sections.append(("pairs", "Pairwise comparisons", pairs_section(data.board)))
    published = published_results(data.manifest)
    if published:
        representation = (data.manifest.get("dataset") or {}).get("representation")
        sections.append(("published", "Published values",
                         "".join(rh.published_table(data.board, p, representation) for p in published)))
    figure_html = "".join(rh.figure_html(f.title, f.png, f.caption, f.filename) for f in figs)
    notes = "".join(f'<p class="note">{rh.esc(n)}</p>' for n in data.notes)
    sections.append(("figures", "Figures", f'<div class="figures">{figure_html}</div>{notes}'))
    sections.append(("failures", "Failed jobs and metrics", rh.failures_section(data.board)))
    sections.append(("manifest", "Run manifest", manifest_section(data)))
    intro = f'<p class="note">{rh.esc(lb.legend(data.board))} Best values are highlighted.</p>'
    ds = data.manifest.get("dataset") or {}
    if ds.get("notice"):  # e.g. the MIMIC-III demo's ODbL attribution
        intro = f'<p class="note">Dataset: {rh.esc(ds["notice"])}</p>' + intro
    anchor, title, body = sections[0]
    sections[0] = (anchor, title, intro + body)
    subtitle = (f"dataset {ds.get('name')} ({'simulated' if ds.get('simulated') else 'real'}), "
                f"{ds.get('representation')}, profile {(data.manifest.get('config') or {}).get('profile')}")
    page = rh.page(f"ehrbench report — {data.run.name}", subtitle, data.board.notice, sections,
                   rh.ehrbench_version(), now())
    write_text_atomic(data.run.report_path, page)
    return data.run.report_path


def finish_run(run: RunDirectory, test: EHRMatrix, build: bool = True) -> Path | None:
    """At the end of a run: write the real test split's aggregates, then (``build``) the report.

    The aggregates are written either way, so ``ehrbench report`` can build the figures later.
    Never raises: a failure is logged and the run's results stay as they are. Returns the
    report's path, or None when it was not built.
    """
    try:
        write_reference(run.reference_path, build_reference(test.X, test.codes))
    except Exception as exc:  # the report is a by-product; the results must survive it
        log.warning("ehrbench: could not write %s (%s: %s); figures will be missing.",
                    run.reference_path, type(exc).__name__, exc)
    if not build:
        return None
    try:
        return build_report(run)
    except Exception as exc:
        log.warning("ehrbench: report not built (%s: %s); the results are intact. Rebuild with: ehrbench report %s",
                    type(exc).__name__, exc, run)
        return None
