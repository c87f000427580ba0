"""Core behaviour: spans, call metrics, wrappers for every kind of callable, stages, errors."""

from __future__ import annotations

import asyncio
import inspect
import os
import subprocess
import sys
import threading
import time
import traceback

import pytest
from conftest import collect, points
from opentelemetry.trace import StatusCode

import otel_ml
from otel_ml import ModelMonitor, contract, instrument_model, trace_stage, wrap_model
from otel_ml.version import __version__

MODEL = {"ml.model.name": "churn", "ml.model.version": "2.1.0"}
#: Call and error counters carry the call's segment (``NO_SEGMENT`` without one).
CALLS = {**MODEL, "ml.segment": contract.NO_SEGMENT}


def value_of(reader, name, **attrs):
    """The single point of ``name`` whose attributes include ``attrs``."""
    matches = [v for a, v in points(reader, name) if all(a.get(k) == x for k, x in attrs.items())]
    assert len(matches) == 1, (name, attrs, points(reader, name))
    return matches[0]


@pytest.fixture
def predict(providers):
    @instrument_model(name="churn", version="2.1.0", **providers)
    def predict(X, threshold=0.5):
        """Score rows."""
        return [1 if sum(row) > threshold else 0 for row in X]

    return predict


def test_call_span_and_metrics_have_exact_attributes(predict, span_exporter, metric_reader):
    assert predict([[0.2, 0.4], [0.1, 0.0], [1.0, 1.0]]) == [1, 0, 1]

    (span,) = span_exporter.get_finished_spans()
    assert span.name == "ml.predict churn"
    assert span.instrumentation_scope.name == "otel_ml"
    assert span.instrumentation_scope.version == __version__
    # The default prediction id is the span's own id: not written again as an attribute.
    assert dict(span.attributes) == {**MODEL, "ml.batch.size": 3, "ml.outcome": "success"}
    assert span.status.status_code is StatusCode.UNSET

    assert points(metric_reader, "ml.model.predict.calls") == [(CALLS, 1)]
    assert points(metric_reader, "ml.model.predictions") == [(MODEL, 3)]
    # Integer labels: the task is inferred from the predictions.
    assert points(metric_reader, "ml.model.info") == [({**MODEL, "ml.model.task": "classification"}, 1)]
    (attrs, hist), = points(metric_reader, "ml.model.predict.duration")
    assert attrs == MODEL and hist.count == 1
    assert tuple(hist.explicit_bounds) == contract.LATENCY_BUCKETS
    assert points(metric_reader, "ml.model.batches") == [({**MODEL, "ml.batch.size.range": "2-4"}, 1)]
    (attrs, cpu), = points(metric_reader, "ml.model.predict.cpu.time")
    assert attrs == MODEL and 0 < cpu < 1


def test_every_emitted_metric_is_in_the_contract(predict, metric_reader):
    predict([[1.0]])
    emitted = set(collect(metric_reader))
    assert emitted <= set(contract.METRICS)
    data = metric_reader.get_metrics_data()
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            assert sm.scope.name == "otel_ml"
            for metric in sm.metrics:
                assert metric.unit == contract.METRICS[metric.name].unit


def test_user_exception_propagates_unchanged_and_is_recorded(providers, span_exporter,
                                                             metric_reader):
    class ModelError(Exception):
        pass

    raised = ModelError("bad input")

    @instrument_model(name="churn", version="2.1.0", **providers)
    def predict(X):
        raise raised

    with pytest.raises(ModelError) as info:
        predict([[1.0]])
    assert info.value is raised
    frames = traceback.extract_tb(info.value.__traceback__)
    assert frames[-1].name == "predict" and "raise raised" in frames[-1].line

    (span,) = span_exporter.get_finished_spans()
    qualname = ModelError.__qualname__
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["ml.outcome"] == "error"
    assert span.attributes["error.type"] == qualname
    assert span.events[0].name == "exception"
    assert points(metric_reader, "ml.model.predict.errors") == [
        ({**CALLS, "error.type": qualname}, 1)]
    assert points(metric_reader, "ml.model.predict.calls") == [(CALLS, 1)]
    assert points(metric_reader, "ml.model.predictions") == [(MODEL, 0)]
    assert points(metric_reader, "ml.model.batches") == []  # successful calls only
    (attrs, hist), = points(metric_reader, "ml.model.predict.duration")
    assert attrs == {**MODEL, "error.type": qualname} and hist.count == 1


