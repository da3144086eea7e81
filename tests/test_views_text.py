"""The presentation vocabulary: one number formatter, one mean ± std, arrows and phrases for directions."""

from __future__ import annotations

import math

import numpy as np

from ehrbench.api import Direction
from ehrbench.views.text import arrow, better, format_mean_std, format_number


def test_numbers_and_spreads_are_written_one_way():
    assert format_number(0.0123456) == "0.0123" and format_number(0.0123456, 4) == "0.01235"
    assert format_number(120.0) == "120" and format_number(np.float32(1234.5)) == "1.23e+03"
    assert format_number(7) == "7" and format_number(np.int64(7)) == "7"
    for missing in (None, math.nan, np.float64("nan")):
        assert format_number(missing) == "—" and format_mean_std(missing, 1.0) == "—"
    assert format_number(-math.inf) == "−∞" and format_number(math.inf) == "∞"
    assert format_mean_std(0.5, 0.01234) == "0.5 ± 0.0123" and format_mean_std(0.5, math.nan) == "0.5"


def test_directions_read_the_same_everywhere():
    cases = [(Direction(True), "↑", "higher is better"), (Direction(False), "↓", "lower is better"),
             (Direction(False, 0.5), "→0.5", "closer to 0.5 is better"), (None, "", "not ranked")]
    for direction, mark, phrase in cases:
        assert arrow(direction) == mark and better(direction) == phrase
