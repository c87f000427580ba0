"""Input adapters: what people pass to predict, turned into columns for the statistics.

Everything here is read-only on the caller's objects: a column is a view or a copy, never
written to. :func:`to_table` accepts numpy 1-D/2-D (and structured) arrays, pandas and polars
frames and series, a list of dicts, a dict of columns, a single dict (one row), nested lists,
scalars and anything with ``__array__`` (torch, jax, cupy-on-host...). pandas and polars are
never imported here: a frame is recognised by its type's module.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "InputError",
    "Table",
    "category_key",
    "count_items",
    "count_rows",
    "default_names",
    "is_categorical",
    "to_categories",
    "to_category_codes",
    "to_float",
    "to_float_masked",
    "to_table",
]


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


# ---------------------------------------------------------------------------------- tables


class InputError(ValueError):
    """An input that cannot be read as a table (reported as data quality, never raised out)."""


def default_names(n: int) -> tuple[str, ...]:
    """Names of unnamed positional columns: ``f0``, ``f1``, ..."""
    return tuple(f"f{i}" for i in range(n))


class Table:
    """One input seen as columns, without copying the caller's data where it can.

    Attributes:
        names: Column names, or ``None`` when the input is positional (arrays, lists).
        rows: Number of rows.
        width: Number of columns.
    """

    __slots__ = ("_get", "_matrix", "names", "rows", "width")

    def __init__(self, names: Sequence[str] | None, rows: int, width: int,
                 get: Callable[[int], Any], matrix: np.ndarray | None = None) -> None:
        self.names = list(names) if names is not None else None
        self.rows = rows
        self.width = width
        self._get = get
        self._matrix = matrix

    @property
    def matrix(self) -> np.ndarray | None:
        """The 2-D numpy array behind a positional table (rows x width), if there is one."""
        return self._matrix

    def column(self, position: int) -> Any:
        """Raw values of the column at ``position`` (a numpy array, or a pandas/polars series)."""
        return self._get(position)

    def column_named(self, name: str) -> Any:
        """Raw values of the column ``name``, or ``None`` when there is no such column."""
        if self.names is None:
            return None
        try:
            return self._get(self.names.index(name))
        except ValueError:
            return None


def _module(x: Any) -> str:
    return type(x).__module__.split(".", 1)[0]


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, bytes, bool, int, float, complex, np.generic))


def _array_table(a: np.ndarray) -> Table:
    if a.dtype.names:  # structured: named columns
        flat = a.reshape(-1)
        names = [str(n) for n in a.dtype.names]
        return Table(names, flat.shape[0], len(names), lambda i: flat[a.dtype.names[i]])
    if a.ndim == 0:
        a = a.reshape(1, 1)
    elif a.ndim == 1:
        a = a.reshape(1, -1)
    elif a.ndim > 2:
        a = a.reshape(a.shape[0], -1)
    return Table(None, a.shape[0], a.shape[1], lambda i: a[:, i], matrix=a)


def to_table(x: Any) -> Table:
    """View ``x`` as a table of columns.

    Args:
        x: The features of one predict call.

    Returns:
        A :class:`Table` whose columns are read lazily.

    Raises:
        InputError: ``x`` cannot be read as a table (e.g. its ``__array__`` raised).
    """
    if isinstance(x, np.ndarray):
        return _array_table(x)
    module = _module(x)
    if module == "pandas":
        if hasattr(x, "columns"):  # DataFrame
            cols = list(x.columns)
            return Table([str(c) for c in cols], len(x), len(cols), lambda i: x[cols[i]])
        if hasattr(x, "index") and getattr(x, "ndim", 1) == 1:  # Series: one column
            return Table([str(x.name) if x.name is not None else "f0"], len(x), 1, lambda i: x)
    if module == "polars":
        if hasattr(x, "columns") and hasattr(x, "get_column"):
            cols = list(x.columns)
            return Table(cols, x.height, len(cols), lambda i: x.get_column(cols[i]).to_numpy())
        if hasattr(x, "to_numpy") and hasattr(x, "name"):
            return Table([x.name or "f0"], len(x), 1, lambda i: x.to_numpy())
    if isinstance(x, Mapping):
        names = [str(k) for k in x]
        keys = list(x)
        if not keys:
            return Table([], 0, 0, lambda i: None)
        values = [x[k] for k in keys]
        if all(_is_scalar(v) for v in values):  # one row as a dict
            return Table(names, 1, len(names), lambda i: _object_column([values[i]]))
        rows = count_rows_of_column(values[0])
        return Table(names, rows, len(names), lambda i: _as_column(values[i]))
    if isinstance(x, (list, tuple)):
        if not x:
            return Table(None, 0, 0, lambda i: None)
        first = x[0]
        if isinstance(first, Mapping):
            names: dict[str, None] = {}
            for row in x:
                if isinstance(row, Mapping):
                    for key in row:
                        names.setdefault(key, None)
            keys = list(names)

            def get(i: int, key_list: list = keys) -> np.ndarray:
                key = key_list[i]
                return _object_column([r.get(key) if isinstance(r, Mapping) else None for r in x])

            return Table([str(k) for k in keys], len(x), len(keys), get)
        try:
            a = np.asarray(x)
            if a.dtype.kind in "US":  # mixed rows: keep each value's own type
                a = np.asarray(x, dtype=object)
        except Exception as exc:  # ragged
            raise InputError(f"cannot read a {type(x).__name__} of rows as a table: {exc}") from exc
        if a.dtype == object and a.ndim == 1 and not all(_is_scalar(v) for v in a):
            raise InputError("rows of different lengths")
        return _array_table(a)
    if _is_scalar(x):
        return _array_table(np.asarray([x], dtype=object if isinstance(x, (str, bytes)) else None))
    if hasattr(x, "__array__"):
        try:
            a = np.asarray(x)
        except Exception as exc:
            raise InputError(f"{type(x).__name__}.__array__ raised {type(exc).__qualname__}") from exc
        return _array_table(a)
    raise InputError(f"cannot read a {type(x).__module__}.{type(x).__qualname__} as features")


def _object_column(values: list) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _as_column(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.reshape(-1) if v.ndim != 1 else v
    if _module(v) in ("pandas", "polars"):
        return v
    if _is_scalar(v):
        return _object_column([v])
    if hasattr(v, "__array__") and not isinstance(v, (list, tuple)):
        return np.asarray(v).reshape(-1)
    try:
        a = np.asarray(v)
        if a.ndim == 1 and a.dtype != object and a.dtype.kind not in "US":
            return a
    except Exception:
        pass
    return _object_column(list(v))  # text or mixed values keep their own types


# ---------------------------------------------------------------------------------- columns


def _pandas_kind(col: Any) -> str | None:
    dtype = getattr(col, "dtype", None)
    name = getattr(dtype, "name", "")
    if name == "category":
        return "category"
    return None


def is_categorical(col: Any) -> bool:
    """Whether a raw column holds categories: strings, bools, pandas categoricals, objects
    that are not all numbers. ``None``/NaN are ignored."""
    if _pandas_kind(col) == "category":
        return True
    dtype = getattr(col, "dtype", None)
    if _module(col) == "polars":
        text = str(dtype)
        if text.startswith(("String", "Utf8", "Categorical", "Enum", "Boolean")):
            return True
        col = col.to_numpy()
        dtype = col.dtype
    if _module(col) == "pandas":
        kind = getattr(dtype, "kind", "O")
        if kind in "iufmM":
            return False
        if kind == "b" or str(dtype) == "boolean":
            return True
        col = col.to_numpy(dtype=object)
    arr = col if isinstance(col, np.ndarray) else np.asarray(col, dtype=object)
    kind = arr.dtype.kind
    if kind in "iufmMc":
        return False
    if kind in "bUS":
        return True
    for v in arr.reshape(-1)[:1000]:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        if isinstance(v, (bool, np.bool_, str, bytes)):
            return True
        if not isinstance(v, (int, float, np.number)):
            return True
    return False


def to_float_masked(col: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`to_float`, with the mask of the values that were not numbers (``None``: none)."""
    values, bad = to_float(col)
    if not bad:
        return values, None
    arr = col.to_numpy(dtype=object) if hasattr(col, "to_numpy") else np.asarray(col, dtype=object)
    flat = arr.reshape(-1)
    mask = np.zeros(flat.shape[0], dtype=bool)
    for i in np.flatnonzero(np.isnan(values.reshape(-1))):
        v = flat[i]
        if v is not None and not _is_na(v):
            mask[i] = True
    return values, mask


