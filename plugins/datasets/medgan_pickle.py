"""The medGAN pipeline's pickled ``.matrix`` (+ ``.types``) files, read only when the user allows it.

medGAN's ``process_mimic.py`` writes a pickled NumPy array (patients × codes) and a pickled
dict ``{"D_401": column, …}``. Unpickling can run arbitrary code, so it happens only behind an
explicit ``allow_pickle`` option, with a warning, and through an unpickler that refuses every
global except the few NumPy needs to rebuild an array: a pickle that names anything else
(``os.system``, …) is rejected before it can run.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ehrbench import InputError

from .icd9 import column_order

PICKLE_WARNING = (
    "reading a pickled file: unpickling can run code hidden in the file. ehrbench only lets "
    "NumPy's array constructors through, but open pickles only from a source you trust."
)
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how protocol-2 pickles carry an array's raw bytes (a pure function)
}
MEDGAN_PREFIX = "D_"


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refused to load global '{module}.{name}'")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return super().find_class(module, name)


def _unpickle(path: Path) -> Any:
    if not path.is_file():
        raise InputError(f"{path}: file not found.")
    try:
        with open(path, "rb") as fh:
            # latin1: medGAN ran on Python 2, whose pickled arrays hold byte strings.
            return _ArrayUnpickler(fh, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError,
            IndexError, KeyError, OSError) as exc:
        raise InputError(
            f"{path}: not a pickle of a NumPy array or a code dict as medGAN writes ({exc})."
        ) from None


def _code_names(types_path: Path, d: int) -> list[str]:
    types = _unpickle(types_path)
    if not isinstance(types, dict):
        raise InputError(
            f"{types_path}: expected a pickled dict code → column, got {type(types).__name__}."
        )
    names = [""] * d
    for code, column in types.items():
        if not isinstance(column, (int, np.integer)) or not 0 <= int(column) < d:
            raise InputError(
                f"{types_path}: code {code!r} maps to column {column!r}; the matrix has columns "
                f"0 to {d - 1}."
            )
        text = code.decode("latin1") if isinstance(code, bytes) else str(code)
        names[int(column)] = text[len(MEDGAN_PREFIX):] if text.startswith(MEDGAN_PREFIX) else text
    missing = [j for j, n in enumerate(names) if not n]
    if missing:
        raise InputError(f"{types_path}: no code is mapped to column {missing[0]} of the matrix.")
    return names


def read_medgan(matrix_path: Path, types_path: Path | None) -> tuple[np.ndarray, list[str], dict[str, Any]]:
    """(X, code names, meta) from medGAN's files; columns sorted into ehrbench's order when named."""
    warnings.warn(PICKLE_WARNING, UserWarning, stacklevel=2)
    X = _unpickle(matrix_path)
    if not isinstance(X, np.ndarray) or X.ndim != 2:
        shape = getattr(X, "shape", None)
        raise InputError(
            f"{matrix_path}: expected a pickled 2-D NumPy array (patients × codes), got "
            f"{type(X).__name__}{f' of shape {shape}' if shape is not None else ''}."
        )
    if types_path is None:
        return X, [str(j) for j in range(X.shape[1])], {"column_order": "as in the .matrix file"}
    names = _code_names(types_path, X.shape[1])
    order = column_order(names)
    return X[:, order], [names[j] for j in order], {"column_order": "numeric, then V, then E groups"}
