"""Arrays of text saved with object dtype, read without letting a pickle run code.

``np.array(df.columns)`` has object dtype, and NumPy saves such an array as a pickle, which
``np.load(allow_pickle=False)`` refuses (rightly: a pickle can run any code). The code names and
patient ids of a matrix file are often saved that way. This reader unpickles them with NumPy's
array constructor as the only code allowed to run, and accepts the result only when it is a 1-D
array whose every element is text (or, for ids, an integer).
"""

from __future__ import annotations

import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

# What unpickling an object array needs: the array and dtype constructors, nothing else.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refused to load '{module}.{name}': only an array of text may be read")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # numpy.core → numpy._core
            return super().find_class(module, name)


def _header(fh: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    fmt = np.lib.format
    version = fmt.read_magic(fh)
    if version == (1, 0):
        return fmt.read_array_header_1_0(fh)
    if version == (2, 0):
        return fmt.read_array_header_2_0(fh)
    return fmt._read_array_header(fh, version)  # (3, 0): the same header in UTF-8


def read_text_array(path: Path, key: str, integers: bool = False) -> np.ndarray:
    """The 1-D object array ``key`` of the ``.npz`` at ``path``, as text (ValueError when it is not).

    ``integers`` also accepts integer elements (patient ids), returned as text.
    """
    with zipfile.ZipFile(path) as archive, archive.open(f"{key}.npy") as fh:
        shape, _, dtype = _header(fh)
        if dtype != np.dtype(object):
            raise ValueError(f"array '{key}' has dtype {dtype}, not object")
        try:
            array = _ArrayUnpickler(fh).load()
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, KeyError,
                TypeError, ValueError) as exc:
            raise ValueError(f"array '{key}' is not a plain array of text ({exc})") from None
    if not isinstance(array, np.ndarray) or array.ndim != 1 or array.shape != tuple(shape):
        raise ValueError(f"array '{key}' is not a 1-D array of text")
    kinds = (str, int, np.integer) if integers else (str,)
    bad = next((v for v in array if not isinstance(v, kinds) or isinstance(v, bool)), None)
    if bad is not None:
        raise ValueError(f"array '{key}' holds {type(bad).__name__} {bad!r}; expected text")
    return np.array([str(v) for v in array], dtype=str)
