"""Smoke test of the stack harness: OpenTelemetry SDK -> Collector -> Prometheus / Jaeger.

Uses the OpenTelemetry Python SDK directly (not otel_ml), so it proves the infrastructure:
names and labels as Prometheus stores them, the job/instance mapping through ``honor_labels``,
exemplars with ``trace_id``, and the trace stored in Jaeger.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid

import pytest
import yaml
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from stack import harness

pytestmark = pytest.mark.e2e

SERVICE_NAMESPACE = "otel-ml-smoke"
SERVICE_NAME = "smoke-model-server"
BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]
PREDICTIONS = 5


@pytest.fixture
def model_name() -> str:
    return f"smoke-{uuid.uuid4().hex[:8]}"


def test_metrics_exemplars_and_trace_flow_through_the_stack(stack, model_name):
    resource = Resource.create({
        "service.name": SERVICE_NAME,
        "service.namespace": SERVICE_NAMESPACE,
        "service.instance.id": f"{model_name}-instance",
    })
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(
        OTLPSpanExporter(endpoint=stack.otlp_grpc_url, insecure=True)))
    # Export only on force_flush: the SDK attaches an exemplar only to the export of the
    # collection it was measured in, and the Collector's exporter shows the latest point, so a
    # periodic re-export would wipe the exemplar before Prometheus scrapes it.
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=stack.otlp_grpc_url, insecure=True),
        export_interval_millis=3_600_000)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader], views=[
        View(instrument_name="ml.model.predict.duration",
                    aggregation=ExplicitBucketHistogramAggregation(BUCKETS)),
    ])
    try:
        tracer = tracer_provider.get_tracer("otel_ml.smoke", "0.0.0")
        meter = meter_provider.get_meter("otel_ml.smoke", "0.0.0")
        duration = meter.create_histogram("ml.model.predict.duration", unit="s",
                                          description="Prediction latency")
        predictions = meter.create_counter("ml.model.predictions", unit="{prediction}",
                                           description="Predictions made")
        attrs = {"ml.model.name": model_name, "ml.model.version": "1"}
        with tracer.start_as_current_span("predict", attributes=attrs) as span:
            # Recorded inside a sampled span: the SDK attaches an exemplar with its trace id.
            duration.record(0.042, attrs)
            predictions.add(PREDICTIONS, attrs)
            trace_id = f"{span.get_span_context().trace_id:032x}"
        assert tracer_provider.force_flush(10_000)
        assert meter_provider.force_flush(10_000)

        # --- Prometheus: names with unit suffixes / _total, dots -> underscores
        bucket = f'ml_model_predict_duration_seconds_bucket{{ml_model_name="{model_name}"}}'
        series = stack.wait_for_series(bucket, timeout=30)
        labels = series[0]
        assert labels["job"] == f"{SERVICE_NAMESPACE}/{SERVICE_NAME}", labels
        assert labels["instance"] == f"{model_name}-instance", labels
        assert labels["ml_model_version"] == "1", labels
        assert "exported_job" not in labels, labels
        les = {s["le"] for s in series}
        assert {"0.05", "+Inf"} <= les, les

        counter = f'ml_model_predictions_total{{ml_model_name="{model_name}"}}'
        result = stack.wait_for(lambda: stack.prom_query(counter), timeout=30,
                                description=counter)
        assert float(result[0]["value"][1]) == PREDICTIONS
        count = stack.wait_for(lambda: stack.prom_query(
            f'ml_model_predict_duration_seconds_count{{ml_model_name="{model_name}"}}'),
            timeout=30, description="histogram _count")
        assert float(count[0]["value"][1]) == 1

        # target_info joins on job/instance (the point of honor_labels)
        info = stack.wait_for(lambda: stack.prom_query(
            f'target_info{{job="{SERVICE_NAMESPACE}/{SERVICE_NAME}",'
            f'instance="{model_name}-instance"}}'), timeout=30, description="target_info")
        assert info

        # --- Exemplar carrying the span's trace id
        def exemplar_trace_ids():
            found = stack.prom_exemplars(bucket)
            return {e["labels"].get("trace_id") for s in found for e in s["exemplars"]}

        ids = stack.wait_for(exemplar_trace_ids, timeout=30, description="exemplars")
        assert trace_id in ids, (ids, stack.logs())

        # --- Jaeger has the trace
        trace = stack.wait_for(lambda: stack.jaeger_trace(trace_id), timeout=30,
                               description=f"trace {trace_id} in Jaeger")
        assert [s["operationName"] for s in trace["spans"]] == ["predict"]
        process = trace["processes"][trace["spans"][0]["processID"]]
        assert process["serviceName"] == SERVICE_NAME
    finally:
        meter_provider.shutdown()
        tracer_provider.shutdown()


def test_scrape_targets_up_and_collector_config_validates(stack):
    def up_jobs():
        jobs = {t["labels"]["job"] for t in stack.prometheus.targets() if t["health"] == "up"}
        return jobs if {"otel-collector", "otel-collector-self"} <= jobs else None

    stack.wait_for(up_jobs, timeout=30, description="both collector scrape targets up")
    assert stack.collector.validate().returncode == 0


def test_alertmanager_delivers_webhooks(stack, webhook):
    """Alertmanager (shipped config) routes a posted alert to the webhook sink."""
    alert = [{"labels": {"alertname": "StackSmoke", "severity": "warning",
                         "ml_model_name": "smoke"},
              "annotations": {"summary": "harness smoke test"}}]
    request = urllib.request.Request(f"{stack.alertmanager.url}/api/v2/alerts",
                                     data=json.dumps(alert).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as resp:
        assert resp.status == 200
    assert any(a["labels"]["alertname"] == "StackSmoke" for a in stack.am_alerts())
    got = webhook.wait_for_alert(lambda a: a["labels"].get("alertname") == "StackSmoke",
                                 timeout=30)
    assert got["labels"]["ml_model_name"] == "smoke"
    assert got["status"] == "firing"


def test_auth_overlay_requires_the_bearer_token(stack_binaries, tmp_path):
    """collector/config.auth.yaml merged over config.yaml: OTLP/HTTP answers 401 without token."""
    token = uuid.uuid4().hex
    collector = harness.Collector(
        stack_binaries.otelcol, tmp_path,
        configs=[harness.COLLECTOR_CONFIG, harness.COLLECTOR_AUTH_CONFIG],
        jaeger_otlp_endpoint=f"127.0.0.1:{harness.free_port()}",  # no traces sent here
        env={"OTEL_ML_COLLECTOR_BEARER_TOKEN": token})
    assert collector.validate().returncode == 0

    def post(headers):
        request = urllib.request.Request(
            f"{collector.otlp_http_url}/v1/metrics", data=b"", method="POST",
            headers={"Content-Type": "application/x-protobuf", **headers})
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            exc.close()
            return exc.code

    with collector:
        assert post({}) == 401
        assert post({"Authorization": "Bearer wrong"}) == 401
        assert post({"Authorization": f"Bearer {token}"}) == 200


def test_shipped_rule_files_are_loaded(stack):
    """Prometheus got prometheus/rules/*.yml (the harness default) with every group."""
    expected = {
        group["name"]
        for path in harness.default_rule_files()
        for group in (yaml.safe_load(path.read_text()) or {}).get("groups", [])
    }
    loaded = {group["name"] for group in stack.prometheus.rules()}
    assert loaded == expected
