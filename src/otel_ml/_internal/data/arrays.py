"""Whole inputs or results as one numpy array, read without touching the caller's object."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["to_array"]


def to_array(x: Any) -> np.ndarray:
    """``x`` as a numpy array, the caller's object left exactly as it was.

    A pandas DataFrame is read column by column: ``DataFrame.to_numpy()`` (and
    ``np.asarray(frame)``) consolidates a frame's blocks in place, a change the caller can see
    (e.g. in its pickle). Columns without a common dtype give an object array. pandas and
    polars series and polars frames convert through ``to_numpy()``; anything else through
    ``np.asarray``.

    Raises:
        Whatever ``np.asarray`` raises for ``x``.
    """
    module = type(x).__module__.split(".", 1)[0]
    if module == "pandas" and hasattr(x, "columns") and hasattr(x, "iloc"):
        rows, width = x.shape
        columns = [x.iloc[:, i].to_numpy() for i in range(width)]
        try:
            dtype = np.result_type(*columns) if columns else np.float64
        except TypeError:
            dtype = np.dtype(object)
        out = np.empty((rows, width), dtype=dtype)
        for i, column in enumerate(columns):
            out[:, i] = column
        return out
    if module in ("pandas", "polars") and hasattr(x, "to_numpy"):
        return np.asarray(x.to_numpy())
    return np.asarray(x)
