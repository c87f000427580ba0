"""ModelMonitor: the object that records one model's calls, inputs, predictions and outcomes."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

from opentelemetry import metrics, trace

from otel_ml._internal.core import state as _state
from otel_ml._internal.core.caps import CappedValues
from otel_ml._internal.core.context import STREAMED
from otel_ml._internal.core.instruments import Instruments, Points, instruments_for, tracer_for
from otel_ml._internal.core.log import internal_error
from otel_ml._internal.instrument.monitor_reports import MonitorReports
from otel_ml._internal.instrument.recorder import Call, CallRecorder, Target
from otel_ml._internal.instrument.wrappers import MonitoredFunction, wrap_callable
from otel_ml._internal.monitor.settings import DEFAULT_STORE_BYTES, OUTPUTS, Settings
from otel_ml._internal.stats.fairness import MIN_GROUP_SIZE
from otel_ml.contract import Attr

if TYPE_CHECKING:

    from otel_ml._internal.stats.drift import DriftConfig
    from otel_ml._internal.reference.profile import Reference
    from otel_ml._internal.instrument.comparisons import ComparisonReport

__all__ = ["ModelMonitor", "absorb_statistics", "instrument_model"]

F = TypeVar("F", bound=Callable[..., Any])


class ModelMonitor(MonitorReports):
    """Records one model's calls, inputs, predictions and outcomes as OpenTelemetry signals.

    Use it as a decorator (``@ModelMonitor("churn", "2.1.0")`` or the sugar
    :func:`instrument_model`), through :func:`otel_ml.wrap_model`, or by hand with
    :meth:`observe`.

    Args:
        name: Model name (``ml.model.name``).
        version: Model version (``ml.model.version``).
        task: ``"classification"``, ``"regression"`` or ``"auto"`` (from the predictions).
        output: How a classifier's predictions are read: ``"label"`` (classes),
            ``"proba"`` (probabilities: one column of the positive class, or one per class),
            ``"score"`` (decision scores: labels only) or ``"auto"``: decided once, from the
            reference profile's predictions or the first batch that is not ambiguous (one
            column of only 0.0 and 1.0 is ambiguous); see ``docs/configuration.md``. Applies
            to the decorated function, ``record_outcomes`` and ``wrap_model``'s ``predict``
            (``predict_proba`` is always probabilities).
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
        prediction_id_arg: Keyword argument that carries the caller's own prediction id
            (``predict(x, prediction_id=request_id)``). It is taken out of the call's keyword
            arguments unless the function declares a parameter of that name (``**kwargs``
            alone does not count). ``None``: no caller ids.
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
        input_kind, image_layout, pixel_range, embeddings: images, texts and embeddings as
            inputs (``"auto"``, ``"tabular"``, ``"image"``, ...): see ``docs/inputs.md``.
        tracer_provider: Provider to use instead of the global one.
        meter_provider: Provider to use instead of the global one.

    Attributes:
        name: The model name.
        version: The model version.
        task: The task as given (see :attr:`resolved_task`).
        reference: The reference profile, or ``None``.
        settings: Every option, validated (:class:`~otel_ml._internal.monitor.settings.Settings`).
        switch: On/off state (``switch.off`` when telemetry is disabled).
        recorder: The call path the instrumented functions use (spans, timing, tallies).

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
        output: str = "auto",
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
        input_kind: str = "auto",
        image_layout: str = "auto",
        pixel_range: str = "auto",
        embeddings: str | Callable[[tuple, dict, Any], Any] | None = None,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        settings = self.settings = Settings.create(
            name, version, task=task, output=output, feature_names=feature_names,
            features_arg=features_arg, segment_by=segment_by, segments=segments,
            max_segments=max_segments, sensitive_attribute=sensitive_attribute,
            positive_class=positive_class,
            classes=classes, threshold=threshold, prediction_id_arg=prediction_id_arg,
            drift=drift, drift_window_s=drift_window_s, slot_s=slot_s,
            max_features=max_features, max_categories=max_categories,
            outcome_store_size=outcome_store_size, outcome_store_bytes=outcome_store_bytes,
            outcome_ttl_s=outcome_ttl_s, fairness_min_group_size=fairness_min_group_size,
            capture_payloads=capture_payloads, redact=redact, statistics=statistics,
            input_kind=input_kind, image_layout=image_layout, pixel_range=pixel_range,
            embeddings=embeddings)
        # Public attributes; every option is in ``settings`` (components take that).
        self.name = name
        self.version = version
        self.task = task
        self.features_arg = features_arg
        self._statistics = settings.statistics  # read per call: one lookup
        self.segment_values = CappedValues("segment", max_segments, settings.segments)

        self.switch = _state.Switch(_sdk_disabled() or _state.disabled)
        self._tracer = tracer_for(tracer_provider)
        self._instruments: Instruments = instruments_for(meter_provider)
        self.attributes: dict[str, str] = {Attr.MODEL_NAME: name, Attr.MODEL_VERSION: version}

        # Components: statistics of inputs and predictions, and outcomes joined later.
        from otel_ml._internal.monitor.feature_ingest import FeatureIngest
        from otel_ml._internal.monitor.feature_stats import FeatureStatistics
        from otel_ml._internal.monitor.payload import PayloadCapture
        from otel_ml._internal.monitor.outcome_analysis import OutcomeAnalysis
        from otel_ml._internal.monitor.multivariate import MultivariateDrift

        self.reference = _load_reference(reference)
        self._ingest = FeatureIngest(settings, self.reference, self.segment_values)
        self._features = FeatureStatistics(settings, self._ingest)
        self._multivariate = MultivariateDrift(settings, self.reference, self._ingest.plan)
        self._multivariate.rows_from(self._features)  # single rows: copied once, not twice
        self._payloads = PayloadCapture(settings, self._ingest)
        self._outcomes = OutcomeAnalysis(
            settings, reference=self.reference, features=self._ingest, tracer=self._tracer,
            instruments=self._instruments, switch=self.switch,
            segment_values=self.segment_values)
        # The call path: spans, timing and tallies; it feeds each call to the analyses.
        self.recorder = CallRecorder(
            self.attributes, self.switch, self._tracer, self._instruments,
            features_arg=settings.features_arg,
            segment_of=None if isinstance(segment_by, str) else segment_by,
            segment_values=self.segment_values,
            outlier_rate=self._ingest.row_outlier_rate if settings.statistics else None,
            feed=self._feed, feed_item=self._feed_item, capture=self._payloads.capture,
            capture_share=settings.capture_payloads)
        self._collectors: dict[str, Callable[[], Points]] = {
            **self.recorder.collectors(),
            "ml.model.info": lambda: [(1, {Attr.MODEL_TASK: self.resolved_task})],
        }
        for component in (self._features, self._outcomes, self._multivariate):
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
        return self._outcomes.inferred_task() or self._ingest.inferred_task() or "auto"

    def __call__(self, func: F) -> F:
        """Instrument ``func``; the result exposes this monitor as ``.monitor``."""
        if not callable(func):
            raise TypeError(f"ModelMonitor decorates callables, got {type(func).__name__}")
        return wrap_callable(func, self, Target(f"ml.predict {self.name}", "auto"),  # type: ignore[return-value]
                             self.settings.prediction_id_arg)

    def instrument_method(self, func: F, method: str, output: str = "auto") -> F:
        """Instrument one method of a model object (used by :func:`otel_ml.wrap_model`)."""
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        return wrap_callable(func, self, Target(f"ml.{method} {self.name}", output),  # type: ignore[return-value]
                             self.settings.prediction_id_arg)

    def observe(self, x: Any, predictions: Any = None, *, segment: str | None = None,
                embeddings: Any = None) -> None:
        """Feed inputs (and predictions, and the rows' ``(n, d)`` embeddings) of code that is
        not decorated into the statistics. Never raises: bad input is a data-quality signal.
        """
        if self.switch.off:
            return
        try:
            segment_value = self._segment_value(segment)
            batch = self._ingest.prepare(x, predictions, segment=segment_value, output="auto",
                                         embeddings=embeddings)
            self._features.observe(batch)
            self._multivariate.observe(batch)
            self._outcomes.estimate(predictions, "auto", segment_value, None, x)
        except Exception as exc:
            internal_error("observe", exc)

    def record_outcome(self, prediction_id: str, actual: Any) -> None:
        """Join a label that arrived later to the prediction it belongs to. Never raises."""
        self._outcomes.record_outcome(prediction_id, actual)

    def record_outcomes(self, y_true: Any, y_pred: Any, segments: Any = None,
                        groups: Any = None) -> None:
        """Record labels and predictions that arrive together (e.g. a nightly job)."""
        self._outcomes.record_outcomes(y_true, y_pred, segments=segments, groups=groups)

    def record_attributions(self, attributions: Any, feature_names: Sequence[str] | None = None) -> None:
        """Record per-row attributions (SHAP or similar) the caller computed."""
        self._outcomes.record_attributions(attributions, feature_names)

    def record_rejected(self, reason: str) -> None:
        """Count a request refused before predict (auth failure, rate limit, invalid payload)."""
        self._outcomes.record_rejected(reason)

    def flush(self) -> None:
        """Fold buffered single rows into the statistics now (collection does this too)."""
        self._features.flush()
        self._multivariate.flush()

    def close(self) -> None:
        """Stop reporting this monitor's observable metrics."""
        self._instruments.unregister(self)

    def after_fork(self) -> None:
        """In a forked child: start from zero so nothing the parent counted is counted twice."""
        self.recorder.after_fork()
        self._ingest.after_fork()
        self._features.after_fork()
        self._multivariate.after_fork()
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

    def _feed(self, call: Call, result: Any, exc: BaseException | None) -> Any:
        """Give a finished call to the analyses (the recorder's ``feed``); return its batch.

        The inputs of a call that raised feed no statistics: the error counter and the span's
        ``error.type`` carry that incident (an input seen only in failing calls would
        otherwise also raise drift and data-quality alerts).
        """
        if exc is not None:
            return None
        batch = None
        if self._statistics:
            embeddings = _call_embeddings(self.settings.embeddings, call, result)
            batch = self._ingest.prepare(call.x, None if result is STREAMED else result,
                                         segment=call.segment, output=call.target.output,
                                         rate=call.rate, embeddings=embeddings)
            self._features.observe(batch)
            self._multivariate.observe(batch)
        if result is not STREAMED:
            self._outcomes.remember(call.prediction_id, batch, result, call.target.output,
                                    call.span_context, call.segment, call.own_id)
        return batch

    def _feed_item(self, call: Call, item: Any) -> None:
        """Give an item an instrumented generator yielded to the analyses, as predictions."""
        if self._statistics:
            self._features.observe(self._ingest.prepare(
                None, item, segment=call.segment, output=call.target.output))


