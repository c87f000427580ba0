"""Reading data files in chunks (for ``otel-ml profile`` and :meth:`Reference.from_file`).

CSV (pandas when installed, else the standard library), Parquet (pyarrow) and ``.npy`` (numpy,
memory-mapped). Every chunk is a dict of column name -> 1-D numpy array; unnamed ``.npy``
columns are ``f0``, ``f1``, ... Errors name the file (and the column or line when one is at
fault).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from otel_ml._internal.data.inputs import default_names

__all__ = ["SUFFIXES", "DataFileError", "read_table", "table_rows"]

#: File suffixes :func:`read_table` understands.
SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".npy")


class DataFileError(ValueError):
    """A data file that cannot be read; the message names the file (and column or line)."""


def _kind(path: str) -> str:
    lower = path.lower()
    for suffix in (".csv.gz", ".csv", ".tsv"):
        if lower.endswith(suffix):
            return "csv"
    if lower.endswith((".parquet", ".pq")):
        return "parquet"
    if lower.endswith(".npy"):
        return "npy"
    raise DataFileError(f"{path}: unsupported file type (expected one of {', '.join(SUFFIXES)})")


def _check_file(path: str) -> None:
    if not os.path.exists(path):
        raise DataFileError(f"{path}: no such file")
    if os.path.isdir(path):
        raise DataFileError(f"{path}: is a directory, not a data file")
    if not os.access(path, os.R_OK):
        raise DataFileError(f"{path}: permission denied")
    if os.path.getsize(path) == 0:
        raise DataFileError(f"{path}: the file is empty")


def table_rows(path: str | os.PathLike) -> int | None:
    """Rows in the file when known without reading it (Parquet, ``.npy``), else ``None``."""
    p = os.fspath(path)
    try:
        kind = _kind(p)
        if kind == "npy":
            return int(np.load(p, mmap_mode="r").shape[0])
        if kind == "parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(p).metadata.num_rows)
    except Exception:
        return None
    return None


def read_table(path: str | os.PathLike, *, chunk_rows: int = 100_000,
               columns: list[str] | None = None) -> Iterator[dict[str, np.ndarray]]:
    """Yield the file's rows in chunks of at most ``chunk_rows``.

    Args:
        path: A ``.csv`` (``.tsv``, ``.csv.gz``), ``.parquet`` or ``.npy`` file.
        chunk_rows: Rows per chunk.
        columns: Read only these columns (all by default).

    Yields:
        Dicts of column name -> 1-D numpy array (numbers as float64/int64, text as object).

    Raises:
        DataFileError: The file is missing, empty, of an unknown type, unreadable, has
            inconsistent rows, or lacks a requested column.
    """
    p = os.fspath(path)
    if not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    kind = _kind(p)
    _check_file(p)
    reader = {"csv": _read_csv, "parquet": _read_parquet, "npy": _read_npy}[kind]
    yielded = False
    for chunk in reader(p, chunk_rows):
        if columns is not None:
            absent = [c for c in columns if c not in chunk]
            if absent:
                raise DataFileError(f"{p}: no column(s) {absent} (columns: {list(chunk)})")
            chunk = {c: chunk[c] for c in columns}
        if chunk and len(next(iter(chunk.values()))):
            yielded = True
            yield chunk
    if not yielded:
        raise DataFileError(f"{p}: no data rows")


def _read_csv(path: str, chunk_rows: int) -> Iterator[dict[str, np.ndarray]]:
    sep = "\t" if path.lower().endswith(".tsv") else ","
    try:
        import pandas as pd
    except ImportError:
        yield from _read_csv_stdlib(path, chunk_rows, sep)
        return
    try:
        reader = pd.read_csv(path, sep=sep, chunksize=chunk_rows)
        for frame in reader:
            yield {str(c): _pandas_column(frame[c]) for c in frame.columns}
    except pd.errors.EmptyDataError:
        raise DataFileError(f"{path}: no columns (empty or blank file)") from None
    except pd.errors.ParserError as exc:
        raise DataFileError(f"{path}: malformed CSV: {exc}") from None
    except UnicodeDecodeError as exc:
        raise DataFileError(f"{path}: not a text file ({exc.reason})") from None
    except OSError as exc:
        raise DataFileError(f"{path}: cannot read: {exc}") from None


def _pandas_column(series: Any) -> np.ndarray:
    kind = series.dtype.kind
    if kind in "iufb":
        return series.to_numpy()
    return series.to_numpy(dtype=object)


def _read_csv_stdlib(path: str, chunk_rows: int, sep: str) -> Iterator[dict[str, np.ndarray]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f, delimiter=sep)
            header = next(reader, None)
            if not header:
                raise DataFileError(f"{path}: no header row")
            rows: list[list[str]] = []
            for line_no, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != len(header):
                    raise DataFileError(f"{path}: line {line_no} has {len(row)} fields, the "
                                        f"header has {len(header)}")
                rows.append(row)
                if len(rows) == chunk_rows:
                    yield _columns_from_rows(header, rows)
                    rows = []
            if rows:
                yield _columns_from_rows(header, rows)
    except UnicodeDecodeError as exc:
        raise DataFileError(f"{path}: not a UTF-8 text file ({exc.reason})") from None
    except OSError as exc:
        raise DataFileError(f"{path}: cannot read: {exc}") from None


def _columns_from_rows(header: list[str], rows: list[list[str]]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for i, name in enumerate(header):
        raw = [r[i] for r in rows]
        try:
            out[name] = np.array([float(v) if v != "" else np.nan for v in raw])
        except ValueError:
            col = np.empty(len(raw), dtype=object)
            col[:] = [v if v != "" else None for v in raw]
            out[name] = col
    return out


def _read_parquet(path: str, chunk_rows: int) -> Iterator[dict[str, np.ndarray]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataFileError(f"{path}: reading Parquet needs pyarrow "
                            "(pip install 'otel-ml[parquet]')") from None
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:
        raise DataFileError(f"{path}: not a readable Parquet file: {exc}") from None
    try:
        for batch in pf.iter_batches(batch_size=chunk_rows):
            chunk: dict[str, np.ndarray] = {}
            for name, column in zip(batch.schema.names, batch.columns):
                try:
                    chunk[name] = column.to_numpy(zero_copy_only=False)
                except Exception as exc:
                    raise DataFileError(f"{path}: column {name!r} ({column.type}) cannot be "
                                        f"read as values: {exc}") from None
                if chunk[name].dtype.kind not in "iufb":
                    chunk[name] = np.asarray(column.to_pylist(), dtype=object)
            yield chunk
    except DataFileError:
        raise
    except Exception as exc:
        raise DataFileError(f"{path}: cannot read: {exc}") from None


def _read_npy(path: str, chunk_rows: int) -> Iterator[dict[str, np.ndarray]]:
    try:
        a = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise DataFileError(f"{path}: not a readable .npy file ({exc})") from None
    except OSError as exc:
        raise DataFileError(f"{path}: cannot read: {exc}") from None
    if a.dtype.names:
        names = list(a.dtype.names)
        for start in range(0, a.shape[0], chunk_rows):
            part = a[start:start + chunk_rows]
            yield {n: np.asarray(part[n]) for n in names}
        return
    if a.ndim == 1:
        a = a.reshape(-1, 1)
    if a.ndim != 2:
        raise DataFileError(f"{path}: expected a 2-D array (rows x features), got shape "
                            f"{a.shape}")
    if a.dtype.kind not in "iufb":
        raise DataFileError(f"{path}: expected numbers, got dtype {a.dtype}")
    names = default_names(a.shape[1])
    for start in range(0, a.shape[0], chunk_rows):
        part = np.asarray(a[start:start + chunk_rows])
        yield {n: part[:, i] for i, n in enumerate(names)}
