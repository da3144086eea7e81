"""ICD-9-CM diagnosis codes: the 3-character grouping of Choi et al. 2017, column order, titles.

Shared by the ``mimic3`` reader and the ``simulated`` cohort, so both name and order their
columns identically (a simulated file prepared as MIMIC-III gives back the same matrix).

- A group is the code's first 3 characters, except E-codes, which keep 4 (``E849``);
  V-codes keep 3 (``V45``). Leading zeros are part of the code (``038`` is not ``38``).
- Column order: numeric groups ascending (``001`` … ``999``), then V-groups (``V01`` …),
  then E-groups (``E800`` …). Every group has a fixed width per family, so this is a plain
  string sort within each family.
- Codes are matched exactly, never trimmed: ``"0414"`` and ``0414`` are the same only
  because the CSV parser removes the quotes, not because characters are stripped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

# A full ICD-9-CM diagnosis code as MIMIC-III stores it: no dot, leading zeros kept. ASCII digits
# only: a regular expression's \d also matches other scripts' digits (Arabic-Indic ٤٠١٩, full-width ４０１９).
CODE_PATTERN = re.compile(r"[0-9]{3,5}|V[0-9]{2,4}|E[0-9]{3,4}")
CODE_EXPECTED = "an ICD-9 diagnosis code without a dot: 3–5 digits, V + 2–4 digits, or E + 3–4 digits"


def is_code(code: str) -> bool:
    """Whether ``code`` is written like a MIMIC-III ICD9_CODE value."""
    return CODE_PATTERN.fullmatch(code) is not None


def group_of(code: str) -> str:
    """The 3-character group of a full code (4 characters for E-codes)."""
    return code[:4] if code.startswith("E") else code[:3]


def groups_of(codes: pd.Series) -> pd.Series:
    """:func:`group_of` over a Series of codes (vectorised string slicing)."""
    e = codes.str.startswith("E")
    return codes.str[:3].where(~e, codes.str[:4])


def family_rank(groups: Iterable[str]) -> np.ndarray:
    """0 for numeric groups, 1 for V, 2 for E: the first key of the column order."""
    return np.array([2 if g.startswith("E") else 1 if g.startswith("V") else 0 for g in groups])


def column_order(groups: Sequence[str]) -> np.ndarray:
    """Indices that sort ``groups`` into the documented column order."""
    names = np.asarray(groups, dtype=str)
    return np.lexsort((names, family_rank(names)))


def sort_groups(groups: Iterable[str]) -> list[str]:
    """``groups`` in column order (numeric, then V, then E; ascending within each)."""
    names = list(groups)
    return [names[i] for i in column_order(names)]


def group_titles(dictionary: pd.DataFrame) -> dict[str, str]:
    """A title per group from a D_ICD_DIAGNOSES table (columns ``code``, ``title``).

    D_ICD_DIAGNOSES lists full codes only. A group takes the title of the group code itself
    when it is listed (``486``), else of its "unspecified" sub-code (group + ``9``, e.g.
    ``4019`` for ``401``), else of its lowest listed code.
    """
    table = dictionary.assign(group=groups_of(dictionary["code"])).sort_values("code")
    by_code = dict(zip(table["code"], table["title"]))
    first = table.drop_duplicates("group").set_index("group")["title"].to_dict()
    return {g: by_code.get(g, by_code.get(g + "9", t)) for g, t in first.items()}
