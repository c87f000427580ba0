"""Performance without labels, behind the :class:`~otel_ml._internal.monitor.analysis.Analysis`
protocol: each call's predictions are calibrated (classifiers) or run through the loss model
(regressors) with the reference's estimation models, into cumulative counters (the expected
confusion matrix, expected errors, their variances: PromQL computes the estimates over any
window, per segment, across replicas) and into a ring of time slots (the in-process
estimates and bands of ``performance_report().estimated``).

The call itself only keeps a copy of its predictions (a regressor: with the columns its loss
model reads, :mod:`~otel_ml._internal.monitor.loss_input`, written side by side into a reused
:class:`~otel_ml._internal.monitor.loss_arena.LossArena`) with its time slot; the work is done
when the pending calls are folded in (:mod:`~otel_ml._internal.monitor.estimation_fold`): at
collection, for a report, or by the call that brings more than :data:`MAX_PENDING_ROWS` rows
pending (memory stays bounded). Folding is vectorised over all the pending rows of a time
slot: a binary classifier's are one lookup table and three ``bincount`` calls
(:class:`~otel_ml._internal.reference.score_table.ScoreTable`), a regressor's a handful of
table lookups (:class:`~otel_ml._internal.reference.loss_tables.LossTables`).

Off (one attribute test per call) without a reference fitted with labels. Bad predictions
(NaN, probabilities outside [0, 1] or not summing to 1, another number of classes) are counted
in ``ml.model.estimation.excluded`` by reason and left out of the estimate; nothing raises into
the call.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from otel_ml._internal.core.instruments import Points
from otel_ml._internal.core.log import internal_error, log_limited
from otel_ml._internal.core.scratch import Scratch
from otel_ml._internal.monitor.analysis import Collector
from otel_ml._internal.monitor.estimation_fold import (Pending, fold_binary, fold_multiclass,
                                                       fold_regression)
from otel_ml._internal.monitor.loss_arena import LossArena
from otel_ml._internal.monitor.loss_input import LossColumns
from otel_ml._internal.monitor.settings import Settings
from otel_ml._internal.monitor.suspect_labels import SuspectLabels
from otel_ml._internal.reference.profile import Reference
from otel_ml._internal.reference.score_table import ScoreTable
from otel_ml._internal.stats.estimation import ClassAcc, RegAcc, exported_classes
from otel_ml._internal.stats.ring import SlotRing
from otel_ml.contract import NO_SEGMENT, Attr

__all__ = ["EstimationAnalysis", "EstimationInput"]

#: Rows kept waiting to be folded in, at most (the call that passes it folds them in).
MAX_PENDING_ROWS = 100_000
#: A regressor's rows read in full per time slot (all traffic); beyond, every
#: SPARSE_STEP-th row (by its position in the slot's stream of rows: the same rows whether
#: they came one by one or in batches). The loss model costs about 60 ns a row: a busy
#: server would spend ~17% of a 1,000-row call's monitoring on it, ~9% with the sample; the
#: estimate of a slot with 4,096 rows or more moves by sampling error only (its band says how
#: much).
DENSE_ROWS = 4096
SPARSE_STEP = 4


class EstimationInput(NamedTuple):
    """One call, as the estimation reads it.

    Attributes:
        predictions: The call's result as returned.
        output: How the output is read (``auto``, ``proba``, ``label``, ``score``).
        segment: The call's segment (``None``: none).
        batch: The prepared batch (per-row segments, input columns), or ``None``.
        x: The call's input (read when there is no batch).
    """

    predictions: Any
    output: str
    segment: str | None
    batch: Any
    x: Any


class EstimationAnalysis:
    """Estimates a model's performance from its predictions alone.

    Args:
        settings: The monitor's settings (window, slot, threshold).
        reference: The reference profile (its ``estimation``), or ``None``.
        batch_of: Makes a batch over an input (to read columns when statistics are off).
        clock: Monotonic seconds.
        plan_of: The feature plan of the batches' matrices (``None`` while unknown): a
            regressor's loss model reads its columns there in one gather.

    Attributes:
        active: Whether the reference carries estimation models.
        calibration: The classifier calibration, or ``None``.
    """

    def __init__(self, settings: Settings, reference: Reference | None,
                 batch_of: Callable[[Any], Any],
                 clock: Callable[[], float] = time.monotonic,
                 plan_of: Callable[[], Any] = lambda: None) -> None:
        est = getattr(reference, "estimation", None) if reference is not None else None
        self.calibration = est.calibration if est is not None else None
        self._loss = est.loss if est is not None else None
        self.active = self.calibration is not None or self._loss is not None
        if reference is not None and not self.active:
            log_limited(f"estimation-off:{settings.name}",
                        "otel_ml: %s: the reference was built without labels (or without "
                        "probabilities): performance is not estimated before labels arrive",
                        settings.name, count=False, level=logging.INFO)
        self._settings = settings
        self._clock = clock
        cal = self.calibration
        self._classes = cal.classes if cal is not None else ()
        self._k = len(self._classes)
        self._edges = cal.auc_edges if cal is not None else None
        self._bins = 0 if self._edges is None else len(self._edges) + 1
        self._table = ScoreTable(cal, settings.threshold) if cal is not None and cal.k == 2 \
            else None
        self._columns = None if self._loss is None else LossColumns(self._loss, plan_of,
                                                                    batch_of)
        #: The fold's temporaries (a chunk's worth; used under the fold lock only).
        self._scratch = Scratch()
        self._suspects = None if cal is None else SuspectLabels(settings, cal, clock)
        self.after_fork()

    def _new(self) -> ClassAcc | RegAcc:
        return ClassAcc(self._k, self._bins) if self.calibration is not None else RegAcc()

    # ------------------------------------------------------------------ Analysis protocol
    def observe(self, item: EstimationInput) -> None:
        """Keep one call's predictions for the next fold (cheap; never raises)."""
        if not self.active or item.predictions is None or item.output in ("label", "score"):
            return
        try:
            pred = np.asarray(item.predictions)
            if pred.dtype.kind == "O":
                return
            slot, segments = self._ring.slot_at(self._clock()), self._segments(item)
            regression = self._columns is not None and pred.dtype.kind in "fiub"
            if regression:
                if pred.ndim == 2 and pred.shape[1] == 1:
                    pred = pred[:, 0]
                pred = pred.reshape(-1)
            else:
                pred = np.array(pred, copy=True)  # the caller may reuse its array
            with self._pending_lock:
                inputs = None
                if regression:  # the rows go into the arena (copied), in call order
                    rows = self._sample(slot, pred.shape[0])
                    if rows is not None:
                        pred = pred[rows]
                        if not pred.shape[0]:
                            return  # a sparse slot reads none of this call's rows
                        if not isinstance(segments, str):
                            segments = segments[rows]
                    pred, inputs = self._arena.keep(pred, item.batch, item.x, rows)
                self._pending.append(Pending(slot, pred, segments, inputs))
                self._pending_rows += max(1, pred.shape[0] if pred.ndim else 1)
                full = self._pending_rows >= MAX_PENDING_ROWS
            if full:
                self.fold()
        except Exception as exc:
            internal_error("estimation", exc)

    def observe_call(self, predictions: Any, output: str, segment: str | None, batch: Any,
                     x: Any) -> None:
        """:meth:`observe` of one call's parts (see :class:`EstimationInput`)."""
        self.observe(EstimationInput(predictions, output, segment, batch, x))

    def fold(self) -> None:
        """Fold the pending calls into the sums (at collection and report time; never raises)."""
        with self._fold_lock:
            with self._pending_lock:
                items, self._pending, self._pending_rows = self._pending, [], 0
                arena = self._arena  # calls fill the other one meanwhile
                self._arena, self._spare = self._spare, arena
            start = 0
            while start < len(items):
                end = start
                slot = items[start].slot
                while end < len(items) and items[end].slot == slot:
                    end += 1
                try:
                    self._fold_slot(slot, items[start:end], arena)
                except Exception as exc:
                    internal_error("estimation", exc)
                start = end
            if arena is not None:
                arena.clear()

    def _fold_slot(self, slot: int, items: list[Pending], arena: LossArena | None) -> None:
        if self._table is not None:
            parts = fold_binary(items, self._table, self._exclude, self._scratch, self._new)
        elif self.calibration is not None:
            parts = fold_multiclass(items, self.calibration, self._exclude, self._new)
        elif self._loss is not None:
            parts = fold_regression(items, self._loss, self._exclude, self._scratch, self._new,
                                    arena)
        else:
            parts = []
        if parts:
            self._add(slot, parts)

    def collectors(self) -> dict[str, Collector]:
        """Observable metric name to a function giving its points."""
        if not self.active:
            return {}
        out: dict[str, Collector] = {
            "ml.model.estimated.rows": lambda: self._per_segment(lambda a: a.rows),
            "ml.model.estimation.excluded": self._excluded_points,
        }
        if self._suspects is not None:
            out["ml.outcome.suspect_labels"] = self._suspects.points
        if self.calibration is not None:
            out["ml.model.expected.confusion"] = self._confusion_points
            out["ml.model.estimated.variance"] = self._class_variance_points
        else:
            out["ml.model.estimated.error.absolute"] = lambda: self._per_segment(
                lambda a: a.sa)
            out["ml.model.estimated.error.squared"] = lambda: self._per_segment(
                lambda a: a.ss)
            out["ml.model.estimated.variance"] = lambda: [
                (v, {**attrs, Attr.PERF_METRIC: "mae"})
                for v, attrs in self._per_segment(lambda a: a.variance_sum())]
        return out

    def report(self) -> dict[str, Any]:
        """``{"estimated": {...}, "suspect_labels": {...}}`` (see :meth:`estimates`)."""
        return {"estimated": self.estimates(),
                "suspect_labels": {} if self._suspects is None else self._suspects.report()}

    def complete(self, report: Any) -> Any:
        """Set a ``PerformanceReport``'s ``estimated`` and ``suspect_labels`` (when active)."""
        if self.active:
            extra = self.report()
            report.estimated = extra["estimated"]
            report.suspect_labels = extra["suspect_labels"]
        return report

    def labelled(self, predictions: Any, truth: Any, prediction_id: str | None) -> None:
        """Joined labels with their predictions: the suspect-label check (never raises)."""
        if self._suspects is not None:
            self._suspects.labelled(predictions, truth, prediction_id)

    def after_fork(self) -> None:
        """Start from zero (also the initial state)."""
        self._lock = threading.Lock()
        slots = max(1, math.ceil(self._settings.drift_window_s / self._settings.slot_s))
        self._ring = SlotRing(slots, self._settings.slot_s)
        self._slots: list[dict[str, Any]] = [{} for _ in range(slots)]
        self._total: dict[str, Any] = {}
        self._excluded: dict[str, int] = {}
        self._pending_lock = threading.Lock()
        self._fold_lock = threading.Lock()
        self._pending: list[Pending] = []
        self._pending_rows = 0
        self._seen_slot, self._seen = -1, 0  # a regressor's rows in that slot (_sample)
        #: A regressor's pending rows: calls write into one arena, the fold reads the other.
        self._arena = self._spare = None
        if self._columns is not None and self._loss is not None:
            self._arena = LossArena(self._loss, self._columns)
            self._spare = LossArena(self._loss, self._columns)
        if getattr(self, "_suspects", None) is not None:
            self._suspects.reset()

    # ------------------------------------------------------------------ estimates
    def estimates(self) -> dict[str, Any]:
        """The window's estimates: metric -> ``{"value", "lower", "upper"}``, ``rows``, and
        ``by_segment`` (segment -> the same); empty when off or before any prediction."""
        if not self.active:
            return {}
        self.fold()
        with self._lock:
            live = self._ring.live(self._ring.slot_at(self._clock()))
            per_seg: dict[str, Any] = {}
            for place in np.nonzero(live)[0].tolist():
                for seg, acc in self._slots[place].items():
                    total = per_seg.get(seg)
                    if total is None:
                        total = per_seg[seg] = self._new()
                    total.add(acc)
        if not per_seg:
            return {}
        everything = self._new()
        for acc in per_seg.values():
            everything.add(acc)
        out: dict[str, Any] = dict(everything.estimates())
        out["rows"] = everything.rows
        out["by_segment"] = {seg: {**acc.estimates(), "rows": acc.rows}
                             for seg, acc in sorted(per_seg.items())}
        return out

    # ------------------------------------------------------------------ per call
    def _sample(self, slot: int, n: int) -> slice | np.ndarray | None:
        """The rows of a regressor's call of ``n`` rows that the estimate reads (``None``:
        all), by their positions in the slot (see :data:`DENSE_ROWS`); under the pending
        lock."""
        if slot != self._seen_slot:
            self._seen_slot, self._seen = slot, 0
        seen = self._seen
        self._seen = seen + n
        first = DENSE_ROWS - seen  # rows of this call still read in full
        if first >= n:
            return None
        first = max(first, 0)
        start = first + (DENSE_ROWS - seen - first) % SPARSE_STEP
        if first == 0:
            return slice(start, None, SPARSE_STEP)
        return np.r_[0:first, start:n:SPARSE_STEP]

    def _segments(self, item: EstimationInput) -> Any:
        batch = item.batch
        if batch is not None and batch.segments is not None:
            return np.asarray(batch.segments, dtype=object)
        return NO_SEGMENT if item.segment is None else item.segment

    def _exclude(self, reason: str, n: int) -> None:
        if n <= 0:
            return
        with self._lock:
            self._excluded[reason] = self._excluded.get(reason, 0) + n
        log_limited(f"estimation:{reason}", "otel_ml: %s: %d prediction row(s) left out of "
                    "the performance estimate: %s", self._settings.name, n, reason, count=False)

    def _add(self, slot: int, parts: list[tuple[str, Any]]) -> None:
        """Add a slot's sums (per segment) to its place in the ring and to the totals."""
        with self._lock:
            newest = self._ring.ids.max()
            if slot <= newest - len(self._ring):  # older than the window: totals only
                place, fresh = -1, False
            else:
                place, fresh = self._ring.claim(slot)
            if fresh:
                self._slots[place] = {}
            holders = (self._slots[place], self._total) if place >= 0 else (self._total,)
            for seg, part in parts:
                for holder in holders:
                    acc = holder.get(seg)
                    if acc is None:
                        acc = holder[seg] = self._new()
                    acc.add(part)

    # ------------------------------------------------------------------ collection
    def _per_segment(self, value: Callable[[Any], float]) -> Points:
        self.fold()
        with self._lock:
            items = list(self._total.items())
        return [(float(value(acc)), {Attr.SEGMENT: seg}) for seg, acc in items]

    def _confusion_points(self) -> Points:
        self.fold()
        with self._lock:
            items = [(seg, acc.conf.copy()) for seg, acc in self._total.items()]
        names = exported_classes(self._classes)  # capped: the rest summed as "__other__"
        sums: dict[tuple[str, str, str], float] = {}
        for seg, conf in items:
            for i in np.flatnonzero(conf.sum(axis=1) > 0).tolist():
                for j, actual in enumerate(names):
                    key = (seg, names[i], actual)
                    sums[key] = sums.get(key, 0.0) + float(conf[i, j])
        return [(v, {Attr.SEGMENT: seg, Attr.CLASS_PREDICTED: p, Attr.CLASS_ACTUAL: a})
                for (seg, p, a), v in sums.items()]

    def _class_variance_points(self) -> Points:
        """Sum over rows of ``c (1 - c)`` (``c``: the probability the row is right)."""
        self.fold()
        with self._lock:
            items = [(seg, float((np.diag(acc.conf) - np.einsum("kkk->k", acc.m2)).sum()))
                     for seg, acc in self._total.items() if acc.m2 is not None]
        return [(v, {Attr.SEGMENT: seg, Attr.PERF_METRIC: "accuracy"}) for seg, v in items]

    def _excluded_points(self) -> Points:
        self.fold()
        with self._lock:
            items = list(self._excluded.items())
        return [(n, {Attr.REASON: r}) for r, n in items]

