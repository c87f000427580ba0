"""Input adapters: what people pass to predict, turned into columns for the statistics."""

from __future__ import annotations

from typing import Any

__all__ = ["count_items", "count_rows"]


def count_rows(x: Any) -> int:
    """Rows in a batch without converting it (O(1) for arrays, frames and sequences).

    A 1-D array or a flat list of numbers is one row; a 2-D array, a frame, a list of rows or
    of dicts counts its length; a dict of columns counts its first column; anything else is
    one row. Never raises.
    """
    try:
        shape = getattr(x, "shape", None)
        if shape is not None and not isinstance(x, type):
            if len(shape) >= 2:
                return int(shape[0])
            if len(shape) == 1 and hasattr(x, "columns") is False and hasattr(x, "index"):
                return int(shape[0])  # pandas Series: one column of many rows
            return 1
        if isinstance(x, dict):
            for column in x.values():
                return count_rows_of_column(column)
            return 0
        if isinstance(x, (list, tuple)):
            if not x:
                return 0
            first = x[0]
            if isinstance(first, (list, tuple, dict)) or hasattr(first, "shape"):
                return len(x)
            return 1
        return 1
    except Exception:
        return 1


def count_rows_of_column(column: Any) -> int:
    """Length of one column (a scalar column is one row)."""
    try:
        return len(column)
    except TypeError:
        return 1


def count_items(x: Any) -> int:
    """Length of a sequence, array (first axis) or frame; 1 for a scalar. Never raises.

    Used for predictions and pipeline-stage outputs, where a 1-D array is one item per row.
    """
    try:
        shape = getattr(x, "shape", None)
        if shape is not None and not isinstance(x, type):
            return int(shape[0]) if len(shape) else 1
        if isinstance(x, (str, bytes)):
            return 1
        return len(x)
    except Exception:
        return 1
