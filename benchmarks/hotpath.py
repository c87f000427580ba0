"""The instrumented predict functions compared per call, each with its own real SDK providers.

Every OpenTelemetry variant (the hand-written baseline and otel_ml) gets the same setup: a
``TracerProvider`` whose spans go through a ``BatchSpanProcessor`` to an exporter that drops them,
and a ``MeterProvider`` with an ``InMemoryMetricReader`` (nothing is collected while timing; the
cost of one collection is measured on its own). Runs in the project's venv.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import threading
import time
from array import array
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
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Sampler

__all__ = ["Providers", "Variant", "build_variants", "floor_batch_wrapper", "floor_full_wrapper",
           "predict",
           "spans_only_options"]

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


_FLOOR_CALL: contextvars.ContextVar[Any] = contextvars.ContextVar("floor_call", default=None)


def floor_full_wrapper(func: Callable, providers: Providers, reference: Any,
                       store_size: int = 10_000, buffer_rows: int = 256) -> Callable:
    """The least work full monitoring of a single numeric row must do, hand-written for this
    one input shape (no generality, no guards): the floor otel_ml's own path is measured by.

    Per call: a span with what otel_ml puts on it (model, version, outcome, batch size,
    outlier rate at start; the prediction id is the span's own id, not written again) attached
    as the current context with the call in a context variable; thread CPU time; the latency histogram recorded inside
    the span (exemplar); call, row, CPU and batch tallies under a lock; the row's outlier
    check (two comparisons against the reference's central 99% and a count); the row and its
    prediction copied into a micro-batch buffer; the prediction kept for the label join in
    preallocated arrays and an id index (evicting the oldest). Every ``buffer_rows`` calls
    the buffer is binned against the reference's edges, vectorised per column.
    """
    names = list(reference.feature_names)
    profiles = [reference.features[n] for n in names]
    F = len(names)
    lo = np.array([p.p_low for p in profiles])
    hi = np.array([p.p_high for p in profiles])
    edges = [p.edges for p in profiles]
    counts = [np.zeros(len(e) + 1, dtype=np.int64) for e in edges]
    sums = np.zeros(F)
    squares = np.zeros(F)
    tracer = providers.tracer_provider.get_tracer("bench.floor")
    meter = providers.meter_provider.get_meter("bench.floor")
    duration = meter.create_histogram("predict.duration", unit="s",
                                      explicit_bucket_boundaries_advisory=LATENCY_BUCKETS)
    attrs = {"ml.model.name": "bench", "ml.model.version": "1"}
    start_attrs = {rate: {**attrs, "ml.outcome": "success", "ml.batch.size": 1,
                          "ml.outlier.rate": rate} for rate in (0.0, 1.0)}
    lock = threading.Lock()
    tally = {"calls": 0, "rows": 0, "cpu": 0.0, "single_rows": 0}
    buf = np.empty((buffer_rows, F))
    buf_pred = np.empty(buffer_rows)
    hits = np.empty((2, F), dtype=bool)
    state = {"n": 0, "pos": 0}
    t_arr, span_arr, trace_hi, trace_lo = (array(c, bytes(8 * store_size)) for c in "dQQQ")
    pred_arr = array("d", bytes(8 * store_size))
    rows_kept = np.zeros((store_size, F))
    index: dict[int, int] = {}

    def flush(V: np.ndarray) -> None:
        for j in range(F):
            counts[j] += np.bincount(np.searchsorted(edges[j], V[:, j], side="right"),
                                     minlength=len(edges[j]) + 1)
        np.add(sums, V.sum(axis=0), out=sums)
        np.add(squares, np.einsum("ij,ij->j", V, V), out=squares)

    @functools.wraps(func)
    def wrapper(X: Any) -> Any:
        v = X[0]
        with lock:
            np.less(v, lo, out=hits[0])
            np.greater_equal(v, hi, out=hits[1])
            rate = 1.0 if np.count_nonzero(hits) else 0.0
        start = default_timer()
        cpu = time.thread_time()
        span = tracer.start_span("ml.predict bench", attributes=start_attrs[rate])
        ctx = span.get_span_context()
        pid = format(ctx.span_id, "016x")  # the prediction id: the span's own id
        token = otel_context.attach(trace.set_span_in_context(span))
        var = _FLOOR_CALL.set(pid)
        result = func(X)
        duration.record(default_timer() - start, attrs)
        cpu_s = time.thread_time() - cpu
        full = None
        with lock:
            tally["calls"] += 1
            tally["rows"] += 1
            tally["cpu"] += cpu_s
            tally["single_rows"] += 1
            i = state["n"]
            buf[i] = v
            buf_pred[i] = result.item()
            state["n"] = i + 1
            if i + 1 == buffer_rows:
                full, state["n"] = buf.copy(), 0
            j = state["pos"] % store_size
            state["pos"] += 1
            old = span_arr[j]
            if old:
                index.pop(old, None)
            t_arr[j] = time.monotonic()
            span_arr[j] = ctx.span_id
            trace_hi[j] = ctx.trace_id >> 64
            trace_lo[j] = ctx.trace_id & 0xFFFFFFFFFFFFFFFF
            pred_arr[j] = buf_pred[i]
            rows_kept[j] = v
            index[ctx.span_id] = j
        if full is not None:
            flush(full)
        span.end()
        otel_context.detach(token)
        _FLOOR_CALL.reset(var)
        return result

    return wrapper


def floor_batch_wrapper(func: Callable, providers: Providers, reference: Any,
                        store_size: int = 10_000) -> Callable:
    """The least work full monitoring of a numeric batch must do, hand-written for one input
    shape (a C-ordered float matrix of the reference's features; no generality, no guards).

    Per call, besides what :func:`floor_full_wrapper` does for the span, context, latency and
    tallies: column sums and sums of squares (two matrix-vector products); the finiteness check
    of the sums; every value's fine bin by the fastest method known here (otel_ml's own lookup
    grid, its tables built at setup: multiply, subtract, clip, truncate, offset, one table
    lookup, a comparison for the few values in a cell holding an edge) and one ``bincount`` of
    them; the tail values summed; the share of rows with a value outside the central 99% (for
    the span's outlier rate); the predictions binned (``searchsorted``, when the reference has
    them) and kept for the label join in a preallocated ring with one id per call.
    """
    from otel_ml._internal.monitor.feature_ingest import plan_from_reference
    from otel_ml._internal.monitor.settings import Settings

    plan = plan_from_reference(reference, Settings.create(name="bench", version="1"))
    grid = plan.grid
    F = plan.n_features
    if grid.prefix < F:
        raise ValueError("the batch floor needs every feature on the lookup grid")
    tables: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    counts = np.zeros(plan.n_extended + 1, dtype=np.int64)
    tails = np.zeros(max(plan.n_flagged, 1))
    sums = np.zeros(F)
    squares = np.zeros(F)
    pred_edges = None if reference.prediction is None else reference.prediction.edges
    pred_counts = np.zeros(0 if pred_edges is None else len(pred_edges) + 1, dtype=np.int64)
    tracer = providers.tracer_provider.get_tracer("bench.floor")
    meter = providers.meter_provider.get_meter("bench.floor")
    duration = meter.create_histogram("predict.duration", unit="s",
                                      explicit_bucket_boundaries_advisory=LATENCY_BUCKETS)
    attrs = {"ml.model.name": "bench", "ml.model.version": "1"}
    lock = threading.Lock()
    tally = {"calls": 0, "rows": 0, "cpu": 0.0}
    kept = np.zeros(store_size)
    state = {"pos": 0}
    index: dict[int, tuple[int, int]] = {}

    def tiled(rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = tables.get(rows)
        if t is None:
            t = tables[rows] = (np.tile(grid.scale[:F], rows), np.tile(grid.origin[:F], rows),
                                np.tile(grid.offsets[:F], rows))
        return t

    @functools.wraps(func)
    def wrapper(X: Any) -> Any:
        start = default_timer()
        cpu = time.thread_time()
        rows = X.shape[0]
        span = tracer.start_span("ml.predict bench", attributes={
            **attrs, "ml.outcome": "success", "ml.batch.size": rows})
        ctx = span.get_span_context()
        token = otel_context.attach(trace.set_span_in_context(span))
        var = _FLOOR_CALL.set(ctx.span_id)
        result = func(X)
        duration.record(default_timer() - start, attrs)
        cpu_s = time.thread_time() - cpu
        ones = np.ones(rows)
        s = ones @ X
        finite = bool(np.isfinite(s).all())
        q = ones @ (X * X)
        scale, origin, offset = tiled(rows)
        x = X.reshape(-1)
        z = x * scale
        z -= origin
        np.clip(z, 0, grid.cells - 1, out=z)
        cell = z.astype(np.intp)
        cell += offset
        b = grid.lut.take(cell)
        pending = np.flatnonzero(b < 0)
        if pending.size:
            j = -1 - b[pending]
            b[pending] = np.where(x[pending] >= grid.edge_at[j], grid.edge_above[j],
                                  grid.edge_below[j])
        binned = np.bincount(b, minlength=plan.n_extended + 1)
        hits = np.flatnonzero(b < plan.n_flagged)
        rate = np.unique(hits // F).size / rows
        pred_binned = None if pred_edges is None else np.bincount(
            np.searchsorted(pred_edges, result, side="right"), minlength=len(pred_edges) + 1)
        with lock:
            tally["calls"] += 1
            tally["rows"] += rows
            tally["cpu"] += cpu_s
            np.add(sums, s, out=sums)
            np.add(squares, q, out=squares)
            np.add(counts, binned, out=counts)
            if hits.size:
                tails[: plan.n_flagged] += np.bincount(b[hits], weights=x[hits],
                                                       minlength=plan.n_flagged)
            if pred_binned is not None:
                np.add(pred_counts, pred_binned, out=pred_counts)
            j = state["pos"] % store_size
            n = min(rows, store_size - j)
            kept[j: j + n] = result[:n]
            state["pos"] += n
            index[ctx.span_id] = (j, n)
            if len(index) > store_size:
                index.pop(next(iter(index)))
        span.set_attribute("ml.outlier.rate", rate if finite else 0.0)
        span.end()
        otel_context.detach(token)
        _FLOOR_CALL.reset(var)
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


def build_variants(reference: Any, *, with_peers: bool = True, floor: bool = False,
                   batch_floor: bool = False) -> list[Variant]:
    """Every variant of the per-call comparison, freshly built (call ``close()`` after).

    ``reference`` is an ``otel_ml.Reference`` for the full-monitoring variants (or None when
    the reference work has not landed: those variants are then skipped by the caller).
    ``floor`` adds :func:`floor_full_wrapper` (single-row inputs only), ``batch_floor``
    :func:`floor_batch_wrapper` (numeric batches).
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
    if reference is not None and floor:
        p = Providers.build()
        out.append(Variant("floor", "hand-written floor of full monitoring (1 row only)",
                           floor_full_wrapper(predict, p, reference), p,
                           note="the same per-call work, no generality: see floor_full_wrapper"))
    if reference is not None and batch_floor:
        p = Providers.build()
        out.append(Variant("batch_floor", "hand-written floor of full monitoring (numeric batch)",
                           floor_batch_wrapper(predict, p, reference), p,
                           note="the same per-call work, no generality: see floor_batch_wrapper"))
    return out
