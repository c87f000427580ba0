"""Folding pending calls into the estimation sums: the calls a monitor kept since the last
fold (predictions copied on the hot path, inputs kept for the loss model) are validated,
joined per time slot and evaluated as one batch: calibration and sums for a classifier, the
loss model for a regressor (see :mod:`otel_ml._internal.monitor.estimation`).

Sums do not depend on how rows were grouped into calls, so 1-row calls fold to the same
estimates as one batch of the same rows (up to float rounding).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from otel_ml._internal.reference.calibration import Calibration
from otel_ml._internal.reference.loss_model import LossModel
from otel_ml.contract import Excluded

__all__ = ["ClassRows", "Pending", "RegRows", "class_rows", "reg_rows", "row_segments"]

#: Rows of a probability row may sum to 1 within this.
SUM_TOLERANCE = 1e-3

#: ``(reason, rows)`` -> counts a data-quality problem of the predictions.
Exclude = Callable[[str, int], None]


class Pending(NamedTuple):
    """One call waiting to be folded in.

    Attributes:
        slot: Absolute time slot of the call.
        predictions: A private copy of the call's predictions.
        segments: The call's segment, or one per row.
        batch: The kept input (regression: the loss model's columns), or ``None``.
    """

    slot: int
    predictions: np.ndarray
    segments: Any
    batch: Any


class ClassRows(NamedTuple):
    """Valid rows of a classifier: predicted class, calibrated probabilities, score bin."""

    predicted: np.ndarray
    calibrated: np.ndarray
    score_bin: np.ndarray | None
    segments: Any


class RegRows(NamedTuple):
    """Valid rows of a regressor: expected absolute and squared errors."""

    absolute: np.ndarray
    squared: np.ndarray
    segments: Any


def row_segments(items: Sequence[Any], sizes: Sequence[int]) -> Any:
    """One segment for all rows (a string) when the items agree, else one per row."""
    first = items[0]
    if all(isinstance(s, str) and s == first for s in items):
        return first
    return np.concatenate([np.full(n, s, dtype=object) if isinstance(s, str)
                           else np.asarray(s, dtype=object).reshape(-1)
                           for s, n in zip(items, sizes)])


def _proba(arr: np.ndarray, k: int, exclude: Exclude) -> tuple[np.ndarray, np.ndarray | None] | None:
    """``(proba (rows, k), usable rows or None for all)``; ``None``: the call is unusable."""
    if arr.dtype.kind != "f":  # labels (or anything else): nothing to calibrate
        return None
    if arr.ndim <= 1 and k == 2:  # the positive-class probability
        p = arr.reshape(-1)
        good = (p >= 0.0) & (p <= 1.0)  # NaN fails both
        proba = np.column_stack([1.0 - p, p])
        if good.all():
            return proba, None
        finite = np.isfinite(p)
        exclude(Excluded.MISSING, int((~finite).sum()))
        exclude(Excluded.OUT_OF_RANGE, int((finite & ~good).sum()))
        return proba, good
    if arr.ndim == 1 and arr.shape[0] == k:  # one row
        arr = arr.reshape(1, k)
    if arr.ndim != 2 or arr.shape[1] != k:
        exclude(Excluded.WRONG_CLASS_COUNT, arr.shape[0] if arr.ndim else 1)
        return None
    with np.errstate(invalid="ignore"):
        in_range = ((arr >= 0) & (arr <= 1)).all(axis=1)  # NaN fails
        summed = np.abs(arr.sum(axis=1) - 1.0) <= SUM_TOLERANCE
    ok = in_range & summed
    if ok.all():
        return arr, None
    finite = np.isfinite(arr).all(axis=1)
    exclude(Excluded.MISSING, int((~finite).sum()))
    exclude(Excluded.OUT_OF_RANGE, int((finite & ~in_range).sum()))
    exclude(Excluded.NOT_NORMALISED, int((finite & in_range & ~summed).sum()))
    return arr, ok


def class_rows(items: Sequence[Pending], calibration: Calibration, threshold: float,
               edges: np.ndarray | None, exclude: Exclude) -> ClassRows | None:
    """Validate, join and calibrate the pending calls of one slot (``None``: no valid row)."""
    k = calibration.k
    parts, segs, sizes = [], [], []
    for item in items:
        read = _proba(item.predictions, k, exclude)
        if read is None:
            continue
        proba, ok = read
        seg = item.segments
        if ok is not None:
            proba = proba[ok]
            if not isinstance(seg, str):
                seg = np.asarray(seg, dtype=object).reshape(-1)[ok]
        if len(proba):
            parts.append(proba)
            segs.append(seg)
            sizes.append(len(proba))
    if not parts:
        return None
    proba = parts[0] if len(parts) == 1 else np.concatenate(parts)
    cal = calibration.apply(proba)
    if k == 2:
        predicted = (proba[:, 1] >= threshold).astype(np.int64)
        score_bin = np.searchsorted(edges, proba[:, 1], side="right") if edges is not None \
            else None
    else:
        predicted = proba.argmax(axis=1)
        score_bin = None
    return ClassRows(predicted, cal, score_bin, row_segments(segs, sizes))


def reg_rows(items: Sequence[Pending], model: LossModel, batch_of: Callable[[Any], Any],
             exclude: Exclude) -> RegRows | None:
    """Evaluate the loss model on the pending calls of one slot (``None``: no valid row)."""
    preds, segs, sizes, batches = [], [], [], []
    for item in items:
        pred = item.predictions
        if pred.dtype.kind not in "fiub":
            exclude(Excluded.WRONG_CLASS_COUNT, 1)
            continue
        if pred.ndim == 2 and pred.shape[1] == 1:
            pred = pred[:, 0]
        pred = pred.astype(np.float64, copy=False).reshape(-1)
        preds.append(pred)
        segs.append(item.segments)
        sizes.append(len(pred))
        batches.append(item.batch)
    if not preds:
        return None
    pred = preds[0] if len(preds) == 1 else np.concatenate(preds)
    column = _columns(batches, sizes, batch_of)
    a, s = model.expected(pred, column)
    segments = row_segments(segs, sizes)
    ok = np.isfinite(pred)
    if not ok.all():
        exclude(Excluded.MISSING, int((~ok).sum()))
        a, s = a[ok], s[ok]
        if not isinstance(segments, str):
            segments = segments[ok]
    return RegRows(a, s, segments) if len(a) else None


def _columns(batches: list[Any], sizes: list[int],
             batch_of: Callable[[Any], Any]) -> Callable[[str], np.ndarray | None]:
    """Column reader over the joined calls: numpy inputs of one width are stacked and read
    once; other inputs are read call by call (a call without the column: NaN, no factor)."""
    inputs = [None if b is None else b.input for b in batches]
    if inputs and all(type(x) is np.ndarray and x.ndim in (1, 2) for x in inputs):
        rows = [x.reshape(1, -1) if x.ndim == 1 else x for x in inputs]
        if len({r.shape[1] for r in rows}) == 1 and sum(len(r) for r in rows) == sum(sizes):
            joined = batch_of(rows[0] if len(rows) == 1 else np.concatenate(rows))
            n = sum(sizes)

            def stacked(name: str) -> np.ndarray | None:
                values = joined.column(name)
                return None if values is None or len(values) != n else values

            return stacked

    def by_call(name: str) -> np.ndarray | None:
        parts = []
        for b, n in zip(batches, sizes):
            values = None if b is None else b.column(name)
            if values is None or len(values) != n:
                values = np.full(n, np.nan)
            parts.append(np.asarray(values, dtype=object if np.asarray(values).dtype.kind
                                    in "OUS" else np.float64))
        if all(p.dtype == np.float64 for p in parts):
            return np.concatenate(parts)
        return np.concatenate([p.astype(object) for p in parts])

    return by_call
