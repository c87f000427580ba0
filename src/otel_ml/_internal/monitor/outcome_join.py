"""Labels joined to predictions: :meth:`OutcomeJoin.record_outcome` (one label by prediction
id, joined to the remembered call) and :meth:`OutcomeJoin.record_outcomes` (labels and
predictions that arrive together).

Each join is traced: a short ``ml.outcome <model>`` span linked to the prediction's span (or
``ml.outcomes <model>`` for a batch), inside which scoring records the error histogram, so an
exemplar leads to the trace. Nothing here raises into the caller, except :class:`ValueError`
for misuse.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind

from otel_ml._internal.core.caps import CappedValues
from otel_ml._internal.core.log import internal_error
from otel_ml._internal.core.state import Switch
from otel_ml._internal.monitor.error_bins import ErrorBins
from otel_ml._internal.monitor.outcome_stats import OutcomeStats
from otel_ml._internal.monitor.prediction_store import PredictionStore, copy_predictions
from otel_ml._internal.monitor.settings import Settings
from otel_ml._internal.stats.performance import label_str
from otel_ml._internal.stats.output_kind import AMBIGUOUS, MISMATCH, PROBA, OutputReading
from otel_ml._internal.stats.predictions import (
    Predictions,
    label_count,
    label_rows,
    read_predictions,
)
from otel_ml._internal.stats.task import REGRESSION, TaskGuess
from otel_ml.contract import NO_SEGMENT, Attr

__all__ = ["MAX_GROUPS", "OutcomeJoin"]

#: Distinct groups of the sensitive attribute reported.
MAX_GROUPS = 50


class OutcomeJoin:
    """Joins labels to predictions and hands the rows to :class:`OutcomeStats`.

    Args:
        settings: The monitor's settings.
        tracer: The tracer of the outcome spans.
        attributes: The model's attributes (name, version).
        switch: The monitor's on/off switch.
        segment_values: Caps the segments of batch labels (shared with the monitor).
        task: The task, shared with the prediction store.
        outputs: How the model's output is read (decided once).
        store: The remembered predictions.
        stats: Scores the joined rows.
        bins: Reads the reference bins of a remembered input (``None``: no reference).
        clock: Monotonic seconds.
    """

    def __init__(self, settings: Settings, tracer: trace.Tracer, attributes: Mapping[str, str],
                 switch: Switch, segment_values: Callable[[Any], str], task: TaskGuess,
                 outputs: OutputReading, store: PredictionStore, stats: OutcomeStats,
                 bins: ErrorBins | None,
                 clock: Callable[[], float],
                 labelled: Callable[[Any, Any, str | None], None] | None = None) -> None:
        self._settings = settings
        self._tracer = tracer
        self._attributes = dict(attributes)
        self._switch = switch
        self._segment_values = segment_values
        self._task = task
        self._outputs = outputs
        self._store = store
        self._stats = stats
        self._bins = bins
        self._clock = clock
        #: Told of every scored label with its raw predictions (the suspect-label check).
        self._labelled = labelled
        self._declared = tuple(label_str(c) for c in settings.classes or ())
        self._positive = label_str(settings.positive_class)
        self._groups = CappedValues("fairness group", MAX_GROUPS)
        self._span_name = f"ml.outcome {settings.name}"
        self._batch_span_name = f"ml.outcomes {settings.name}"

    def record_outcome(self, prediction_id: str, actual: Any) -> None:
        """Score the label of one remembered call (never raises; any thread)."""
        if self._switch.off:
            return
        try:
            pid = str(prediction_id)
            now = self._clock()
            rec = self._store.take(pid, now)
            if type(rec) is str:
                self._stats.unmatch(rec, label_count(actual))
                return
            ctx = rec.span_context
            links = [Link(ctx)] if ctx is not None and ctx.is_valid else None
            span = self._tracer.start_span(self._span_name, kind=SpanKind.INTERNAL, links=links,
                                           attributes={**self._attributes,
                                                       Attr.PREDICTION_ID: pid})
            with trace.use_span(span, end_on_exit=True):
                s = self._settings
                read = self._read(rec.pred, rec.output, rec.rows, actual)
                if read is None:
                    return
                pred, provisional = read
                truth = label_rows(actual)
                segments = _record_segments(rec.segment, pred.n)
                if truth is None or truth.shape[0] != pred.n or segments is None:
                    self._stats.unmatch("wrong_shape", label_count(actual))
                    return
                groups = row_bins = None
                if rec.batch is not None:
                    if s.sensitive_attribute is not None:
                        column = _column(rec.batch, s.sensitive_attribute)
                        if column is not None:
                            groups = _per_row(column, pred.n, self._groups)
                    if self._bins is not None:
                        row_bins = self._bins.bins_of(rec.batch, pred.n)
                self._stats.score(pred, truth, segments, groups, row_bins, now, provisional)
                if self._labelled is not None:
                    self._labelled(rec.pred, truth, pid)
        except Exception as exc:
            internal_error("outcomes.record", exc)

    def record_outcomes(self, y_true: Any, y_pred: Any, segments: Any = None,
                        groups: Any = None) -> None:
        """Score labels and predictions that arrive together (never raises on bad data).

        Args:
            y_true: Actual labels or values, one per row.
            y_pred: Predicted labels, values, or ``(n, k)`` probabilities.
            segments: One segment for all rows, or one per row.
            groups: Sensitive-attribute value per row (fairness).

        Raises:
            ValueError: ``groups`` given but the monitor has no ``sensitive_attribute``.
        """
        if groups is not None and self._settings.sensitive_attribute is None:
            raise ValueError("groups were given but the monitor has no sensitive_attribute: "
                             "pass sensitive_attribute='column' to ModelMonitor")
        if self._switch.off:
            return
        try:
            pred_arr = copy_predictions(y_pred)
            if pred_arr is None:
                self._stats.unmatch("wrong_type", label_count(y_true))
                return
            self._task.see(pred_arr)
            read = self._read(pred_arr, "auto", None, y_true)
            if read is None:
                return
            pred, provisional = read
            truth = label_rows(y_true)
            if truth is None or truth.shape[0] != pred.n:
                self._stats.unmatch("wrong_shape", label_count(y_true))
                return
            seg = _per_row(segments, pred.n, self._segment_value)
            grp = None if groups is None else _per_row(groups, pred.n, self._groups)
            if seg is None or (groups is not None and grp is None):
                self._stats.unmatch("wrong_shape", pred.n)
                return
            span = self._tracer.start_span(self._batch_span_name, kind=SpanKind.INTERNAL,
                                           attributes={**self._attributes,
                                                       Attr.BATCH_SIZE: pred.n})
            with trace.use_span(span, end_on_exit=True):
                self._stats.score(pred, truth, seg, grp, None, self._clock(), provisional)
                if self._labelled is not None:
                    self._labelled(pred_arr, truth, None)
        except Exception as exc:
            internal_error("outcomes.record", exc)

    def _read(self, arr: np.ndarray, output: str, rows: int | None,
              actual: Any) -> tuple[Predictions, bool] | None:
        """The predictions read as the monitor decided (``(predictions, provisional)``), or
        ``None`` with the labels counted unmatched (unusable, or contradicting the decision:
        a data-quality problem of the predictions, never an exception)."""
        if arr.ndim == 0:
            arr = arr.reshape(1)
        task = self._task.resolve(arr, output)
        kind, state = "label", 0
        if task != REGRESSION:
            kind, state, decided = self._outputs.read(arr, output, rows)
            if decided and output == "auto":
                self._stats.settle(kind == PROBA)
            if state == MISMATCH:
                self._stats.unmatch("output_mismatch", label_count(actual))
                return None
        pred = read_predictions(arr, kind, task, rows, self._declared, self._positive,
                                self._settings.threshold)
        if pred is None:
            self._stats.unmatch("wrong_type", label_count(actual))
            return None
        return pred, state == AMBIGUOUS

    def _segment_value(self, value: Any) -> str:
        return NO_SEGMENT if value is None else self._segment_values(value)


def _record_segments(value: Any, n: int) -> np.ndarray | None:
    """Segments remembered with a call (already capped): the call's, or one per row."""
    if value is None or isinstance(value, str):
        return np.full(n, NO_SEGMENT if value is None else value, dtype=object)
    arr = np.asarray(value, dtype=object).ravel()
    if arr.size != n:
        return None
    return np.array([NO_SEGMENT if v is None else str(v) for v in arr.tolist()], dtype=object)


def _per_row(value: Any, n: int, mapper: Callable[[Any], str]) -> np.ndarray | None:
    """One string per row: a scalar repeated, or a sequence mapped value by value."""
    if value is None or isinstance(value, (str, bytes, int, float, bool)):
        return np.full(n, mapper(value), dtype=object)
    try:
        arr = np.asarray(value, dtype=object).ravel()
    except Exception:  # the caller's value is not a sequence: a wrong shape
        return None
    if arr.size != n:
        return None
    if n == 1:
        return np.array([mapper(arr[0])], dtype=object)
    try:
        uniques, inverse = np.unique(arr.astype(str), return_inverse=True)
    except (TypeError, ValueError):  # values numpy cannot compare as text: one by one
        return np.array([mapper(v) for v in arr.tolist()], dtype=object)
    names = np.array([mapper(u) for u in uniques.tolist()], dtype=object)
    return names[inverse.ravel()]


def _column(batch: Any, name: str) -> np.ndarray | None:
    """The values of column ``name`` of a held input, one per row, or ``None``."""
    values = batch.column(name)  # never raises
    if values is None:
        return None
    return np.array(values, dtype=object).ravel()
