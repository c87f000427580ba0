"""The instrumented predict functions compared per call, each with its own real SDK providers.

Every OpenTelemetry variant (the hand-written baseline and otel_ml) gets the same setup: a
``TracerProvider`` whose spans go through a ``BatchSpanProcessor`` to an exporter that drops them,
and a ``MeterProvider`` with an ``InMemoryMetricReader`` (nothing is collected while timing; the
cost of one collection is measured on its own). Runs in the project's venv.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from timeit import default_timer
from typing import Any

import numpy as np
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
    MetricExporter,
    MetricExportResult,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Sampler

__all__ = ["Providers", "Variant", "build_variants", "predict", "spans_only_options"]

LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                   0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]


def predict(X: np.ndarray) -> np.ndarray:
    """The trivial model: a score per row."""
    return X[:, 0] * 0.1


class DropSpanExporter(SpanExporter):
    """Accepts every batch and keeps nothing: export cost without a network."""

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


class DropMetricExporter(MetricExporter):
    """Accepts every collection and keeps nothing."""

    def __init__(self) -> None:
        super().__init__()

    def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


@dataclass
class Providers:
    """A tracer provider and a meter provider built for one variant."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    reader: Any

    @classmethod
    def build(cls, sampler: Sampler = ALWAYS_ON, export_interval_s: float | None = None) -> Providers:
        """Real SDK providers: batch span processor into a dropping exporter; an in-memory
        metric reader, or (``export_interval_s``) a periodic reader into a dropping exporter."""
        tp = TracerProvider(sampler=sampler)
        tp.add_span_processor(BatchSpanProcessor(DropSpanExporter()))
        if export_interval_s is None:
            reader: Any = InMemoryMetricReader()
        else:
            reader = PeriodicExportingMetricReader(
                DropMetricExporter(), export_interval_millis=export_interval_s * 1000)
        mp = MeterProvider(metric_readers=[reader])
        return cls(tp, mp, reader)

    def kwargs(self) -> dict[str, Any]:
        return {"tracer_provider": self.tracer_provider, "meter_provider": self.meter_provider}

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


@dataclass
class Variant:
    """One way of calling ``predict``: its label, the callable, and what to shut down after."""

    key: str
    label: str
    fn: Callable[[np.ndarray], Any]
    providers: Providers | None = None
    monitor: Any = None
    note: str = ""
    extra: dict = field(default_factory=dict)

    def close(self) -> None:
        if self.monitor is not None:
            try:
                self.monitor.close()
            except Exception:  # noqa: BLE001, S110 (teardown of a benchmark variant)
                pass
        if self.providers is not None:
            self.providers.shutdown()


def minimal_otel_wrapper(func: Callable, providers: Providers) -> Callable:
    """What a user writes by hand with the SDK: one span, one histogram, one counter."""
    tracer = providers.tracer_provider.get_tracer("bench.minimal")
    meter = providers.meter_provider.get_meter("bench.minimal")
    duration = meter.create_histogram("predict.duration", unit="s",
                                      explicit_bucket_boundaries_advisory=LATENCY_BUCKETS)
    rows = meter.create_counter("predictions", unit="{prediction}")
    attrs = {"ml.model.name": "bench", "ml.model.version": "1"}

    @functools.wraps(func)
    def wrapper(X: Any) -> Any:
        start = default_timer()
        with tracer.start_as_current_span("predict bench", attributes=attrs):
            result = func(X)
        duration.record(default_timer() - start, attrs)
        rows.add(len(X), attrs)
        return result

    return wrapper


def prometheus_wrapper(func: Callable) -> Callable:
    """prometheus_client: a histogram and a counter with their label children bound once."""
    import prometheus_client as pc

    registry = pc.CollectorRegistry()
    duration = pc.Histogram("predict_duration_seconds", "Predict latency",
                            ["model", "version"], buckets=LATENCY_BUCKETS, registry=registry)
    rows = pc.Counter("predictions", "Rows predicted", ["model", "version"], registry=registry)
    d, r = duration.labels("bench", "1"), rows.labels("bench", "1")

    @functools.wraps(func)
    def wrapper(X: Any) -> Any:
        start = default_timer()
        result = func(X)
        d.observe(default_timer() - start)
        r.inc(len(X))
        return result

    return wrapper


def spans_only_options() -> tuple[dict[str, Any], str]:
    """ModelMonitor options that turn the feature statistics off, if the monitor has a switch.

    Returns:
        The keyword arguments and a note for the table saying what was measured.
    """
    import otel_ml

    params = inspect.signature(otel_ml.ModelMonitor).parameters
    for name in ("features", "feature_statistics", "statistics", "monitor_features"):
        if name in params:
            return {name: False}, f"{name}=False"
    return {}, "no switch in ModelMonitor: no reference, statistics still run"


def build_variants(reference: Any, *, with_peers: bool = True) -> list[Variant]:
    """Every variant of the per-call comparison, freshly built (call ``close()`` after).

    ``reference`` is an ``otel_ml.Reference`` for the full-monitoring variants (or None when
    the reference work has not landed: those variants are then skipped by the caller).
    """
    import otel_ml

    out = [Variant("bare", "bare call", predict)]
    p = Providers.build()
    out.append(Variant("otel_wrapper", "minimal OTel wrapper (span+hist+counter)",
                       minimal_otel_wrapper(predict, p), providers=p))
    if with_peers:
        out.append(Variant("prometheus", "prometheus_client hist+counter", prometheus_wrapper(predict)))
    options, note = spans_only_options()
    p = Providers.build()
    fn = otel_ml.instrument_model(name="bench", version="1", **options, **p.kwargs())(predict)
    out.append(Variant("otel_ml_spans", "otel_ml spans only", fn, p, fn.monitor, note))
    if reference is not None:
        p = Providers.build()
        fn = otel_ml.instrument_model(name="bench", version="1", reference=reference, **p.kwargs())(predict)
        out.append(Variant("otel_ml_full", "otel_ml full (features+drift+quality)", fn, p, fn.monitor))
        p = Providers.build(sampler=ALWAYS_OFF)
        fn = otel_ml.instrument_model(name="bench", version="1", reference=reference, **p.kwargs())(predict)
        out.append(Variant("otel_ml_full_unsampled", "otel_ml full, spans sampled out (ALWAYS_OFF)",
                           fn, p, fn.monitor))
    return out
