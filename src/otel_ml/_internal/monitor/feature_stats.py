"""Feature statistics: the analysis that accumulates each batch into per-segment statistics.

Batches are processed with a handful of vectorised numpy passes (:func:`kernel.delta`); single
rows are copied into a preallocated micro-batch buffer that is processed every
:data:`BUFFER_ROWS` rows and at every collection. Results accumulate, per segment, into a
:class:`SegmentStats`: a ring of time slots (the drift window) plus cumulative counters. The
observable instruments read a :class:`Snapshot` of them at collection time.

Without a reference profile, moments and data quality (missing, non-finite, type and schema
mismatches) are still counted, but bins, drift, out-of-range, unseen categories and outliers
need a reference.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from otel_ml._internal.core.log import internal_error
from otel_ml._internal.monitor.analysis import Collector
from otel_ml._internal.monitor.batch import Batch, FeatureMatrix, SchemaIssue
from otel_ml._internal.monitor.feature_ingest import HUGE, FeatureIngest
from otel_ml._internal.monitor.feature_state import FeatureState
from otel_ml._internal.monitor.feature_readout import (
    SchemaKey,
    SegmentTotals,
    Snapshot,
    collectors,
    evaluate_window,
    segment_keys,
)
from otel_ml._internal.monitor.settings import Settings
from otel_ml._internal.stats.binplan import NUMERIC, BinPlan, RowOutlierTest
from otel_ml._internal.stats.drift import DriftReport
from otel_ml._internal.stats.kernel import delta
from otel_ml._internal.stats.ring import Delta, SegmentStats, SlotRing, Window
from otel_ml.contract import ALL_SEGMENTS, NO_SEGMENT

__all__ = ["BUFFER_ROWS", "SMALL_BATCH", "FeatureStatistics", "RowSink", "buffers_rows"]

#: Single rows are buffered and processed this many at a time.
BUFFER_ROWS = 256
#: Batches of at most this many rows go through the buffer; larger ones are processed at once.
SMALL_BATCH = 16
#: What receives the buffered rows when they are folded: ``(values, segments)``, the rows in
#: plan order (``(n, n_features)``) and each row's segment key.
RowSink = Callable[[np.ndarray, list[str]], None]


def buffers_rows(batch: Batch) -> bool:
    """Whether :class:`FeatureStatistics` takes ``batch``'s rows through its row buffer: a
    single row taken the short way, or a small batch of one segment with no absent or
    mismatched values (the rows another analysis may then read from the buffer, see
    :meth:`FeatureStatistics.add_row_sink`)."""
    if batch.row_prediction is not None:
        return True
    m = batch.matrix
    return m is not None and m.values is not None and batch.rows <= SMALL_BATCH \
        and batch.segments is None and m.mismatch is None and not m.absent
#: A collection reuses one snapshot of the statistics for at most this long.
SNAPSHOT_TTL_S = 1.0


class _BufferedRows:
    """Rows taken out of the micro-batch buffer: values, predictions (+inf: none), segments."""

    __slots__ = ("predictions", "segments", "values")

    def __init__(self, values: np.ndarray, predictions: np.ndarray, segments: list[str]) -> None:
        self.values = values
        self.predictions = predictions
        self.segments = segments


def _feed_sinks(sinks: list[RowSink], taken: _BufferedRows) -> None:
    for sink in sinks:
        try:
            sink(taken.values, taken.segments)
        except Exception as exc:
            internal_error("row sink", exc)


class FeatureStatistics:
    """Statistics of one model's inputs and predictions: an :class:`Analysis`.

    Args:
        settings: The monitor's settings (window, slots, drift rule).
        ingest: The feature ingest that prepares the batches (and holds the bin plan).
        clock: Monotonic time in seconds (the window's slots follow it).
    """

    def __init__(self, settings: Settings, ingest: FeatureIngest,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ingest = ingest
        self._clock = clock
        # Slot numbers of the window rings (each segment's SegmentStats holds its own ring).
        self._slot_of = SlotRing(1, settings.slot_s).slot_at
        self._slots = settings.slots
        self._window_s = settings.drift_window_s
        self._drift = settings.drift
        self._plan: BinPlan | None = None
        self._sinks: list[RowSink] = []
        self._reset()

    def add_row_sink(self, sink: RowSink) -> None:
        """Give the buffered rows (see :func:`buffers_rows`) to ``sink`` too when folded."""
        self._sinks.append(sink)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._snap_lock = threading.Lock()
        self._stats: dict[str, SegmentStats] = {}
        self._schema: dict[SchemaKey, int] = {}
        self._snapshot: Snapshot | None = None
        self._row_count = 0
        if self._plan is not None:
            self._allocate(self._plan)

    def _allocate(self, plan: BinPlan) -> None:
        """The buffer of single rows, and the outlier test of its rows, for ``plan``."""
        self._rows = np.zeros((BUFFER_ROWS, plan.n_features))
        self._row_predictions = np.zeros(BUFFER_ROWS)  # +inf: no prediction for the row
        self._row_segments: list[str] = [NO_SEGMENT] * BUFFER_ROWS
        self._row_count = 0
        self._row_test = RowOutlierTest(plan.row_bounds) if plan.has_outliers else None
        self._plan = plan

    def _current_plan(self) -> BinPlan | None:
        plan = self._plan
        if plan is None:
            plan = self._ingest.plan
            if plan is not None:
                with self._lock:
                    if self._plan is None:
                        self._allocate(plan)
        return plan

    # ------------------------------------------------------------------ Analysis
    def observe(self, batch: Batch) -> None:
        """Fold one prepared batch into the statistics (single rows into the buffer)."""
        p = batch.row_prediction
        if p is None:
            self._observe_batch(batch)
            return
        if self._plan is None:
            self._current_plan()
        test = self._row_test if batch.outlier_rate is None else None
        outside = -1
        with self._lock:
            i = self._row_count
            row = self._rows[i]
            row[:] = batch.input
            if test is not None:
                outside = test.count_outside(row)
                if outside:
                    row = row.copy()
            self._row_predictions[i] = p
            self._row_segments[i] = NO_SEGMENT if batch.segment is None else batch.segment
            self._row_count = i + 1
            full = self._take_rows() if i + 1 == BUFFER_ROWS else None
        if full is not None:
            self._fold_rows(full)
        if outside > 0:
            batch.outlier_rate = test.rate(row, outside)  # type: ignore[union-attr]
        elif outside == 0:
            batch.outlier_rate = 0.0

    def collectors(self) -> Mapping[str, Collector]:
        """The ten feature metrics (model attributes are added by the monitor)."""
        return collectors(self._snap, self._drift, self._window_s)

    def report(self) -> Mapping[str, Any]:
        """``{"drift": DriftReport}``: drift over the current window, evaluated now."""
        return {"drift": self.drift_report()}

    def after_fork(self) -> None:
        """In a forked child: drop what the parent counted; fresh locks."""
        self._reset()

    # ------------------------------------------------------------------ batches
    def _observe_batch(self, batch: Batch) -> None:
        m = batch.matrix
        seg = NO_SEGMENT if batch.segment is None else batch.segment
        if m is None:  # an unreadable input, or nothing known yet: its schema issues only
            if batch.issues:
                with self._lock:
                    self._count_schema(seg, batch.issues)
            return
        plan = self._current_plan()
        assert plan is not None
        issues = batch.issues or ()
        if buffers_rows(batch):
            self._buffer_rows(plan, m, seg, issues)
            return
        rate = self._fold(plan, m, seg, batch.segments, issues)
        if rate is not None:
            batch.outlier_rate = rate

    def _buffer_rows(self, plan: BinPlan, m: FeatureMatrix, seg: str,
                     issues: Iterable[SchemaIssue]) -> None:
        if issues:
            self._merge(seg, Delta(plan.n_columns, plan.n_reference), issues)
        values = m.values
        predictions = m.predictions
        assert values is not None
        for r in range(values.shape[0]):
            full = None
            with self._lock:
                i = self._row_count
                self._rows[i] = values[r]
                if predictions is None:
                    self._row_predictions[i] = np.inf
                else:
                    self._row_predictions[i] = predictions[r] if predictions[r] != np.inf \
                        else HUGE
                self._row_segments[i] = seg
                self._row_count = i + 1
                if i + 1 == BUFFER_ROWS:
                    full = self._take_rows()
            if full is not None:
                self._fold_rows(full)

    def _take_rows(self) -> _BufferedRows:
        """The buffered rows, copied out (under the lock); the buffer is empty after."""
        n = self._row_count
        taken = _BufferedRows(self._rows[:n].copy(), self._row_predictions[:n].copy(),
                              self._row_segments[:n])
        self._row_segments = [NO_SEGMENT] * BUFFER_ROWS
        self._row_count = 0
        return taken

    def _fold_rows(self, taken: _BufferedRows) -> None:
        plan = self._plan
        assert plan is not None
        keys = set(taken.segments)
        groups = [(k, None) for k in keys] if len(keys) == 1 else \
            [(k, np.array([s == k for s in taken.segments])) for k in keys]
        for key, mask in groups:
            values = taken.values if mask is None else taken.values[mask]
            predictions = taken.predictions if mask is None else taken.predictions[mask]
            has_prediction = ~np.isinf(predictions)  # +inf: no prediction for this row
            if plan.prediction_kind is not None and has_prediction.all():
                # Features and predictions as one block: one pass over both.
                d, _ = delta(plan, np.column_stack((values, predictions)), outliers=True)
            else:
                d, _ = delta(plan, values, outliers=True)
                if plan.prediction_kind is not None and has_prediction.any():
                    d.add(delta(plan, predictions[has_prediction].reshape(-1, 1),
                                [plan.n_features], outliers=False)[0])
            self._merge(key, d)
        _feed_sinks(self._sinks, taken)

    def _fold(self, plan: BinPlan, m: FeatureMatrix, seg: str, segments: np.ndarray | None,
              issues: Iterable[SchemaIssue]) -> float | None:
        """Fold a batch at once, per segment; its outlier rate (``None``: not scored)."""
        if segments is None:
            groups: list[tuple[str, Any]] = [(seg, None)]
        else:
            keys, inverse = np.unique(segments, return_inverse=True)
            groups = [(str(k), inverse == i) for i, k in enumerate(keys)]
        outliers = 0
        rows = 0
        for key, mask in groups:
            predictions = m.predictions if m.predictions is None or mask is None \
                else m.predictions[mask]
            if m.values is not None:
                block = m.values if mask is None else m.values[mask]
                if predictions is not None and plan.prediction_kind == NUMERIC:
                    # Features and numeric predictions as one block: one pass over both.
                    block = np.column_stack((block, predictions))
                    predictions = None
                mismatch = m.mismatch if m.mismatch is None or mask is None \
                    else m.mismatch[mask]
                d, flags = delta(plan, block, outliers=True, mismatch=mismatch, absent=m.absent)
                if flags is not None:
                    outliers += int(flags.sum())
                rows += block.shape[0]
            else:
                d = Delta(plan.n_columns, plan.n_reference)
                d.rows = int(mask.sum()) if mask is not None else (
                    predictions.shape[0] if predictions is not None else 0)
            if predictions is not None:
                d.add(delta(plan, predictions.reshape(-1, 1), [plan.n_features],
                            outliers=False)[0])
            self._merge(key, d, issues)
            issues = ()
        if m.values is None or not plan.has_outliers or rows == 0:
            return None
        return outliers / rows

    def _merge(self, key: str, d: Delta, issues: Iterable[SchemaIssue] = ()) -> None:
        plan = self._plan
        assert plan is not None
        slot = self._slot_of(self._clock())
        with self._lock:
            stats = self._stats.get(key)
            if stats is None:
                stats = self._stats[key] = SegmentStats(self._slots, plan.n_columns,
                                                        plan.n_reference, plan.n_extended,
                                                        plan.n_flagged)
            stats.add(d, slot)
            self._count_schema(key, issues)

    def _count_schema(self, key: str, issues: Iterable[SchemaIssue]) -> None:
        """Count schema issues (under the lock)."""
        for issue in issues:
            k = SchemaKey(key, issue.feature, issue.check)
            self._schema[k] = self._schema.get(k, 0) + issue.count

    # ------------------------------------------------------------------ merging (issue 20)
    def state(self) -> FeatureState:
        """Everything counted so far as mergeable sums (complete when the window holds every
        slot: a batch job's partition monitor, ``drift_window_s`` and ``slot_s`` huge)."""
        self.flush()
        slot = self._slot_of(self._clock())
        with self._lock:
            return FeatureState.of(self._stats, self._schema, slot)

    def absorb(self, state: FeatureState) -> None:
        """Count ``state`` (rows observed elsewhere, same reference) as if observed now."""
        if self._current_plan() is None:
            raise ValueError("statistics observed elsewhere need a reference profile")
        for key, d in state.deltas.items():
            self._merge(key, d)
        with self._lock:
            for k, n in state.schema.items():
                self._schema[k] = self._schema.get(k, 0) + n

    # ------------------------------------------------------------------ reading
    def flush(self) -> None:
        """Process the buffered single rows now."""
        with self._lock:
            taken = self._take_rows() if self._row_count else None
        if taken is not None:
            self._fold_rows(taken)

    def snapshot(self, at: float | None = None) -> Snapshot:
        """The statistics now, copied out (buffered rows are processed first)."""
        self.flush()
        snap = Snapshot(time.monotonic() if at is None else at, self._plan)
        slot = self._slot_of(self._clock())
        with self._lock:
            for key, st in self._stats.items():
                snap.totals[key] = SegmentTotals(st.rows, st.bins.copy(), st.issues.copy(),
                                                 st.outliers)
                snap.windows[key] = st.window(slot)
            snap.schema_issues = dict(self._schema)
        if snap.plan is not None and snap.windows:
            total: Window | None = None
            for w in snap.windows.values():
                total = w if total is None else total + w
            assert total is not None
            snap.windows[ALL_SEGMENTS] = total
        return snap

    def _snap(self, metric: str) -> Snapshot:
        """The snapshot of the collection in progress (a new one when ``metric`` read the
        last one already, or when it is older than :data:`SNAPSHOT_TTL_S`)."""
        with self._snap_lock:
            now = time.monotonic()
            snap = self._snapshot
            if snap is None or metric in snap.served or now - snap.at > SNAPSHOT_TTL_S:
                snap = self._snapshot = self.snapshot(now)
            snap.served.add(metric)
            return snap

    def drift_report(self, snap: Snapshot | None = None) -> DriftReport:
        """Drift over the current window, evaluated now (all traffic; ``.segments`` per
        segment); on ``snap`` when given (a report that also shows its distributions)."""
        snap = self.snapshot() if snap is None else snap
        plan = snap.plan
        keys = segment_keys(snap)
        if ALL_SEGMENTS not in keys:
            empty = Window.empty(plan.n_columns, plan.n_reference, plan.n_extended,
                                 plan.n_flagged) if plan else Window.empty(0, 0)
            return evaluate_window(plan, empty, ALL_SEGMENTS, self._drift, self._window_s)
        reports = {k: evaluate_window(plan, snap.windows[k], k, self._drift, self._window_s)
                   for k in keys}
        main = reports.pop(ALL_SEGMENTS)
        return DriftReport(main.segment, main.rows, main.window_s, main.features,
                           main.prediction, main.config, main.alpha_per_test, main.evaluated_at,
                           segments=reports, reason=main.reason)