def test_batches_count_successful_calls_by_rows_per_call(predict, metric_reader):
    for rows in (1, 1, 3, 4, 5, 0, 2000):
        predict([[1.0]] * rows)
    by_range = {a["ml.batch.size.range"]: v for a, v in points(metric_reader, "ml.model.batches")}
    assert by_range == {"0": 1, "1": 2, "2-4": 2, "5-16": 1, "1025-4096": 1}
    assert points(metric_reader, "ml.model.predictions") == [(MODEL, 2014)]


async def test_async_span_covers_the_awaited_work(providers, span_exporter):
    @instrument_model(name="churn", version="2.1.0", **providers)
    async def predict(X):
        await asyncio.sleep(0.05)
        return [0] * len(X)

    assert inspect.iscoroutinefunction(predict)
    assert await predict([[1.0], [2.0]]) == [0, 0]
    (span,) = span_exporter.get_finished_spans()
    assert (span.end_time - span.start_time) / 1e9 >= 0.05
    assert span.attributes["ml.batch.size"] == 2


async def test_concurrent_async_calls_have_their_own_prediction_ids(providers):
    seen = []

    @instrument_model(name="churn", **providers)
    async def predict(X):
        before = otel_ml.current_prediction_id()
        await asyncio.sleep(0.01)
        seen.append((before, otel_ml.current_prediction_id()))
        return X

    await asyncio.gather(*(predict([[i]]) for i in range(50)))
    assert all(a == b and a is not None for a, b in seen)
    assert len({a for a, _ in seen}) == 50
    assert otel_ml.current_prediction_id() is None


def test_generator_span_covers_iteration_and_counts_yielded_rows(providers, span_exporter,
                                                                 metric_reader):
    @instrument_model(name="churn", version="2.1.0", features_arg="missing", **providers)
    def predict_stream(chunks):
        for chunk in chunks:
            time.sleep(0.02)
            yield [0] * len(chunk)

    assert inspect.isgeneratorfunction(predict_stream)
    gen = predict_stream([[[1], [2]], [[3]]])
    assert span_exporter.get_finished_spans() == ()
    assert list(gen) == [[0, 0], [0]]
    (span,) = span_exporter.get_finished_spans()
    assert (span.end_time - span.start_time) / 1e9 >= 0.04
    assert span.attributes["ml.batch.size"] == 3
    assert points(metric_reader, "ml.model.predictions") == [(MODEL, 3)]


def test_generator_closed_early_ends_its_span(providers, span_exporter):
    @instrument_model(name="churn", **providers)
    def stream(X):
        yield from X

    gen = stream([[1], [2], [3]])
    assert next(gen) == [1]
    gen.close()
    (span,) = span_exporter.get_finished_spans()
    assert span.attributes["ml.outcome"] == "success"


async def test_async_generator_is_traced(providers, span_exporter):
    @instrument_model(name="churn", **providers)
    async def stream(X):
        for row in X:
            await asyncio.sleep(0.01)
            yield row

    assert inspect.isasyncgenfunction(stream)
    assert [row async for row in stream([[1], [2]])] == [[1], [2]]
    (span,) = span_exporter.get_finished_spans()
    assert (span.end_time - span.start_time) / 1e9 >= 0.02


def test_methods_classmethods_and_staticmethods(providers, span_exporter):
    monitor = ModelMonitor("churn", "2.1.0", **providers)

    class Model:
        scale = 2

        @monitor
        def predict(self, X):
            return [x * self.scale for x in X]

        @classmethod
        @monitor
        def predict_cls(cls, X):
            return [x * cls.scale for x in X]

        @staticmethod
        @monitor
        def predict_static(X):
            return X

    model = Model()
    assert model.predict([[1]]) == [[1, 1]]
    assert Model.predict_cls([[1]]) == [[1, 1]]
    assert Model.predict_static([[1]]) == [[1]]
    assert model.predict.monitor is monitor
    spans = span_exporter.get_finished_spans()
    assert [s.attributes["ml.batch.size"] for s in spans] == [1, 1, 1]


def test_signature_docstring_and_name_are_preserved(predict):
    assert predict.__name__ == "predict"
    assert predict.__doc__ == "Score rows."
    assert str(inspect.signature(predict)) == "(X, threshold=0.5)"
    assert isinstance(predict.monitor, ModelMonitor)
    assert predict.monitor.name == "churn"


