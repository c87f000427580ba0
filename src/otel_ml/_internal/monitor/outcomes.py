"""Ground truth joined to predictions: performance, fairness, concept drift, error analysis.

Every successful instrumented call is remembered under its prediction id, in a store bounded
by count, bytes and age (:class:`_Store`): a slot of preallocated typed arrays (time, trace and
span ids, one prediction as a number or a label code, codes for output and segment) and, when
the reference bins or the sensitive attribute need it, the input row in a preallocated array of
floats; bigger predictions and inputs are copies counted against the byte cap. About 0.2 kB a
call, plus 8 bytes per feature held. When its label arrives, :meth:`record_outcome`
scores it: confusion counts (classification) or errors (regression) go into cumulative
counters for Prometheus and into a ring of time slots for the windowed gauges and
:meth:`performance_report`; the per-row error feeds the concept-drift detectors; the fairness
and error-by-bin tallies use the sensitive attribute and the reference bins of the call's input
(held until the label arrives and read then: reading them on every call would cost more than
the rest of the hot path). A short ``ml.outcome <model>`` span links to the prediction's span,
and the regression error histogram is recorded inside it, so an exemplar leads to the trace.

Conventions:

- ``ml.segment`` is always present on outcome metrics: the call's segment, or
  :data:`~otel_ml.contract.NO_SEGMENT` (``"__none__"``) when it had none. Windowed gauges add
  :data:`~otel_ml.contract.ALL_SEGMENTS` (``"__all__"``) for the whole model.
- Class labels are strings (:func:`otel_ml.performance.label_str`), capped at
  :data:`MAX_CLASSES` distinct values (then ``"__other__"``).
- Labels that cannot be scored are counted in ``ml.model.outcomes.unmatched`` by reason
  (:data:`UNMATCHED_REASONS`), one per label row, with a rate-limited log line. Nothing here
  raises into the caller, except :class:`ValueError` for misuse at setup.
"""

from __future__ import annotations

import math
import threading
import time
from array import array
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from opentelemetry import trace
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags

from otel_ml._internal.core.caps import CappedValues
from otel_ml._internal.core.log import internal_error, log_limited
from otel_ml.contract import ALL_SEGMENTS, NO_SEGMENT, OTHER, Attr
from otel_ml._internal.stats.detectors import ADWIN, PageHinkley
from otel_ml._internal.stats.fairness import MIN_GROUP_SIZE, FairnessReport, fairness_from_counts
from otel_ml._internal.monitor.features import Batch
from otel_ml._internal.stats.performance import (
    PerformanceReport,
    Tally,
    brier_rows,
    label_str,
    label_strings,
    log_loss_rows,
)

__all__ = [
    "DEFAULT_STORE_BYTES",
    "MAX_CLASSES",
    "MAX_GROUPS",
    "MAX_HELD_INPUT_BYTES",
    "UNMATCHED_REASONS",
    "OutcomeMonitor",
]

#: Memory cap of the prediction store (``ModelMonitor`` attribute ``outcome_store_bytes``
#: overrides it); the count cap is ``outcome_store_size``.
from otel_ml._internal.monitor.settings import DEFAULT_STORE_BYTES  # noqa: E402  (moved)

#: Largest input kept with a remembered call for error analysis by reference bin (bigger
#: batches are scored without it).
MAX_HELD_INPUT_BYTES = 1024 * 1024

#: Distinct class labels reported (``ml.class.predicted``/``ml.class.actual``).
MAX_CLASSES = 50

#: Distinct groups of the sensitive attribute reported.
MAX_GROUPS = 50

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
}

_INDEX_ENTRY = 110  # bytes per live record in the id index (dict entry, int key and slot)
# Fields of a slot and their C types: one typed array per field (compact like numpy, with
# element access at Python speed, which the hot path needs).
_FIELDS = (("t", "d"), ("trace_hi", "Q"), ("trace_lo", "Q"), ("span", "Q"), ("pred", "d"), ("rows", "i"),
           ("flags", "Q"))
# ``flags`` packs: the bits below (8), trace flags (8), output code (8), prediction layout
# code (16), segment code + 1 (24; 0: no segment).
_DENSE_INPUT_BYTES = 8 * 1024 * 1024  # largest preallocated array of held single rows
_MAX_CODES = 4096  # distinct segments / outputs / prediction layouts given compact codes
_MASK64 = (1 << 64) - 1
_EXACT_INT = 1 << 53
# flags of a slot
_LIVE, _CTX, _EXTRA, _ROW, _ROW2D = 1, 2, 4, 8, 16
_NO_INPUT = object()
_REASONS = ("", "expired", "evicted", "duplicate")
_EXPIRED, _EVICTED, _DUPLICATE = 1, 2, 3
_OBJECT_ITEM = 64  # bytes per element of an object array (the pointed-to objects)
_BASELINE_ROWS = 30  # regression errors that set the scale fed to the detectors
_REGRESSION_PH_DELTA = 0.05


class _Extra:
    """What a record holds beyond its compact slot (user id, big predictions, input)."""

    __slots__ = ("ctx", "held", "key", "nbytes", "pred", "segments")

    def __init__(self) -> None:
        self.key: str | None = None
        self.pred: np.ndarray | None = None
        self.segments: Any = None
        self.held: Any = None
        self.ctx: Any = None
        self.nbytes = 0


class _Record:
    """One remembered call, rebuilt from its slot when its label arrives."""

    __slots__ = ("batch", "output", "pred", "rows", "segment", "span_context", "t")

    def __init__(self, t: float, pred: np.ndarray, output: str, rows: int | None,
                 span_context: Any, segment: Any, batch: Any) -> None:
        self.t = t
        self.pred = pred
        self.output = output
        self.rows = rows
        self.span_context = span_context
        self.segment = segment
        self.batch = batch  # the call's input (sensitive column, reference bins), or None


class _Codes:
    """Small values (segments, output kinds, prediction layouts) by compact integer code."""

    __slots__ = ("cap", "codes", "lock", "values")

    def __init__(self, cap: int = _MAX_CODES) -> None:
        self.cap = cap
        self.codes: dict[Any, int] = {}
        self.values: list[Any] = []
        self.lock = threading.Lock()

    def __call__(self, value: Any) -> int:
        """The value's code, or -1 when the table is full (any thread)."""
        code = self.codes.get(value)
        if code is None:
            with self.lock:
                code = self.codes.get(value)
                if code is None:
                    if len(self.values) >= self.cap:
                        return -1
                    self.values.append(value)
                    code = self.codes[value] = len(self.values) - 1
        return code


def _key(pid: str) -> int | str:
    """Index key of a prediction id: an int for 16 lowercase hex digits (span ids), else
    the string (one-to-one, so user ids never collide with span ids)."""
    if len(pid) == 16 and pid.isalnum() and pid.isascii() and pid == pid.lower():
        try:
            return int(pid, 16)
        except ValueError:
            pass
    return pid


def _key64(key: int | str) -> int:
    return key if type(key) is int else hash(key) & _MASK64


