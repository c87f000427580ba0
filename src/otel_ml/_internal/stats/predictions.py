"""A model's predictions read as what scoring needs: class labels, probabilities or values.

:func:`read_predictions` turns one call's predictions (as the model returned them, or as a
batch job passes them) into :class:`Predictions`; :func:`label_rows` turns labels into one
value per row. Both are pure numpy and never touch telemetry.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from otel_ml._internal.data.arrays import to_array
from otel_ml._internal.stats.performance import label_strings
from otel_ml._internal.stats.task import REGRESSION
from otel_ml.contract import OTHER

__all__ = ["Predictions", "label_count", "label_rows", "missing_labels", "read_predictions"]


class Predictions:
    """Predictions of one call, interpreted.

    Attributes:
        n: Rows.
        labels: Class strings per row (classification), else ``None``.
        proba: ``(n, k)`` class probabilities, or ``(n,)`` positive-class probability.
        columns: Class of each probability column.
        pos_col: Column of the positive class, when known.
        values: Floats per row (regression), else ``None``.
    """

    __slots__ = ("columns", "labels", "n", "pos_col", "proba", "values")

    def __init__(self, n: int) -> None:
        self.n = n
        self.labels: np.ndarray | None = None
        self.proba: np.ndarray | None = None
        self.columns: list[str] = []
        self.pos_col: int | None = None
        self.values: np.ndarray | None = None


def read_predictions(arr: np.ndarray, output: str, task: str, rows: int | None,
                     declared: tuple[str, ...], positive: str,
                     threshold: float) -> Predictions | None:
    """Read predictions as class labels, probabilities or values.

    The kind is decided by the caller, once per monitor
    (:class:`~otel_ml._internal.stats.output_kind.OutputReading`), never guessed here.

    Args:
        arr: The predictions.
        output: How a classifier's output is read: ``label``, ``proba`` (probabilities: one
            column of the positive class, or one column per class) or ``score`` (decision
            scores: one column, positive when above 0, or one column per class, the largest
            wins; no probability metrics).
        task: ``classification`` or ``regression``.
        rows: Rows of the call's input, when known (a flat vector of one row's class
            probabilities is then read as one row).
        declared: Declared classes, in probability-column order.
        positive: The positive class (as a label string).
        threshold: Probability of the positive class from which it is predicted.

    Returns:
        The interpreted predictions, or ``None`` when they are unusable for ``task``.
    """
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if task == REGRESSION:
        return _values(arr)
    if output == "label":
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1:
            return None
        pred = Predictions(arr.shape[0])
        pred.labels = label_strings(arr)
        return pred
    if arr.dtype.kind not in "biuf":
        return None
    arr = arr.astype(np.float64)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim == 1 and rows == 1 and arr.size > 1:
        arr = arr.reshape(1, -1)  # one row's class probabilities (or scores), returned flat
    if output == "score":
        return _scores(arr, declared, positive)
    if arr.ndim == 1:  # probability of the positive class
        return _positive_probability(arr, declared, positive, threshold)
    return _class_probabilities(arr, declared, positive, threshold)


def _scores(arr: np.ndarray, declared: tuple[str, ...], positive: str) -> Predictions:
    """Decision scores: labels only (one column: positive above 0; else the largest)."""
    pred = Predictions(arr.shape[0])
    if arr.ndim == 1:
        negative = _negative(declared, positive)
        pred.labels = np.where(arr > 0.0, positive, negative).astype(object)
        return pred
    k = arr.shape[1]
    columns = list(declared) if len(declared) == k else [str(i) for i in range(k)]
    pred.labels = np.asarray(columns, dtype=object)[np.argmax(arr, axis=1)]
    return pred


def _values(arr: np.ndarray) -> Predictions | None:
    if arr.dtype.kind == "O":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            return None
    if arr.dtype.kind not in "biuf":
        return None
    if arr.ndim == 2:
        if arr.shape[1] != 1:
            return None
        arr = arr[:, 0]
    pred = Predictions(arr.shape[0])
    pred.values = arr.astype(np.float64)
    return pred


def _positive_probability(arr: np.ndarray, declared: tuple[str, ...], positive: str,
                          threshold: float) -> Predictions:
    negative = _negative(declared, positive)
    pred = Predictions(arr.shape[0])
    pred.proba = np.clip(arr, 0.0, 1.0)
    pred.columns = [negative, positive]
    pred.pos_col = 1
    pred.labels = np.where(arr >= threshold, positive, negative).astype(object)
    return pred


def _negative(declared: tuple[str, ...], positive: str) -> str:
    """The class a one-column output's non-positive rows get."""
    return next((c for c in declared if c != positive), "0" if positive == "1" else OTHER)


def _class_probabilities(arr: np.ndarray, declared: tuple[str, ...], positive: str,
                         threshold: float) -> Predictions:
    k = arr.shape[1]
    columns = list(declared) if len(declared) == k else [str(i) for i in range(k)]
    pred = Predictions(arr.shape[0])
    pred.proba = arr
    pred.columns = columns
    if k == 2 and positive in columns:
        pred.pos_col = columns.index(positive)
        pred.labels = np.where(arr[:, pred.pos_col] >= threshold, positive,
                               columns[1 - pred.pos_col]).astype(object)
    else:
        pred.labels = np.asarray(columns, dtype=object)[np.argmax(arr, axis=1)]
    return pred


def label_rows(actual: Any) -> np.ndarray | None:
    """Labels as one value per row (a scalar is one row), or ``None`` for another shape."""
    try:
        arr = to_array(actual)  # a pandas frame is left as it was
    except Exception:  # an object numpy cannot read is a wrong-shape label, not a failure
        return None
    if arr.ndim == 0:
        return arr.reshape(1)
    if arr.ndim == 2 and arr.shape[1] == 1:
        return arr[:, 0]
    return arr if arr.ndim == 1 else None


def label_count(actual: Any) -> int:
    """How many labels ``actual`` holds, for counting unscored ones (at least 1)."""
    try:
        arr = to_array(actual)
        return max(1, int(arr.shape[0])) if arr.ndim else 1
    except Exception:  # unreadable: one label
        return 1


def missing_labels(truth: np.ndarray) -> np.ndarray:
    """Boolean mask of the labels that are NaN or None."""
    if truth.dtype.kind == "f":
        return np.isnan(truth)
    if truth.dtype.kind == "O":
        return np.array([v is None or (isinstance(v, float) and math.isnan(v))
                         for v in truth.tolist()], dtype=bool)
    return np.zeros(truth.shape[0], dtype=bool)
