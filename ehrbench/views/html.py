"""HTML for the report and the leaderboard export: escaped tables and the page shell.

Pages are self-contained: the stylesheet is inlined from ``ehrbench/views/templates`` and figures
are embedded as base64 PNG, so a report opens offline with nothing fetched from the network.
"""

from __future__ import annotations

import base64
import html
import importlib.metadata
from collections.abc import Mapping, Sequence
from importlib import resources
from string import Template
from typing import Any

import pandas as pd

from ehrbench.api import LEADERBOARD_CATEGORIES, PublishedResults
from ehrbench.views.leaderboard import GUARANTEE_NOTE, Leaderboard, marks_text, rank_text, tied_cells
from ehrbench.views.text import MISSING, floor_phrase, format_estimate, format_interval, format_number, weights_text


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def ehrbench_version() -> str:
    try:
        return importlib.metadata.version("ehrbench")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def template(name: str) -> str:
    return resources.files(__package__).joinpath("templates", name).read_text(encoding="utf-8")


def table(header: Sequence[str], rows: Sequence[Sequence[str]], css: str = "", row_classes: Sequence[str] = ()) -> str:
    """A table from already-escaped cell HTML (``<td>`` contents, or full ``<td ...>`` tags)."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = row_classes[i] if i < len(row_classes) and row_classes[i] else ""
        cells = "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in row)
        attribute = f' class="{cls}"' if cls else ""
        body.append(f"<tr{attribute}>{cells}</tr>")
    klass = f' class="{css}"' if css else ""
    return f'<div class="scroll"><table{klass}><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def category_table(board: Leaderboard, category: str) -> str:
    """Generators × ranked metrics of one category: mean, 95 % interval, rank, noise-floor marks.

    The best (rank 1, among the generators that are not calibration rows) is highlighted; a
    shared rank is marked ``=``; calibration rows are shown, never ranked.
    """
    metrics = board.ranked_metrics(category)
    if not metrics:
        return ""
    header = ["generator"] + [esc(board.header(m)) for m in metrics]
    tied = tied_cells(board.table)
    part = board.table[board.table["category"] == category]
    rows, classes = [], []
    for gen in board.generators():
        mine = part[part["generator"] == gen].set_index("metric")
        if mine.empty:
            continue
        calibration = bool(mine["calibration"].iloc[0])
        cells = [esc(gen) + (" <span class=\"rank\">calibration</span>" if calibration else "")]
        for m in metrics:
            if m not in mine.index:
                cells.append(MISSING)
                continue
            row = mine.loc[m]
            body = esc(format_number(row["mean"]))
            interval = format_interval(row["ci_low"], row["ci_high"])
            if interval:
                body += f'<span class="ci">{esc(interval)}</span>'
            rank = rank_text(row["rank"], (gen, m) in tied)
            if rank:
                body += f'<span class="rank">{esc(rank)}</span>'
            marks = marks_text(row["noise_floor"])
            if marks:
                body += f'<span class="floor" title="{esc(floor_phrase(row["noise_floor"]))}">{esc(marks)}</span>'
            best = ' class="best"' if pd.notna(row["rank"]) and int(row["rank"]) == 1 else ""
            cells.append(f"<td{best}>{body}</td>")
        rows.append(cells)
        classes.append("calibration" if calibration else "")
    return table(header, rows, row_classes=classes)


def leaderboard_sections(board: Leaderboard) -> list[tuple[str, str, str]]:
    """(anchor, title, html) for each category's table, then flags and failures."""
    out = []
    for category in board.categories():
        body = category_table(board, category)
        if body:
            out.append((f"lb-{category}", f"Leaderboard: {category}", body))
    header, rows = board.guarantees()
    if rows:
        note = f'<p class="note">{esc(GUARANTEE_NOTE)}</p>'
        out.append(("lb-guarantee", "Privacy guarantee", note + table(header, [[esc(c) for c in r] for r in rows])))
    if not board.flags.empty:
        rows = [[esc(f.generator), esc(f.repeat), esc(f.warning)] for f in board.flags.itertuples()]
        note = '<p class="note">Jobs whose samples look degenerate: scored, but suspect.</p>'
        out.append(("flags", "Flags", note + table(["generator", "repeat", "warning"], rows, "flags")))
    return out


def failures_section(board: Leaderboard) -> str:
    if board.failures.empty:
        return '<p class="note">No job or metric failed.</p>'
    rows = [[esc(f.generator), esc(f.repeat), esc(f.step), esc(f.reason) + _traceback_html(f.traceback)]
            for f in board.failures.itertuples()]
    return table(["generator", "repeat", "step", "reason"], rows, "failures")


