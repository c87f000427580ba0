"""configure() and shutdown(): the convenience for applications (libraries never call them)."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
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

from otel_ml._internal.core import state as _state
from otel_ml._internal.core.export_log import ExportFailureLog

__all__ = ["Telemetry", "configure", "shutdown"]

logger = logging.getLogger("otel_ml")

_PROTOCOLS = ("grpc", "http/protobuf")
_EXPORTERS = ("otlp", "console", "none")
#: At interpreter exit, the last export of configure()'s providers gets this long (seconds).
#: A collector that does not answer must not hold a finished script open (the exporters
#: would retry for up to ``OTEL_EXPORTER_OTLP_TIMEOUT``, 10 s, per signal).
EXIT_FLUSH_TIMEOUT_S = 1.0


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
    #: The providers were built by configure() (so fork handling may renew their state).
    _owned: bool = False
    #: ``service.instance.id`` the providers were built with (a forked child must not keep it).
    _instance_id: str | None = None
    #: Turns the exporters' retry messages into one "cannot reach the collector" line.
    _export_log: ExportFailureLog | None = None


_lock = threading.Lock()
_configured: Telemetry | None = None
_fork_hook_installed = False
_exit_hook_installed = False
#: Telemetry built by configure() and not shut down yet (flushed at exit, within a bound).
_pending: list[Telemetry] = []


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
    collector never blocks a predict call. While the collector cannot be reached, one warning
    says so (the exporters' retry messages go to DEBUG). At interpreter exit the providers
    are flushed within ``EXIT_FLUSH_TIMEOUT_S`` (1 s), and at once when the collector does not
    answer: a finished script never hangs on its telemetry. Call :func:`shutdown` for a
    longer bound.

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
        # configure()'s own exit handler (bounded) replaces the SDK's (up to 10 s per signal).
        tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
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
        meter_provider = MeterProvider(resource=resource, metric_readers=readers,
                                       shutdown_on_exit=False)
        exporters = [e for e in (span_exporter, metric_exporter) if e]
        export_log = None
        if traces_exporter == "otlp" or metrics_exporter == "otlp":
            export_log = ExportFailureLog(_endpoint_text(endpoint, protocol))
            export_log.install()
        telemetry = Telemetry(tracer_provider, meter_provider, set_global=set_global,
                              exporters=exporters, _owned=True,
                              _instance_id=resource.attributes.get(SERVICE_INSTANCE_ID),
                              _export_log=export_log)
        _install_fork_hook()
        _install_exit_hook()
        _pending.append(telemetry)
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
    """Flush and stop what :func:`configure` set up, within ``timeout_s`` even if the collector hangs.

    An export still running at the bound is aborted (its retries stop) and its data dropped.
    """
    global _configured
    with _lock:
        telemetry, _configured = _configured, None
    if telemetry is None or telemetry.disabled:
        return
    _stop(telemetry, timeout_s, give_up_on_failure=False)


def _at_exit() -> None:
    """Flush configure()'s providers at interpreter exit: bounded, and at once without a collector."""
    global _configured
    with _lock:
        pending, _configured = list(_pending), None
    deadline = time.monotonic() + EXIT_FLUSH_TIMEOUT_S  # one bound for all of them
    for telemetry in pending:
        _stop(telemetry, max(deadline - time.monotonic(), 0.1), give_up_on_failure=True)


def _install_exit_hook() -> None:
    global _exit_hook_installed
    if not _exit_hook_installed:
        atexit.register(_at_exit)
        _exit_hook_installed = True


def _stop(telemetry: Telemetry, timeout_s: float, give_up_on_failure: bool) -> None:
    """Shut ``telemetry``'s providers down within ``timeout_s``; abort exports still running then.

    With ``give_up_on_failure``, a failed attempt to reach the collector during the flush also
    ends the wait: retrying cannot succeed before the bound, so the exit is not delayed.
    """
    with _lock:
        if telemetry in _pending:
            _pending.remove(telemetry)
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
    export_log = telemetry._export_log
    if export_log is not None:
        export_log.failed.clear()

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
    end = time.monotonic() + timeout_s
    abort_at = end - min(0.25, timeout_s / 4)  # leaves the aborted exports time to return
    while not done.wait(min(0.02, max(0.0, abort_at - time.monotonic()))):
        if time.monotonic() >= abort_at:
            if export_log is None or not export_log.failed.is_set():
                logger.warning("otel_ml: shutdown did not finish within %.1f s (collector "
                               "unreachable?); unsent telemetry is dropped", timeout_s)
            break
        if give_up_on_failure and export_log is not None and export_log.failed.is_set():
            break
    if not done.is_set():
        _abort_exports(telemetry)
        done.wait(max(0.0, end - time.monotonic()))
    if export_log is not None and done.is_set():  # else the exports still running may log
        export_log.uninstall()


