"""The call path: one instrumented call's span, timing, context and tallies.

A :class:`CallRecorder` is what the wrappers talk to: :meth:`~CallRecorder.begin` before the
user's function runs, :meth:`~CallRecorder.collect_item` for each item a generator yields, and
:meth:`~CallRecorder.end` after it returned or raised. It owns the tracer, the instruments, the
prepared attribute sets and the call tallies; what a call's inputs and predictions feed (the
feature statistics, the prediction store) is handed to it as callbacks by the monitor that wires
them, so the call path knows nothing of the analyses.

Everything here is guarded: telemetry never raises into the caller, a failure is counted in
``ml.telemetry.errors`` (:func:`~otel_ml._internal.core.log.internal_error`) and costs only the
signal it was producing.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from timeit import default_timer
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from otel_ml._internal.core.caps import CappedValues
from otel_ml._internal.core.context import CURRENT_CALL
from otel_ml._internal.core.instruments import Instruments, Points
from otel_ml._internal.core.log import internal_error
from otel_ml._internal.core.state import Switch
from otel_ml._internal.data.inputs import count_items, count_rows
from otel_ml.contract import BATCH_SIZE_RANGES, NO_SEGMENT, Attr, batch_size_range

__all__ = ["Call", "CallRecorder", "Target"]

#: ``feed(call, result, exc) -> batch``: gives a finished call to the analyses; returns its
#: prepared batch (whose ``outlier_rate`` the span may report) or ``None``.
Feed = Callable[["Call", Any, "BaseException | None"], Any]


@dataclass(frozen=True)
class Target:
    """What one instrumented callable is: its span name and how to read its result.

    Attributes:
        span_name: Name of the call's span (``"ml.predict churn"``).
        output: ``"auto"``, ``"label"``, ``"proba"`` or ``"score"``.
    """

    span_name: str
    output: str


class Call:
    """State of one instrumented call in progress (``CURRENT_CALL`` holds the innermost).

    Attributes:
        recorder: The recorder of the call (its model's tracer, instruments, attributes).
        target: What was called.
        x: The features argument, or ``None``.
        rows: Rows of ``x`` (``None`` without inputs: a generator counts its items).
        rate: The single row's outlier rate read before the call, or ``None``.
        segment: The call's segment, or ``None``.
        prediction_id: The caller's id, or the span id as 16 hex digits.
        own_id: True when ``prediction_id`` is the span's own id.
        span_context: The span's context (trace and span ids).
        out_rows: Items a generator yielded so far.
        args: The call's positional arguments. kwargs: Its keyword arguments (read by an
            ``embeddings`` callable after the call).
    """

    __slots__ = ("recorder", "target", "span", "context", "token", "var_token", "start", "cpu",
                 "x", "rows", "rate", "prediction_id", "span_context", "own_id", "segment",
                 "out_rows", "args", "kwargs")

    def __init__(self, recorder: CallRecorder, target: Target) -> None:
        self.recorder = recorder
        self.target = target
        self.out_rows = 0
        self.token = None


class CallRecorder:
    """Spans, timing and tallies of one model's instrumented calls.

    Args:
        attributes: The model's attributes (``ml.model.name``, ``ml.model.version``).
        switch: The monitor's on/off switch (read by the wrappers before every call).
        tracer: The tracer of the call spans.
        instruments: The instruments (``ml.model.predict.duration`` is recorded here).
        features_arg: Which argument holds the features: a position or a keyword name.
        segment_of: ``(args, kwargs) -> value`` giving the call's segment, or ``None``.
        segment_values: Caps segment values.
        outlier_rate: ``x -> float | None``: a single row's outlier rate before the call (for
            the span's start attributes), or ``None`` when nothing computes it.
        feed: Gives each finished call to the analyses (see :data:`Feed`), or ``None``.
        feed_item: ``(call, item)``: gives an item a generator yielded, or ``None``.
        capture: ``(span, x, result)``: attaches the opt-in payload to the span.
        capture_share: Share (0..1) of calls whose payload is captured.
    """

    def __init__(self, attributes: Mapping[str, str], switch: Switch, tracer: trace.Tracer,
                 instruments: Instruments, *, features_arg: int | str = 0,
                 segment_of: Callable[[tuple, dict], Any] | None = None,
                 segment_values: Callable[[Any], str] | None = None,
                 outlier_rate: Callable[[Any], float | None] | None = None,
                 feed: Feed | None = None,
                 feed_item: Callable[[Call, Any], None] | None = None,
                 capture: Callable[[Any, Any, Any], None] | None = None,
                 capture_share: float = 0.0) -> None:
        self.attributes: dict[str, str] = dict(attributes)
        self.switch = switch
        self.tracer = tracer
        self.instruments = instruments
        self.stage_names = CappedValues("stage name", 100)
        self._duration = instruments["ml.model.predict.duration"]
        self._features_arg = features_arg
        self._segment_of = segment_of
        # Not ``or``: an empty CappedValues has len() 0, so it is falsy.
        self._segment_values = segment_values if segment_values is not None else str
        self._outlier_rate = outlier_rate
        self._feed = feed
        self._feed_item = feed_item
        self._capture = capture if capture_share > 0 else None
        self._capture_share = capture_share
        # Span start attributes: everything known before the call. ``ml.outcome`` is "success"
        # unless end() finds an exception. Single rows use one of three prepared sets, keyed by
        # the row's outlier rate, copied per call (a sampler may change what it is given).
        self._start_attrs: dict[str, Any] = {**self.attributes, Attr.OUTCOME: "success"}
        self._single_row_attrs: dict[float | None, dict[str, Any]] = {
            None: {**self._start_attrs, Attr.BATCH_SIZE: 1},
            **{rate: {**self._start_attrs, Attr.BATCH_SIZE: 1, Attr.OUTLIER_RATE: rate}
               for rate in (0.0, 1.0)}}
        self._error_attrs: dict[str, dict[str, str]] = {}
        self._error_types = CappedValues("error.type", 50, max_length=200)
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        # Calls by segment and errors by (segment, error type): bounded by the segment cap and
        # the error-type cap; a call without a segment counts under NO_SEGMENT.
        self._calls: dict[str, int] = {}
        self._rows = 0
        self._cpu_s = 0.0
        self._errors: dict[tuple[str, str], int] = {}
        self._batches = [0] * len(BATCH_SIZE_RANGES)  # successful calls by batch_size_range

    def after_fork(self) -> None:
        """In a forked child: start from zero so nothing the parent counted is counted twice."""
        self._reset()

    def collectors(self) -> dict[str, Callable[[], Points]]:
        """The call tallies, by observable metric name (points without model attributes)."""
        return {
            "ml.model.predict.calls": self._collect_calls,
            "ml.model.predictions": lambda: [(self._rows, {})],
            "ml.model.predict.cpu.time": lambda: [(self._cpu_s, {})],
            "ml.model.batches": lambda: [
                (n, {Attr.BATCH_SIZE_RANGE: BATCH_SIZE_RANGES[i]})
                for i, n in enumerate(self._batches) if n],
            "ml.model.predict.errors": lambda: [
                (n, {Attr.SEGMENT: s, Attr.ERROR_TYPE: t})
                for (s, t), n in list(self._errors.items())],
        }

    def _collect_calls(self) -> Points:
        calls = list(self._calls.items())
        # Before the first call: one zero point, so the counter exists from the start.
        return [(n, {Attr.SEGMENT: s}) for s, n in calls] or [(0, {Attr.SEGMENT: NO_SEGMENT})]

    # ------------------------------------------------------------------ the call path
    def begin(self, target: Target, args: tuple, kwargs: dict, user_id: Any = None, *,
              cpu: bool, attach: bool = True) -> Call | None:
        """Start a call: its span (started, made current unless ``attach`` is false) and
        ``CURRENT_CALL``. Returns ``None`` when telemetry failed (the call runs untraced).

        Args:
            target: What is called.
            args: The call's positional arguments.
            kwargs: The call's keyword arguments.
            user_id: The caller's own prediction id, or ``None`` (the span id is used).
            cpu: Measure the thread's CPU time (not across awaits).
            attach: Make the span current now (generators attach around each step).
        """
        call = Call(self, target)
        call.args = args
        call.kwargs = kwargs
        which = self._features_arg
        if which == 0:
            x = call.x = args[0] if args else None
        else:
            x = call.x = _features_arg(which, args, kwargs)
        call.segment = None
        call.rate = None
        # The caller's own code and values: a failure costs the segment or the id only.
        if self._segment_of is not None:
            try:
                value = self._segment_of(args, kwargs)
                # None is "no segment" (NO_SEGMENT), as for a column's missing values.
                call.segment = None if value is None else self._segment_values(value)
            except Exception as exc:
                internal_error("segment_by", exc)
        if user_id is not None and type(user_id) is not str:
            try:
                user_id = str(user_id)
            except Exception as exc:
                internal_error("prediction_id", exc)
                user_id = None
        try:
            if x is None:
                call.rows = None
                attributes = dict(self._start_attrs)
            else:
                rows = call.rows = count_rows(x)
                if rows == 1:
                    if self._outlier_rate is not None:
                        try:  # a failing analysis costs its own signal only
                            call.rate = self._outlier_rate(x)
                        except Exception as exc:
                            internal_error("outlier_rate", exc)
                    prepared = self._single_row_attrs.get(call.rate)
                    attributes = dict(prepared) if prepared is not None else {
                        **self._start_attrs, Attr.BATCH_SIZE: 1, Attr.OUTLIER_RATE: call.rate}
                else:
                    attributes = {**self._start_attrs, Attr.BATCH_SIZE: rows}
            if user_id is not None:
                # The span's own id is findable as the span id: written only when it differs.
                attributes[Attr.PREDICTION_ID] = user_id
            call.start = default_timer()
            call.cpu = time.thread_time() if cpu else None
            span = self.tracer.start_span(target.span_name, attributes=attributes)
        except Exception as exc:
            internal_error("begin", exc)
            return None
        call.span = span
        try:
            ctx = call.span_context = span.get_span_context()
            if user_id is not None:
                call.prediction_id = user_id
                call.own_id = False
            else:
                call.own_id = ctx.is_valid
                call.prediction_id = format(ctx.span_id if ctx.is_valid
                                            else random.getrandbits(64), "016x")
            call.context = trace.set_span_in_context(span)
            # Attaching is the last step that can fail: nothing is left attached on failure.
            call.token = otel_context.attach(call.context) if attach else None
            call.var_token = CURRENT_CALL.set(call)
            return call
        except Exception as exc:
            internal_error("begin", exc)
            if call.token is not None:
                otel_context.detach(call.token)
            span.end()
            return None

    def collect_item(self, call: Call | None, item: Any) -> None:
        """Count one item an instrumented generator yielded and feed it as predictions."""
        if call is None:
            return
        try:
            call.out_rows += count_items(item)
            if self._feed_item is not None:
                self._feed_item(call, item)
        except Exception as exc:
            internal_error("observe", exc)

    def end(self, call: Call | None, result: Any, exc: BaseException | None,
            resume: Any = None) -> None:
        """Finish a call: record its duration and tallies, feed it, end and detach its span.

        Args:
            call: What :meth:`begin` returned (``None``: nothing to do).
            result: The call's result (``STREAMED`` for a generator), ``None`` on error.
            exc: The exception the call raised, or ``None``.
            resume: The context token to detach instead of the call's own (generators).
        """
        if call is None:
            return
        end_ns = time.time_ns()
        span = call.span
        try:
            elapsed = default_timer() - call.start
            cpu_s = time.thread_time() - call.cpu if call.cpu is not None else 0.0
            rows = call.rows if call.rows is not None else call.out_rows
            if exc is None:
                attrs = self.attributes
            else:
                etype = self._error_types(type(exc).__qualname__)
                attrs = self._error_attrs.get(etype) or self._error_attrs.setdefault(
                    etype, {**self.attributes, Attr.ERROR_TYPE: etype})
            # Recorded while the call's context is current, so the exemplar links to the trace.
            self._duration.record(elapsed, attrs)
            segment = call.segment if call.segment is not None else NO_SEGMENT
            with self._lock:
                calls = self._calls
                calls[segment] = calls.get(segment, 0) + 1
                self._cpu_s += cpu_s
                if exc is None:
                    self._rows += rows
                    self._batches[1 if rows == 1 else batch_size_range(rows)] += 1
                else:
                    key = (segment, etype)
                    self._errors[key] = self._errors.get(key, 0) + 1
            batch = None
            if self._feed is not None:
                try:  # a failing analysis costs its own signals, not the span's annotations
                    batch = self._feed(call, result, exc)
                except Exception as internal:
                    internal_error("record", internal)
            if (call.rows is None or exc is not None or self._capture is not None
                    or (call.rate is None and batch is not None)):
                self._annotate(call, span, rows, batch, result, exc, attrs)
        except Exception as internal:
            internal_error("record", internal)
        finally:
            _close(call, span, end_ns, resume)

    def _annotate(self, call: Call, span: Any, rows: int, batch: Any, result: Any,
                  exc: BaseException | None, attrs: dict[str, str]) -> None:
        """What the span learns only at the end: rows of a generator, a batch's outlier rate,
        the error, the opt-in payload."""
        if not span.is_recording():
            return
        span_attrs: dict[str, Any] = {}
        if call.rows is None:  # a generator without inputs: rows known only now
            span_attrs[Attr.BATCH_SIZE] = rows
        if call.rate is None and batch is not None:  # else set at start
            outlier_rate = batch.outlier_rate
            if outlier_rate is not None:
                span_attrs[Attr.OUTLIER_RATE] = outlier_rate
        if exc is not None:
            span_attrs[Attr.OUTCOME] = "error"
            span_attrs[Attr.ERROR_TYPE] = attrs[Attr.ERROR_TYPE]
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))
        if span_attrs:
            span.set_attributes(span_attrs)
        if self._capture is not None and random.random() < self._capture_share:
            self._capture(span, call.x, None if exc else result)


def _close(call: Call, span: Any, end_ns: int, resume: Any) -> None:
    try:
        span.end(end_time=end_ns)
    except Exception as exc:
        internal_error("span", exc)
    try:
        token = resume if resume is not None else call.token
        if token is not None:
            otel_context.detach(token)
        CURRENT_CALL.reset(call.var_token)
    except Exception as exc:  # a context switched under us (e.g. a generator in another context)
        internal_error("context", exc)


def _features_arg(which: int | str, args: tuple, kwargs: dict) -> Any:
    if isinstance(which, str):
        return kwargs.get(which)
    if which < len(args):
        return args[which]
    return None
