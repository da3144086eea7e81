"""The two workarounds ehrbench applies to SDV on wide tables; neither changes a result.

1. ctgan's column transform runs sequentially.

``ctgan.data_transformer.DataTransformer.transform`` (used by TVAE and CTGAN on every fit)
sends each column to ``joblib.Parallel(n_jobs=-1)`` as ``delayed(self._transform_column)``
once the table has 500 rows or more. The bound method drags ``self`` along, so joblib
pickles the whole transformer, with every column's fitted encoder, once per column: the
cost grows with the square of the column count. On 10,000 × 1,071 this took 677 s
(categorical) and 999 s (numerical) of a single fit, against seconds sequentially
(``benchmarks/bench_sdv_transform.py`` measures it).

:func:`sequential_column_transform` routes ``_parallel_transform`` to ctgan's own
``_synchronous_transform`` (the path it takes below 500 rows) for the duration of a fit.
The per-column functions, their order and their random states are the same, so the
transformed matrix is identical. The parallel path transforms copies of the column
encoders in the workers, leaving the parent's encoders as they were; the sequential path
would advance their ``transform`` random states, so those are put back afterwards, and the
fitted transformer ends up exactly as SDV leaves it.

2. SDV's data validation of ``numerical`` columns calls ``_is_numerical_type`` once per value
(``Series.apply``): about 0.1 s per column of 32,564 rows, two minutes at 1,071 columns.
For a column whose dtype is a NumPy integer or float type every value passes that check by
construction, so :func:`numeric_validation_shortcut` answers "no invalid values" for such
columns and defers to SDV for every other column or check.

:func:`wide_table_workarounds` applies both for the duration of a fit.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

_lock = threading.RLock()


def _sequential_transform(self: Any, raw_data: Any, column_transform_info_list: list[Any]) -> list[Any]:
    """ctgan's ``_parallel_transform`` contract, computed by its ``_synchronous_transform``."""
    saved = []
    for info in column_transform_info_list:
        states = getattr(info.transform, "random_states", None)
        saved.append((info.transform, dict(states) if isinstance(states, dict) else None))
    try:
        return self._synchronous_transform(raw_data, column_transform_info_list)
    finally:
        for encoder, states in saved:
            if states is not None:
                encoder.random_states = states


def workaround_applies(data_transformer_cls: Any) -> bool:
    """Whether ctgan still has the two methods the workaround swaps (else it stays off)."""
    return callable(getattr(data_transformer_cls, "_parallel_transform", None)) and callable(
        getattr(data_transformer_cls, "_synchronous_transform", None)
    )


@contextmanager
def sequential_column_transform() -> Iterator[bool]:
    """Within the block, ctgan transforms columns sequentially; yields whether it was applied.

    The patch is on the class, so it holds for the synthesizer ctgan builds inside SDV's
    ``fit``; it is undone on exit, and a lock keeps two threads from interleaving it.
    """
    from ctgan.data_transformer import DataTransformer

    if not workaround_applies(DataTransformer):
        warnings.warn(
            "ctgan's DataTransformer no longer has _parallel_transform/_synchronous_transform; "
            "ehrbench's sequential-transform workaround is off and wide fits may be slow.",
            RuntimeWarning,
            stacklevel=3,
        )
        yield False
        return
    with _lock:
        original = DataTransformer.__dict__.get("_parallel_transform")
        DataTransformer._parallel_transform = _sequential_transform
        try:
            yield True
        finally:
            if original is None:
                del DataTransformer._parallel_transform
            else:
                DataTransformer._parallel_transform = original


def _numeric_shortcut(original: Any, is_numerical_type: Any) -> Any:
    def get_invalid_column_values(column: Any, validation_function: Any) -> set[Any]:
        kind = getattr(column.dtype, "kind", "O")
        if validation_function is is_numerical_type and kind in "iuf":
            return set()
        return original(column, validation_function)

    return staticmethod(get_invalid_column_values)


@contextmanager
def numeric_validation_shortcut() -> Iterator[bool]:
    """Within the block, SDV skips its per-value check on numeric-dtype numerical columns."""
    from sdv import _utils
    from sdv.metadata import _single_table

    cls = _single_table._SingleTableMetadata
    original = cls.__dict__.get("_get_invalid_column_values")
    is_numerical_type = getattr(_utils, "_is_numerical_type", None)
    if not isinstance(original, staticmethod) or is_numerical_type is None:
        yield False
        return
    with _lock:
        cls._get_invalid_column_values = _numeric_shortcut(original.__func__, is_numerical_type)
        try:
            yield True
        finally:
            cls._get_invalid_column_values = original


@contextmanager
def wide_table_workarounds() -> Iterator[tuple[bool, bool]]:
    """Both workarounds for one fit; yields which of them were applied."""
    with ExitStack() as stack:
        applied = (stack.enter_context(sequential_column_transform()),
                   stack.enter_context(numeric_validation_shortcut()))
        yield applied