def _abort_exports(telemetry: Telemetry) -> None:
    """Stop the exporters' retries (an export in flight returns; later ones are refused)."""
    for exporter in telemetry.exporters:
        try:
            exporter.shutdown()
        except Exception:
            logger.debug("otel_ml: stopping an exporter failed", exc_info=True)


# ---------------------------------------------------------------------------- fork handling
# A process that forks after configure() (gunicorn --preload, multiprocessing "fork") gives each
# child a copy of the providers. The SDK restarts its export threads in the child (at-fork hooks
# of PeriodicExportingMetricReader and BatchSpanProcessor) and empties the span queue; the monitors
# zero their own tallies (``ModelMonitor.after_fork``). What remains is done here, for the
# providers configure() built (never for an application's own providers):
#   * a new ``service.instance.id``: replicas must not share a Prometheus ``instance``;
#   * an empty metric storage: the parent's synchronous instruments (the duration histograms
#     and stage counters) would otherwise be exported again by every child;
#   * fresh locks the parent's threads may have held at the instant of the fork.


def _install_fork_hook() -> None:
    global _fork_hook_installed
    if not _fork_hook_installed and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _fork_hook_installed = True


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()
    telemetry = _configured
    if telemetry is None or telemetry.disabled or not telemetry._owned:
        return
    try:
        _renew_sdk_state_after_fork(telemetry)
    except Exception:  # an SDK whose internals moved: keep the child running, say why once
        logger.warning("otel_ml: could not renew the telemetry state in a forked child; its "
                       "series may repeat the parent's", exc_info=True)


def _renew_sdk_state_after_fork(telemetry: Telemetry, instance_id: str | None = None) -> None:
    """Give the configure()-built providers a fresh identity and empty metric storage.

    SDK INTERNALS, deliberately kept in this one function: the SDK's resource is immutable and
    its per-reader storage is private. Checked against opentelemetry-sdk 1.45, which already
    renews ``service.instance.id`` after a fork (its providers' ``_handle_fork``) but keeps the
    parent's accumulated synchronous-instrument state; older releases do neither.
    ``tests/test_fork.py`` proves the behaviour against the installed version.
    """
    new_id = Resource({SERVICE_INSTANCE_ID: instance_id or str(uuid.uuid4())})
    tracer_provider, meter_provider = telemetry.tracer_provider, telemetry.meter_provider
    for provider in (tracer_provider, meter_provider):
        if provider is None:
            continue
        resource = _provider_resource(provider)
        # The SDK may already have renewed it (its hook ran first): keep that one.
        if instance_id is None and resource is not None and \
                resource.attributes.get(SERVICE_INSTANCE_ID) != telemetry._instance_id:
            continue
        update = getattr(provider, "_update_resource", None)
        if update is not None:
            update(new_id)
        elif isinstance(provider, TracerProvider):
            provider._resource = provider._resource.merge(new_id)  # type: ignore[attr-defined]
        else:
            config = provider._sdk_config  # type: ignore[attr-defined]
            object.__setattr__(config, "resource", config.resource.merge(new_id))
    if meter_provider is not None:
        consumer = meter_provider._measurement_consumer  # type: ignore[attr-defined]
        consumer._lock = threading.Lock()
        for storage in consumer._reader_storages.values():
            storage._lock = threading.RLock()
            storage._instrument_view_instrument_matches = {}
        for reader in getattr(meter_provider, "_metric_readers", ()):
            if isinstance(reader, PeriodicExportingMetricReader):
                reader._export_lock = threading.Lock()
    resource = _provider_resource(meter_provider or tracer_provider)
    if resource is not None:  # a grandchild must renew the child's id in turn
        telemetry._instance_id = resource.attributes.get(SERVICE_INSTANCE_ID)


def _endpoint_text(endpoint: str | None, protocol: str) -> str:
    """The collector address the OTLP exporters use (for messages)."""
    if endpoint:
        return endpoint
    signal = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if signal:
        return signal
    return "http://localhost:4317" if protocol == "grpc" else "http://localhost:4318"


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


def _provider_resource(provider: Any) -> Resource | None:
    if isinstance(provider, TracerProvider):
        return provider.resource
    config = getattr(provider, "_sdk_config", None)
    return getattr(config, "resource", None)
