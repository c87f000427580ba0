"""configure() and shutdown(): the convenience for applications (libraries never call them)."""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_INSTANCE_ID, SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from . import _state

__all__ = ["Telemetry", "configure", "shutdown"]

logger = logging.getLogger("otel_ml")

_PROTOCOLS = ("grpc", "http/protobuf")
_EXPORTERS = ("otlp", "console", "none")


@dataclass
class Telemetry:
    """What :func:`configure` set up.

    Attributes:
        tracer_provider: The SDK tracer provider (``None`` when disabled).
        meter_provider: The SDK meter provider (``None`` when disabled).
        disabled: ``OTEL_SDK_DISABLED=true`` was set: everything is a no-op.
        set_global: Whether the providers were installed as the global ones.
        exporters: The span and metric exporters created from the arguments and variables.
    """

    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    disabled: bool = False
    set_global: bool = False
    exporters: list[Any] = field(default_factory=list)
    _instrumentors: list[Any] = field(default_factory=list)


_lock = threading.Lock()
_configured: Telemetry | None = None


def configure(
    service_name: str | None = None,
    *,
    endpoint: str | None = None,
    protocol: str | None = None,
    headers: Mapping[str, str] | None = None,
    insecure: bool | None = None,
    exporter: str | None = None,
    resource_attributes: Mapping[str, Any] | None = None,
    export_interval_ms: int | None = None,
    metric_readers: Sequence[MetricReader] = (),
    span_processors: Sequence[SpanProcessor] = (),
    system_metrics: bool | None = None,
    set_global: bool = True,
    force: bool = False,
) -> Telemetry:
    """Set up OpenTelemetry for an application: OTLP traces and metrics, resource, globals.

    Honours the standard variables: ``OTEL_SDK_DISABLED``, ``OTEL_SERVICE_NAME``,
    ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_EXPORTER_OTLP_PROTOCOL`` (``grpc`` by default, or
    ``http/protobuf``), ``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_HEADERS``,
    ``OTEL_EXPORTER_OTLP_CERTIFICATE``, ``OTEL_EXPORTER_OTLP_INSECURE``,
    ``OTEL_EXPORTER_OTLP_TIMEOUT``, ``OTEL_METRIC_EXPORT_INTERVAL``, and
    ``OTEL_TRACES_EXPORTER``/``OTEL_METRICS_EXPORTER`` (``otlp``, ``console``, ``none``).
    Explicit arguments win over the variables, except ``service_name``, which is a default
    that ``OTEL_SERVICE_NAME`` overrides. Exports run in background threads: a slow or absent
    collector never blocks a predict call.

    Calling it again returns the first result unless ``force=True``. When the application has
    already installed SDK providers globally, they are left alone (and returned) unless
    ``force=True``.

    Args:
        service_name: ``service.name`` when ``OTEL_SERVICE_NAME`` is not set.
        endpoint: OTLP endpoint (e.g. ``http://localhost:4317``).
        protocol: ``grpc`` or ``http/protobuf``.
        headers: Extra OTLP headers (e.g. ``{"authorization": "Bearer ..."}``).
        insecure: gRPC without TLS.
        exporter: ``otlp``, ``console`` or ``none`` for both signals.
        resource_attributes: Extra resource attributes.
        export_interval_ms: Metric export interval.
        metric_readers: Extra metric readers (e.g. a Prometheus reader or an in-memory one).
        span_processors: Extra span processors.
        system_metrics: Process CPU and memory metrics from
            opentelemetry-instrumentation-system-metrics when installed (default on).
        set_global: Install the providers as the global ones.
        force: Replace what an earlier call or the application configured.

    Returns:
        The :class:`Telemetry` handle.

    Raises:
        ValueError: An argument or variable has a value that is not understood.
    """
    global _configured
    with _lock:
        if _configured is not None and not force:
            return _configured
        if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            _state.set_disabled(True)
            _configured = Telemetry(disabled=True)
            return _configured
        protocol = (protocol or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "grpc").strip()
        if protocol not in _PROTOCOLS:
            raise ValueError(f"OTLP protocol must be one of {_PROTOCOLS}, got {protocol!r} "
                             "(argument protocol= or OTEL_EXPORTER_OTLP_PROTOCOL)")
        traces_exporter = _exporter_choice(exporter, "OTEL_TRACES_EXPORTER")
        metrics_exporter = _exporter_choice(exporter, "OTEL_METRICS_EXPORTER")
        if export_interval_ms is None:
            export_interval_ms = _env_int("OTEL_METRIC_EXPORT_INTERVAL", 60_000)
        if export_interval_ms <= 0:
            raise ValueError(f"export_interval_ms must be positive, got {export_interval_ms}")

        if not force and _has_sdk_globals():
            logger.info("otel_ml.configure: global providers are already set; leaving them alone")
            _configured = Telemetry(tracer_provider=trace.get_tracer_provider(),  # type: ignore[arg-type]
                                    meter_provider=metrics.get_meter_provider())  # type: ignore[arg-type]
            return _configured

        resource = _resource(service_name, resource_attributes)
        tracer_provider = TracerProvider(resource=resource)
        for processor in span_processors:
            tracer_provider.add_span_processor(processor)
        span_exporter = _span_exporter(traces_exporter, protocol, endpoint, headers, insecure)
        if span_exporter is not None:
            tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
        readers = list(metric_readers)
        metric_exporter = _metric_exporter(metrics_exporter, protocol, endpoint, headers, insecure)
        if metric_exporter is not None:
            readers.append(PeriodicExportingMetricReader(
                metric_exporter, export_interval_millis=export_interval_ms))
        meter_provider = MeterProvider(resource=resource, metric_readers=readers)
        telemetry = Telemetry(tracer_provider, meter_provider, set_global=set_global,
                              exporters=[e for e in (span_exporter, metric_exporter) if e])
        if set_global:
            trace.set_tracer_provider(tracer_provider)
            metrics.set_meter_provider(meter_provider)
        if system_metrics is None:
            system_metrics = os.environ.get("OTEL_ML_SYSTEM_METRICS", "true").lower() != "false"
        if system_metrics:
            _enable_system_metrics(telemetry)
        _state.set_disabled(False)
        _configured = telemetry
        return telemetry