def test_bare_decorator_names_the_model_after_the_function(providers, span_exporter):
    @instrument_model
    def fraud_score(X):
        return X

    assert fraud_score.monitor.name == "fraud_score"
    assert fraud_score([[1]]) == [[1]]


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"name": ""}, ValueError),
    ({"name": "  "}, ValueError),
    ({"name": 3}, TypeError),
    ({"name": "m", "version": None}, TypeError),
    ({"name": "m", "task": "ranking"}, ValueError),
    ({"name": "m", "features_arg": 1.5}, TypeError),
    ({"name": "m", "drift_window_s": 0}, ValueError),
    ({"name": "m", "slot_s": 7200}, ValueError),
    ({"name": "m", "max_segments": 0}, ValueError),
    ({"name": "m", "capture_payloads": 2}, ValueError),
    ({"name": "m", "threshold": 1.0}, ValueError),
    ({"name": "m", "reference": 42}, TypeError),
    ({"name": "m", "segment_by": 42}, TypeError),
    ({"name": "m", "prediction_id_arg": 7}, TypeError),
    ({"name": "m", "redact": "ssn"}, TypeError),
    ({"name": "m", "drift": {"alpha": 0.1}}, TypeError),
    ({"name": "m", "outcome_store_size": -1}, ValueError),
])
def test_bad_decorator_arguments_fail_at_decoration(kwargs, error):
    with pytest.raises(error):
        @instrument_model(**kwargs)
        def predict(X):
            return X


def test_instrument_model_rejects_positional_non_callable():
    with pytest.raises(TypeError, match="keyword arguments"):
        instrument_model("churn")


def test_stages_nest_under_the_predict_span(providers, span_exporter, metric_reader):
    @trace_stage("load")
    def load(raw):
        return raw

    @trace_stage
    def preprocess(rows):
        return rows[:-1]

    @instrument_model(name="churn", version="2.1.0", **providers)
    def predict(X):
        with trace_stage("features") as stage:
            feats = preprocess(load(X))
            stage.rows_out = len(feats)
        return [0] * len(feats)

    assert predict([[1], [2], [3]]) == [0, 0]
    spans = {s.name: s for s in span_exporter.get_finished_spans()}
    assert set(spans) == {"ml.predict churn", "ml.stage features", "ml.stage load",
                          "ml.stage preprocess"}
    root = spans["ml.predict churn"]
    assert spans["ml.stage features"].parent.span_id == root.context.span_id
    for child in ("ml.stage load", "ml.stage preprocess"):
        assert spans[child].parent.span_id == spans["ml.stage features"].context.span_id
    assert dict(spans["ml.stage preprocess"].attributes) == {
        **MODEL, "ml.stage.name": "preprocess", "ml.stage.rows_in": 3, "ml.stage.rows_out": 2}
    rows = {(a["ml.stage.name"], a["ml.stage.direction"]): v
            for a, v in points(metric_reader, "ml.pipeline.stage.rows")}
    assert rows == {("load", "in"): 3, ("load", "out"): 3, ("preprocess", "in"): 3,
                    ("preprocess", "out"): 2, ("features", "out"): 2}
    durations = {a["ml.stage.name"]: v.count
                 for a, v in points(metric_reader, "ml.pipeline.stage.duration")}
    assert durations == {"load": 1, "preprocess": 1, "features": 1}


def test_stage_error_is_recorded_and_propagates(providers, span_exporter, metric_reader):
    monitor = ModelMonitor("churn", "2.1.0", **providers)
    with pytest.raises(KeyError):
        with trace_stage("load", monitor=monitor):
            raise KeyError("column")
    (span,) = span_exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert points(metric_reader, "ml.pipeline.stage.errors") == [
        ({**MODEL, "ml.stage.name": "load", "error.type": "KeyError"}, 1)]


async def test_async_stage_and_threads_keep_their_own_parents(providers, span_exporter):
    monitor = ModelMonitor("churn", **providers)

    @trace_stage("fetch", monitor=monitor)
    async def fetch(x):
        await asyncio.sleep(0.01)
        return x

    @monitor
    async def predict(X):
        async with trace_stage("prepare"):
            await fetch(X)
        return X

    await asyncio.gather(predict([[1]]), predict([[2]]))
    spans = span_exporter.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}
    for span in spans:
        if span.name == "ml.stage fetch":
            parent = by_id[span.parent.span_id]
            assert parent.name == "ml.stage prepare"
            assert by_id[parent.parent.span_id].name == "ml.predict churn"


