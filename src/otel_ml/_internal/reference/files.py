"""Profiling a data file (CSV, Parquet, ``.npy``) in chunks: :meth:`Reference.from_file`.

One pass when the file fits the sample; otherwise a second pass counts the bin shares
exactly with the edges found in the first.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from otel_ml._internal.data.files import DataFileError, read_table, table_rows
from otel_ml._internal.reference.builder import ReferenceBuilder
from otel_ml._internal.reference.profile import Reference

__all__ = ["reference_from_file"]


def reference_from_file(path: str | os.PathLike, *, prediction_column: str | None = None,
                        exclude: Iterable[str] = (), categorical: Iterable[str] | None = None,
                        bins: int = 10, max_categories: int = 50, chunk_rows: int = 100_000,
                        sample_size: int = 1_000_000,
                        progress: Callable[[int, int | None], None] | None = None,
                        performance: Mapping[str, float] | None = None,
                        attributions: Mapping[str, float] | None = None) -> Reference:
    """Profile a data file; the arguments are those of :meth:`Reference.from_file`.

    Raises:
        DataFileError: The file is unreadable, empty or inconsistent; the message names the
            file (and the column, when one is at fault).
    """
    reader = _Reader(path, prediction_column, set(exclude), chunk_rows, progress)
    options: dict[str, Any] = {"bins": bins, "categorical": categorical,
                               "max_categories": max_categories, "sample_size": sample_size}
    builder = ReferenceBuilder(**options)
    rows = reader.feed(builder)
    if rows == 0:
        raise DataFileError(f"{reader.source}: no rows")
    first = builder.build(performance=performance, attributions=attributions)
    if rows <= sample_size:
        return first
    reader.second_pass(rows)
    # No sample in the exact pass: the central range and fine bins are the first pass's.
    exact = ReferenceBuilder(**options, edges_from=first, sample=False)
    reader.feed(exact)
    return exact.build(performance=performance, attributions=attributions)


class _Reader:
    """Feeds a file's chunks to builders, with progress over one or two passes."""

    def __init__(self, path: str | os.PathLike, prediction_column: str | None,
                 excluded: set[str], chunk_rows: int,
                 progress: Callable[[int, int | None], None] | None) -> None:
        self.path = path
        self.source = os.fspath(path)
        self.prediction_column = prediction_column
        self.excluded = excluded
        self.chunk_rows = chunk_rows
        self.progress = progress
        self.total = table_rows(path)
        self.passes = 1
        self.done = 0

    def second_pass(self, rows: int) -> None:
        self.passes, self.total = 2, rows

    def feed(self, builder: ReferenceBuilder) -> int:
        """Add every chunk of the file to ``builder``; the rows read."""
        seen = 0
        for chunk in read_table(self.path, chunk_rows=self.chunk_rows):
            label = self.prediction_column
            if label is not None and label not in chunk:
                raise DataFileError(f"{self.source}: no column {label!r} "
                                    f"(columns: {list(chunk)})")
            cols = {k: v for k, v in chunk.items() if k not in self.excluded and k != label}
            preds = chunk[label] if label is not None else None
            try:
                builder.update(cols, preds)
            except ValueError as exc:
                raise DataFileError(f"{self.source}: rows {seen}+: {exc}") from exc
            rows = _chunk_rows(chunk)
            seen += rows
            self.done += rows
            if self.progress is not None:
                self.progress(self.done, None if self.total is None else self.total * self.passes)
        return seen


def _chunk_rows(chunk: Mapping[str, Any]) -> int:
    for column in chunk.values():
        return len(column)
    return 0
