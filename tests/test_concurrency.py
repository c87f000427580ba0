"""Load and concurrency: threads, asyncio tasks and collections running at the same time.

The same batches are fed once from a single thread and once from 8 threads (while another thread
collects metrics in a loop): every count is exact and every statistic (every metric point except
timings: call/row/error/batch counters, and whatever the feature, quality, drift and outcome
components export) is the same. 200 asyncio tasks interleaving on one loop keep
their own spans and stages apart. Everything is bounded by timeouts: a deadlock fails, not hangs.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_ml
from otel_ml.contract import BATCH_SIZE_RANGES, NO_SEGMENT, Attr, batch_size_range

THREADS = 8
CALLS_PER_THREAD = 400
TASKS = 200
CALLS_PER_TASK = 10
JOIN_TIMEOUT_S = 120

# Metrics whose values depend on timing, not on the data.
TIMING = ("duration", "cpu")


class Rig:
    """Providers with in-memory exporter and reader, and a monitored model on them."""

    def __init__(self, name: str = "conc") -> None:
        self.spans = InMemorySpanExporter()
        self.reader = InMemoryMetricReader()
        resource = Resource.create({"service.name": "concurrency"})
        self.tracer_provider = TracerProvider(resource=resource)
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.meter_provider = MeterProvider(resource=resource, metric_readers=[self.reader])
        self.monitor = otel_ml.ModelMonitor(
            name, "1", feature_names=FEATURES, reference=REFERENCE,
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider)
        self.predict = self.monitor(model)

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


FEATURES = ["a", "b", "c", "d"]
REFERENCE = otel_ml.Reference.from_data(np.random.default_rng(1).normal(size=(2000, 4)),
                                        feature_names=FEATURES)


class Refused(Exception):
    pass


def model(X: np.ndarray) -> np.ndarray:
    if X[0, 0] < -50:  # deterministic user errors
        raise Refused("negative")
    return (np.nan_to_num(X).sum(axis=1) > 0).astype(int)


def make_batches(n: int, seed: int = 7) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        X = rng.normal(size=(1 + i % 16, 4))
        if i % 13 == 0:
            X[0, 1] = np.nan  # data-quality signal
        if i % 29 == 0:
            X[0, 0] = -100.0  # the model raises
        out.append(X)
    return out


def call_all(predict: Callable[..., Any], batches: list[np.ndarray]) -> tuple[int, int]:
    ok = errors = 0
    for X in batches:
        try:
            predict(X)
            ok += 1
        except Refused:
            errors += 1
    return ok, errors


def snapshot(reader: InMemoryMetricReader) -> dict[tuple, Any]:
    """Every non-timing point: (metric, attributes) -> value (histograms: count, sum, buckets)."""
    out: dict[tuple, Any] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if any(word in metric.name for word in TIMING):
                    continue
                for p in metric.data.data_points:
                    key = (metric.name, tuple(sorted(p.attributes.items())))
                    if hasattr(p, "bucket_counts"):
                        out[key] = (p.count, p.sum, tuple(p.bucket_counts))
                    else:
                        out[key] = p.value
    return out


def same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
            return False
        if math.isnan(a) and math.isnan(b):
            return True
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def expected_counts(batches: list[np.ndarray]) -> tuple[int, int, int]:
    errors = sum(1 for X in batches if X[0, 0] < -50)
    rows = sum(len(X) for X in batches if X[0, 0] >= -50)
    return len(batches), rows, errors


def run_threads(workers: list[Callable[[], Any]], timeout: float = JOIN_TIMEOUT_S) -> list[Any]:
    results: list[Any] = [None] * len(workers)
    failures: list[BaseException] = []

    def target(i: int) -> None:
        try:
            results[i] = workers[i]()
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            failures.append(exc)

    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(len(workers))]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "deadlock: a thread did not finish in time"
    assert not failures, failures
    return results


@pytest.mark.slow
def test_threads_give_exact_counts_and_the_single_threaded_statistics():
    batches = make_batches(THREADS * CALLS_PER_THREAD)
    calls, rows, errors = expected_counts(batches)

    single = Rig()
    assert call_all(single.predict, batches) == (calls - errors, errors)
    single.monitor.flush()
    reference = snapshot(single.reader)

    multi = Rig()
    stop = threading.Event()
    collections = [0]

    def collector() -> None:  # a metric collection running all along
        while not stop.is_set():
            multi.reader.get_metrics_data()
            collections[0] += 1

    collecting = threading.Thread(target=collector, daemon=True)
    collecting.start()
    chunks = [batches[i::THREADS] for i in range(THREADS)]
    outcomes = run_threads([lambda c=c: call_all(multi.predict, c) for c in chunks])
    stop.set()
    collecting.join(30)
    assert not collecting.is_alive(), "deadlock: collection did not finish"
    assert collections[0] > 0
    assert sum(ok for ok, _ in outcomes) == calls - errors
    multi.monitor.flush()
    observed = snapshot(multi.reader)

    attrs = {Attr.MODEL_NAME: "conc", Attr.MODEL_VERSION: "1"}
    key = tuple(sorted(attrs.items()))
    calls_key = tuple(sorted({**attrs, Attr.SEGMENT: NO_SEGMENT}.items()))
    assert observed[("ml.model.predict.calls", calls_key)] == calls
    assert observed[("ml.model.predictions", key)] == rows
    error_key = tuple(sorted({**attrs, Attr.SEGMENT: NO_SEGMENT, Attr.ERROR_TYPE: "Refused"}.items()))
    assert observed[("ml.model.predict.errors", error_key)] == errors
    by_range: dict[tuple, int] = {}
    for X in batches:
        if X[0, 0] >= -50:
            size = BATCH_SIZE_RANGES[batch_size_range(len(X))]
            k = tuple(sorted({**attrs, Attr.BATCH_SIZE_RANGE: size}.items()))
            by_range[k] = by_range.get(k, 0) + 1
    assert {k: v for (name, k), v in observed.items() if name == "ml.model.batches"} == by_range
    assert len(multi.spans.get_finished_spans()) == calls
    # Every call has its own prediction id: its span id (not written again as an attribute).
    spans = multi.spans.get_finished_spans()
    assert not any(Attr.PREDICTION_ID in s.attributes for s in spans)
    assert len({s.context.span_id for s in spans}) == calls

    assert set(observed) == set(reference)
    different = {k: (reference[k], observed[k]) for k in reference if not same(reference[k], observed[k])}
    assert different == {}
    single_report, multi_report = _drift_report(single.monitor), _drift_report(multi.monitor)
    assert single_report["features"], single_report  # drift was computed, per feature
    assert same(single_report, multi_report), (single_report, multi_report)
    single.shutdown()
    multi.shutdown()


def _drift_report(monitor: otel_ml.ModelMonitor) -> Any:
    """The drift report as a dict, without its timestamp."""
    report = monitor.drift_report().to_dict()
    report.pop("evaluated_at", None)
    return report


@pytest.mark.slow
def test_asyncio_tasks_keep_their_own_spans_and_stages():
    rig = Rig("async")

    @rig.monitor
    async def predict(X: np.ndarray) -> np.ndarray:
        await asyncio.sleep(0)
        with otel_ml.trace_stage("features", tracer_provider=rig.tracer_provider,
                                 meter_provider=rig.meter_provider):
            await asyncio.sleep(0)
            pid = otel_ml.current_prediction_id()
        await asyncio.sleep(0)
        assert otel_ml.current_prediction_id() == pid
        return model(X)

    batches = make_batches(TASKS * CALLS_PER_TASK, seed=11)
    calls, rows, errors = expected_counts(batches)

    async def task(chunk: list[np.ndarray]) -> tuple[int, int]:
        ok = bad = 0
        for X in chunk:
            try:
                await predict(X)
                ok += 1
            except Refused:
                bad += 1
        return ok, bad

    async def main() -> list[tuple[int, int]]:
        chunks = [batches[i::TASKS] for i in range(TASKS)]
        return await asyncio.wait_for(asyncio.gather(*(task(c) for c in chunks)), JOIN_TIMEOUT_S)

    outcomes = asyncio.run(main())
    assert sum(ok for ok, _ in outcomes) == calls - errors
    assert sum(bad for _, bad in outcomes) == errors

    attrs = tuple(sorted({Attr.MODEL_NAME: "async", Attr.MODEL_VERSION: "1"}.items()))
    calls_key = tuple(sorted({Attr.MODEL_NAME: "async", Attr.MODEL_VERSION: "1",
                              Attr.SEGMENT: NO_SEGMENT}.items()))
    observed = snapshot(rig.reader)
    assert observed[("ml.model.predict.calls", calls_key)] == calls
    assert observed[("ml.model.predictions", attrs)] == rows
    spans = rig.spans.get_finished_spans()
    predicts = {s.context.span_id: s for s in spans if s.name.startswith("ml.predict")}
    stages = [s for s in spans if s not in predicts.values()]
    assert len(predicts) == calls and len(stages) == calls
    # Interleaved tasks never adopt each other's span: each stage's parent is a predict span of
    # the same trace, and each predict span has exactly one stage.
    parents = [s.parent.span_id for s in stages]
    assert sorted(parents) == sorted(predicts)
    assert all(predicts[s.parent.span_id].context.trace_id == s.context.trace_id for s in stages)
    assert all(s.parent is None for s in predicts.values())
    rig.shutdown()


@pytest.mark.slow
def test_threads_and_tasks_at_once_with_collection():
    """Threads and an event loop share one monitor while collections run: exact totals."""
    rig = Rig("mixed")

    @rig.monitor
    async def apredict(X: np.ndarray) -> np.ndarray:
        await asyncio.sleep(0)
        return model(X)

    thread_batches = make_batches(4 * 200, seed=3)
    task_batches = make_batches(100 * 4, seed=5)

    def loop_worker() -> tuple[int, int]:
        async def main() -> list[Any]:
            async def one(X):
                try:
                    await apredict(X)
                    return 0
                except Refused:
                    return 1
            return await asyncio.gather(*(one(X) for X in task_batches))

        results = asyncio.run(main())
        return len(results) - sum(results), sum(results)

    stop = threading.Event()

    def collector() -> tuple[int, int]:
        n = 0
        while not stop.is_set() or n == 0:
            rig.reader.get_metrics_data()
            n += 1
        return n, 0

    workers = [lambda c=thread_batches[i::4]: call_all(rig.predict, c) for i in range(4)]
    workers.append(loop_worker)
    collecting = threading.Thread(target=collector, daemon=True)
    collecting.start()
    run_threads(workers)
    stop.set()
    collecting.join(30)
    assert not collecting.is_alive()

    calls, rows, errors = (a + b for a, b in zip(expected_counts(thread_batches),
                                                  expected_counts(task_batches)))
    attrs = {Attr.MODEL_NAME: "mixed", Attr.MODEL_VERSION: "1"}
    observed = snapshot(rig.reader)
    key = tuple(sorted(attrs.items()))
    calls_key = tuple(sorted({**attrs, Attr.SEGMENT: NO_SEGMENT}.items()))
    assert observed[("ml.model.predict.calls", calls_key)] == calls
    assert observed[("ml.model.predictions", key)] == rows
    error_key = tuple(sorted({**attrs, Attr.SEGMENT: NO_SEGMENT, Attr.ERROR_TYPE: "Refused"}.items()))
    assert observed[("ml.model.predict.errors", error_key)] == errors
    rig.shutdown()
