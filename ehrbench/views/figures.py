"""The report's figures, drawn with matplotlib's Agg canvas (no display, no pyplot state).

Each function takes aggregates (never rows) and returns a :class:`matplotlib.figure.Figure`;
:func:`png_bytes` renders one. Figures show what a leaderboard's means hide: which codes a
generator misses, which correlations it breaks, and what fidelity costs in privacy and time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

DPI = 96
REAL_COLOUR = "#222222"
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22")


def plain(text: object) -> str:
    """``text`` as matplotlib draws it literally: a ``$`` would start math text, and a code named
    ``$\\notacommand$`` would stop the report with a parse error."""
    return str(text).replace("$", r"\$")


def _figure(width: float, height: float, left: float = 0.12, bottom: float = 0.12, right: float = 0.97,
            top: float = 0.9, wspace: float = 0.2) -> Figure:
    """A figure with fixed margins: constrained layout costs more than the drawing itself."""
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=left, bottom=bottom, right=right, top=top, wspace=wspace)
    return fig


def png_bytes(fig: Figure) -> bytes:
    """Render ``fig`` to PNG bytes."""
    import io

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def prevalence_scatter(real: np.ndarray, synthetic: np.ndarray, generator: str, n_real: int, n_synthetic: int) -> Figure:
    """Per-code prevalence, real (x) against synthetic (y), log-log with the identity line.

    A prevalence of 0 cannot sit on a log axis; it is drawn at half of 1/n (marked in the
    axis label) so missing codes stay visible along the edges.
    """
    floor_x, floor_y = 0.5 / max(n_real, 1), 0.5 / max(n_synthetic, 1)
    x = np.where(real > 0, real, floor_x)
    y = np.where(synthetic > 0, synthetic, floor_y)
    fig = _figure(4.2, 4.0, left=0.17, bottom=0.13)
    ax = fig.add_subplot()
    missing = (real > 0) & (synthetic == 0)
    ax.scatter(x[~missing], y[~missing], s=6, alpha=0.5, color=PALETTE[0], linewidths=0)
    if missing.any():
        ax.scatter(x[missing], y[missing], s=10, marker="v", color=PALETTE[1], linewidths=0,
                   label=f"{int(missing.sum())} codes never generated")
        ax.legend(loc="upper left", fontsize=7, frameon=False)
    lo = min(floor_x, floor_y) * 0.8
    ax.plot([lo, 1], [lo, 1], color=REAL_COLOUR, linewidth=0.8, linestyle="--")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, 1.05)
    ax.set_ylim(lo, 1.05)
    ax.set_xlabel("real test prevalence (0 drawn at 1/(2n))", fontsize=8)
    ax.set_ylabel("synthetic prevalence (0 drawn at 1/(2n))", fontsize=8)
    ax.set_title(f"{plain(generator)}: code prevalence", fontsize=9)
    ax.tick_params(labelsize=7)
    return fig


def correlation_difference(real: np.ndarray, synthetic: np.ndarray, labels: Sequence[str], generator: str) -> Figure:
    """Heatmap of corr(synthetic) − corr(real) over the most prevalent codes; colours fixed to ±1."""
    diff = synthetic - real
    fig = _figure(4.8, 4.4, left=0.1, bottom=0.12, right=0.9, top=0.9)
    ax = fig.add_subplot()
    image = ax.imshow(diff, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    ticks = np.arange(len(labels))
    ax.set_xticks(ticks, labels=[plain(label) for label in labels], rotation=90, fontsize=5)
    ax.set_yticks(ticks, labels=[plain(label) for label in labels], fontsize=5)
    fro = float(np.sqrt((diff**2).sum()))
    ax.set_title(f"{plain(generator)}: correlation difference, top {len(labels)} codes\n‖Δ‖_F = {fro:.3g}", fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.8, extend="both", fraction=0.05, pad=0.03).ax.tick_params(labelsize=7)
    return fig


def codes_per_record(real: np.ndarray, synthetic: Mapping[str, np.ndarray]) -> Figure:
    """Distribution of distinct codes per record: the real test split against every generator."""
    fig = _figure(7.0, 3.6, left=0.1, bottom=0.14)
    ax = fig.add_subplot()

    def draw(hist: np.ndarray, label: str, colour: str, width: float) -> None:
        share = hist / max(hist.sum(), 1)
        ax.step(np.arange(len(share)), share, where="mid", color=colour, linewidth=width, label=label)

    draw(real, "real (test split)", REAL_COLOUR, 2.0)
    for i, (name, hist) in enumerate(synthetic.items()):
        draw(hist, plain(name), PALETTE[i % len(PALETTE)], 1.0)
    ax.set_xlabel("distinct codes per record", fontsize=8)
    ax.set_ylabel("share of records", fontsize=8)
    ax.set_title("Codes per record", fontsize=9)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, frameon=False, ncols=2)
    return fig


@dataclass(frozen=True)
class TradeoffPoint:
    """A generator's mean (and std) on two axes, with badness (smaller is better) for the front."""

    name: str
    x: float
    x_std: float
    y: float
    y_std: float
    x_badness: float
    y_badness: float
    calibration: bool