def _call_embeddings(embeddings_of: Any, call: Call, result: Any) -> Any:
    """The call's embeddings from the ``embeddings`` callable (``None`` without one, for a
    generator, or when it raised: counted in ``ml.telemetry.errors``, never raised)."""
    if embeddings_of is None or isinstance(embeddings_of, str) or result is STREAMED:
        return None
    try:
        return embeddings_of(call.args, call.kwargs, result)
    except Exception as exc:
        internal_error("embeddings", exc)
        return None


def absorb_statistics(monitor: ModelMonitor, state: Any) -> None:
    """Count feature statistics of rows observed elsewhere (the partitions of a batch job,
    merged: ``otel_ml.integrations.scoring``) in ``monitor`` as if it observed them now: its
    drift (multivariate too, when ``state`` has ``multivariate`` sums), data-quality and
    feature metrics then cover those rows, and its performance the labelled rows when
    ``state`` has ``outcomes`` (its concept-drift detectors are fed only the error streams
    the outcomes carry).

    Raises:
        ValueError: The monitor has no reference profile, or ``state`` was counted over other
            bins.
    """
    monitor._features.absorb(getattr(state, "features", state))
    multivariate = getattr(state, "multivariate", None)
    if multivariate is not None:  # the sums of MultivariateDrift (multivariate_state)
        monitor._multivariate.absorb(multivariate)
    outcomes = getattr(state, "outcomes", None)
    if outcomes is not None:  # scored labels (outcome_state.OutcomeState)
        monitor._outcomes.absorb(outcomes)


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
