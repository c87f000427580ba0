"""The prepared batch: one call's input and predictions, as every analysis is fed them.

A :class:`Batch` is made by :class:`otel_ml._internal.monitor.feature_ingest.FeatureIngest`
(once per call) and read by the analyses: the feature statistics read its converted values,
the outcomes read its rows, segments and columns and keep it (:meth:`Batch.keep`) to bin its
rows when the label arrives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np

from otel_ml._internal.core.log import internal_error

__all__ = ["Batch", "BatchReader", "FeatureMatrix", "RowBins", "SchemaIssue"]


class SchemaIssue(NamedTuple):
    """A data-quality count that belongs to no column of the plan (or to the input itself).

    Attributes:
        feature: The column it is reported under (``ml.feature.name``).
        check: The check (a :class:`otel_ml.contract.Check` value).
        count: How many.
    """

    feature: str
    check: str
    count: int


@dataclass(frozen=True)
class RowBins:
    """Reference bin of each row's value of each feature.

    Attributes:
        features: Feature names, in the column order of ``bins``.
        bins: ``(rows, len(features))`` int64; -1 where the value is missing or not binned.
    """

    features: tuple[str, ...]
    bins: np.ndarray


class FeatureMatrix:
    """A batch's input and predictions converted for the feature statistics.

    Attributes:
        values: ``(rows, features)`` float64 in plan order (categorical values as category
            codes, NaN when missing), or ``None`` when the call had no input. May be the
            caller's own array: read only.
        mismatch: ``(rows, features)`` mask of the values that are NaN because they were not
            numbers (type mismatches), or ``None`` when there are none.
        absent: Plan features absent from the input (schema issues, not missing values).
        predictions: The predictions as one float column (categorical: codes), or ``None``.
    """

    __slots__ = ("absent", "mismatch", "predictions", "values")

    def __init__(self, values: np.ndarray | None, mismatch: np.ndarray | None,
                 absent: list[int], predictions: np.ndarray | None) -> None:
        self.values = values
        self.mismatch = mismatch
        self.absent = absent
        self.predictions = predictions


class BatchReader(Protocol):
    """What reads a batch's input again (the feature ingest, which knows the columns)."""

    def column_of(self, x: Any, name: str) -> np.ndarray | None:
        """Raw values of input column ``name`` of ``x`` (``None`` when absent)."""


class Batch:
    """One call's input and predictions, prepared once and fed to every analysis.

    Attributes:
        rows: Rows in the call.
        segment: The call's segment (``None`` when it has none).
        segments: Per-row segments (when ``segment_by`` names a column), else ``None``.
        input: The caller's input as passed (``None``: predictions only). Read only.
        outlier_rate: Share of the rows scored as outliers: known for single rows and for
            batches the statistics took at once (set by them); ``None`` otherwise and
            without a reference.
        row_prediction: For a single numeric row taken the short way (see
            ``FeatureIngest.prepare``), its prediction as a float (``+inf``: none, or not
            tracked); ``None`` for every other batch.
        matrix: The converted values for the feature statistics (``None`` for a single row
            taken the short way, and when the statistics cannot take the batch).
        issues: Data-quality counts outside the plan's columns (schema issues; an input that
            cannot be read at all).
        projected: Per-row ``(reconstruction error, centroid distance)`` of the call's
            embeddings (``monitor/input_derive.py``), or ``None``.
    """

    __slots__ = ("_reader", "input", "issues", "matrix", "outlier_rate", "projected",
                 "row_prediction", "rows", "segment", "segments")

    def __init__(self, reader: BatchReader, x: Any, rows: int, segment: str | None,
                 segments: np.ndarray | None = None, rate: float | None = None,
                 row_prediction: float | None = None, matrix: FeatureMatrix | None = None,
                 issues: list[SchemaIssue] | None = None) -> None:
        self._reader = reader
        self.input = x
        self.rows = rows
        self.segment = segment
        self.segments = segments
        self.outlier_rate = rate
        self.row_prediction = row_prediction
        self.matrix = matrix
        self.issues = issues
        self.projected: tuple[np.ndarray, np.ndarray] | None = None

    def column(self, name: str) -> np.ndarray | None:
        """Raw values of one input column (``None`` when absent). Never raises."""
        try:
            return self._reader.column_of(self.input, name)
        except Exception as exc:
            internal_error("column", exc)
            return None

    def keep(self) -> Batch:
        """A batch over the same input that is safe to hold after the call (a numpy input is
        copied: the caller may reuse its array); rows and segments are kept."""
        x = self.input
        return Batch(self._reader, x.copy() if type(x) is np.ndarray else x, self.rows,
                     self.segment, segments=self.segments, rate=self.outlier_rate)