def pareto_front(x_badness: np.ndarray, y_badness: np.ndarray) -> np.ndarray:
    """Mask of points no other point beats on both axes (smaller badness is better)."""
    x = np.asarray(x_badness, dtype=float)[:, None]
    y = np.asarray(y_badness, dtype=float)[:, None]
    no_worse = (x.T <= x) & (y.T <= y)  # [i, j]: j is at least as good as i on both axes
    better = (x.T < x) | (y.T < y)
    return ~(no_worse & better).any(axis=1)


def tradeoff_scatter(points: Sequence[TradeoffPoint], x_label: str, y_label: str, title: str, log_y: bool = False) -> Figure:
    """Scatter of two criteria with error bars and the Pareto front of the non-calibration rows.

    Calibration rows are drawn as grey reference marks; the front is over the other generators
    (over all rows when there are only calibration rows).
    """
    fig = _figure(5.8, 4.2, left=0.17, bottom=0.12)
    ax = fig.add_subplot()
    candidates = [p for p in points if not p.calibration] or list(points)
    on_front = pareto_front(np.array([p.x_badness for p in candidates]), np.array([p.y_badness for p in candidates]))
    front = sorted((p for p, f in zip(candidates, on_front) if f), key=lambda p: p.x_badness)
    for i, p in enumerate(points):
        colour = "#888888" if p.calibration else PALETTE[i % len(PALETTE)]
        y_err = np.nan_to_num(p.y_std)
        if log_y:  # a log axis cannot show mean − std ≤ 0: the lower bar stops at a tenth of the mean
            y_err = [[min(y_err, 0.9 * p.y)], [y_err]]
        ax.errorbar(p.x, p.y, xerr=np.nan_to_num(p.x_std), yerr=y_err, fmt="s" if p.calibration else "o",
                    color=colour, markersize=6, capsize=2, linewidth=0.8)
        ax.annotate(plain(p.name) + (" (calibration)" if p.calibration else ""), (p.x, p.y), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
    if front:
        ax.scatter([p.x for p in front], [p.y for p in front], s=160, facecolors="none", edgecolors="#222222",
                   linewidths=1.0, label="Pareto front", zorder=3)
    if len(front) > 1:
        ax.plot([p.x for p in front], [p.y for p in front], color="#222222", linestyle=":", linewidth=1.4)
    if front:
        ax.legend(fontsize=7, frameon=False)
    if log_y:
        ax.set_yscale("log")
    ax.margins(x=0.25, y=0.15)  # room for the labels beside the outermost points
    ax.set_xlabel(plain(x_label), fontsize=8)
    ax.set_ylabel(plain(y_label), fontsize=8)
    ax.set_title(plain(title), fontsize=9)
    ax.tick_params(labelsize=7)
    return fig


def training_curves(curves: Mapping[str, Mapping[int, Sequence[float]]], generator: str) -> Figure:
    """Per-epoch training series of one generator, one line per repeat, a panel per series."""
    names = list(curves)
    fig = _figure(min(3.6 * len(names), 10.8), 3.0, left=0.08, bottom=0.17, top=0.82, wspace=0.3)
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names):
        for k, values in sorted(curves[name].items()):
            ax.plot(np.arange(1, len(values) + 1), values, linewidth=1.0, color=PALETTE[k % len(PALETTE)],
                    marker="o" if len(values) <= 30 else None, markersize=3, label=f"repeat {k}")  # 1 epoch: a dot
        ax.set_title(plain(name), fontsize=8)
        ax.set_xlabel("epoch", fontsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        longest = max((len(v) for v in curves[name].values()), default=1)
        ax.set_xlim(0.5, longest + 0.5)
        ax.tick_params(labelsize=6)
    axes[0].legend(fontsize=6, frameon=False)
    fig.suptitle(f"{plain(generator)}: training curves", fontsize=9)
    return fig


def _plain(text: str) -> str:
    """Text drawn as given: a ``$`` would otherwise start matplotlib's mathtext."""
    return text.replace("$", r"\$")


def critical_difference(names: Sequence[str], average_ranks: Sequence[float], cd: float, title: str) -> Figure:
    """Demšar's (2006) critical-difference diagram: average ranks on an axis (1 = best, left), the
    critical difference as a bar, and a thick line under each maximal group of generators whose
    average ranks differ by less than it (the test cannot tell them apart)."""
    ranks = np.asarray(average_ranks, dtype=float)
    order = np.argsort(ranks, kind="stable")
    k = len(names)
    half = (k + 1) // 2
    rows = max(half, k - half)
    fig = _figure(7.0, 1.6 + 0.28 * rows, left=0.02, right=0.98, bottom=0.02, top=0.8)
    ax = fig.add_subplot()
    ax.set_axis_off()
    low, high = 1, max(k, 2)
    ax.set_xlim(low - 1.6, high + 1.6)
    ax.set_ylim(-(rows + 1.2), 1.6)
    ax.plot([low, high], [0, 0], color=REAL_COLOUR, linewidth=1)
    for tick in range(low, high + 1):
        ax.plot([tick, tick], [0, 0.12], color=REAL_COLOUR, linewidth=1)
        ax.text(tick, 0.22, str(tick), ha="center", va="bottom", fontsize=7)
    ax.plot([low, low + cd], [1.0, 1.0], color=REAL_COLOUR, linewidth=1.5)
    for end in (low, low + cd):
        ax.plot([end, end], [0.9, 1.1], color=REAL_COLOUR, linewidth=1.5)
    ax.text(low + cd / 2, 1.15, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=7)
    for position, index in enumerate(order):
        left = position < half
        level = -(position + 1) if left else -(k - position)
        x = ranks[index]
        edge = low - 0.3 if left else high + 0.3
        ax.plot([x, x, edge], [0, level, level], color=PALETTE[position % len(PALETTE)], linewidth=0.9)
        ax.text(edge - 0.05 if left else edge + 0.05, level, _plain(f"{names[index]} ({x:.2f})"),
                ha="right" if left else "left", va="center", fontsize=7)
    sorted_ranks = ranks[order]
    groups = []
    for start in range(k):
        stop = start
        while stop + 1 < k and sorted_ranks[stop + 1] - sorted_ranks[start] < cd:
            stop += 1
        if stop > start and not any(a <= start and stop <= b for a, b in groups):
            groups.append((start, stop))
    for g, (start, stop) in enumerate(groups):
        y = -0.35 - 0.22 * g
        ax.plot([sorted_ranks[start] - 0.05, sorted_ranks[stop] + 0.05], [y, y], color=REAL_COLOUR, linewidth=3,
                solid_capstyle="round")
    fig.suptitle(_plain(title), fontsize=8)
    return fig


@dataclass(frozen=True)
class IntervalRow:
    """One generator's mean and 95 % interval on one metric, for :func:`interval_panels`."""

    name: str
    mean: float
    low: float
    high: float
    calibration: bool
    marks: str = ""


def interval_panels(panels: Mapping[str, Sequence[IntervalRow]], title: str) -> Figure:
    """One panel per metric: each generator's mean with its 95 % interval, and the band between the
    calibration rows (grey squares) shaded, so a reader sees which generators sit inside the noise."""
    names = list(panels)
    columns = 2 if len(names) > 1 else 1
    rows = (len(names) + columns - 1) // columns
    height = max(len(v) for v in panels.values()) * 0.2 + 0.75  # inches per row of panels
    total = rows * height + 0.7
    fig = _figure(9.0 if columns == 2 else 5.0, total, left=0.17, right=0.98, bottom=0.25 / total,
                  top=1 - 0.7 / total, wspace=0.75)
    fig.subplots_adjust(hspace=0.55 / (height - 0.55) + 0.25)
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax in axes[len(names):]:
        ax.set_axis_off()
    for ax, metric in zip(axes, names):
        entries = panels[metric]
        y = np.arange(len(entries))[::-1]
        calibration = [e.mean for e in entries if e.calibration and np.isfinite(e.mean)]
        if len(calibration) >= 2:
            ax.axvspan(min(calibration), max(calibration), color="#dddddd", zorder=0, linewidth=0)
        for yi, e in zip(y, entries):
            if not np.isfinite(e.mean):
                continue
            colour = "#888888" if e.calibration else PALETTE[int(yi) % len(PALETTE)]
            err = None
            if np.isfinite(e.low) and np.isfinite(e.high):
                err = [[e.mean - e.low], [e.high - e.mean]]
            ax.errorbar(e.mean, yi, xerr=err, fmt="s" if e.calibration else "o", color=colour, markersize=4,
                        capsize=2, linewidth=0.9)
        ax.set_yticks(y, labels=[_plain(e.name + (f" {e.marks}" if e.marks else "")) for e in entries], fontsize=6)
        ax.set_title(_plain(metric), fontsize=7)
        ax.tick_params(axis="x", labelsize=6)
        ax.margins(y=0.15)
    fig.suptitle(_plain(title), fontsize=9)
    return fig
