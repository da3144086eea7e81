"""The presentation vocabulary every view shares: numbers, mean ± std, and how a direction reads.

One formatter per thing, so the terminal, ``leaderboard.md``, the HTML report and ``compare``
write a number, a spread and a direction the same way. Directions are stored as text
(``api.direction_text``) and parsed back with ``api.parse_direction``.
"""

from __future__ import annotations

import math
import numbers

from ehrbench.api import Direction

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
    """``mean ± std`` (the sample std over repeats); the std is left out when there is none."""
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