def _pandas_numbers_only(col: Any) -> bool:
    """Whether a pandas object column holds only real numbers and missing values (C speed)."""
    from pandas.api.types import infer_dtype

    return infer_dtype(col, skipna=True) in ("floating", "integer", "mixed-integer-float",
                                             "boolean", "decimal", "empty")


def to_float(col: Any) -> tuple[np.ndarray, int]:
    """Convert a raw column to float64 without touching the caller's data.

    Missing values (``None``, NaN, pandas NA, polars null) become NaN. Values that are not
    numbers (e.g. strings) become NaN too and are counted as type mismatches.

    Returns:
        ``(values, n_type_mismatch)``; ``values`` may share memory with ``col`` (read-only use).
    """
    if _module(col) == "pandas":
        if _pandas_kind(col) == "category":
            col = col.to_numpy(dtype=object)
        else:
            kind = getattr(col.dtype, "kind", "O")
            if kind in "iufb" and getattr(col, "hasnans", False) is False:
                try:
                    return col.to_numpy(dtype=np.float64), 0
                except (TypeError, ValueError):
                    pass
            # Object columns convert at once only when they hold numbers (and missing values):
            # pandas would cast complex numbers to their real part, with a warning in the host.
            if kind in "iufb" or (kind == "O" and _pandas_numbers_only(col)):
                try:
                    return col.to_numpy(dtype=np.float64, na_value=np.nan), 0
                except (TypeError, ValueError):
                    pass
            col = col.to_numpy(dtype=object)
    elif _module(col) == "polars":
        col = col.to_numpy() if not isinstance(col, np.ndarray) else col
    arr = col if isinstance(col, np.ndarray) else np.asarray(col)
    kind = arr.dtype.kind
    if kind == "f":
        return (arr if arr.dtype == np.float64 else arr.astype(np.float64)), 0
    if kind in "iub":
        return arr.astype(np.float64), 0
    if kind in "mM":
        return arr.astype("int64").astype(np.float64), 0
    if kind in "US":
        return np.full(arr.shape, np.nan), int(arr.size)
    flat = arr.reshape(-1)
    out = np.empty(flat.shape[0], dtype=np.float64)
    bad = 0
    for i, v in enumerate(flat):
        if v is None:
            out[i] = np.nan
        elif isinstance(v, (str, bytes, bool, np.bool_)):
            out[i] = np.nan
            if isinstance(v, (str, bytes)):
                bad += 1
            else:
                out[i] = float(v)
        elif isinstance(v, (complex, np.complexfloating)):
            out[i] = np.nan
            bad += 1
        else:
            try:
                out[i] = float(v)
            except (TypeError, ValueError):
                out[i] = np.nan
                if not _is_na(v):
                    bad += 1
    return out, bad