class _Store:
    """Predictions waiting for their labels: a ring of compact slots (structured numpy
    array), an index ``id -> slot``, and a ring of tombstones (ids dropped unlabelled).

    The ring holds the last ``size`` calls: writing a slot evicts the record still in it
    (the oldest). A record costs about 160 bytes (slot and index entry), plus the held row
    (8 bytes per feature) when inputs are kept, plus any extra (multi-row predictions or
    inputs), which the byte cap counts. Not thread-safe: the owner's lock guards it.
    """

    def __init__(self, size: int, max_bytes: int, max_tombstones: int) -> None:
        self.size = size
        self.max_bytes = max_bytes
        for name, code in _FIELDS:
            setattr(self, name, array(code, bytes(size * array(code).itemsize)))
        self.index: dict[int | str, int] = {}
        self.extras: dict[int, _Extra] = {}
        self.inputs: np.ndarray | None = None  # (size, width) float64 held single rows
        self.width = -1  # -1: not decided yet; 0: no dense rows
        self.row_bytes = 0
        self.pos = 0  # insertions so far (next slot: pos % size)
        self.lo = 0  # position of the oldest slot that may be live
        self.bytes = 0  # live records' bytes (slot + index + row + extras)
        self.record_bytes = sum(array(c).itemsize for _, c in _FIELDS) + _INDEX_ENTRY
        self.evicted = 0
        self.expired = 0
        n = max(1, max_tombstones)
        self.n_tombs = n
        self.tomb_keys = array("Q", bytes(8 * n))
        self.tomb_reasons = array("B", bytes(n))
        self.tomb_pos = 0

    def dense_width(self, width: int) -> bool:
        """Whether single rows of this width go to the preallocated array (decided once)."""
        if self.width < 0:
            ok = width > 0 and self.size * width * 8 <= min(_DENSE_INPUT_BYTES, self.max_bytes)
            self.width = width if ok else 0
            self.row_bytes = self.width * 8
            if ok:
                self.inputs = np.zeros((self.size, width))
        return width == self.width

    # -------------------------------------------------------------- tombstones
    def tomb(self, key: int | str, reason: int) -> None:
        """Remember why ``key`` left (a code of :data:`_REASONS`)."""
        i = self.tomb_pos % self.n_tombs
        self.tomb_keys[i] = key if type(key) is int else hash(key) & _MASK64
        self.tomb_reasons[i] = reason
        self.tomb_pos += 1

    def tomb_reason(self, key: int | str) -> str | None:
        keys = np.frombuffer(self.tomb_keys, dtype=np.uint64)
        reasons = np.frombuffer(self.tomb_reasons, dtype=np.uint8)
        hits = np.flatnonzero(keys == np.uint64(_key64(key)))
        hits = hits[reasons[hits] != 0]
        if not hits.size:
            return None
        n = len(self.tomb_keys)
        newest = hits[np.argmin((self.tomb_pos - 1 - hits) % n)]
        return _REASONS[reasons[newest]]

    # -------------------------------------------------------------- records
    def drop(self, i: int, reason: int) -> None:
        """Free slot ``i`` (live); tombstone it when ``reason`` (expired/evicted) is not 0."""
        flags = self.flags[i]
        self.flags[i] = 0
        nbytes = self.record_bytes
        if flags & _EXTRA:
            extra = self.extras.pop(i)
            key: int | str = self.span[i] if extra.key is None else extra.key
            nbytes += extra.nbytes
        else:
            key = self.span[i]
        if flags & _ROW:
            nbytes += self.row_bytes
        self.bytes -= nbytes
        self.index.pop(key, None)
        if reason:
            if reason == _EXPIRED:
                self.expired += 1
            else:
                self.evicted += 1
            j = self.tomb_pos % self.n_tombs
            self.tomb_keys[j] = key if type(key) is int else hash(key) & _MASK64
            self.tomb_reasons[j] = reason
            self.tomb_pos += 1

    def trim(self, now: float, ttl: float) -> None:
        """Drop expired records from the old end, then the oldest while over the byte cap."""
        t, live, size = self.t, self.flags, self.size
        lo = max(self.lo, self.pos - size)
        while lo < self.pos:
            i = lo % size
            if live[i] & _LIVE:
                if now - t[i] > ttl:
                    self.drop(i, _EXPIRED)
                elif self.bytes > self.max_bytes:
                    self.drop(i, _EVICTED)
                else:
                    break
            lo += 1
        self.lo = lo


class _Pred:
    """Predictions of one call, interpreted."""

    __slots__ = ("columns", "labels", "n", "pos_col", "proba", "values")

    def __init__(self, n: int) -> None:
        self.n = n
        self.labels: np.ndarray | None = None  # class strings (classification)
        self.proba: np.ndarray | None = None  # (n, k) or (n,) positive-class probability
        self.columns: list[str] = []
        self.pos_col: int | None = None
        self.values: np.ndarray | None = None  # floats (regression)


class _Slot:
    """Statistics of one time slot of the window ring."""

    __slots__ = ("attr_n", "attr_sum", "bin_err", "bin_n", "fairness", "tag", "tallies")

    def __init__(self, tag: int) -> None:
        self.tag = tag
        self.tallies: dict[str, Tally] = {}
        self.fairness: dict[tuple[str, bool, bool], int] = {}
        self.bin_n: np.ndarray | None = None  # (features, bins)
        self.bin_err: np.ndarray | None = None
        self.attr_sum: dict[str, float] = {}
        self.attr_n: dict[str, int] = {}


class _Window:
    """Sum of the live slots."""

    def __init__(self) -> None:
        self.tallies: dict[str, Tally] = {}
        self.fairness: dict[tuple[str, bool, bool], int] = {}
        self.bin_n: np.ndarray | None = None
        self.bin_err: np.ndarray | None = None
        self.attr_sum: dict[str, float] = {}
        self.attr_n: dict[str, int] = {}

    def total(self) -> Tally:
        out = Tally()
        for tally in self.tallies.values():
            out.merge(tally)
        return out


