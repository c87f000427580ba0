"""trace_stage on generator functions: the stage's span covers the iteration (issue 12)."""

from __future__ import annotations

import asyncio
import time

import pytest
from conftest import points
from opentelemetry import trace
from opentelemetry.trace import StatusCode

from otel_ml import ModelMonitor, instrument_model, trace_stage

PAUSE_S = 0.03


def _stage_span(span_exporter, name):
    (span,) = [s for s in span_exporter.get_finished_spans() if s.name == f"ml.stage {name}"]
    return span


def test_generator_stage_span_covers_its_iteration(providers, span_exporter, metric_reader):
    inner_parents = []
    # The stage takes its model (and that model's cap on stage names) from ``monitor``.
    monitor = ModelMonitor("churn", "2.1.0", **providers)

    @trace_stage("load", monitor=monitor)
    def load(n):
        for i in range(n):
            time.sleep(PAUSE_S)
            inner_parents.append(trace.get_current_span().get_span_context().span_id)
            yield [i, i]  # two rows per item

    gen = load(3)
    assert trace.get_current_span().get_span_context().is_valid is False  # nothing left attached
    assert span_exporter.get_finished_spans() == ()  # not finished at creation
    items = list(gen)

    assert items == [[0, 0], [1, 1], [2, 2]]
    span = _stage_span(span_exporter, "load")
    assert (span.end_time - span.start_time) / 1e9 >= 3 * PAUSE_S
    # The body runs inside the stage; between items the consumer's context is current.
    assert inner_parents == [span.context.span_id] * 3
    assert trace.get_current_span().get_span_context().is_valid is False
    assert span.attributes["ml.stage.rows_out"] == 6
    (attrs, hist), = points(metric_reader, "ml.pipeline.stage.duration")
    assert attrs == {"ml.model.name": "churn", "ml.model.version": "2.1.0",
                     "ml.stage.name": "load"}
    assert hist.count == 1 and hist.sum >= 3 * PAUSE_S


def test_generator_stage_records_an_error_raised_while_iterating(providers, span_exporter,
                                                                 metric_reader):
    @trace_stage("parse", **providers)
    def parse():
        yield 1
        raise KeyError("bad row")

    gen = parse()
    assert next(gen) == 1
    with pytest.raises(KeyError, match="bad row"):
        next(gen)
    span = _stage_span(span_exporter, "parse")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "KeyError"
    (attrs, count), = points(metric_reader, "ml.pipeline.stage.errors")
    assert attrs["error.type"] == "KeyError" and count == 1


def test_generator_stage_closed_early_ends_its_span(providers, span_exporter):
    @trace_stage("stream", **providers)
    def stream():
        while True:
            yield 1

    gen = stream()
    next(gen)
    next(gen)
    gen.close()
    span = _stage_span(span_exporter, "stream")
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes["ml.stage.rows_out"] == 2


def test_generator_return_value_and_send_pass_through(providers):
    @trace_stage("echo", **providers)
    def echo():
        got = yield "ready"
        yield got * 2
        return "done"

    gen = echo()
    assert next(gen) == "ready"
    assert gen.send(21) == 42
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert stop.value.value == "done"


def test_async_generator_stage_span_covers_its_iteration(providers, span_exporter):
    @trace_stage("fetch", **providers)
    async def fetch(n):
        for i in range(n):
            await asyncio.sleep(PAUSE_S)
            yield i

    async def consume():
        return [i async for i in fetch(3)]

    assert asyncio.run(consume()) == [0, 1, 2]
    span = _stage_span(span_exporter, "fetch")
    assert (span.end_time - span.start_time) / 1e9 >= 3 * PAUSE_S
    assert span.attributes["ml.stage.rows_out"] == 3


def test_generator_stage_inside_a_predict_call_nests_and_carries_the_model(providers,
                                                                           span_exporter):
    @trace_stage("features")
    def features(rows):
        for row in rows:
            time.sleep(PAUSE_S)
            yield [v * 2 for v in row]

    @instrument_model(name="churn", version="2.1.0", **providers)
    def predict(X):
        return [sum(r) for r in features(X)]

    assert predict([[1.0, 2.0], [3.0, 4.0]]) == [6.0, 14.0]
    stage = _stage_span(span_exporter, "features")
    (call,) = [s for s in span_exporter.get_finished_spans() if s.name == "ml.predict churn"]
    assert stage.parent.span_id == call.context.span_id
    assert stage.attributes["ml.model.name"] == "churn"
    assert (stage.end_time - stage.start_time) / 1e9 >= 2 * PAUSE_S


def test_a_generator_never_iterated_opens_no_span_and_leaves_no_call(providers, span_exporter):
    import otel_ml

    @instrument_model(name="lazy", **providers)
    def predict(rows):
        yield from rows

    @trace_stage("stream", **providers)
    def stream(rows):
        yield from rows

    unused, unused_stage = predict([1, 2]), stream([1, 2])
    del unused, unused_stage
    assert span_exporter.get_finished_spans() == ()
    assert otel_ml.current_prediction_id() is None
    assert list(predict([1, 2])) == [1, 2]  # iterated: the span opens at the first step
    assert [s.name for s in span_exporter.get_finished_spans()] == ["ml.predict lazy"]
    assert otel_ml.current_prediction_id() is None


def test_a_generator_whose_cleanup_fails_on_close_is_recorded_as_failed(providers, span_exporter):
    @instrument_model(name="closing", **providers)
    def predict(rows):
        try:
            yield from rows
        finally:
            raise OSError("cleanup failed")

    gen = predict([1, 2, 3])
    assert next(gen) == 1
    with pytest.raises(OSError, match="cleanup failed"):
        gen.close()
    (span,) = span_exporter.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["error.type"] == "OSError"


def test_a_negative_features_position_fails_at_setup(providers):
    with pytest.raises(ValueError, match="features_arg must be a position >= 0"):
        ModelMonitor("m", features_arg=-1, **providers)
