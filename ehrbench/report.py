"""``report.html`` and ``figures/``: built from a run directory alone, offline.

Inputs are ``run.json``, ``results.jsonl``, ``reference.npz`` (the real test split's
aggregates, written by :func:`finish_run`) and the saved synthetic samples. A generator whose
samples are not saved (``train-resample`` releases real rows) is simply absent from the
sample-based figures. Building a report never makes a run fail: :func:`finish_run` logs the
error and leaves the results as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ehrbench import figures as fg
from ehrbench import leaderboard as lb
from ehrbench import report_html as rh
from ehrbench.errors import InputError
from ehrbench.manifest import now
from ehrbench.matrix import EHRMatrix
from ehrbench.provenance import dataset_notice, read_run_manifest, shows_published
from ehrbench.ranking import overall_ranking, resolve_weights
from ehrbench.reference import Aggregates, Reference, aggregate, build_reference, read_reference, write_reference
from ehrbench.results import ResultStore, current_records, write_text_atomic

log = logging.getLogger("ehrbench.report")

REPORT_FILE = "report.html"
FIGURES_DIR = "figures"
# Which metric each trade-off axis shows: the first of these the run has, else the category's first.
FIDELITY_AXIS = ("pairwise_correlation_difference", "dimension_wise_probability", "detection_auc")
PRIVACY_AXIS = ("membership_inference", "nn_adversarial_accuracy", "distance_to_closest_record", "attribute_inference")


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

    run_dir: Path
    manifest: dict[str, Any]
    records: list[dict[str, Any]]
    board: lb.Leaderboard
    weights: dict[str, float]
    reference: Reference | None
    notes: list[str] = field(default_factory=list)


def load_run(run_dir: Path, weights: Mapping[str, float] | None = None) -> RunData:
    """Read a run directory; ``weights`` override the ones stored in its config."""
    run_dir = Path(run_dir)
    manifest = read_run_manifest(run_dir)
    store = ResultStore(run_dir)
    if not store.path.exists():
        raise InputError(f"{run_dir}: no results.jsonl here; is this an ehrbench run directory?")
    records = store.read()
    stored = (manifest.get("config") or {}).get("weights") or {}
    board = lb.build(records)
    board.notice = dataset_notice(manifest)
    return RunData(run_dir, manifest, records, board, resolve_weights(weights if weights is not None else stored),
                   read_reference(run_dir))


# -- synthetic aggregates ---------------------------------------------------------------------
def _ok_jobs(records: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(r["generator"], int(r["repeat"])) for r in current_records(records)
            if r.get("type") == "job" and r.get("status") == "ok"]


def synthetic_aggregates(data: RunData) -> dict[str, list[Aggregates]]:
    """Aggregates of every saved sample of a finished job, by generator (in job order)."""
    out: dict[str, list[Aggregates]] = {}
    if data.reference is None:
        return out
    for gen, repeat in _ok_jobs(data.records):
        path = data.run_dir / "samples" / gen / f"repeat-{repeat}.npz"
        if not path.is_file():
            continue  # e.g. train-resample: its rows are real, so they were never saved
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


def _axis_metric(table: pd.DataFrame, category: str, preferred: tuple[str, ...]) -> str | None:
    ranked = table[(table["category"] == category) & table["ranked"]]
    names = list(dict.fromkeys(ranked["metric"]))
    return next((m for m in preferred if m in names), names[0] if names else None)


def _total_seconds(records: list[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """Mean and std over repeats of fit + sample seconds, from finished jobs' cost records."""
    ok = set(_ok_jobs(records))
    rows = [(r["generator"], float(r.get("fit_seconds") or 0) + float(r.get("sample_seconds") or 0))
            for r in current_records(records)
            if r.get("type") == "cost" and r.get("status") == "ok" and (r["generator"], int(r["repeat"])) in ok]
    if not rows:
        return {}
    frame = pd.DataFrame(rows, columns=["generator", "seconds"]).groupby("generator", sort=False)["seconds"]
    return {g: (float(m), float(s)) for g, m, s in zip(frame.mean().index, frame.mean(), frame.std())}


def _points(table: pd.DataFrame, x_metric: str, y: Mapping[str, tuple[float, float, float]]) -> list[fg.TradeoffPoint]:
    from ehrbench.api import Direction

    points = []
    for row in table[table["metric"] == x_metric].itertuples():
        if row.generator not in y or pd.isna(row.mean):
            continue
        target = None if row.target is None or pd.isna(row.target) else float(row.target)
        x_bad = Direction(bool(row.higher_is_better), target).badness(float(row.mean))
        y_mean, y_std, y_bad = y[row.generator]
        points.append(fg.TradeoffPoint(row.generator, float(row.mean), float(row.std), y_mean, y_std, x_bad, y_bad,
                                       bool(row.calibration)))
    return points


def _metric_axis(table: pd.DataFrame, metric: str) -> dict[str, tuple[float, float, float]]:
    from ehrbench.api import Direction

    out = {}
    for row in table[table["metric"] == metric].itertuples():
        if pd.isna(row.mean):
            continue
        target = None if row.target is None or pd.isna(row.target) else float(row.target)
        out[row.generator] = (float(row.mean), float(row.std),
                              Direction(bool(row.higher_is_better), target).badness(float(row.mean)))
    return out


def _label(table: pd.DataFrame, metric: str) -> str:
    direction = table[table["metric"] == metric]["direction"].iloc[0]
    better = {"lower": "lower is better", "higher": "higher is better"}.get(direction, f"closer to {direction.split()[-1]} is better")
    return f"{metric} ({better})"


