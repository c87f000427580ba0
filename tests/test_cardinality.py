"""Cardinality and memory: 100k distinct user values never become 100k series or 100k objects.

Every attribute whose values come from users (segments, classes, categories, feature names, error
types, stage names, rejection reasons, fairness groups) is capped by otel_ml. One run drives 100k
distinct values through each of them (by batch where the API takes batches) and checks that the
number of exported series stays under a fixed bound, that each attribute keeps at most its cap
plus ``__other__``, and that the memory held afterwards does not grow with the number of values.
"""

from __future__ import annotations

import gc
from collections import defaultdict

import numpy as np
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_ml
from otel_ml.contract import OTHER, Attr

pd = pytest.importorskip("pandas")

DISTINCT = 100_000
PER_CALL = 5_000  # values driven one call each (error types, stage names, call segments)
MAX_SEGMENTS = 20
# Attribute -> most distinct values allowed in the export (cap + __other__ + reserved values).
CAPS = {Attr.SEGMENT: MAX_SEGMENTS + 3, Attr.ERROR_TYPE: 51, Attr.REASON: 33}
SERIES_BOUND = 20_000
# The prediction store keeps recent calls' predictions for labels arriving later (bounded by
# count and bytes, by design): kept small here so what stays is what would be a leak.
STORE = 8


class Rig:
    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.providers = {"tracer_provider": self.tracer_provider,
                          "meter_provider": self.meter_provider}

    def series(self) -> tuple[int, dict[tuple[str, str], set]]:
        """Number of exported series, and each (model, attribute)'s distinct values."""
        n = 0
        values: dict[tuple[str, str], set] = defaultdict(set)
        data = self.reader.get_metrics_data()
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    for p in metric.data.data_points:
                        n += 1
                        model = p.attributes.get(Attr.MODEL_NAME, "")
                        for k, v in p.attributes.items():
                            values[(model, k)].add(v)
        return n, values


def drive(rig: Rig, offset: int) -> None:
    """Push DISTINCT (or PER_CALL for per-call paths) new distinct values through every path."""
    ids = np.arange(offset, offset + DISTINCT)
    reference = otel_ml.Reference.from_data(
        pd.DataFrame({"x": [1.0, 2.0, 3.0], "colour": ["red", "green", "blue"]}))
    monitor = rig.monitor if hasattr(rig, "monitor") else None
    if monitor is None:
        monitor = otel_ml.ModelMonitor(
            "card", reference=reference, segment_by="seg", max_segments=MAX_SEGMENTS,
            sensitive_attribute="group", task="classification", outcome_store_size=STORE,
            **rig.providers)
        rig.monitor = monitor
        rig.by_call = otel_ml.ModelMonitor(
            "card-calls", segment_by=lambda args, kwargs: kwargs.get("who"),
            max_segments=MAX_SEGMENTS, outcome_store_size=STORE, **rig.providers)
    # One batch: distinct segments, categories and classes, each row its own.
    frame = pd.DataFrame({"x": ids.astype(float), "colour": [f"c{i}" for i in ids],
                          "seg": [f"s{i}" for i in ids], "group": [f"g{i}" for i in ids]})
    labels = np.array([f"class{i}" for i in ids], dtype=object)
    predict = monitor(lambda X: labels)
    predict(frame)
    monitor.record_outcomes(labels, labels[::-1], segments=frame["seg"].to_numpy(),
                            groups=frame["group"].to_numpy())
    for i in ids[:DISTINCT]:
        monitor.record_rejected(f"reason-{i}")
    # Distinct feature names: a dict of 100k columns.
    monitor.observe({f"feature_{i}": [1.0] for i in ids})
    # Per call: segments chosen by a callable, error types, stage names.
    by_call = rig.by_call(lambda X, who=None: X)
    for i in ids[:PER_CALL]:
        by_call([[1.0]], who=f"caller-{i}")
    failing = rig.by_call(_raise)
    for i in ids[:PER_CALL]:
        try:
            failing(type(f"Error{i}", (Exception,), {}))
        except Exception:  # noqa: BLE001, S110 - the user's errors are the point here
            pass
    for i in ids[:PER_CALL]:
        with otel_ml.trace_stage(f"stage-{i}", **rig.providers):
            pass
    monitor.flush()


def _raise(error_type: type) -> None:
    raise error_type("boom")


@pytest.mark.slow
def test_distinct_values_are_capped_and_memory_stays_bounded(capsys):
    psutil = pytest.importorskip("psutil")
    process = psutil.Process()
    rig = Rig()
    drive(rig, 0)
    rig.spans.clear()
    n1, _ = rig.series()
    drive(rig, DISTINCT)  # warm-up: caps full, stores at their bounds, allocator settled
    rig.spans.clear()
    gc.collect()
    rss1 = process.memory_info().rss
    for k in (2, 3):  # another 200k distinct values of every kind
        drive(rig, k * DISTINCT)
        rig.spans.clear()
    gc.collect()
    rss3 = process.memory_info().rss
    n3, values = rig.series()
    grown = (rss3 - rss1) / 2**20
    widest = sorted(values.items(), key=lambda kv: -len(kv[1]))[:6]
    with capsys.disabled():
        print(f"\n[cardinality] series after 100k distinct values of each kind: {n1}; after "
              f"400k: {n3}; RSS growth over the last 200k: {grown:+.1f} MiB; widest: "
              + ", ".join(f"{m}/{k}={len(v)}" for (m, k), v in widest))
    assert n1 < SERIES_BOUND
    assert n3 == n1  # 200k more distinct values added no series at all
    for (model, attribute), seen in values.items():
        assert len(seen) <= CAPS.get(attribute, 120), (model, attribute, len(seen))
    assert OTHER in values[("card", Attr.SEGMENT)] and OTHER in values[("card-calls", Attr.SEGMENT)]
    assert OTHER in values[("card", Attr.REASON)]
    assert OTHER in values[("card-calls", Attr.ERROR_TYPE)]
    # Bounded: caps' tables and fixed stores, not one object per distinct value. One small
    # object (~100 B) kept per value would be 7 kinds x 200k = 1.4M objects, over 100 MiB;
    # the bound leaves room for allocator noise in RSS.
    assert grown < 24, grown
