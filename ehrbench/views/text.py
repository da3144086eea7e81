"""The presentation vocabulary every view shares: numbers, mean ± std, and how a direction reads.

One formatter per thing, so the terminal, ``leaderboard.md``, the HTML report and ``compare``
write a number, a spread and a direction the same way. Directions are stored as text
(``api.direction_text``) and parsed back with ``api.parse_direction``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

from ehrbench.api import LEADERBOARD_CATEGORIES, Direction

MISSING = "—"


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, numbers.Real) and math.isnan(value))


def format_number(value: object, digits: int = 3) -> str:
    """A number to ``digits`` significant digits; missing (None, NaN) as an em dash, infinities as ∞."""
    if _missing(value):
        return MISSING
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Real):
        if math.isinf(value):
            return "−∞" if value < 0 else "∞"
        return f"{float(value):.{digits}g}"
    return str(value)


def format_mean_std(mean: object, std: object, digits: int = 3) -> str:
    """``mean ± std`` (the sample std over repeats; ``compare``); the std is left out when there is none."""
    if _missing(mean):
        return MISSING
    text = format_number(mean, digits)
    return text if _missing(std) else f"{text} ± {format_number(std, digits)}"


def _reading(direction: Direction | None) -> tuple[str, str]:
    if direction is None:
        return "", "not ranked"
    if direction.target is not None:
        return f"→{direction.target:g}", f"closer to {direction.target:g} is better"
    return ("↑", "higher is better") if direction.higher_is_better else ("↓", "lower is better")


def arrow(direction: Direction | None) -> str:
    """↑ higher is better, ↓ lower is better, →x closer to x is better; nothing for information."""
    return _reading(direction)[0]


def better(direction: Direction | None) -> str:
    """The direction as a phrase: ``lower is better``, ``closer to 0.5 is better``, ``not ranked``."""
    return _reading(direction)[1]


def format_interval(low: object, high: object, digits: int = 3) -> str:
    """``[low, high]``: a confidence interval; empty when there is none."""
    if _missing(low) or _missing(high):
        return ""
    return f"[{format_number(low, digits)}, {format_number(high, digits)}]"


def format_estimate(mean: object, low: object, high: object, digits: int = 3) -> str:
    """``mean [low, high]``: a mean with its 95 % interval (the interval left out when there is none)."""
    if _missing(mean):
        return MISSING
    interval = format_interval(low, high, digits)
    return f"{format_number(mean, digits)} {interval}" if interval else format_number(mean, digits)


# Where a generator sits against the calibration rows' band on a metric (leaderboard's noise_floor).
AS_GOOD_AS = "as_good_as"  # its interval reaches the best calibration row's: as good as it
NO_BETTER_THAN = "no_better_than"  # not clearly better than the worst calibration row
FLOOR_MARKS = {AS_GOOD_AS: "▲", NO_BETTER_THAN: "▼"}


def floor_legend() -> str:
    """The meaning of the noise-floor marks."""
    return (f"{FLOOR_MARKS[AS_GOOD_AS]} within the noise of the best calibration row on that metric, or better "
            f"(on fidelity: as good as real data); {FLOOR_MARKS[NO_BETTER_THAN]} not clearly better than the worst "
            f"calibration row (on fidelity: no better than ignoring correlations).")


def floor_phrase(noise_floor: object) -> str:
    """A ``noise_floor`` value in words: ``as good as <row>; no better than <row> or <row>``."""
    if not isinstance(noise_floor, str) or not noise_floor:
        return ""
    words = {AS_GOOD_AS: "as good as", NO_BETTER_THAN: "no better than"}
    parts = (p.split(":", 1) for p in noise_floor.split(";"))
    return "; ".join(f"{words[kind]} {' or '.join(names.split(','))}" for kind, names in parts)


def weights_text(weights: Mapping[str, float]) -> str:
    """The category weights of an overall ranking, in the categories' order."""
    return ", ".join(f"{c} {weights[c]:g}" for c in LEADERBOARD_CATEGORIES)