def tradeoff_figures(data: RunData) -> list[Figure]:
    """Fidelity against privacy and against cost, each with its Pareto front."""
    table = data.board.table
    x_metric = _axis_metric(table, "fidelity", FIDELITY_AXIS)
    if x_metric is None:
        data.notes.append("No ranked fidelity metric, so there is no trade-off figure.")
        return []
    figs = []
    y_metric = _axis_metric(table, "privacy", PRIVACY_AXIS)
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


def training_figures(data: RunData) -> list[Figure]:
    """One figure per generator that recorded per-epoch curves."""
    curves: dict[str, dict[str, dict[int, list[float]]]] = {}
    for r in current_records(data.records):
        if r.get("type") != "training":
            continue
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
        ("dataset notice", ds.get("notice") or "—"),
        ("dataset summary", ds.get("summary") or "—"),
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
    jobs = {(r["generator"], int(r["repeat"])): r for r in current_records(data.records) if r.get("type") == "job"}
    costs = {(r["generator"], int(r["repeat"])): r for r in current_records(data.records) if r.get("type") == "cost"}
    rows = []
    for key, job in jobs.items():
        c = costs.get(key, {})
        rows.append([rh.esc(key[0]), rh.esc(key[1]), rh.esc(job.get("seed")), rh.esc(job.get("status")),
                     rh.fmt(c.get("fit_seconds")), rh.fmt(c.get("sample_seconds")), rh.fmt(c.get("peak_rss_mb")),
                     rh.esc("yes" if c.get("model_loaded") else "no")])
    timings = rh.table(["generator", "repeat", "seed", "status", "fit s", "sample s", "peak RSS MB", "model loaded"], rows)
    return rh.key_value_table(pairs) + "<h3>Jobs: seeds and timings</h3>" + timings


# -- the report -------------------------------------------------------------------------------
def build_report(run_dir: Path, weights: Mapping[str, float] | None = None) -> Path:
    """Write ``report.html`` and ``figures/*.png`` of a run; returns the report's path."""
    data = load_run(run_dir, weights)
    figs = sample_figures(data) + tradeoff_figures(data) + training_figures(data)
    fig_dir = data.run_dir / FIGURES_DIR
    for f in figs:
        with _atomic_bytes(fig_dir / f.filename) as fh:
            fh.write(f.png)
    sections = list(rh.leaderboard_sections(data.board))
    sections.append(("overall", "Overall ranking",
                     rh.overall_table(overall_ranking(data.board.table, data.weights), data.weights)))
    if shows_published(data.manifest):
        representation = (data.manifest.get("dataset") or {}).get("representation")
        sections.append(("published", "Published values (ScoEHR paper)", rh.published_table(data.board, representation)))
    figure_html = "".join(rh.figure_html(f.title, f.png, f.caption, f.filename) for f in figs)
    notes = "".join(f'<p class="note">{rh.esc(n)}</p>' for n in data.notes)
    sections.append(("figures", "Figures", f'<div class="figures">{figure_html}</div>{notes}'))
    sections.append(("failures", "Failed jobs and metrics", rh.failures_section(data.board)))
    sections.append(("manifest", "Run manifest", manifest_section(data)))
    intro = ('<p class="note">Cells: mean ± sample std over repeats, then the rank (1 is best). A rank marked = '
             "is shared: those generators differ by less than their repeat spread, so they are tied, not ranked. "
             "Best values are highlighted. Calibration rows (train-resample, independent-marginals) are the noise "
             "floors the others should be read against.</p>")
    ds = data.manifest.get("dataset") or {}
    if ds.get("notice"):  # e.g. the MIMIC-III demo's ODbL attribution
        intro = f'<p class="note">Dataset: {rh.esc(ds["notice"])}</p>' + intro
    anchor, title, body = sections[0]
    sections[0] = (anchor, title, intro + body)
    subtitle = (f"dataset {ds.get('name')} ({'simulated' if ds.get('simulated') else 'real'}), "
                f"{ds.get('representation')}, profile {(data.manifest.get('config') or {}).get('profile')}")
    page = rh.page(f"ehrbench report — {data.run_dir.name}", subtitle, data.board.notice, sections,
                   rh.ehrbench_version(), now())
    path = data.run_dir / REPORT_FILE
    write_text_atomic(path, page)
    return path


def _atomic_bytes(path: Path):
    from ehrbench.atomic import atomic_open

    return atomic_open(path, "wb")


def finish_run(run_dir: Path, test: EHRMatrix, build: bool = True) -> Path | None:
    """At the end of a run: write the real test split's aggregates, then (``build``) the report.

    The aggregates are written either way, so ``ehrbench report`` can build the figures later.
    Never raises: a failure is logged and the run's results stay as they are. Returns the
    report's path, or None when it was not built.
    """
    try:
        write_reference(run_dir, build_reference(test.X, test.codes))
    except Exception as exc:  # the report is a by-product; the results must survive it
        log.warning("ehrbench: could not write %s/reference.npz (%s: %s); figures will be missing.",
                    run_dir, type(exc).__name__, exc)
    if not build:
        return None
    try:
        return build_report(run_dir)
    except Exception as exc:
        log.warning("ehrbench: report not built (%s: %s); the results are intact. Rebuild with: ehrbench report %s",
                    type(exc).__name__, exc, run_dir)
        return None
