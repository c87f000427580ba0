"""The bounded store of recent predictions by id, waiting for their labels.

Every successful instrumented call is remembered under its prediction id (:meth:`remember`,
on the hot path: O(1), never raises), in a store bounded by count, bytes and age
(:class:`~otel_ml._internal.monitor.prediction_slots.PackedSlots`): one prediction as a number
or a label code, codes for output and segment, the span context, and, when the reference bins
or the sensitive attribute need it, the input row in a preallocated array of floats; bigger
predictions and inputs are copies counted against the byte cap. About 0.2 kB a call, plus 8
bytes per feature held. :meth:`take` rebuilds a record as a :class:`Remembered` when its label
arrives, or says why there is none.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from opentelemetry.trace import SpanContext, TraceFlags

from otel_ml._internal.core.log import internal_error
from otel_ml._internal.data.arrays import to_array
from otel_ml._internal.monitor.prediction_slots import (
    MASK64,
    Codes,
    Extra,
    Flags,
    PackedSlots,
    PredictionCodec,
    Tombstone,
    record_key,
)
from otel_ml._internal.monitor.settings import Settings
from otel_ml._internal.stats.task import TaskGuess

__all__ = ["MAX_HELD_INPUT_BYTES", "BatchMaker", "PredictionStore", "Remembered",
           "copy_predictions"]

#: Largest input kept with a remembered call for error analysis by reference bin (bigger
#: batches are scored without it).
MAX_HELD_INPUT_BYTES = 1024 * 1024

_OBJECT_ITEM = 64  # bytes per element of an object array (the pointed-to objects)
_MAX_TOMBSTONES = 10_000
# Flag bits of a slot (see Flags), as literals for the hot path.
_LIVE, _CTX, _EXTRA, _ROW, _ROW2D = (Flags.LIVE, Flags.CONTEXT, Flags.EXTRA, Flags.ROW,
                                     Flags.ROW_2D)


class BatchMaker(Protocol):
    """What the store needs of the feature side: a batch over a kept input row."""

    def batch_of(self, x: Any, rows: int | None = None) -> Any:
        """A batch over ``x`` (columns, reference bins readable later)."""


class Remembered:
    """One remembered call, rebuilt from its slot when its label arrives.

    Attributes:
        t: When the call was remembered (store clock).
        pred: The predictions (read-only array).
        output: Declared output kind.
        rows: Rows of the call's input, when known.
        span_context: The call's span context, or ``None``.
        segment: The call's segment, per-row segments, or ``None``.
        batch: The call's input (sensitive column, reference bins), or ``None``.
    """

    __slots__ = ("batch", "output", "pred", "rows", "segment", "span_context", "t")

    def __init__(self, t: float, pred: np.ndarray, output: str, rows: int | None,
                 span_context: Any, segment: Any, batch: Any) -> None:
        self.t = t
        self.pred = pred
        self.output = output
        self.rows = rows
        self.span_context = span_context
        self.segment = segment
        self.batch = batch


class PredictionStore:
    """Predictions waiting for their labels, by prediction id (thread-safe).

    ``outcome_store_size=0`` keeps nothing (labels then come with ``record_outcomes``).

    Args:
        settings: The monitor's settings (``outcome_store_size``, ``outcome_store_bytes``,
            ``outcome_ttl_s``).
        task: The task, shared with the scoring side (inferred here from the first call).
        keep_inputs: Keep the call's input (the sensitive column or reference bins need it).
        features: Makes a batch over a kept input row.
        clock: Monotonic seconds.
    """

    def __init__(self, settings: Settings, task: TaskGuess, keep_inputs: bool,
                 features: BatchMaker, clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._task = task
        self._keep_rows = keep_inputs
        self._features = features
        self._ttl = settings.outcome_ttl_s
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        """Forget everything (in a forked child)."""
        size = self._settings.outcome_store_size
        self._remembering = size > 0
        self._lock = threading.Lock()
        self._slots = PackedSlots(max(1, size), self._settings.outcome_store_bytes,
                                  min(max(1, size), _MAX_TOMBSTONES))
        self._seg_codes = Codes()
        self._out_codes = Codes(256)
        self._codec = PredictionCodec()
        #: Calls kept the short way (one float prediction of a single row under the span's id).
        self.short_path_calls = 0

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
            self._remember(prediction_id, batch, result, output, span_context, segment)
        except Exception as exc:
            internal_error("outcomes.remember", exc)

    def _remember(self, prediction_id: str, batch: Any, result: Any, output: str,
                  span_context: Any, segment: str | None) -> None:
        fl = self._codec.float_layout
        extra = None
        flags = _LIVE
        if (type(result) is np.ndarray and result.dtype is fl[0] and result.ndim == fl[1]
                and result.size == 1):
            value, pcode = result.item(), fl[2]  # the usual case: one float
        else:
            value, pcode = self._codec.scalar(result)
        if pcode == 0:  # not one number or label: a private copy, counted in bytes
            pred = copy_predictions(result)
            if pred is None:
                return
            extra = Extra()
            extra.pred = pred
            extra.nbytes = _nbytes(pred)
        if not self._task.known:
            self._task.see(self._codec.array(value, pcode, extra), output)
        rows = -1
        row = None
        if batch is not None:
            rows = -1 if batch.rows is None else int(batch.rows)
            if batch.segments is not None:
                extra = extra or Extra()
                extra.segments = batch.segments
                extra.nbytes += _nbytes(batch.segments)
            if self._keep_rows:
                x = batch.input
                if (type(x) is np.ndarray and rows == 1 and x.ndim <= 2
                        and x.size == self._slots.width and x.dtype.kind in "fiub"):
                    row = x  # the usual case, inline: a row of the width decided
                    flags |= _ROW | (_ROW2D if x.ndim == 2 else 0)
                else:
                    row, bits, extra = self._keep_input(batch, rows, extra)
                    flags |= bits
        seg = -1
        if type(segment) is str:
            seg = self._seg_codes(segment)
            if seg < 0:
                extra = extra or Extra()
                extra.segments = segment
        elif segment is not None:
            extra = extra or Extra()
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
            hi, lo = trace_id >> 64, trace_id & MASK64
            span = span_context.span_id
            tflags = span_context.trace_flags
        if span and len(prediction_id) == 16 and format(span, "016x") == prediction_id:
            key: int | str = span  # the span's own id (the default prediction id)
        else:
            key = record_key(prediction_id)
        if type(key) is str:
            extra = extra or Extra()
            extra.key = key
        else:
            if flags & _CTX and key != span:  # a user id in span-id form
                extra = extra or Extra()
                extra.ctx = span_context
            span = key  # the slot's span field holds the int key (the span's own id)
        if extra is not None:
            flags |= _EXTRA
        now = self.clock()
        with self._lock:  # Flags.pack(flags, tflags, out, pcode, seg), inline
            self._slots.put(key, now, self._ttl, hi, lo, span, value, rows,
                            flags | tflags << 8 | out << 16 | pcode << 24 | (seg + 1) << 40,
                            row, extra)

    def _keep_input(self, batch: Any, rows: int, extra: Extra | None,
                    ) -> tuple[Any, int, Extra | None]:
        """The sensitive column and the reference bins are read when the label arrives
        (reading them here would cost more than the rest of the call): a single numeric row
        is copied into the preallocated array of rows, other inputs are held (copied when
        arrays) while small enough. Returns ``(row, flag bits, extra)``."""
        x = batch.input
        slots = self._slots
        if (type(x) is np.ndarray and rows == 1 and x.ndim <= 2 and x.dtype.kind in "fiub"
                and (x.size == slots.width or self._dense(x.size))):
            return x, _ROW | (_ROW2D if x.ndim == 2 else 0), extra
        if ((type(x) is list or type(x) is tuple) and rows == 1
                and (len(x) == slots.width or self._dense(len(x)))
                and all(type(v) is float or type(v) is int for v in x)):
            return x, _ROW, extra
        if x is not None:
            nbytes = _input_nbytes(x)
            if nbytes <= MAX_HELD_INPUT_BYTES:
                extra = extra or Extra()
                extra.held = batch.keep()
                extra.nbytes += nbytes
        return None, 0, extra

    def _remember_row(self, batch: Any, result: Any, output: str, span_context: Any) -> bool:
        """The usual single-row call, kept the short way: one float prediction under the
        span's own id, the input row (when kept) numeric and of the width already decided.
        Returns False, having kept nothing, for anything else."""
        fl = self._codec.float_layout
        if not (self._task.known and type(result) is np.ndarray and result.dtype is fl[0]
                and result.ndim == fl[1] and result.size == 1):
            return False
        rows, row, flags = -1, None, _LIVE | _CTX
        if batch is not None:
            rows, x = batch.rows, batch.input
            if batch.segments is not None or type(rows) is not int:
                return False
            if self._keep_rows:
                if not (type(x) is np.ndarray and rows == 1 and x.ndim <= 2
                        and x.size == self._slots.width and x.dtype.kind in "fiub"):
                    return False
                row = x
                flags |= _ROW | (_ROW2D if x.ndim == 2 else 0)
        out = self._out_codes.codes.get(output)
        if out is None:
            return False
        trace_id = span_context.trace_id
        span = span_context.span_id
        now = self.clock()
        with self._lock:  # Flags.pack(flags, trace flags, out, layout, no segment), inline
            self._slots.put(span, now, self._ttl, trace_id >> 64, trace_id & MASK64, span,
                            result.item(), rows,
                            flags | span_context.trace_flags << 8 | out << 16 | fl[2] << 24,
                            row, None)
        self.short_path_calls += 1
        return True

    def _dense(self, width: int) -> bool:
        """Whether single rows of this width go to the store's array of rows."""
        with self._lock:
            return self._slots.dense_width(width)

    # ------------------------------------------------------------------ labels
    def take(self, prediction_id: str, now: float) -> Remembered | str:
        """Remove and rebuild the record of ``prediction_id``, or say why there is none
        (a reason of ``UNMATCHED_REASONS``: ``unknown_id``, ``expired``, ``evicted``,
        ``duplicate``)."""
        key = record_key(prediction_id)
        with self._lock:
            return self._take(key, now)

    def _take(self, key: int | str, now: float) -> Remembered | str:
        slots = self._slots
        slots.trim(now, self._ttl)
        i = slots.index.get(key)
        if i is None:
            return slots.tomb_reason(key) or "unknown_id"
        t, flags, value = slots.t[i], slots.flags[i], slots.pred[i]
        extra = slots.extras.get(i) if flags & _EXTRA else None
        if now - t > self._ttl:
            slots.drop(i, Tombstone.EXPIRED)
            return "expired"
        batch = None
        if flags & _ROW:
            row = slots.inputs[i].copy()
            batch = self._features.batch_of(row.reshape(1, -1) if flags & _ROW2D else row, 1)
        elif extra is not None and extra.held is not None:
            batch = extra.held
        seg = Flags.segment(flags)
        segment = self._seg_codes.values[seg] if seg >= 0 else None
        if extra is not None and extra.segments is not None:
            segment = extra.segments
        ctx = None
        if extra is not None and extra.ctx is not None:
            ctx = extra.ctx
        elif flags & _CTX:
            span = key if type(key) is int else slots.span[i]
            ctx = SpanContext((slots.trace_hi[i] << 64) | slots.trace_lo[i], span,
                              is_remote=False, trace_flags=TraceFlags(Flags.trace_flags(flags)))
        pred = self._codec.array(value, Flags.layout(flags), extra)
        rows = slots.rows[i]
        rec = Remembered(t, pred, self._out_codes.values[Flags.output(flags)],
                         None if rows < 0 else rows, ctx, segment, batch)
        slots.drop(i, 0)
        slots.tomb(key, Tombstone.DUPLICATE)
        return rec

    def peek(self, prediction_id: str) -> dict[str, Any] | None:
        """What is remembered under ``prediction_id``, decoded without taking it (tests,
        debugging): ``t``, ``trace_id``, ``span_id``, ``trace_flags``, ``prediction``,
        ``output``, ``rows``, ``segment``, ``row`` (the input row held in the array of rows,
        or ``None``) and ``extra`` (whether anything is held beside the compact slot)."""
        key = record_key(prediction_id)
        with self._lock:
            slots = self._slots
            i = slots.index.get(key)
            if i is None:
                return None
            flags = slots.flags[i]
            extra = slots.extras.get(i) if flags & _EXTRA else None
            seg = Flags.segment(flags)
            rows = slots.rows[i]
            return {
                "t": slots.t[i],
                "trace_id": (slots.trace_hi[i] << 64) | slots.trace_lo[i],
                "span_id": slots.span[i] if flags & _CTX else 0,
                "trace_flags": Flags.trace_flags(flags),
                "prediction": self._codec.array(slots.pred[i], Flags.layout(flags),
                                               extra).tolist(),
                "output": self._out_codes.values[Flags.output(flags)],
                "rows": None if rows < 0 else rows,
                "segment": self._seg_codes.values[seg] if seg >= 0 else None,
                "row": slots.inputs[i].tolist() if flags & _ROW else None,
                "extra": extra is not None,
            }

    def stats(self) -> dict[str, int]:
        """Records and bytes held, evicted and expired since start."""
        with self._lock:
            slots = self._slots
            return {"records": len(slots.index), "bytes": slots.bytes,
                    "evicted": slots.evicted, "expired": slots.expired}


def copy_predictions(result: Any) -> np.ndarray | None:
    """A private read-only numpy copy of the predictions (None when not array-like)."""
    try:
        if isinstance(result, np.ndarray):
            arr = result.copy()
        elif isinstance(result, (list, tuple)):
            arr = np.array(result)
        else:  # __array__ (a tensor): asarray, as np.array asks for copy= older ones lack;
            # a pandas frame read column by column (converting it whole changes it in place)
            arr = to_array(result).copy()
    except Exception:  # not array-like: the user's predictions, not an otel_ml failure
        return None
    if arr.dtype.kind not in "biufUSO" or arr.ndim > 2:
        return None
    if arr.flags.writeable:
        arr.flags.writeable = False
    return arr


def _nbytes(value: Any) -> int:
    if value is None or isinstance(value, str):
        return 0
    if isinstance(value, np.ndarray):
        return int(value.nbytes) + (value.size * _OBJECT_ITEM if value.dtype.kind == "O" else 0)
    try:
        return len(value) * _OBJECT_ITEM
    except TypeError:
        return _OBJECT_ITEM


def _input_nbytes(x: Any) -> int:
    """Memory a call's input holds (estimated without converting it)."""
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