def _traceback_html(text: object) -> str:
    """A failure's traceback, folded; the plugin's own frame is the line marked ``>``."""
    if not isinstance(text, str) or not text:
        return ""
    return f"<details><summary>traceback</summary><pre>{esc(text)}</pre></details>"


def overall_table(overall: pd.DataFrame, weights: Mapping[str, float]) -> str:
    """The weighted overall ranking with its bootstrap interval; the weights it used stated above it."""
    if overall.empty:
        return '<p class="note">No ranked metric yet.</p>'
    intro = (
        f"<p>Category weights: <strong>{esc(weights_text(weights))}</strong>. Each generator's score is the "
        f"weighted mean of its average per-metric rank in each category (lower is better); a category "
        f"with weight 0 or without a ranked metric for that generator does not count. The interval is the "
        f"2.5–97.5 % range of the score over 1,000 bootstrap draws of the repeats (the same draw for every "
        f"generator) and of the metrics within each category. Calibration rows are the scale: never ranked.</p>"
    )
    header = ["generator", *LEADERBOARD_CATEGORIES, "score [95 % CI]", "overall rank"]
    rows, classes = [], []
    for r in overall.itertuples():
        rank = MISSING if pd.isna(r.overall_rank) else str(int(r.overall_rank))
        css = ' class="best"' if rank == "1" else ""
        score = "calibration row: not ranked" if r.calibration else format_estimate(
            r.score, getattr(r, "score_low", float("nan")), getattr(r, "score_high", float("nan")))
        rows.append([esc(r.generator)] + [format_number(float(getattr(r, c))) for c in LEADERBOARD_CATEGORIES]
                    + [esc(score), f"<td{css}>{rank}</td>"])
        classes.append("calibration" if r.calibration else "")
    return intro + table(header, rows, row_classes=classes)


def published_table(board: Leaderboard, published: PublishedResults, representation: str | None) -> str:
    """Measured (this run) and published side by side, in separately labelled columns."""
    header = ["generator", "metric", "measured here (mean [95 % CI])", "published (paper)"]
    rows = []
    table_ = board.table.set_index(["generator", "metric"])
    for gen, values in published.values.items():
        for metric, value in values.items():
            if (gen, metric) in table_.index:
                row = table_.loc[(gen, metric)]
                measured = format_estimate(row["mean"], row["ci_low"], row["ci_high"])
            else:
                measured = "not measured in this run"
            rows.append([esc(gen), esc(metric), esc(measured), f'<td class="published">{format_number(value)}</td>'])
    caveat = "" if representation == published.representation else (
        f" The published values are on {esc(published.representation)} data; this run used the "
        f"{esc(representation)} representation, so the two are not directly comparable."
    )
    intro = (
        f'<p class="published-label">PUBLISHED values are copied from {esc(published.source)}. They were '
        f"not measured by this run and are never mixed into its leaderboard or ranks.{caveat}</p>"
    )
    return intro + table(header, rows)


def figure_html(title: str, png: bytes, caption: str, filename: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{esc(title)}">'
        f"<figcaption><strong>{esc(title)}</strong>. {esc(caption)} (figures/{esc(filename)})</figcaption></figure>"
    )


def key_value_table(pairs: Sequence[tuple[str, Any]]) -> str:
    def text(value: Any) -> str:
        if isinstance(value, dict):  # nested manifest entries, e.g. dataset options
            return ", ".join(f"{k} = {text(v)}" for k, v in value.items()) or MISSING
        return str(value)

    return table(["field", "value"], [[esc(k), esc(text(v))] for k, v in pairs], "kv")


def page(title: str, subtitle: str, notice: str | None, sections: Sequence[tuple[str, str, str]], version: str,
         generated: str) -> str:
    """The whole document: the stylesheet inlined, a table of contents, then each section."""
    toc = "".join(f'<li><a href="#{esc(a)}">{esc(t)}</a></li>' for a, t, _ in sections)
    body = "\n".join(f'<section id="{esc(a)}"><h2>{esc(t)}</h2>\n{h}</section>' for a, t, h in sections)
    return Template(template("report.html")).substitute(
        title=esc(title), subtitle=esc(subtitle), style=template("report.css"),
        notice=f'<p class="notice" id="simulated-notice">{esc(notice)}</p>' if notice else "",
        toc=toc, body=body, version=esc(version), generated=esc(generated),
    )
