"""Scoring joined labels: confusion counts or errors into cumulative counters (Prometheus
counters) and into the current slot of the outcome window (windowed gauges and reports); the
per-row error feeds the concept-drift detectors, and the fairness and error-by-bin tallies use
the sensitive groups and reference bins of the call's input.

Conventions: ``ml.segment`` is always present on outcome metrics (the call's segment, or
:data:`~otel_ml.contract.NO_SEGMENT`); class labels are strings, capped at
:data:`MAX_CLASSES` distinct values (then ``"__other__"``). Labels that cannot be scored are
counted in ``ml.model.outcomes.unmatched`` by reason (:data:`UNMATCHED_REASONS`), one per
label row, with a rate-limited log line: they are the caller's data, not failures of otel_ml,
so they are not counted in ``ml.telemetry.errors``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from otel_ml._internal.core.caps import CappedValues
from otel_ml._internal.core.log import log_limited
from otel_ml._internal.monitor.concept_drift import ConceptDrift
from otel_ml._internal.monitor.error_bins import ErrorBins
from otel_ml._internal.monitor.outcome_state import OutcomeState
from otel_ml._internal.monitor.outcome_window import OutcomeWindow
from otel_ml._internal.stats.performance import Tally, brier_rows, label_strings, log_loss_rows
from otel_ml._internal.stats.predictions import Predictions, missing_labels
from otel_ml.contract import Attr, Unmatched

__all__ = ["MAX_CLASSES", "UNMATCHED_REASONS", "OutcomeStats"]

#: Distinct class labels reported (``ml.class.predicted``/``ml.class.actual``).
MAX_CLASSES = 50

#: Why a label was not scored (``ml.reason`` of ``ml.model.outcomes.unmatched``).
UNMATCHED_REASONS: dict[str, str] = {
    "unknown_id": "no prediction with this id was remembered",
    "expired": "the prediction was older than outcome_ttl_s when its label arrived",
    "evicted": "the prediction was evicted from the full store before its label arrived",
    "duplicate": "the prediction already had its label",
    "wrong_shape": "the label does not have one value per predicted row",
    "wrong_type": "the label is not a number (regression) or the predictions are unusable",
    "missing_label": "the label is NaN or None",
    "unseen_class": "the label is not one of the model's classes",
    Unmatched.OUTPUT_MISMATCH: "the predictions contradict how the model's output was decided to be "
                       "read (e.g. floats outside [0, 1] after probabilities, another number "
                       "of columns): a data-quality problem of the predictions",
}


class OutcomeStats:
    """Scores labelled rows of one model (any thread).

    Args:
        model: Model name (log lines).
        attributes: The model's attributes (name, version), for the error histogram.
        error_histogram: The ``ml.model.error.absolute`` histogram (recorded in the outcome
            span's context, so its exemplars lead to the trace).
        declared: Declared classes (label strings), in probability-column order.
        positive: The positive class (label string).
        window: The outcome window.
        concept: The concept-drift detectors.
        bins: Error analysis by reference bin.
        keep_errors: Also keep the per-row errors fed to the detectors, in order (a batch
            job's partition: :meth:`state` carries them when asked for).
    """

    def __init__(self, model: str, attributes: Mapping[str, str], error_histogram: Any,
                 declared: tuple[str, ...], positive: str, window: OutcomeWindow,
                 concept: ConceptDrift, bins: ErrorBins, keep_errors: bool = False) -> None:
        self._model = model
        self._attributes = dict(attributes)
        self._hist = error_histogram
        self._declared = declared
        self._positive = positive
        self._window = window
        self._concept = concept
        self._bins = bins
        self._kept: list[np.ndarray] | None = [] if keep_errors else None
        self._classes = CappedValues("class", max(MAX_CLASSES, len(declared)), declared)
        self._unmatched_lock = threading.Lock()
        self._attrs: dict[str, dict[str, str]] = {}
        # Cumulative, for the Prometheus counters.
        self._confusion: dict[tuple[str, str, str], int] = {}
        self._squared: dict[str, float] = {}
        self._unmatched: dict[str, int] = {}

    def unmatch(self, reason: str, n: int) -> None:
        """Count ``n`` labels not scored for ``reason`` (a key of :data:`UNMATCHED_REASONS`)."""
        with self._unmatched_lock:
            self._unmatched[reason] = self._unmatched.get(reason, 0) + n
        log_limited(f"outcome:{reason}", "otel_ml: %d label(s) for model %r not scored: %s",
                    n, self._model, UNMATCHED_REASONS[reason], count=False)

    def score(self, pred: Predictions, truth: np.ndarray, segments: np.ndarray,
              groups: np.ndarray | None, row_bins: Any, now: float,
              provisional: bool = False) -> None:
        """Score rows (numpy outside the lock, then one locked update).

        ``provisional``: the predictions were ambiguous (only 0.0 and 1.0) and the monitor has
        not decided yet whether they are probabilities: their Brier score and log loss wait
        in the slot until it does (:meth:`settle`).
        """
        if pred.values is not None:
            self._score_regression(pred, truth, segments, row_bins, now)
        else:
            self._score_classification(pred, truth, segments, groups, row_bins, now,
                                       provisional)

    def settle(self, proba: bool) -> None:
        """The output is decided (``proba``: probabilities): count or drop the waiting
        probability scores of ambiguous rows."""
        with self._window.lock:
            self._window.settle(proba)

    def _score_regression(self, pred: Predictions, truth: np.ndarray, segments: np.ndarray,
                          row_bins: Any, now: float) -> None:
        try:
            actual = truth.astype(np.float64)
        except (TypeError, ValueError):
            self.unmatch("wrong_type", len(truth))
            return
        valid = np.isfinite(actual)
        if not valid.all():
            self.unmatch("missing_label", int((~valid).sum()))
            if not valid.any():
                return
        errors = pred.values[valid] - actual[valid]
        abs_err = np.abs(errors)
        segments = segments[valid]
        finite = np.isfinite(errors)
        for value, seg in zip(abs_err[finite].tolist(), segments[finite].tolist()):
            self._hist.record(value, self._seg_attrs(seg))  # in the outcome span: exemplar
        window = self._window
        with window.lock:
            slot = window.current(now)
            for seg, idx in _group_rows(segments):
                e = errors[idx]
                e = e[np.isfinite(e)]
                slot.tallies.setdefault(seg, Tally()).add_errors(e)
                self._squared[seg] = self._squared.get(seg, 0.0) + float(np.einsum("i,i->", e, e))
            self._feed_concept(abs_err[finite], True, now)
            if row_bins is not None:
                self._bins.add(slot, row_bins, valid, abs_err)
            window.changed()

    def _score_classification(self, pred: Predictions, truth: np.ndarray,
                              segments: np.ndarray, groups: np.ndarray | None, row_bins: Any,
                              now: float, provisional: bool) -> None:
        missing = missing_labels(truth)
        actual = label_strings(truth)
        keep = ~missing
        if self._declared or pred.proba is not None:
            known = set(pred.columns if pred.proba is not None and pred.proba.ndim == 2 else ())
            known.update(self._declared)
            if pred.proba is not None and pred.proba.ndim == 1:
                known.update(pred.columns)
            unseen = keep & ~np.isin(actual, list(known)) if known else np.zeros_like(keep)
            if unseen.any():
                self.unmatch("unseen_class", int(unseen.sum()))
                keep &= ~unseen
        if missing.any():
            self.unmatch("missing_label", int(missing.sum()))
        if not keep.any():
            return
        act = _capped(actual[keep], self._classes)
        prd = _capped(pred.labels[keep], self._classes)
        wrong = (act != prd).astype(np.float64)
        segments = segments[keep]
        brier = log_loss = None
        if pred.proba is not None:
            col_of = {c: i for i, c in enumerate(pred.columns)}
            cols = np.array([col_of[a] for a in actual[keep].tolist()], dtype=np.int64)
            proba = pred.proba[keep]
            if proba.ndim == 1:
                cols = (cols == pred.pos_col).astype(np.int64)
                brier, log_loss = brier_rows(proba, cols, None), log_loss_rows(proba, cols)
            else:
                pos = pred.pos_col if proba.shape[1] == 2 else None
                brier, log_loss = brier_rows(proba, cols, pos), log_loss_rows(proba, cols)
        window = self._window
        with window.lock:
            slot = window.current(now)
            if provisional and window.settled is not None:  # decided meanwhile
                if not window.settled:
                    brier = None
                provisional = False
            for seg, idx in _group_rows(segments):
                tally = slot.tallies.setdefault(seg, Tally())
                p, a = prd[idx], act[idx]
                tally.add_labels(p, a)
                if brier is not None:
                    held = slot.undecided.setdefault(seg, Tally()) if provisional else tally
                    held.add_proba(brier[idx], log_loss[idx])
                for (pc, ac), n in _pairs(p, a):
                    key = (seg, pc, ac)
                    self._confusion[key] = self._confusion.get(key, 0) + n
            if groups is not None:
                pos = self._positive
                for key in zip(groups[keep].tolist(), (act == pos).tolist(),
                               (prd == pos).tolist()):
                    slot.fairness[key] = slot.fairness.get(key, 0) + 1
            self._feed_concept(wrong, False, now)
            if row_bins is not None:
                self._bins.add(slot, row_bins, keep, wrong)
            window.changed()

    def _seg_attrs(self, seg: str) -> dict[str, str]:
        attrs = self._attrs.get(seg)
        if attrs is None:
            attrs = self._attrs.setdefault(seg, {**self._attributes, Attr.SEGMENT: seg})
        return attrs

    # ------------------------------------------------------------------ cumulative
    def unmatched(self) -> dict[str, int]:
        """Labels not scored since start, by reason."""
        with self._unmatched_lock:
            return dict(self._unmatched)

    def outcome_points(self) -> list[tuple[float, dict[str, str]]]:
        """Observations of ``ml.model.outcomes`` (confusion counts)."""
        with self._window.lock:
            items = list(self._confusion.items())
        return [(n, {Attr.SEGMENT: s, Attr.CLASS_PREDICTED: p, Attr.CLASS_ACTUAL: a})
                for (s, p, a), n in items]

    def unmatched_points(self) -> list[tuple[float, dict[str, str]]]:
        """Observations of ``ml.model.outcomes.unmatched``."""
        return [(n, {Attr.REASON: r}) for r, n in self.unmatched().items()]

    def squared_points(self) -> list[tuple[float, dict[str, str]]]:
        """Observations of ``ml.model.error.squared``."""
        with self._window.lock:
            items = list(self._squared.items())
        return [(v, {Attr.SEGMENT: s}) for s, v in items]


    def _feed_concept(self, errors: np.ndarray, regression: bool, now: float) -> None:
        """Feed the detectors (hold the window's lock); keep the errors when asked to."""
        if self._kept is not None:
            self._kept.append(errors.astype(np.float64))
        self._concept.feed(errors, regression=regression, now=now)

    def error_stream(self) -> np.ndarray | None:
        """The errors fed to the detectors, in order (``None`` unless ``keep_errors``)."""
        if self._kept is None:
            return None
        with self._window.lock:
            return np.concatenate(self._kept) if self._kept else np.zeros(0)

    # ------------------------------------------------------------------ mergeable state
    def state(self) -> OutcomeState:
        """The window's tallies and the cumulative counts as mergeable state (every row when
        the window holds every slot: a batch job's partition). The error histogram is the
        caller's (the recorder it gave as ``error_histogram``)."""
        state = OutcomeState()
        state.window.add(self._window.sum())
        state.undecided = self._window.undecided()
        state.settled = self._window.settled
        with self._window.lock:
            state.confusion, state.squared = dict(self._confusion), dict(self._squared)
        state.unmatched = self.unmatched()
        return state

    def absorb(self, state: OutcomeState, now: float) -> None:
        """Count ``state`` (labelled rows scored elsewhere) as if scored at ``now``: the
        window's current slot, the counters, the unmatched labels and the error histogram
        (recorded again value by value: O(labelled rows) records, as scoring them here), and
        the partitions' error streams, in partition order, to the concept-drift detectors
        when the state carries them."""
        state.errors.replay(lambda v, seg: self._hist.record(v, self._seg_attrs(seg)))
        window = self._window
        with window.lock:
            if state.settled is not None:
                window.settle(state.settled)  # no-op when this monitor decided already
            slot = window.current(now)
            slot.add(state.window)
            for seg, tally in state.undecided.items():
                if window.settled is None:
                    slot.undecided.setdefault(seg, Tally()).merge(tally)
                elif window.settled:
                    slot.tallies.setdefault(seg, Tally()).merge(tally)
            for key, n in state.confusion.items():
                self._confusion[key] = self._confusion.get(key, 0) + n
            for seg, v in state.squared.items():
                self._squared[seg] = self._squared.get(seg, 0.0) + v
            for errors in state.error_streams():  # partition order (opt-in: concept drift)
                self._feed_concept(errors, state.task == "regression", now)
            window.changed()
        with self._unmatched_lock:
            for reason, n in state.unmatched.items():
                self._unmatched[reason] = self._unmatched.get(reason, 0) + n


def _capped(labels: np.ndarray, cap: CappedValues) -> np.ndarray:
    if len(labels) == 1:
        return np.array([cap(labels[0])], dtype=object)
    uniques, inverse = np.unique(labels.astype(str), return_inverse=True)
    return np.array([cap(u) for u in uniques.tolist()], dtype=object)[inverse.ravel()]


def _group_rows(segments: np.ndarray) -> Iterator[tuple[str, Any]]:
    if len(segments) and (segments[0] == segments).all():
        yield str(segments[0]), slice(None)
        return
    for seg in np.unique(segments.astype(str)).tolist():
        yield seg, np.nonzero(segments == seg)[0]


def _pairs(predicted: np.ndarray, actual: np.ndarray) -> Iterator[tuple[tuple[str, str], int]]:
    if len(predicted) == 1:
        yield (predicted[0], actual[0]), 1
        return
    counts: dict[tuple[str, str], int] = {}
    for key in zip(predicted.tolist(), actual.tolist()):
        counts[key] = counts.get(key, 0) + 1
    yield from counts.items()
