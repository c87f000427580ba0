"""ModelMonitor: the object that records one model's calls, inputs, predictions and outcomes."""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from timeit import default_timer
from typing import TYPE_CHECKING, Any, TypeVar, overload

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_ml._internal.core import state as _state
from otel_ml._internal.core.caps import CappedValues
from otel_ml._internal.core.context import CURRENT_CALL, STREAMED
from otel_ml._internal.core.log import internal_error
from otel_ml._internal.instrument.wrappers import MonitoredFunction, wrap_callable
from otel_ml.contract import BATCH_SIZE_RANGES, Attr, batch_size_range
from otel_ml._internal.data.inputs import count_items, count_rows
from otel_ml._internal.core.instruments import Instruments, Points, instruments_for, tracer_for
from otel_ml._internal.monitor.settings import DEFAULT_STORE_BYTES, OUTPUTS, Settings
from otel_ml._internal.stats.fairness import MIN_GROUP_SIZE

if TYPE_CHECKING:
    from otel_ml._internal.stats.drift import DriftConfig, DriftReport
    from otel_ml._internal.stats.performance import PerformanceReport
    from otel_ml._internal.reference.profile import Reference

__all__ = ["ModelMonitor", "instrument_model"]

F = TypeVar("F", bound=Callable[..., Any])



@dataclass(frozen=True)
class _Target:
    """What one instrumented callable is: its span name and how to read its result."""

    span_name: str
    output: str  # "auto" | "label" | "proba" | "score"


class _Call:
    """State of one predict call in progress."""

    __slots__ = ("monitor", "target", "span", "context", "token", "var_token", "start", "cpu", "x",
                 "rows", "rate", "prediction_id", "span_context", "own_id", "segment", "out_rows")

    def __init__(self) -> None:
        self.out_rows = 0


