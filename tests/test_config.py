"""configure() and shutdown(): environment variables, idempotence, globals, bounded shutdown."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

import otel_ml
from otel_ml._internal.core import state


@pytest.fixture(autouse=True)
def fresh(monkeypatch) -> Iterator[None]:
    for var in ("OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_EXPORTER_OTLP_PROTOCOL",
                "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER",
                "OTEL_METRICS_EXPORTER", "OTEL_METRIC_EXPORT_INTERVAL"):
        monkeypatch.delenv(var, raising=False)
    otel_ml.shutdown(timeout_s=2)  # forget any earlier configuration
    yield
    otel_ml.shutdown(timeout_s=2)
    state.set_disabled(False)


def test_resource_from_argument_and_environment(monkeypatch):
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod,team=risk")
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    telemetry = otel_ml.configure("churn-api", exporter="none", set_global=False,
                                  system_metrics=False, metric_readers=[reader])
    telemetry.meter_provider.get_meter("t").create_counter("c").add(1)
    (metrics,) = reader.get_metrics_data().resource_metrics  # one resource
    attrs = metrics.resource.attributes
    assert attrs["service.name"] == "churn-api"
    assert attrs["deployment.environment"] == "prod" and attrs["team"] == "risk"
    assert len(attrs["service.instance.id"]) == 36
    assert telemetry.tracer_provider.resource.attributes == attrs


def test_otel_service_name_wins_over_the_argument(monkeypatch):
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    telemetry = otel_ml.configure("churn-api", exporter="none", set_global=False,
                                  system_metrics=False)
    assert telemetry.tracer_provider.resource.attributes["service.name"] == "from-env"


@pytest.mark.parametrize(("protocol", "module"), [
    (None, "opentelemetry.exporter.otlp.proto.grpc"),
    ("grpc", "opentelemetry.exporter.otlp.proto.grpc"),
    ("http/protobuf", "opentelemetry.exporter.otlp.proto.http"),
])
def test_protocol_from_environment(monkeypatch, protocol, module):
    if protocol:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    telemetry = otel_ml.configure("svc", set_global=False, system_metrics=False)
    assert len(telemetry.exporters) == 2
    assert all(type(e).__module__.startswith(module) for e in telemetry.exporters)


def test_exporter_variables_choose_console_or_none(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    telemetry = otel_ml.configure("svc", set_global=False, system_metrics=False)
    assert [type(e).__name__ for e in telemetry.exporters] == ["ConsoleSpanExporter"]


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "thrift", "OTLP protocol"),
    ("OTEL_TRACES_EXPORTER", "zipkin", "exporter must be one of"),
    ("OTEL_METRIC_EXPORT_INTERVAL", "soon", "not an integer"),
])
def test_bad_configuration_fails_fast_with_a_clear_message(monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=message):
        otel_ml.configure("svc", set_global=False)


def test_configure_is_idempotent_unless_forced():
    first = otel_ml.configure("svc", exporter="none", set_global=False, system_metrics=False)
    assert otel_ml.configure("other", set_global=False) is first
    forced = otel_ml.configure("other", exporter="none", set_global=False, force=True,
                               system_metrics=False)
    assert forced is not first
    assert forced.tracer_provider.resource.attributes["service.name"] == "other"


def test_sdk_disabled_turns_every_monitor_off(monkeypatch, providers, span_exporter):
    predict = otel_ml.instrument_model(name="m", **providers)(lambda X: X)
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    telemetry = otel_ml.configure("svc")
    assert telemetry.disabled and telemetry.tracer_provider is None
    assert predict([[1]]) == [[1]]
    assert span_exporter.get_finished_spans() == ()


def test_shutdown_returns_within_its_bound_when_the_collector_is_unreachable(providers):
    # 192.0.2.0/24 is never routed... but stay on loopback: a port nobody listens on.
    telemetry = otel_ml.configure("svc", endpoint="http://127.0.0.1:9", set_global=False,
                                  system_metrics=False, export_interval_ms=100)
    monitor = otel_ml.ModelMonitor("m", tracer_provider=telemetry.tracer_provider,
                                   meter_provider=telemetry.meter_provider)
    predict = monitor(lambda X: X)
    for _ in range(100):
        assert predict([[1.0]]) == [[1.0]]
    start = time.monotonic()
    otel_ml.shutdown(timeout_s=2)
    assert time.monotonic() - start < 3


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **env})


def test_configure_sets_the_globals_and_leaves_an_application_provider_alone():
    code = """
import otel_ml
from opentelemetry import trace, metrics
from opentelemetry.sdk.trace import TracerProvider
t = otel_ml.configure('svc', exporter='none', system_metrics=False)
assert trace.get_tracer_provider() is t.tracer_provider
assert metrics.get_meter_provider() is t.meter_provider
otel_ml.shutdown()
"""
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    code = """
import otel_ml
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
mine = TracerProvider()
trace.set_tracer_provider(mine)
t = otel_ml.configure('svc', exporter='none', system_metrics=False)
assert trace.get_tracer_provider() is mine and t.tracer_provider is mine
"""
    out = run_python(code)
    assert out.returncode == 0, out.stderr


def test_decorator_made_before_configure_reports_through_it():
    code = """
import otel_ml
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
@otel_ml.instrument_model(name='early', version='1')
def predict(X):
    return X
reader = InMemoryMetricReader()
otel_ml.configure('svc', exporter='none', metric_readers=[reader], system_metrics=False)
predict([[1.0], [2.0]])
names = {m.name: m for rm in reader.get_metrics_data().resource_metrics
         for sm in rm.scope_metrics for m in sm.metrics}
assert names['ml.model.predictions'].data.data_points[0].value == 2, names.keys()
print('ok')
"""
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert "ok" in out.stdout