def test_stage_rejects_bad_names():
    with pytest.raises(ValueError):
        trace_stage("")
    with pytest.raises(TypeError):
        trace_stage(5)


def test_exact_counts_under_eight_threads(providers, metric_reader):
    @instrument_model(name="churn", version="2.1.0", **providers)
    def predict(X):
        if X[0][0] < 0:
            raise ValueError("negative")
        return X

    calls_per_thread = 10_000
    barrier = threading.Barrier(8)

    def hammer(thread):
        barrier.wait()
        for i in range(calls_per_thread):
            try:
                predict([[-1.0]] if i % 100 == 0 else [[1.0], [2.0]])
            except ValueError:
                pass

    threads = [threading.Thread(target=hammer, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = 8 * calls_per_thread
    errors = 8 * (calls_per_thread // 100)
    assert points(metric_reader, "ml.model.predict.calls") == [(CALLS, total)]
    assert points(metric_reader, "ml.model.predictions") == [(MODEL, 2 * (total - errors))]
    assert points(metric_reader, "ml.model.predict.errors") == [
        ({**CALLS, "error.type": "ValueError"}, errors)]
    count = sum(v.count for _, v in points(metric_reader, "ml.model.predict.duration"))
    assert count == total


def test_prediction_id_from_the_callers_keyword(providers, span_exporter):
    seen = []

    @instrument_model(name="churn", **providers)
    def predict(X, prediction_id=None):
        seen.append(otel_ml.current_prediction_id())
        return X

    predict([[1]], prediction_id="order-42")
    predict([[1]])
    assert seen[0] == "order-42"
    spans = span_exporter.get_finished_spans()
    assert spans[0].attributes["ml.prediction.id"] == "order-42"
    # Without the caller's id, the id is the span id (findable as such, not written twice).
    assert seen[1] == format(spans[1].context.span_id, "016x")
    assert "ml.prediction.id" not in spans[1].attributes


def test_sampled_out_spans_still_give_ids_and_metrics(metric_reader, meter_provider):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    ids = []

    @instrument_model(name="churn", version="2.1.0", tracer_provider=TracerProvider(sampler=ALWAYS_OFF),
                      meter_provider=meter_provider)
    def predict(X):
        ids.append(otel_ml.current_prediction_id())
        return X

    predict([[1]])
    predict([[1]])
    assert len(set(ids)) == 2 and all(len(i) == 16 for i in ids)
    assert points(metric_reader, "ml.model.predict.calls") == [(CALLS, 2)]


def test_telemetry_failure_never_reaches_the_caller(providers, metric_reader, span_exporter,
                                                    caplog):
    """The call path with analyses that fail (a fake at the recorder's seam: every callback it
    is given raises): the caller's result and exceptions are untouched, the span and the call
    metrics are still recorded, and each failure is counted in ml.telemetry.errors."""
    import types

    import numpy as np

    from otel_ml._internal.core.instruments import instruments_for, tracer_for
    from otel_ml._internal.core.state import Switch
    from otel_ml._internal.instrument.recorder import CallRecorder, Target
    from otel_ml._internal.instrument.wrappers import wrap_callable

    def broken(*args):
        raise RuntimeError("analysis exploded")

    def errors_by_reason():
        return {a["ml.reason"]: v for a, v in points(metric_reader, "ml.telemetry.errors")}

    recorder = CallRecorder(MODEL, Switch(), tracer_for(providers["tracer_provider"]),
                            instruments_for(providers["meter_provider"]), outlier_rate=broken,
                            feed=broken, feed_item=broken)
    owner = types.SimpleNamespace(recorder=recorder)
    predict = wrap_callable(lambda X: X, owner, Target("ml.predict churn", "auto"))

    before = errors_by_reason()
    row = np.array([[1.0, 2.0]])
    for _ in range(3):
        assert predict(row) is row
    after = errors_by_reason()
    assert after.get("record", 0) - before.get("record", 0) == 3
    assert after.get("outlier_rate", 0) - before.get("outlier_rate", 0) == 3
    spans = span_exporter.get_finished_spans()
    assert len(spans) == 3 and all(s.attributes["ml.outcome"] == "success" for s in spans)
    (attrs, hist), = points(metric_reader, "ml.model.predict.duration")
    assert attrs == MODEL and hist.count == 3
    calls = recorder.collectors()["ml.model.predict.calls"]
    assert list(calls()) == [(3, {"ml.segment": contract.NO_SEGMENT})]
    logged = [r for r in caplog.records if r.name == "otel_ml" and "record failed" in r.message]
    assert len(logged) <= 1  # rate limited: at most once per cause and interval


def test_disabled_sdk_makes_everything_a_no_op(providers, span_exporter, metric_reader,
                                               monkeypatch):
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")

    @instrument_model(name="churn", **providers)
    def predict(X):
        return X

    assert predict([[1]]) == [[1]]
    assert span_exporter.get_finished_spans() == ()
    assert points(metric_reader, "ml.model.predict.calls") == [
        ({"ml.model.name": "churn", "ml.model.version": "unknown",
          "ml.segment": contract.NO_SEGMENT}, 0)]


def test_wrap_model_proxies_and_traces_pipeline_steps(providers, span_exporter, metric_reader):
    sklearn = pytest.importorskip("sklearn")
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    pipeline = Pipeline([("preprocess", StandardScaler()), ("predict", LogisticRegression())])
    pipeline.fit(X, y)
    expected = pipeline.predict(X[:10])
    expected_proba = pipeline.predict_proba(X[:10])

    model = wrap_model(pipeline, name="churn", version="2.1.0", **providers)
    assert isinstance(model, Pipeline)
    assert model.steps is pipeline.steps
    np.testing.assert_array_equal(model.predict(X[:10]), expected)
    np.testing.assert_array_equal(model.predict_proba(X[:10]), expected_proba)
    assert model.monitor.name == "churn"
    assert sklearn.base.is_classifier(model)

    spans = span_exporter.get_finished_spans()
    names = [s.name for s in spans]
    assert names == ["ml.stage preprocess", "ml.stage predict", "ml.predict churn",
                     "ml.stage preprocess", "ml.stage predict", "ml.predict_proba churn"]
    predict_span = spans[2]
    assert spans[0].parent.span_id == predict_span.context.span_id
    assert spans[1].attributes["ml.stage.rows_out"] == 10
    assert points(metric_reader, "ml.model.predict.calls") == [(CALLS, 2)]


def test_wrap_model_instruments_plain_callables(providers, span_exporter):
    class TorchLike:
        def __call__(self, x):
            return [v * 2 for v in x]

        def train(self):
            return "training"

    model = wrap_model(TorchLike(), name="net", **providers)
    assert model([[1], [2]]) == [[1, 1], [2, 2]]
    assert model.train() == "training"
    (span,) = span_exporter.get_finished_spans()
    assert span.name == "ml.predict net"


def test_wrap_model_rejects_none():
    with pytest.raises(TypeError):
        wrap_model(None, name="m")


def test_import_has_no_side_effects_and_reads_no_environment():
    code = """
import os, sys
reads = []
class Recording(dict):
    def __getitem__(self, k):
        reads.append(k); return super().__getitem__(k)
    def get(self, k, d=None):
        reads.append(k); return super().get(k, d)
    def __contains__(self, k):
        reads.append(k); return super().__contains__(k)
# Third-party modules may read their own variables at import; only otel_ml's reads count.
import opentelemetry.trace, opentelemetry.metrics, numpy, scipy.stats, wrapt
import opentelemetry.sdk.trace, opentelemetry.sdk.metrics, opentelemetry.sdk.resources
before_threads = __import__('threading').active_count()
original, os.environ = os.environ, Recording(os.environ)
import otel_ml, otel_ml.contract, otel_ml.cli
os.environ = original
from opentelemetry import trace, metrics
assert type(trace.get_tracer_provider()).__name__ == 'ProxyTracerProvider'
assert type(metrics.get_meter_provider()).__name__ == '_ProxyMeterProvider'
assert __import__('threading').active_count() == before_threads
ours = [k for k in reads if k.startswith(('OTEL', 'OTEL_ML'))]
print('READS', ours)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "READS []" in out.stdout


def test_public_api():
    assert set(otel_ml.__all__) >= {"configure", "shutdown", "instrument_model", "wrap_model",
                                    "trace_stage", "ModelMonitor", "current_prediction_id"}
    for name in otel_ml.__all__:
        assert hasattr(otel_ml, name)


def test_stage_objects_made_in_a_loop_leave_nothing_in_the_context(providers):
    import contextvars

    monitor = ModelMonitor("churn", **providers)
    before = len(contextvars.copy_context())
    for i in range(1000):
        with trace_stage(f"step{i % 3}", monitor=monitor):
            pass
    assert len(contextvars.copy_context()) <= before + 1


def test_a_sampler_that_changes_its_attributes_changes_one_call_only():
    """Start attributes are prepared once but handed over as a fresh dict per call."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

    class Counting(Sampler):
        def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None,
                          links=None, trace_state=None):
            attributes["seen"] = attributes.get("seen", 0) + 1  # changes what it was given
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

        def get_description(self) -> str:
            return "counting"

    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=Counting())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    predict = instrument_model(name="churn", version="2.1.0", tracer_provider=provider)(
        lambda X=None: 1)
    for x in ([[1.0]], [[1.0]], None, None):
        predict(x) if x is not None else predict()
    assert [s.attributes["seen"] for s in exporter.get_finished_spans()] == [1, 1, 1, 1]


def test_inputs_of_failed_calls_feed_no_drift_or_quality_statistics(providers, metric_reader,
                                                                    span_exporter):
    """One incident, one signal: an input seen only in failing calls is counted by the error
    counter and the span's error.type, not also as an unseen category or drift."""
    pd = pytest.importorskip("pandas")
    train = pd.DataFrame({"x": [float(i % 10) for i in range(200)],
                          "plan": ["a", "b"] * 100})
    reference = otel_ml.Reference.from_data(train)

    @instrument_model(name="churn", version="2.1.0", reference=reference, **providers)
    def predict(frame):
        if (frame["plan"] == "zzz").any():
            raise ValueError("unknown plan")
        return [0] * len(frame)

    for _ in range(5):
        predict(train.iloc[:4])
        with pytest.raises(ValueError, match="unknown plan"):
            predict(pd.DataFrame({"x": [1e6, 2e6], "plan": ["zzz", "zzz"]}))
    predict.monitor.flush()

    def issues(check):
        return sum(v for a, v in points(metric_reader, "ml.data_quality.issues")
                   if a.get("ml.quality.check") == check)

    assert issues("unseen_category") == 0 and issues("out_of_range") == 0
    assert value_of(metric_reader, "ml.drift.window.rows") == 20  # the successful rows only
    assert value_of(metric_reader, "ml.model.predict.errors", **{"error.type": "ValueError"}) == 5
    failed = [s for s in span_exporter.get_finished_spans() if s.status.status_code is StatusCode.ERROR]
    assert len(failed) == 5 and all(s.attributes["error.type"] == "ValueError" for s in failed)

    # The same input in a call that succeeds is a data-quality signal (the check can fire).
    @instrument_model(name="control", version="1", reference=reference, **providers)
    def control(frame):
        return [0] * len(frame)

    control(pd.DataFrame({"x": [1.0], "plan": ["zzz"]}))
    control.monitor.flush()
    assert issues("unseen_category") == 1


def test_calls_and_errors_are_counted_per_segment(providers, metric_reader):
    """Calls of segments A and B where only B raises: the error counter names B, the call
    counter has both segments, and a segment-less call counts under NO_SEGMENT."""
    monitor = ModelMonitor("churn", version="2.1.0", statistics=False,
                           segment_by=lambda args, kwargs: kwargs.get("site"), **providers)

    @monitor
    def predict(X, site=None):
        if site == "B":
            raise KeyError("unknown clinic code")
        return [1 for _ in X]

    for _ in range(3):
        assert predict([[0.1]], site="A") == [1]
    for _ in range(2):
        with pytest.raises(KeyError):
            predict([[0.1]], site="B")
    assert predict([[0.1]]) == [1]  # no segment

    calls = sorted(points(metric_reader, "ml.model.predict.calls"),
                   key=lambda p: p[0]["ml.segment"])
    assert calls == [({**MODEL, "ml.segment": "A"}, 3), ({**MODEL, "ml.segment": "B"}, 2),
                     (CALLS, 1)]
    assert points(metric_reader, "ml.model.predict.errors") == [
        ({**MODEL, "ml.segment": "B", "error.type": "KeyError"}, 2)]


def test_importing_otel_ml_does_not_import_scipy_stats():
    """scipy.stats takes about half a second to import; a monitor needs it only for KS
    p-values of very small windows, so application start-up and worker processes skip it."""
    code = ("import sys, otel_ml; m = otel_ml.ModelMonitor('m'); "
            "print('scipy.stats' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}, check=True)
    assert out.stdout.split() == ["False"]