def _is_na(v: Any) -> bool:
    try:
        return bool(v != v) or type(v).__name__ in ("NAType", "NaTType")
    except Exception:
        return False


def category_key(v: Any) -> str | None:
    """The string a value is known by in a categorical profile (``None`` when missing).

    Integral numbers lose their type (``3``, ``3.0`` and ``np.int64(3)`` are all ``"3"``) so a
    column read as floats from a file matches the same column read as integers.
    """
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, (bool, np.bool_)):
        return "True" if v else "False"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return None
        if math.isfinite(v) and float(v).is_integer():
            return str(int(v))
        return repr(float(v))
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if _is_na(v):
        return None
    return str(v)


def _factorize(arr: np.ndarray) -> tuple[np.ndarray, list]:
    """(codes with -1 for missing, uniques) of a 1-D array."""
    pd = sys.modules.get("pandas")
    if pd is not None:
        try:
            codes, uniques = pd.factorize(arr, use_na_sentinel=True)
            return np.asarray(codes, dtype=np.int64), list(uniques)
        except Exception:
            pass
    if arr.dtype.kind in "iubf":
        mask = np.isnan(arr) if arr.dtype.kind == "f" else None
        if mask is not None and mask.any():
            uniques, inverse = np.unique(arr[~mask], return_inverse=True)
            codes = np.full(arr.shape[0], -1, dtype=np.int64)
            codes[~mask] = inverse
            return codes, list(uniques)
        uniques, inverse = np.unique(arr, return_inverse=True)
        return inverse.astype(np.int64), list(uniques)
    seen: dict[Any, int] = {}
    codes = np.empty(arr.shape[0], dtype=np.int64)
    uniques: list = []
    for i, v in enumerate(arr):
        try:
            code = seen.get(v)
        except TypeError:  # unhashable
            v = repr(v)
            code = seen.get(v)
        if code is None:
            if v is None or _is_na(v):
                codes[i] = -1
                continue
            code = seen[v] = len(uniques)
            uniques.append(v)
        codes[i] = code
    return codes, uniques


def to_categories(col: Any) -> tuple[np.ndarray, list[str | None]]:
    """Factorize a raw column into ``(codes, keys)``: ``codes[i]`` indexes ``keys`` (-1 when
    missing) and each key is :func:`category_key` of the value (``None`` when missing)."""
    if _module(col) == "pandas":
        if _pandas_kind(col) == "category":
            cat = col.array if hasattr(col, "array") else col
            codes = np.asarray(cat.codes, dtype=np.int64)
            keys = [category_key(v) for v in cat.categories]
            return codes, keys
        col = col.to_numpy(dtype=object) if col.dtype.kind not in "iufb" else col.to_numpy()
    elif _module(col) == "polars":
        col = col.to_numpy()
    arr = col if isinstance(col, np.ndarray) else np.asarray(col, dtype=object)
    arr = arr.reshape(-1)
    codes, uniques = _factorize(arr)
    return codes, [category_key(u) for u in uniques]


def to_category_codes(col: Any, codes: Mapping[str, int] | None, other: int) -> np.ndarray:
    """The category code of each value of a raw column, as floats (the one category lookup).

    Args:
        col: The raw column.
        codes: Category key (:func:`category_key`) -> code; ``None`` without a reference.
        other: Code of the keys not in ``codes``.

    Returns:
        ``codes[key]``, ``other`` for an unknown key, NaN when missing; without ``codes``,
        ``0.0`` for every present value.
    """
    positions, keys = to_categories(col)
    if codes is None:  # no reference: present or missing
        lookup = [0.0 if k is not None else np.nan for k in keys]
    else:
        lookup = [float(codes.get(k, other)) if k is not None else np.nan for k in keys]
    return np.array(lookup + [np.nan])[positions]
