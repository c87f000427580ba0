"""End to end: a new hospital's scanner, seen in its images, alerts named through the real stack.

The scenario of ``examples/new_hospital_images.py`` (scikit-learn's bundled digits as scans;
hospital C's scanner gives lower contrast and a blur) served through otel_ml with the hospital
as the call's segment and the model's PCA layer as embeddings. Metrics go over OTLP to the real
Collector, scraped every second by Prometheus running the shipped rules rendered with the FAST
profile (windows 1h -> 2m, ``for:`` 15m -> 5s). The test asserts that the segment drift alert
fires for hospital C's image properties (contrast and sharpness at least; its embedding
components too) and never for A's or B's, and that the multivariate alert fires for C (image properties and embeddings) and for no
other segment.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

_HERE = Path(__file__).resolve().parent
_REPO = _HERE.parents[1]
for _path in (str(_HERE.parent), str(_REPO)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

pytest.importorskip("sklearn")

from stack import harness  # noqa: E402
from tools import gen_rules  # noqa: E402

pytestmark = pytest.mark.e2e

NAMESPACE, SERVICE = "otel-ml-e2e-images", "xray-server"
JOB = f"{NAMESPACE}/{SERVICE}"
ROWS_PER_CALL, CALLS_PER_S = 64, 12.0  # 4 calls a second per hospital, 256 images


def _example() -> Any:
    spec = importlib.util.spec_from_file_location(
        "new_hospital_images", _REPO / "examples" / "new_hospital_images.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


class Traffic:
    """The served model and a thread that sends it each hospital's images in turn."""

    def __init__(self, otlp_grpc_url: str) -> None:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider

        example = _example()
        self.hospitals = example.HOSPITALS
        self.scenario = example.Scenario(seed=3)
        resource = Resource.create({"service.name": SERVICE, "service.namespace": NAMESPACE,
                                    "service.instance.id": "img-1"})
        self.meter_provider = MeterProvider(resource=resource, metric_readers=[
            PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=otlp_grpc_url,
                                                             insecure=True),
                                          export_interval_millis=1000)])
        self.monitor = self.scenario.monitor(
            drift_window_s=120.0, slot_s=10.0, meter_provider=self.meter_provider,
            tracer_provider=TracerProvider(resource=resource))
        self.predict = self.monitor(self.scenario.predict)
        self.calls = 0
        self.failure: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="e2e-images", daemon=True)

    def start(self) -> "Traffic":
        self._thread.start()
        return self

    def check(self) -> None:
        if self.failure is not None:
            raise AssertionError(f"traffic thread failed: {self.failure!r}") from self.failure

    def _run(self) -> None:
        try:
            while not self._stop.wait(1.0 / CALLS_PER_S):
                hospital = self.hospitals[self.calls % len(self.hospitals)]
                images, labels = self.scenario.batch(hospital, ROWS_PER_CALL)
                pid = f"i-{self.calls}"
                self.predict(images, hospital=hospital, prediction_id=pid)
                self.monitor.record_outcome(pid, labels)
                self.calls += 1
        except BaseException as exc:  # surfaced by check()
            self.failure = exc

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.monitor.close()
        self.meter_provider.shutdown(timeout_millis=5_000)


@pytest.fixture(scope="module")
def image_stack(stack_binaries, tmp_path_factory) -> harness.Stack:
    workdir = tmp_path_factory.mktemp("otel-ml-e2e-images")
    rules = gen_rules.render_files(workdir / "rules", gen_rules.FAST)
    running = harness.start_stack(workdir, binaries=stack_binaries, rule_files=rules,
                                  scrape_interval="1s", evaluation_interval="1s")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def traffic(image_stack) -> Traffic:
    sent = Traffic(image_stack.otlp_grpc_url).start()
    try:
        yield sent
    finally:
        sent.stop()


def _alerts(stack: harness.Stack, name: str, state: str = "firing") -> list[dict]:
    return [a["labels"] for a in stack.prometheus.alerts()
            if a["labels"].get("job") == JOB and a["labels"].get("alertname") == name
            and a["state"] == state]


def test_drift_alert_names_hospital_c_image_properties_only(image_stack, traffic):
    stack = image_stack
    started = time.monotonic()
    wanted = {("C", "image.contrast"), ("C", "image.sharpness")}

    def firing() -> set | None:
        traffic.check()
        found = {(a["ml_segment"], a["ml_feature_name"])
                 for a in _alerts(stack, "MLSegmentFeatureDrift")}
        mv = {(a["ml_segment"], a["ml_multivariate_space"])
              for a in _alerts(stack, "MLMultivariateDrift")}
        ready = wanted <= found and {("C", "features"), ("C", "embedding")} <= mv
        return (found, mv) if ready else None

    try:
        found, mv = harness.wait_for(firing, timeout=180, interval=0.5,
                                     description="C's image drift and multivariate alerts")
    except TimeoutError as exc:
        alerts = [(a["labels"].get("alertname"), a["labels"].get("ml_segment"),
                   a["labels"].get("ml_feature_name"), a["state"])
                  for a in stack.prometheus.alerts() if a["labels"].get("job") == JOB]
        raise AssertionError(f"{exc}\nalerts: {alerts}") from None
    print(f"image alerts firing {time.monotonic() - started:.1f}s after traffic started")
    assert {segment for segment, _ in found} == {"C"}, found
    # C's image properties and its embedding components (the PCA layer sees the scanner too).
    assert all(f.startswith(("image.", "embedding.pc")) for _, f in found), found
    assert {segment for segment, _ in mv} == {"C"}, mv
    # Never for A or B, pending included, over the whole run.
    ever = stack.prom_series(f'ALERTS{{job="{JOB}"}}')
    segments = {s.get("ml_segment") for s in ever
                if s["alertname"] in ("MLSegmentFeatureDrift", "MLMultivariateDrift")}
    assert segments == {"C"}, ever
    # The drift dashboard's multivariate row has data for the three hospitals.
    gauge = stack.prom_query(f'ml_drift_reconstruction_error{{job="{JOB}"}}')
    assert {r["metric"]["ml_segment"] for r in gauge} >= {"A", "B", "C"}