def shutdown(timeout_s: float = 5.0) -> None:
    """Flush and stop what :func:`configure` set up, within ``timeout_s`` even if the collector hangs."""
    global _configured
    with _lock:
        telemetry, _configured = _configured, None
    if telemetry is None or telemetry.disabled:
        return
    for instrumentor in telemetry._instrumentors:
        try:
            instrumentor.uninstrument()
        except Exception:
            logger.debug("otel_ml: uninstrumenting system metrics failed", exc_info=True)
    for monitor in _state.live_monitors():  # fold buffered rows into the last export
        try:
            monitor.flush()
        except Exception:
            logger.debug("otel_ml: flushing a monitor failed", exc_info=True)
    done = threading.Event()

    def stop() -> None:
        try:
            if telemetry.meter_provider is not None:
                telemetry.meter_provider.shutdown(timeout_millis=timeout_s * 1000 / 2)
            if telemetry.tracer_provider is not None:
                telemetry.tracer_provider.shutdown()
        except Exception:
            logger.warning("otel_ml: shutdown of the providers failed", exc_info=True)
        finally:
            done.set()

    worker = threading.Thread(target=stop, name="otel_ml-shutdown", daemon=True)
    worker.start()
    if not done.wait(timeout_s):
        logger.warning("otel_ml: shutdown did not finish within %.1f s (collector unreachable?); "
                       "unsent telemetry is dropped", timeout_s)


def _exporter_choice(exporter: str | None, variable: str) -> str:
    choice = (exporter or os.environ.get(variable) or "otlp").strip().lower()
    if choice not in _EXPORTERS:
        raise ValueError(f"exporter must be one of {_EXPORTERS}, got {choice!r} "
                         f"(argument exporter= or {variable})")
    return choice


def _env_int(variable: str, default: int) -> int:
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{variable}={raw!r} is not an integer") from None


def _has_sdk_globals() -> bool:
    return isinstance(trace.get_tracer_provider(), TracerProvider) or isinstance(
        metrics.get_meter_provider(), MeterProvider)


def _resource(service_name: str | None, extra: Mapping[str, Any] | None) -> Resource:
    attributes: dict[str, Any] = dict(extra or {})
    if service_name and not os.environ.get("OTEL_SERVICE_NAME"):
        attributes[SERVICE_NAME] = service_name
    resource = Resource.create(attributes)
    if SERVICE_INSTANCE_ID not in resource.attributes:
        # Replicas must not share a series: Prometheus' ``instance`` comes from this.
        resource = resource.merge(Resource({SERVICE_INSTANCE_ID: str(uuid.uuid4())}))
    return resource


def _otlp_kwargs(endpoint: str | None, headers: Mapping[str, str] | None,
                 insecure: bool | None, grpc: bool, path: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if endpoint:
        kwargs["endpoint"] = endpoint if grpc else endpoint.rstrip("/") + path
    if headers:
        kwargs["headers"] = dict(headers)
    if insecure is not None and grpc:
        kwargs["insecure"] = insecure
    return kwargs


def _span_exporter(kind: str, protocol: str, endpoint: str | None,
                   headers: Mapping[str, str] | None, insecure: bool | None) -> Any:
    if kind == "none":
        return None
    if kind == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(**_otlp_kwargs(endpoint, headers, insecure, True, ""))
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

    return Http(**_otlp_kwargs(endpoint, headers, insecure, False, "/v1/traces"))


def _metric_exporter(kind: str, protocol: str, endpoint: str | None,
                     headers: Mapping[str, str] | None, insecure: bool | None) -> Any:
    if kind == "none":
        return None
    if kind == "console":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        return ConsoleMetricExporter()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter(**_otlp_kwargs(endpoint, headers, insecure, True, ""))
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as Http

    return Http(**_otlp_kwargs(endpoint, headers, insecure, False, "/v1/metrics"))


def _enable_system_metrics(telemetry: Telemetry) -> None:
    try:
        from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor
    except ImportError:
        logger.info("otel_ml: install otel-ml[system] for process CPU and memory metrics")
        return
    try:
        instrumentor = SystemMetricsInstrumentor(config={
            "process.cpu.time": ["user", "system"],
            "process.memory.usage": None,
        })
        instrumentor.instrument(meter_provider=telemetry.meter_provider)
        telemetry._instrumentors.append(instrumentor)
    except Exception:
        logger.warning("otel_ml: system metrics could not be enabled", exc_info=True)