class OutcomeMonitor:
    """The ground-truth side of a :class:`~otel_ml.ModelMonitor` (built by it).

    Reads its configuration from the monitor: ``task``, ``positive_class``, ``threshold``,
    ``sensitive_attribute``, ``outcome_store_size``, ``outcome_ttl_s``, ``drift_window_s``,
    ``slot_s``, ``segment_values``, ``reference`` (its ``performance`` and ``attributions``)
    and, when set, ``classes`` (labels of the probability columns, in column order; labels
    outside them are ``unseen_class``),
    ``outcome_store_bytes`` and ``fairness_min_group_size``.

    Raises:
        ValueError: A sensitive attribute is declared for a regression model, or is empty.
        TypeError: The sensitive attribute is not a string.
    """

    def __init__(self, monitor: Any) -> None:
        self.monitor = monitor
        sensitive = getattr(monitor, "sensitive_attribute", None)
        if sensitive is not None:
            if not isinstance(sensitive, str):
                raise TypeError("sensitive_attribute must be a column name (str), got "
                                f"{type(sensitive).__name__}")
            if not sensitive.strip():
                raise ValueError("sensitive_attribute must not be empty")
            if getattr(monitor, "task", "auto") == "regression":
                raise ValueError("fairness metrics need a classifier: sensitive_attribute "
                                 f"{sensitive!r} was given for a regression model")
        self.min_group_size = int(getattr(monitor, "fairness_min_group_size", MIN_GROUP_SIZE))
        if self.min_group_size < 1:
            raise ValueError("fairness_min_group_size must be at least 1, got "
                             f"{self.min_group_size}")
        self.max_bytes = int(getattr(monitor, "outcome_store_bytes", DEFAULT_STORE_BYTES))
        if self.max_bytes < 1:
            raise ValueError(f"outcome_store_bytes must be positive, got {self.max_bytes}")
        declared = getattr(monitor, "classes", None)
        self._declared: tuple[str, ...] = tuple(label_str(c) for c in declared or ())
        self._positive = label_str(getattr(monitor, "positive_class", 1))
        self._clock: Callable[[], float] = time.monotonic
        self._reset()

    def _reset(self) -> None:
        m = self.monitor
        self._lock = threading.Lock()
        # Ids of records dropped unlabelled are remembered (up to 10,000), so that a late
        # label is counted as expired/evicted.
        # outcome_store_size=0: predictions are not kept (labels come with record_outcomes).
        self._remembering = int(m.outcome_store_size) > 0
        size = max(1, int(m.outcome_store_size))
        self._store = _Store(size, self.max_bytes, min(size, 10_000))
        self._seg_codes = _Codes()
        self._out_codes = _Codes(256)
        self._layouts = _Codes(65_000)
        self._label_codes = _Codes()
        self._float_layout: tuple[Any, int, int] = (None, -1, 0)
        # Single input rows are kept when the label's scoring reads them.
        self._keep_rows = m.sensitive_attribute is not None or m.reference is not None
        self._task: str | None = None
        self._classes = CappedValues("class", max(MAX_CLASSES, len(self._declared)), self._declared)
        self._groups = CappedValues("fairness group", MAX_GROUPS)
        self._reasons = CappedValues("rejection reason", 32)
        self._attr_features = CappedValues("attribution feature", getattr(m, "max_features", 200))
        self._n_slots = max(1, math.ceil(m.drift_window_s / m.slot_s))
        self._slots: list[_Slot | None] = [None] * self._n_slots
        self._version = 0
        self._cache: tuple[tuple[int, int], _Window] | None = None
        # Cumulative, for the Prometheus counters.
        self._confusion: dict[tuple[str, str, str], int] = {}
        self._squared: dict[str, float] = {}
        self._unmatched: dict[str, int] = {}
        # Error analysis: feature name -> row of the (features, bins) arrays.
        self._bin_features: dict[str, int] = {}
        self._bin_labels: dict[tuple[str, int], str] = {}
        # Concept drift.
        self._detectors: dict[str, Any] = {"page_hinkley": PageHinkley(mode="up"),
                                           "adwin": ADWIN()}
        self._detections = dict.fromkeys(self._detectors, 0)
        self._last_detection = dict.fromkeys(self._detectors, -math.inf)
        self._scale: float | None = None
        self._baseline: list[float] = []
        self._attrs: dict[str, dict[str, str]] = {}

    # ------------------------------------------------------------------ hot path
    def remember(self, prediction_id: str, batch: Any, result: Any, output: str,
                 span_context: Any, segment: str | None, own_id: bool = False) -> None:
        """Keep what scoring the call's label will need (O(1); never raises).

        ``own_id``: the prediction id is the span's own id (the default), so the span id is
        the key and no id string is parsed.
        """
        if not self._remembering:
            return
        try:
            if own_id and segment is None and self._remember_row(batch, result, output,
                                                                 span_context):
                return
            fl = self._float_layout
            store = self._store
            extra = None
            flags = _LIVE
            if (type(result) is np.ndarray and result.dtype is fl[0] and result.ndim == fl[1]
                    and result.size == 1):
                value, pcode = result.item(), fl[2]  # the usual case: one float
            else:
                value, pcode = self._scalar(result)
            if pcode == 0:  # not one number or label: a private copy, counted in bytes
                pred = _copy(result)
                if pred is None:
                    return
                extra = _Extra()
                extra.pred = pred
                extra.nbytes = _nbytes(pred)
            if self._task is None and self.monitor.task == "auto":
                self._task = _infer_task(self._pred_array(value, pcode, extra), output)
            rows = -1
            row = None
            if batch is not None:
                rows = getattr(batch, "rows", None)
                rows = -1 if rows is None else int(rows)
                segments = getattr(batch, "segments", None)
                if segments is not None:
                    extra = extra or _Extra()
                    extra.segments = segments
                    extra.nbytes += _nbytes(segments)
                if self._keep_rows:
                    # The sensitive column and the reference bins are read when the label
                    # arrives (reading them here would cost more than the rest of the call):
                    # a single numeric row is copied into the preallocated array of rows,
                    # other inputs are held (copied when arrays) while small enough.
                    x = getattr(batch, "_x", _NO_INPUT)
                    if (type(x) is np.ndarray and rows == 1 and x.ndim <= 2
                            and x.dtype.kind in "fiub"
                            and (x.size == store.width or self._dense(x.size))):
                        row = x
                        flags |= _ROW | (_ROW2D if x.ndim == 2 else 0)
                    elif ((type(x) is list or type(x) is tuple) and rows == 1
                            and (len(x) == store.width or self._dense(len(x)))
                            and all(type(v) is float or type(v) is int for v in x)):
                        row = x
                        flags |= _ROW
                    elif x is _NO_INPUT:  # a batch-like object: held as it is
                        extra = extra or _Extra()
                        extra.held = batch
                    elif x is not None:
                        nbytes = _input_nbytes(x)
                        if nbytes <= MAX_HELD_INPUT_BYTES:
                            extra = extra or _Extra()
                            extra.held = Batch(rows, x.copy() if type(x) is np.ndarray else x,
                                               self.monitor._features, None)
                            extra.nbytes += nbytes
            seg = -1
            if type(segment) is str:
                seg = self._seg_codes(segment)
                if seg < 0:
                    extra = extra or _Extra()
                    extra.segments = segment
            elif segment is not None:
                extra = extra or _Extra()
                extra.segments = segment
            out = self._out_codes.codes.get(output)
            if out is None:
                out = self._out_codes(output)
                if out < 0:
                    out = self._out_codes("auto")
            hi = lo = span = tflags = 0
            if span_context is not None:
                flags |= _CTX
                trace_id = span_context.trace_id
                hi, lo = trace_id >> 64, trace_id & _MASK64
                span = span_context.span_id
                tflags = span_context.trace_flags
            if (span and len(prediction_id) == 16
                    and format(span, "016x") == prediction_id):
                key: int | str = span  # the span's own id (the default prediction id)
            else:
                key = _key(prediction_id)
            if type(key) is str:
                extra = extra or _Extra()
                extra.key = key
            else:
                if flags & _CTX and key != span:  # a user id in span-id form
                    extra = extra or _Extra()
                    extra.ctx = span_context
                span = key  # the slot's span field holds the int key (the span's own id)
            if extra is not None:
                flags |= _EXTRA
            self._put(key, hi, lo, span, value, rows,
                      flags | tflags << 8 | out << 16 | pcode << 24 | (seg + 1) << 40, row, extra)
        except Exception as exc:
            internal_error("outcomes.remember", exc)

    def _put(self, key: int | str, hi: int, lo: int, span: int, value: float, rows: int,
             flags: int, row: Any, extra: _Extra | None) -> None:
        """Write one record into the next slot of the store (evicting its old record)."""
        store = self._store
        now = self._clock()
        with self._lock:
            old = store.index.get(key)
            if old is not None:
                store.drop(old, 0)
            i = store.pos % store.size  # the next slot, freed of the oldest record
            if store.flags[i]:
                store.drop(i, _EXPIRED if now - store.t[i] > self.monitor.outcome_ttl_s
                           else _EVICTED)
            store.pos += 1
            store.t[i] = now
            store.trace_hi[i] = hi
            store.trace_lo[i] = lo
            store.span[i] = span
            store.pred[i] = value
            store.rows[i] = rows
            store.flags[i] = flags
            if row is not None:
                store.inputs[i] = row
                store.bytes += store.row_bytes
            if extra is not None:
                store.extras[i] = extra
                store.bytes += extra.nbytes
            store.index[key] = i
            store.bytes += store.record_bytes
            if store.bytes > self.max_bytes or not store.pos & 63:  # expiry: every 64
                store.max_bytes = self.max_bytes
                store.trim(now, self.monitor.outcome_ttl_s)

    def _remember_row(self, batch: Any, result: Any, output: str, span_context: Any) -> bool:
        """The usual single-row call, kept the short way: one float prediction under the
        span's own id, the input row (when kept) numeric and of the width already decided.
        Returns False, having kept nothing, for anything else."""
        fl = self._float_layout
        if not ((self._task is not None or self.monitor.task != "auto")
                and type(result) is np.ndarray and result.dtype is fl[0]
                and result.ndim == fl[1] and result.size == 1):
            return False
        rows, row, flags = -1, None, _LIVE | _CTX
        if batch is not None:
            rows, x = batch.rows, batch._x
            if batch.segments is not None or type(rows) is not int:
                return False
            if self._keep_rows:
                if not (type(x) is np.ndarray and rows == 1 and x.ndim <= 2
                        and x.size == self._store.width and x.dtype.kind in "fiub"):
                    return False
                row = x
                flags |= _ROW | (_ROW2D if x.ndim == 2 else 0)
        out = self._out_codes.codes.get(output)
        if out is None:
            return False
        trace_id = span_context.trace_id
        span = span_context.span_id
        self._put(span, trace_id >> 64, trace_id & _MASK64, span, result.item(), rows,
                  flags | span_context.trace_flags << 8 | out << 16 | fl[2] << 24, row, None)
        return True

    def _dense(self, width: int) -> bool:
        """Whether single rows of this width go to the store's array of rows."""
        with self._lock:
            return self._store.dense_width(width)

    def _scalar(self, result: Any) -> tuple[float, int]:
        """One prediction as ``(value, layout code + 1)``; code 0: not a single value."""
        t = type(result)
        if t is np.ndarray:
            if result.size != 1 or result.ndim > 2:
                return 0.0, 0
            if result.dtype is self._float_layout[0] and result.ndim == self._float_layout[1]:
                return result.item(), self._float_layout[2]  # the usual case, cached
            kind = result.dtype.kind
            v = result.item()
            layout = (result.dtype.str, result.ndim)
        elif t is float:
            kind, v, layout = "f", result, ("<f8", 0)
        elif t is int or t is bool:
            kind, v, layout = "i", result, ("<i8" if t is int else "|b1", 0)
        else:
            return 0.0, 0
        if kind in "US":
            code = self._label_codes(v)
            if code < 0:
                return 0.0, 0
            v = code
        elif kind in "iu":
            if not -_EXACT_INT < v < _EXACT_INT:
                return 0.0, 0
        elif kind not in "fb":
            return 0.0, 0
        code = self._layouts(layout) + 1
        if t is np.ndarray and kind == "f" and code:
            self._float_layout = (result.dtype, result.ndim, code)
        return float(v), code

    def _pred_array(self, value: float, pcode: int, extra: _Extra | None) -> np.ndarray:
        if pcode == 0:
            assert extra is not None and extra.pred is not None
            return extra.pred
        dtype, ndim = self._layouts.values[pcode - 1]
        dtype = np.dtype(dtype)
        if dtype.kind in "US":
            arr = np.array(self._label_codes.values[int(value)], dtype=dtype)
        else:
            arr = np.array(value).astype(dtype)
        return arr.reshape((1,) * ndim)

    def _take(self, key: int | str, now: float) -> _Record | str:
        """Remove and rebuild the record under ``key``, or say why there is none (locked)."""
        store = self._store
        store.max_bytes = self.max_bytes
        store.trim(now, self.monitor.outcome_ttl_s)
        i = store.index.get(key)
        if i is None:
            return store.tomb_reason(key) or "unknown_id"
        t, flags, value = store.t[i], store.flags[i], store.pred[i]
        pcode = flags >> 24 & 0xFFFF
        extra = store.extras.get(i) if flags & _EXTRA else None
        if now - t > self.monitor.outcome_ttl_s:
            store.drop(i, _EXPIRED)
            return "expired"
        batch = None
        if flags & _ROW:
            row = store.inputs[i].copy()
            batch = Batch(1, row.reshape(1, -1) if flags & _ROW2D else row,
                          self.monitor._features, None)
        elif extra is not None and extra.held is not None:
            batch = extra.held
        rows, seg, out = store.rows[i], (flags >> 40) - 1, flags >> 16 & 0xFF
        segment = self._seg_codes.values[seg] if seg >= 0 else None
        if extra is not None and extra.segments is not None:
            segment = extra.segments
        ctx = None
        if extra is not None and extra.ctx is not None:
            ctx = extra.ctx
        elif flags & _CTX:
            span = key if type(key) is int else store.span[i]
            ctx = SpanContext((store.trace_hi[i] << 64) | store.trace_lo[i], span, is_remote=False,
                              trace_flags=TraceFlags(flags >> 8 & 0xFF))
        pred = self._pred_array(value, pcode, extra)
        rec = _Record(t, pred, self._out_codes.values[out], None if rows < 0 else rows,
                      ctx, segment, batch)
        store.drop(i, 0)
        store.tomb(key, _DUPLICATE)
        return rec

    # ------------------------------------------------------------------ labels
    def record_outcome(self, prediction_id: str, actual: Any) -> None:
        """Score the label of one remembered call (never raises; any thread)."""
        if self.monitor._disabled:
            return
        try:
            pid = str(prediction_id)
            now = self._clock()
            with self._lock:
                rec = self._take(_key(pid), now)
            if type(rec) is str:
                self._unmatch(rec, _label_count(actual))
                return
            tracer = self.monitor._tracer
            ctx = rec.span_context
            links = [Link(ctx)] if ctx is not None and getattr(ctx, "is_valid", False) else None
            span = tracer.start_span(f"ml.outcome {self.monitor.name}", kind=SpanKind.INTERNAL,
                                     links=links, attributes={**self.monitor.attributes,
                                                              Attr.PREDICTION_ID: pid})
            with trace.use_span(span, end_on_exit=True):
                pred = _interpret(rec.pred, rec.output, self._resolve(rec.pred, rec.output),
                                  rec.rows, self._declared, self._positive, self.monitor.threshold)
                if pred is None:
                    self._unmatch("wrong_type", _label_count(actual))
                    return
                truth = _as_rows(actual)
                if truth is None or truth.shape[0] != pred.n:
                    self._unmatch("wrong_shape", _label_count(actual))
                    return
                segments = _record_segments(rec.segment, pred.n)
                if segments is None:
                    self._unmatch("wrong_shape", _label_count(actual))
                    return
                groups = bins = None
                if rec.batch is not None:
                    if self.monitor.sensitive_attribute is not None:
                        column = _column(rec.batch, self.monitor.sensitive_attribute)
                        if column is not None:
                            groups = _per_row(column, pred.n, self._groups)
                    if self.monitor.reference is not None:
                        bins = _rows_of_bins(_bins(self.monitor, rec.batch), pred.n)
                self._score(pred, truth, segments, groups, bins, now)
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
        if groups is not None and self.monitor.sensitive_attribute is None:
            raise ValueError("groups were given but the monitor has no sensitive_attribute: "
                             "pass sensitive_attribute='column' to ModelMonitor")
        if self.monitor._disabled:
            return
        try:
            pred_arr = _copy(y_pred)
            if pred_arr is None:
                self._unmatch("wrong_type", _label_count(y_true))
                return
            if self._task is None and self.monitor.task == "auto":
                self._task = _infer_task(pred_arr, "auto")
            pred = _interpret(pred_arr, "auto", self._resolve(pred_arr, "auto"), None,
                              self._declared, self._positive, self.monitor.threshold)
            truth = _as_rows(y_true)
            if pred is None:
                self._unmatch("wrong_type", _label_count(y_true))
                return
            if truth is None or truth.shape[0] != pred.n:
                self._unmatch("wrong_shape", _label_count(y_true))
                return
            seg = _per_row(segments, pred.n, self._segment_value)
            grp = None if groups is None else _per_row(groups, pred.n, self._groups)
            if seg is None or (groups is not None and grp is None):
                self._unmatch("wrong_shape", pred.n)
                return
            span = self.monitor._tracer.start_span(
                f"ml.outcomes {self.monitor.name}", kind=SpanKind.INTERNAL,
                attributes={**self.monitor.attributes, Attr.BATCH_SIZE: pred.n})
            with trace.use_span(span, end_on_exit=True):
                self._score(pred, truth, seg, grp, None, self._clock())
        except Exception as exc:
            internal_error("outcomes.record", exc)

    def _segment_value(self, value: Any) -> str:
        if value is None:
            return NO_SEGMENT
        return self.monitor.segment_values(value)

    def _resolve(self, pred: np.ndarray, output: str) -> str:
        task = self.monitor.task
        if task != "auto":
            return task
        return self._task or _infer_task(pred, output)

    def _unmatch(self, reason: str, n: int) -> None:
        with self._lock:
            self._unmatched[reason] = self._unmatched.get(reason, 0) + n
        log_limited(f"outcome:{reason}", "otel_ml: %d label(s) for model %r not scored: %s",
                    n, self.monitor.name, UNMATCHED_REASONS[reason])

    def _score(self, pred: _Pred, truth: np.ndarray, segments: np.ndarray,
               groups: np.ndarray | None, bins: tuple[tuple[str, ...], np.ndarray] | None,
               now: float) -> None:
        """Score rows (numpy outside the lock, then one locked update)."""
        if pred.values is not None:
            self._score_regression(pred, truth, segments, bins, now)
        else:
            self._score_classification(pred, truth, segments, groups, bins, now)

    def _score_regression(self, pred: _Pred, truth: np.ndarray, segments: np.ndarray,
                          bins: Any, now: float) -> None:
        try:
            actual = truth.astype(np.float64)
        except (TypeError, ValueError):
            self._unmatch("wrong_type", len(truth))
            return
        valid = np.isfinite(actual)
        if not valid.all():
            self._unmatch("missing_label", int((~valid).sum()))
            if not valid.any():
                return
        errors = pred.values[valid] - actual[valid]
        abs_err = np.abs(errors)
        segments = segments[valid]
        finite = np.isfinite(errors)
        hist = self.monitor._instruments["ml.model.error.absolute"]
        for value, seg in zip(abs_err[finite].tolist(), segments[finite].tolist()):
            hist.record(value, self._seg_attrs(seg))  # in the outcome span's context: exemplar
        with self._lock:
            slot = self._slot(now)
            for seg, idx in _group_rows(segments):
                e = errors[idx]
                e = e[np.isfinite(e)]
                slot.tallies.setdefault(seg, Tally()).add_errors(e)
                self._squared[seg] = self._squared.get(seg, 0.0) + float(np.einsum("i,i->", e, e))
            self._feed_detectors(abs_err[finite], regression=True, now=now)
            if bins is not None:
                self._add_bins(slot, bins[0], bins[1][valid], abs_err)
            self._version += 1

    def _score_classification(self, pred: _Pred, truth: np.ndarray, segments: np.ndarray,
                              groups: np.ndarray | None, bins: Any, now: float) -> None:
        missing = _missing(truth)
        actual = label_strings(truth)
        keep = ~missing
        if self._declared or pred.proba is not None:
            known = set(pred.columns if pred.proba is not None and pred.proba.ndim == 2 else ())
            known.update(self._declared)
            if pred.proba is not None and pred.proba.ndim == 1:
                known.update(pred.columns)
            unseen = keep & ~np.isin(actual, list(known)) if known else np.zeros_like(keep)
            if unseen.any():
                self._unmatch("unseen_class", int(unseen.sum()))
                keep &= ~unseen
        if missing.any():
            self._unmatch("missing_label", int(missing.sum()))
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
        with self._lock:
            slot = self._slot(now)
            for seg, idx in _group_rows(segments):
                tally = slot.tallies.setdefault(seg, Tally())
                p, a = prd[idx], act[idx]
                tally.add_labels(p, a)
                if brier is not None:
                    tally.add_proba(brier[idx], log_loss[idx])
                for (pc, ac), n in _pairs(p, a):
                    key = (seg, pc, ac)
                    self._confusion[key] = self._confusion.get(key, 0) + n
            if groups is not None:
                pos = self._positive
                for key in zip(groups[keep].tolist(), (act == pos).tolist(), (prd == pos).tolist()):
                    slot.fairness[key] = slot.fairness.get(key, 0) + 1
            self._feed_detectors(wrong, regression=False, now=now)
            if bins is not None:
                self._add_bins(slot, bins[0], bins[1][keep], wrong)
            self._version += 1

    def _seg_attrs(self, seg: str) -> dict[str, str]:
        attrs = self._attrs.get(seg)
        if attrs is None:
            attrs = self._attrs.setdefault(seg, {**self.monitor.attributes, Attr.SEGMENT: seg})
        return attrs

    # ------------------------------------------------------------------ window ring
    def _slot(self, now: float) -> _Slot:
        tag = int(now // self.monitor.slot_s)
        i = tag % self._n_slots
        slot = self._slots[i]
        if slot is None or slot.tag != tag:
            slot = self._slots[i] = _Slot(tag)
        return slot

    def _window(self) -> _Window:
        now_tag = int(self._clock() // self.monitor.slot_s)
        with self._lock:
            key = (self._version, now_tag)
            if self._cache is not None and self._cache[0] == key:
                return self._cache[1]
            win = _Window()
            for slot in self._slots:
                if slot is None or slot.tag <= now_tag - self._n_slots:
                    continue
                for seg, tally in slot.tallies.items():
                    win.tallies.setdefault(seg, Tally()).merge(tally)
                for k, n in slot.fairness.items():
                    win.fairness[k] = win.fairness.get(k, 0) + n
                if slot.bin_n is not None:
                    win.bin_n = _add_grid(win.bin_n, slot.bin_n)
                    win.bin_err = _add_grid(win.bin_err, slot.bin_err)
                for f, v in slot.attr_sum.items():
                    win.attr_sum[f] = win.attr_sum.get(f, 0.0) + v
                    win.attr_n[f] = win.attr_n.get(f, 0) + slot.attr_n[f]
            self._cache = (key, win)
            return win

    # ------------------------------------------------------------------ concept drift
    def _feed_detectors(self, errors: np.ndarray, *, regression: bool, now: float) -> None:
        values = errors.tolist()
        if regression:  # scale by the MAE of the first rows, so thresholds are in its units
            if self._scale is None:
                # |error| / MAE has a standard deviation near 0.75 (0/1 errors: at most 0.5):
                # tolerate drifts below 5% of the MAE or Page-Hinkley false-alarms.
                self._detectors["page_hinkley"].delta = _REGRESSION_PH_DELTA
                self._baseline.extend(values)
                if len(self._baseline) < _BASELINE_ROWS:
                    return
                mean = sum(self._baseline) / len(self._baseline)
                self._scale = mean if mean > 0 else 1.0
                values, self._baseline = self._baseline, []
            values = [v / self._scale for v in values]
        for name, detector in self._detectors.items():
            for v in values:
                if detector.update(v).drift_detected:
                    self._detections[name] += 1
                    self._last_detection[name] = now

    def _drift_state(self, name: str) -> int:
        return int(self._clock() - self._last_detection[name] <= self.monitor.drift_window_s)

    # ------------------------------------------------------------------ error analysis
    def _add_bins(self, slot: _Slot, names: tuple[str, ...], bins: np.ndarray,
                  errors: np.ndarray) -> None:
        cap = getattr(self.monitor, "max_features", 200)
        rows = []
        for name in names:
            row = self._bin_features.get(name)
            if row is None and len(self._bin_features) < cap:
                row = self._bin_features[name] = len(self._bin_features)
            rows.append(-1 if row is None else row)
        rows_arr = np.asarray(rows, dtype=np.int64)
        bins = np.asarray(bins, dtype=np.int64).reshape(len(errors), len(names))
        ok = (bins >= 0) & (rows_arr >= 0)[None, :]
        if not ok.any():
            return
        n_rows = len(self._bin_features)
        n_bins = int(bins[ok].max()) + 1
        slot.bin_n = _grow(slot.bin_n, n_rows, n_bins)
        slot.bin_err = _grow(slot.bin_err, n_rows, n_bins)
        feat_idx = np.broadcast_to(rows_arr[None, :], bins.shape)[ok]
        err = np.broadcast_to(errors[:, None], bins.shape)[ok]
        np.add.at(slot.bin_n, (feat_idx, bins[ok]), 1.0)
        np.add.at(slot.bin_err, (feat_idx, bins[ok]), err)

    def _bin_label(self, feature: str, index: int) -> str:
        label = self._bin_labels.get((feature, index))
        if label is None:
            label = str(index)
            labeller = getattr(self.monitor._features, "bin_label", None)
            if labeller is not None:
                try:
                    label = str(labeller(feature, index))
                except Exception as exc:
                    internal_error("outcomes.bin_label", exc)
            self._bin_labels[(feature, index)] = label
        return label

    def _error_by_bin(self, win: _Window) -> dict[str, dict[str, dict[str, float]]]:
        out: dict[str, dict[str, dict[str, float]]] = {}
        if win.bin_n is None:
            return out
        for feature, row in list(self._bin_features.items()):
            if row >= win.bin_n.shape[0]:
                continue
            cells = {}
            for b in np.nonzero(win.bin_n[row])[0].tolist():
                n = float(win.bin_n[row, b])
                error = float(win.bin_err[row, b]) / n
                cells[self._bin_label(feature, b)] = {"count": n, "error": error}
            if cells:
                out[feature] = cells
        return out

    # ------------------------------------------------------------------ attributions
    def record_attributions(self, attributions: Any, feature_names: Sequence[str] | None = None,
                            ) -> None:
        """Add per-row attributions (rows x features; a frame, a dict of columns or an array).

        Mean absolute attribution per feature goes to ``ml.feature.attribution``. Bad input
        is logged and dropped, never raised.
        """
        if self.monitor._disabled:
            return
        try:
            names, values = _attribution_matrix(attributions, feature_names, self.monitor)
            if values is None:
                log_limited("outcome:attributions", "otel_ml: attributions for model %r "
                            "ignored: %s", self.monitor.name, names)
                return
            abs_v = np.abs(values)
            finite = np.isfinite(abs_v)
            sums = np.where(finite, abs_v, 0.0).sum(axis=0)
            counts = finite.sum(axis=0)
            capped = [self._attr_features(n) for n in names]
            with self._lock:
                slot = self._slot(self._clock())
                for name, s, n in zip(capped, sums.tolist(), counts.tolist()):
                    if n:
                        slot.attr_sum[name] = slot.attr_sum.get(name, 0.0) + s
                        slot.attr_n[name] = slot.attr_n.get(name, 0) + n
                self._version += 1
        except Exception as exc:
            internal_error("outcomes.attributions", exc)

    def _attributions(self, win: _Window) -> tuple[dict[str, float], dict[str, float]]:
        current = {f: win.attr_sum[f] / n for f, n in win.attr_n.items() if n}
        reference = _mapping(getattr(self.monitor.reference, "attributions", None))
        drift = {f: current[f] / ref - 1.0 for f, ref in reference.items()
                 if f in current and ref > 0}
        return current, drift

    # ------------------------------------------------------------------ access
    def record_rejected(self, reason: str) -> None:
        """Count one request refused before predict (``ml.model.requests.rejected``)."""
        if self.monitor._disabled:
            return
        try:
            value = self._reasons(str(reason))
            attrs = self._attrs.get("\0" + value)
            if attrs is None:
                attrs = self._attrs.setdefault("\0" + value,
                                               {**self.monitor.attributes, Attr.REASON: value})
            self.monitor._instruments["ml.model.requests.rejected"].add(1, attrs)
        except Exception as exc:
            internal_error("outcomes.rejected", exc)

    # ------------------------------------------------------------------ reports
    def _fairness(self, win: _Window) -> FairnessReport | None:
        attribute = self.monitor.sensitive_attribute
        if attribute is None:
            return None
        return fairness_from_counts(attribute, win.fairness, self._positive, self.min_group_size)

    def performance_report(self) -> PerformanceReport:
        """Windowed performance, per class and segment, fairness, drift state, error bins."""
        win = self._window()
        total = win.total()
        metrics, per_class = total.metrics(self._positive)
        by_segment = {seg: t.metrics(self._positive)[0] for seg, t in sorted(win.tallies.items())}
        attributions, attribution_drift = self._attributions(win)
        with self._lock:
            unmatched = dict(self._unmatched)
            detections = dict(self._detections)
        return PerformanceReport(
            model=self.monitor.name,
            version=self.monitor.version,
            task=self.monitor.task if self.monitor.task != "auto" else (self._task or "auto"),
            window_s=self.monitor.drift_window_s,
            count=total.count,
            metrics=metrics,
            per_class=per_class,
            by_segment=by_segment,
            reference=self._reference_performance(),
            fairness=self._fairness(win),
            concept_drift={name: {"drift": bool(self._drift_state(name)),
                                  "detections": detections[name]} for name in self._detectors},
            error_by_bin=self._error_by_bin(win),
            attributions=attributions,
            attribution_drift=attribution_drift,
            unmatched=unmatched,
            store=self.store_stats(),
        )

    def store_stats(self) -> dict[str, int]:
        """Prediction store: records and bytes held, evicted and expired since start."""
        with self._lock:
            store = self._store
            return {"records": len(store.index), "bytes": store.bytes,
                    "evicted": store.evicted, "expired": store.expired}

    def _reference_performance(self) -> dict[str, float]:
        values = _mapping(getattr(getattr(self.monitor, "reference", None), "performance", None))
        return {k: v for k, v in values.items() if math.isfinite(v)}

    def inferred_task(self) -> str | None:
        """``"classification"`` or ``"regression"`` from the first predictions, else ``None``."""
        return self._task

    def after_fork(self) -> None:
        """In a forked child: start empty (the parent's predictions are the parent's)."""
        self._reset()

    # ------------------------------------------------------------------ collection
    def collectors(self) -> dict[str, Callable[[], list[tuple[float, dict[str, str]]]]]:
        """Observable metric name to a function giving its points (without model attributes)."""
        return {
            "ml.model.outcomes": self._collect_outcomes,
            "ml.model.outcomes.unmatched": lambda: [
                (n, {Attr.REASON: r}) for r, n in list(self._unmatched.items())],
            "ml.model.error.squared": lambda: [
                (v, {Attr.SEGMENT: s}) for s, v in list(self._squared.items())],
            "ml.model.performance": self._collect_performance,
            "ml.model.performance.reference": lambda: [
                (v, {Attr.PERF_METRIC: k}) for k, v in self._reference_performance().items()],
            "ml.fairness.group.rate": self._collect_fairness_rates,
            "ml.fairness.gap": self._collect_fairness_gaps,
            "ml.concept_drift.detections": lambda: [
                (n, {Attr.DETECTOR: d}) for d, n in list(self._detections.items())],
            "ml.concept_drift.state": lambda: [
                (self._drift_state(d), {Attr.DETECTOR: d}) for d in self._detectors],
            "ml.feature.attribution": lambda: [
                (v, {Attr.FEATURE: f}) for f, v in self._attributions(self._window())[0].items()],
            "ml.feature.attribution.drift": lambda: [
                (v, {Attr.FEATURE: f}) for f, v in self._attributions(self._window())[1].items()],
            "ml.model.error_rate.by_bin": lambda: [
                (cell["error"], {Attr.FEATURE: f, Attr.BIN: b})
                for f, cells in self._error_by_bin(self._window()).items()
                for b, cell in cells.items()],
        }

    def _collect_outcomes(self) -> list[tuple[float, dict[str, str]]]:
        with self._lock:
            items = list(self._confusion.items())
        return [(n, {Attr.SEGMENT: s, Attr.CLASS_PREDICTED: p, Attr.CLASS_ACTUAL: a})
                for (s, p, a), n in items]

    def _collect_performance(self) -> list[tuple[float, dict[str, str]]]:
        win = self._window()
        out = []
        tallies: dict[str, Tally] = {ALL_SEGMENTS: win.total()} if win.tallies else {}
        if set(win.tallies) != {NO_SEGMENT}:
            tallies.update(win.tallies)
        for seg, tally in tallies.items():
            for name, value in tally.metrics(self._positive)[0].items():
                if math.isfinite(value):
                    out.append((value, {Attr.SEGMENT: seg, Attr.PERF_METRIC: name}))
        return out

    def _collect_fairness_rates(self) -> list[tuple[float, dict[str, str]]]:
        report = self._fairness(self._window())
        if report is None:
            return []
        return [(v, {Attr.FAIRNESS_ATTRIBUTE: report.attribute, Attr.FAIRNESS_GROUP: g,
                     Attr.FAIRNESS_METRIC: m}) for g, m, v in report.rates()]

    def _collect_fairness_gaps(self) -> list[tuple[float, dict[str, str]]]:
        report = self._fairness(self._window())
        if report is None:
            return []
        return [(v, {Attr.FAIRNESS_ATTRIBUTE: report.attribute, Attr.FAIRNESS_METRIC: m})
                for m, v in report.gaps().items()]


# ---------------------------------------------------------------------------- helpers
def _copy(result: Any) -> np.ndarray | None:
    """A private numpy copy of the predictions (None when they are not array-like)."""
    try:
        if isinstance(result, np.ndarray):
            arr = result.copy()
        elif isinstance(result, (list, tuple)):
            arr = np.array(result)
        else:  # __array__ (a tensor): asarray, as np.array asks for copy= older ones lack
            arr = np.asarray(result).copy()
    except Exception:
        return None
    if arr.dtype.kind not in "biufUSO" or arr.ndim > 2:
        return None
    if arr.flags.writeable:
        arr.flags.writeable = False
    return arr


def _nbytes(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, str):
        return 0
    if isinstance(value, np.ndarray):
        return int(value.nbytes) + (value.size * _OBJECT_ITEM if value.dtype.kind == "O" else 0)
    try:
        return len(value) * _OBJECT_ITEM
    except TypeError:
        return _OBJECT_ITEM


def _infer_task(pred: np.ndarray, output: str) -> str:
    if output in ("label", "proba"):
        return "classification"
    if output == "score":
        return "regression"
    if pred.dtype.kind in "biuUSO":
        return "classification"
    if pred.ndim == 2 and pred.shape[1] >= 2:
        return "classification"
    return "regression"


def _interpret(arr: np.ndarray, output: str, task: str, rows: int | None,
               declared: tuple[str, ...], positive: str, threshold: float) -> _Pred | None:
    """Read predictions as class labels, probabilities or values (None: unusable)."""
    if arr.ndim == 0:
        arr = arr.reshape(1)
    kind = arr.dtype.kind
    if task == "regression":
        if kind not in "biuf":
            return None
        if arr.ndim == 2:
            if arr.shape[1] != 1:
                return None
            arr = arr[:, 0]
        pred = _Pred(arr.shape[0])
        pred.values = arr.astype(np.float64)
        return pred
    if output == "auto":
        if kind in "biuUSO":
            output = "label"
        elif arr.ndim == 2 and arr.shape[1] >= 2:
            output = "proba"
        else:
            flat = arr.ravel()
            output = "label" if np.all(np.mod(flat[np.isfinite(flat)], 1) == 0) else "score"
    if output == "label":
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1:
            return None
        pred = _Pred(arr.shape[0])
        pred.labels = label_strings(arr)
        return pred
    if kind not in "biuf":
        return None
    arr = arr.astype(np.float64)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if output == "proba" and arr.ndim == 1 and rows == 1 and arr.size > 1:
        arr = arr.reshape(1, -1)  # one row's class probabilities, returned flat
    if output == "score" and arr.ndim == 1:
        finite = arr[np.isfinite(arr)]
        if finite.size and (finite.min() < 0 or finite.max() > 1):  # decision scores
            arr = (arr > 0).astype(np.float64)
    if arr.ndim == 1:  # probability of the positive class
        negative = next((c for c in declared if c != positive), "0" if positive == "1" else OTHER)
        pred = _Pred(arr.shape[0])
        pred.proba = np.clip(arr, 0.0, 1.0)
        pred.columns = [negative, positive]
        pred.pos_col = 1
        pred.labels = np.where(arr >= threshold, positive, negative).astype(object)
        return pred
    k = arr.shape[1]
    columns = list(declared) if len(declared) == k else [str(i) for i in range(k)]
    pred = _Pred(arr.shape[0])
    pred.proba = arr
    pred.columns = columns
    names = np.asarray(columns, dtype=object)
    if k == 2 and positive in columns:
        pred.pos_col = columns.index(positive)
        pred.labels = np.where(arr[:, pred.pos_col] >= threshold, positive,
                               columns[1 - pred.pos_col]).astype(object)
    else:
        pred.labels = names[np.argmax(arr, axis=1)]
    return pred


def _as_rows(actual: Any) -> np.ndarray | None:
    try:
        arr = np.asarray(actual)
    except Exception:
        return None
    if arr.ndim == 0:
        return arr.reshape(1)
    if arr.ndim == 2 and arr.shape[1] == 1:
        return arr[:, 0]
    return arr if arr.ndim == 1 else None


def _label_count(actual: Any) -> int:
    try:
        arr = np.asarray(actual)
        return max(1, int(arr.shape[0])) if arr.ndim else 1
    except Exception:
        return 1


def _missing(truth: np.ndarray) -> np.ndarray:
    if truth.dtype.kind == "f":
        return np.isnan(truth)
    if truth.dtype.kind == "O":
        return np.array([v is None or (isinstance(v, float) and math.isnan(v))
                         for v in truth.tolist()], dtype=bool)
    return np.zeros(truth.shape[0], dtype=bool)


def _capped(labels: np.ndarray, cap: CappedValues) -> np.ndarray:
    if len(labels) == 1:
        return np.array([cap(labels[0])], dtype=object)
    uniques, inverse = np.unique(labels.astype(str), return_inverse=True)
    return np.array([cap(u) for u in uniques.tolist()], dtype=object)[inverse.ravel()]


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
    except Exception:
        return None
    if arr.size != n:
        return None
    if n == 1:
        return np.array([mapper(arr[0])], dtype=object)
    try:
        uniques, inverse = np.unique(arr.astype(str), return_inverse=True)
        names = np.array([mapper(u) for u in uniques.tolist()], dtype=object)
        return names[inverse.ravel()]
    except Exception:
        return np.array([mapper(v) for v in arr.tolist()], dtype=object)


def _group_rows(segments: np.ndarray):
    if len(segments) and (segments[0] == segments).all():
        yield str(segments[0]), slice(None)
        return
    for seg in np.unique(segments.astype(str)).tolist():
        yield seg, np.nonzero(segments == seg)[0]


def _pairs(predicted: np.ndarray, actual: np.ndarray):
    if len(predicted) == 1:
        yield (predicted[0], actual[0]), 1
        return
    counts: dict[tuple[str, str], int] = {}
    for key in zip(predicted.tolist(), actual.tolist()):
        counts[key] = counts.get(key, 0) + 1
    yield from counts.items()


def _column(batch: Any, name: str) -> Any:
    column = getattr(batch, "column", None)
    if column is None:
        return None
    try:
        values = column(name)
    except Exception as exc:
        internal_error("outcomes.sensitive_attribute", exc)
        return None
    if values is None:
        return None
    try:
        return np.array(values, dtype=object).ravel()
    except Exception:
        return None


def _bins(monitor: Any, batch: Any) -> tuple[tuple[str, ...], np.ndarray] | None:
    """``(feature names, (rows, features) bin indices)`` of a batch, or None."""
    bin_rows = getattr(monitor._features, "bin_rows", None)
    if bin_rows is None:
        return None
    try:
        got = bin_rows(batch)
    except Exception as exc:
        internal_error("outcomes.bins", exc)
        return None
    if got is None:
        return None
    if isinstance(got, tuple) and len(got) == 2:
        names, matrix = got
    elif isinstance(got, dict):
        names = tuple(got)
        matrix = np.column_stack([np.asarray(v) for v in got.values()]) if got else None
    else:
        matrix = got
        names = getattr(batch, "feature_names", None) or getattr(monitor._features,
                                                                 "feature_names", None)
    if matrix is None or names is None:
        return None
    matrix = np.asarray(matrix)
    if matrix.ndim == 1:
        matrix = matrix.reshape(1, -1)
    if matrix.shape[1] != len(names):
        return None
    return tuple(str(n) for n in names), matrix


def _input_nbytes(x: Any) -> int:
    """Memory a call's input holds (estimated without converting it)."""
    if x is None:
        return 0
    nbytes = getattr(x, "nbytes", None)  # numpy, torch (via __array__ types), polars
    if isinstance(nbytes, (int, np.integer)):
        return int(nbytes)
    shape = getattr(x, "shape", None)
    if shape is not None and len(shape) == 2:  # pandas: 8 bytes a cell, object cells more
        return int(shape[0]) * int(shape[1]) * _OBJECT_ITEM
    try:
        n = len(x)
    except TypeError:
        return _OBJECT_ITEM
    if n and isinstance(x, (list, tuple)) and isinstance(x[0], (list, tuple, dict)):
        return n * len(x[0]) * _OBJECT_ITEM
    return n * _OBJECT_ITEM


def _rows_of_bins(bins: Any, n: int) -> Any:
    if bins is None or bins[1].shape[0] != n:
        return None
    return bins


def _grow(grid: np.ndarray | None, rows: int, cols: int) -> np.ndarray:
    if grid is None:
        return np.zeros((rows, cols))
    if grid.shape[0] >= rows and grid.shape[1] >= cols:
        return grid
    out = np.zeros((max(rows, grid.shape[0]), max(cols, grid.shape[1])))
    out[: grid.shape[0], : grid.shape[1]] = grid
    return out


def _add_grid(total: np.ndarray | None, grid: np.ndarray) -> np.ndarray:
    total = _grow(None if total is None else total.copy(), *grid.shape)
    total[: grid.shape[0], : grid.shape[1]] += grid
    return total


def _mapping(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        return {}
    out = {}
    for k, v in value.items():
        try:
            out[str(k)] = float(v)
        except (TypeError, ValueError):
            continue
    return out


def _attribution_matrix(attributions: Any, feature_names: Sequence[str] | None, monitor: Any,
                        ) -> tuple[Any, np.ndarray | None]:
    """``(names, (rows, features) floats)``, or ``(why, None)`` for unusable input."""
    names: list[str] | None = list(feature_names) if feature_names is not None else None
    if isinstance(attributions, dict):
        names = names or [str(k) for k in attributions]
        values = np.column_stack([np.asarray(v, dtype=np.float64).ravel()
                                  for v in attributions.values()])
    else:
        columns = getattr(attributions, "columns", None)
        if names is None and columns is not None:
            names = [str(c) for c in columns]
        try:
            values = np.asarray(attributions, dtype=np.float64)
        except (TypeError, ValueError):
            return "not numeric", None
        if values.ndim == 1:
            values = values.reshape(1, -1)
    if values.ndim != 2 or values.shape[1] == 0:
        return f"expected rows x features, got shape {values.shape}", None
    if names is None:
        names = list(getattr(monitor, "feature_names", None) or
                     getattr(getattr(monitor, "reference", None), "feature_names", None) or
                     [f"f{i}" for i in range(values.shape[1])])
    if len(names) != values.shape[1]:
        return f"{values.shape[1]} columns for {len(names)} feature names", None
    return names, values