class ModelMonitor:
    """Records one model's calls, inputs, predictions and outcomes as OpenTelemetry signals.

    Use it as a decorator (``@ModelMonitor("churn", "2.1.0")`` or the sugar
    :func:`instrument_model`), through :func:`otel_ml.wrap_model`, or by hand with
    :meth:`observe`.

    Args:
        name: Model name (``ml.model.name``).
        version: Model version (``ml.model.version``).
        task: ``"classification"``, ``"regression"`` or ``"auto"`` (from the predictions).
        reference: A :class:`otel_ml.Reference` or a path to one saved with ``Reference.save``.
        feature_names: Names of the input columns when the input carries none.
        features_arg: Which argument holds the features: a position or a keyword name.
        segment_by: Column whose value is each row's segment, or a callable
            ``(args, kwargs) -> str`` giving the call's segment.
        segments: Segment values declared up front (others become ``"__other__"``).
        max_segments: Cap on distinct segment values when none are declared.
        sensitive_attribute: Column holding the group used for fairness metrics.
        positive_class: Positive class for binary metrics and fairness (default: ``1``).
        classes: Class labels in the order of the columns of ``predict_proba`` (default: the
            column indices ``0..k-1``).
        threshold: Probability threshold that turns a score into the positive class.
        prediction_id_arg: Keyword argument of the decorated function that carries the
            caller's own prediction id, if any.
        drift: How a feature is declared drifted (:class:`otel_ml.DriftConfig`; default: a
            Bonferroni-corrected test AND a minimum effect size, see ``docs/drift.md``).
        drift_window_s: Length of the time window drift is computed over (default 1 h).
        slot_s: Length of one slot of the window ring (default 60 s).
        max_features: Features tracked per model (the rest are ignored, with a log line).
        max_categories: Categories tracked per categorical feature (the rest are "other").
        outcome_store_size: Predictions kept for joining labels that arrive later (the last
            10,000 calls by default, 0.2-0.4 kB each: 100 s of label delay at 100 calls/s).
            0 keeps none: for models whose labels come with ``record_outcomes``.
        outcome_store_bytes: Bytes the store may hold for multi-row calls (their predictions
            and held inputs; default 32 MiB); the oldest are evicted beyond it.
        outcome_ttl_s: How long a prediction waits for its label (default 7 days).
        fairness_min_group_size: Labelled rows a group needs in the window before its
            fairness rates and gaps are reported (default 30).
        capture_payloads: Opt-in share (0..1) of calls whose inputs and predictions are
            attached to the span, with ``redact`` fields removed. Default 0: never.
        redact: Feature names never captured.
        statistics: Feed inputs and predictions into the feature statistics, drift and
            data-quality checks (default). ``False`` keeps spans and call metrics only.
        tracer_provider: Provider to use instead of the global one.
        meter_provider: Provider to use instead of the global one.

    Raises:
        ValueError: An argument is out of range or empty.
        TypeError: An argument has the wrong type.
    """

    def __init__(
        self,
        name: str,
        version: str = "unknown",
        *,
        task: str = "auto",
        reference: Reference | str | os.PathLike[str] | None = None,
        feature_names: Sequence[str] | None = None,
        features_arg: int | str = 0,
        segment_by: str | Callable[[tuple, dict], Any] | None = None,
        segments: Sequence[str] | None = None,
        max_segments: int = 20,
        sensitive_attribute: str | None = None,
        positive_class: Any = 1,
        classes: Sequence[Any] | None = None,
        threshold: float = 0.5,
        prediction_id_arg: str | None = "prediction_id",
        drift: DriftConfig | None = None,
        drift_window_s: float | None = None,
        slot_s: float = 60.0,
        max_features: int = 200,
        max_categories: int = 50,
        outcome_store_size: int = 10_000,
        outcome_store_bytes: int = DEFAULT_STORE_BYTES,
        outcome_ttl_s: float = 7 * 24 * 3600.0,
        fairness_min_group_size: int = MIN_GROUP_SIZE,
        capture_payloads: float | None = None,
        redact: Sequence[str] = (),
        statistics: bool = True,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        settings = self.settings = Settings.create(
            name, version, task=task, feature_names=feature_names, features_arg=features_arg,
            segment_by=segment_by, segments=segments, max_segments=max_segments,
            sensitive_attribute=sensitive_attribute, positive_class=positive_class,
            classes=classes, threshold=threshold, prediction_id_arg=prediction_id_arg,
            drift=drift, drift_window_s=drift_window_s, slot_s=slot_s,
            max_features=max_features, max_categories=max_categories,
            outcome_store_size=outcome_store_size, outcome_store_bytes=outcome_store_bytes,
            outcome_ttl_s=outcome_ttl_s, fairness_min_group_size=fairness_min_group_size,
            capture_payloads=capture_payloads, redact=redact, statistics=statistics)
        # Read by the components until each takes the settings object (issue 12).
        self.name = name
        self.version = version
        self.task = task
        self.feature_names = settings.feature_names
        self.features_arg = features_arg
        self.segment_by = segment_by
        self.sensitive_attribute = sensitive_attribute
        self.positive_class = positive_class
        self.classes = settings.classes
        self.threshold = settings.threshold
        self.prediction_id_arg = prediction_id_arg
        self.drift_window_s = settings.drift_window_s
        self.drift_config = drift
        self.slot_s = settings.slot_s
        self.max_features = max_features
        self.max_categories = max_categories
        self.outcome_store_size = outcome_store_size
        self.outcome_store_bytes = outcome_store_bytes
        self.fairness_min_group_size = fairness_min_group_size
        self.outcome_ttl_s = settings.outcome_ttl_s
        self.capture_payloads = settings.capture_payloads
        self.redact = settings.redact
        self.statistics = settings.statistics
        self.segment_values = CappedValues("segment", max_segments, settings.segments)

        self.switch = _state.Switch(_sdk_disabled() or _state.disabled)
        self._tracer = tracer_for(tracer_provider)
        self._instruments: Instruments = instruments_for(meter_provider)
        self._duration = self._instruments["ml.model.predict.duration"]
        self.attributes: dict[str, str] = {Attr.MODEL_NAME: name, Attr.MODEL_VERSION: version}
        # Span start attributes: everything known before the call. ``ml.outcome`` is "success"
        # unless _end finds an exception. Single rows use one of three prepared sets, keyed by
        # the row's outlier rate, copied per call (a sampler may change what it is given).
        self._start_attrs: dict[str, Any] = {**self.attributes, Attr.OUTCOME: "success"}
        self._single_row_attrs: dict[float | None, dict[str, Any]] = {
            None: {**self._start_attrs, Attr.BATCH_SIZE: 1},
            **{rate: {**self._start_attrs, Attr.BATCH_SIZE: 1, Attr.OUTLIER_RATE: rate}
               for rate in (0.0, 1.0)}}
        self._segment_fn = None if isinstance(segment_by, str) else segment_by
        self._error_attrs: dict[str, dict[str, str]] = {}
        self._error_types = CappedValues("error.type", 50, max_length=200)
        self.stage_names = CappedValues("stage name", 100)
        self._lock = threading.Lock()
        self._calls = 0
        self._rows = 0
        self._cpu_s = 0.0
        self._errors: dict[str, int] = {}
        self._batches = [0] * len(BATCH_SIZE_RANGES)  # successful calls by batch_size_range

        # Components: statistics of inputs and predictions, and outcomes joined later.
        from otel_ml._internal.monitor.features import FeatureMonitor
        from otel_ml._internal.monitor.outcomes import OutcomeMonitor

        self.reference = _load_reference(reference)
        self._features = FeatureMonitor(self)
        self._outcomes = OutcomeMonitor(self)
        self._collectors: dict[str, Callable[[], Points]] = {
            "ml.model.predict.calls": lambda: [(self._calls, {})],
            "ml.model.predictions": lambda: [(self._rows, {})],
            "ml.model.predict.cpu.time": lambda: [(self._cpu_s, {})],
            "ml.model.batches": lambda: [
                (n, {Attr.BATCH_SIZE_RANGE: BATCH_SIZE_RANGES[i]})
                for i, n in enumerate(self._batches) if n],
            "ml.model.predict.errors": lambda: [
                (n, {Attr.ERROR_TYPE: t}) for t, n in list(self._errors.items())],
            "ml.model.info": lambda: [(1, {Attr.MODEL_TASK: self.resolved_task})],
        }
        for component in (self._features, self._outcomes):
            for metric, collect in component.collectors().items():
                if metric in self._collectors:
                    raise RuntimeError(f"two components collect {metric}")
                self._collectors[metric] = collect
        self._instruments.register(self)
        _state.register_monitor(self)

    # ------------------------------------------------------------------ public API
    @property
    def resolved_task(self) -> str:
        """The task: as given, or inferred from the predictions seen (``"auto"`` until then)."""
        if self.task != "auto":
            return self.task
        return self._outcomes.inferred_task() or self._features.inferred_task() or "auto"

    def __call__(self, func: F) -> F:
        """Instrument ``func``; the result exposes this monitor as ``.monitor``."""
        if not callable(func):
            raise TypeError(f"ModelMonitor decorates callables, got {type(func).__name__}")
        return wrap_callable(func, self, _Target(f"ml.predict {self.name}", "auto"))  # type: ignore[return-value]

    def instrument_method(self, func: F, method: str, output: str = "auto") -> F:
        """Instrument one method of a model object (used by :func:`otel_ml.wrap_model`)."""
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        return wrap_callable(func, self, _Target(f"ml.{method} {self.name}", output))  # type: ignore[return-value]

    def observe(self, x: Any, predictions: Any = None, *, segment: str | None = None) -> None:
        """Feed inputs (and predictions) of code that is not decorated into the statistics.

        Never raises: bad input becomes a data-quality signal.
        """
        if self._disabled:
            return
        try:
            self._features.observe(x, predictions, segment=self._segment_value(segment),
                                   output="auto")
        except Exception as exc:
            internal_error("observe", exc)

    def drift_report(self) -> DriftReport:
        """Drift of every feature and of the predictions over the current window."""
        return self._features.drift_report()

    def record_outcome(self, prediction_id: str, actual: Any) -> None:
        """Join a label that arrived later to the prediction it belongs to. Never raises."""
        self._outcomes.record_outcome(prediction_id, actual)

    def record_outcomes(self, y_true: Any, y_pred: Any, segments: Any = None,
                        groups: Any = None) -> None:
        """Record labels and predictions that arrive together (e.g. a nightly job)."""
        self._outcomes.record_outcomes(y_true, y_pred, segments=segments, groups=groups)

    def performance_report(self) -> PerformanceReport:
        """Windowed performance, per segment, fairness and concept drift state."""
        return self._outcomes.performance_report()

    def record_attributions(self, attributions: Any, feature_names: Sequence[str] | None = None) -> None:
        """Record per-row attributions (SHAP or similar) the caller computed."""
        self._outcomes.record_attributions(attributions, feature_names)

    def record_rejected(self, reason: str) -> None:
        """Count a request refused before predict (auth failure, rate limit, invalid payload)."""
        self._outcomes.record_rejected(reason)

    def flush(self) -> None:
        """Fold buffered single rows into the statistics now (collection does this too)."""
        self._features.flush()

    def close(self) -> None:
        """Stop reporting this monitor's observable metrics."""
        self._instruments.unregister(self)

    @property
    def _disabled(self) -> bool:  # read by the components until they take the switch (issue 12)
        return self.switch.off

    def after_fork(self) -> None:
        """In a forked child: start from zero so nothing the parent counted is counted twice."""
        self._lock = threading.Lock()
        self._calls, self._rows, self._cpu_s, self._errors = 0, 0, 0.0, {}
        self._batches = [0] * len(BATCH_SIZE_RANGES)
        self._features.after_fork()
        self._outcomes.after_fork()

    # ------------------------------------------------------------------ collection
    def observe_metric(self, name: str) -> Points:
        """Observations of ``name`` for this model (called by the instrument callbacks)."""
        collect = self._collectors.get(name)
        if collect is None:
            return ()
        base = self.attributes
        return [(value, {**base, **attrs}) for value, attrs in collect()]

    # ------------------------------------------------------------------ hot path
    def _segment_value(self, segment: Any) -> str | None:
        return None if segment is None else self.segment_values(segment)

    def _begin(self, target: _Target, args: tuple, kwargs: dict, *, cpu: bool,
               attach: bool = True) -> _Call | None:
        call = _Call()
        call.monitor = self
        call.target = target
        which = self.features_arg
        if which == 0:
            x = call.x = args[0] if args else None
        else:
            x = call.x = _features_arg(which, args, kwargs)
        call.segment = None
        call.rate = None
        user_id = None
        if self._segment_fn is not None or (kwargs and self.prediction_id_arg):
            try:  # the caller's own code and values: a failure costs the segment or id only
                if self._segment_fn is not None:
                    call.segment = self._segment_value(self._segment_fn(args, kwargs))
                if self.prediction_id_arg and kwargs:
                    user_id = kwargs.get(self.prediction_id_arg)
                    user_id = None if user_id is None else str(user_id)
            except Exception as exc:
                internal_error("segment_by", exc)
        try:
            if x is None:
                call.rows = None
                attributes = dict(self._start_attrs)
            else:
                rows = call.rows = count_rows(x)
                if rows == 1:
                    if self.statistics:
                        try:  # a failing component costs its own signal only
                            call.rate = self._features.row_outlier_rate(x)
                        except Exception as exc:
                            internal_error("outlier_rate", exc)
                    prepared = self._single_row_attrs.get(call.rate)
                    attributes = dict(prepared) if prepared is not None else {
                        **self._start_attrs, Attr.BATCH_SIZE: 1, Attr.OUTLIER_RATE: call.rate}
                else:
                    attributes = {**self._start_attrs, Attr.BATCH_SIZE: rows}
            call.start = default_timer()
            call.cpu = time.thread_time() if cpu else None
            span = self._tracer.start_span(target.span_name, kind=SpanKind.INTERNAL,
                                           attributes=attributes)
        except Exception as exc:
            internal_error("begin", exc)
            return None
        call.span = span
        try:
            ctx = call.span_context = span.get_span_context()
            call.own_id = False
            if user_id is not None:
                call.prediction_id = user_id
            else:
                call.own_id = ctx.is_valid
                span_id = ctx.span_id if ctx.is_valid else random.getrandbits(64)
                call.prediction_id = format(span_id, "016x")
            if span.is_recording():
                span.set_attribute(Attr.PREDICTION_ID, call.prediction_id)
            call.context = trace.set_span_in_context(span)
            # Attaching is the last step that can fail: nothing is left attached on failure.
            call.token = otel_context.attach(call.context) if attach else None
            call.var_token = CURRENT_CALL.set(call)
            return call
        except Exception as exc:
            internal_error("begin", exc)
            if getattr(call, "token", None) is not None:
                otel_context.detach(call.token)
            span.end()
            return None

    def _collect_item(self, call: _Call | None, item: Any) -> None:
        """Observe one item yielded by an instrumented generator as predictions."""
        if call is None:
            return
        try:
            call.out_rows += count_items(item)
            if self.statistics:
                self._features.observe(None, item, segment=call.segment, output=call.target.output)
        except Exception as exc:
            internal_error("observe", exc)

    def _end(self, call: _Call | None, result: Any, exc: BaseException | None,
             resume: Any = None) -> None:
        if call is None:
            return
        end_ns = time.time_ns()
        span = call.span
        try:
            elapsed = default_timer() - call.start
            cpu_s = time.thread_time() - call.cpu if call.cpu is not None else 0.0
            x = call.x
            rows = call.rows if call.rows is not None else call.out_rows
            if exc is None:
                attrs = self.attributes
            else:
                etype = self._error_types(type(exc).__qualname__)
                attrs = self._error_attrs.get(etype) or self._error_attrs.setdefault(
                    etype, {**self.attributes, Attr.ERROR_TYPE: etype})
            # Recorded while the call's context is current, so the exemplar links to the trace.
            self._duration.record(elapsed, attrs)
            with self._lock:
                self._calls += 1
                self._cpu_s += cpu_s
                if exc is None:
                    self._rows += rows
                    self._batches[1 if rows == 1 else batch_size_range(rows)] += 1
                else:
                    self._errors[etype] = self._errors.get(etype, 0) + 1
            batch = None
            if self.statistics and (exc is None or x is not None):
                predictions = None if exc is not None or result is STREAMED else result
                batch = self._features.observe(x, predictions, segment=call.segment,
                                               output=call.target.output, rate=call.rate)
            if exc is None and result is not STREAMED:
                self._outcomes.remember(call.prediction_id, batch, result, call.target.output,
                                        call.span_context, call.segment, call.own_id)
            if (call.rows is None or exc is not None or self.capture_payloads
                    or (call.rate is None and batch is not None)):
                self._annotate(call, span, rows, batch, result, exc, attrs)
        except Exception as internal:
            internal_error("record", internal)
        finally:
            _close(call, span, end_ns, resume)

    def _annotate(self, call: _Call, span: Any, rows: int, batch: Any, result: Any,
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
        if self.capture_payloads and random.random() < self.capture_payloads:
            self._features.capture_payload(span, call.x, None if exc else result)


def _close(call: _Call, span: Any, end_ns: int, resume: Any) -> None:
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


def _sdk_disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def _load_reference(reference: Any) -> Any:
    if reference is None:
        return None
    from otel_ml._internal.reference.profile import Reference

    if isinstance(reference, Reference):
        return reference
    if isinstance(reference, (str, os.PathLike)):
        return Reference.load(reference)
    raise TypeError(f"reference must be a Reference or a path, got {type(reference).__name__}")


@overload
def instrument_model(func: F, /) -> F: ...
@overload
def instrument_model(*, name: str | None = None, version: str = "unknown", **options: Any) -> Callable[[F], F]: ...


def instrument_model(func: Any = None, /, *, name: str | None = None, version: str = "unknown",
                     **options: Any) -> Any:
    """Decorate a predict function: sugar for ``ModelMonitor(name, version, **options)(func)``.

    Works bare (``@instrument_model``, the model is named after the function) or with
    arguments (``@instrument_model(name="churn", version="2.1.0", reference="ref.json")``).
    The decorated function exposes its monitor as ``.monitor``.
    """
    if func is not None:
        if not callable(func):
            raise TypeError("instrument_model takes keyword arguments only: "
                            "@instrument_model(name='churn', version='1')")
        return ModelMonitor(func.__name__ if name is None else name, version, **options)(func)

    def decorate(f: F) -> F:
        return ModelMonitor(f.__name__ if name is None else name, version, **options)(f)

    return decorate


__all__ += ["MonitoredFunction"]
