"""The zero-code instrumentors in process: what is a call, a stage or nothing; identity;
joblib; undoing; never raising. (The real ``opentelemetry-instrument`` runs are in
``test_zero_code.py``.)"""

from __future__ import annotations

import logging
import pickle
import threading

import numpy as np
import pytest
from conftest import points
from opentelemetry import trace

import otel_ml
from otel_ml._internal.instrument.auto_calls import IN_LIBRARY_CALL
from otel_ml._internal.instrument.joblib_context import ContextCarrier
from otel_ml_instrumentation._library import LibraryInstrumentor
from otel_ml_instrumentation.sklearn import SklearnInstrumentor

sklearn = pytest.importorskip("sklearn")
from sklearn.datasets import load_breast_cancer  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402


@pytest.fixture(scope="module")
def data():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture
def instrumented(providers, monkeypatch):
    monkeypatch.delenv("OTEL_ML_MODEL_NAME", raising=False)
    monkeypatch.delenv("OTEL_ML_REFERENCE", raising=False)
    monkeypatch.setenv("OTEL_ML_MODEL_VERSION", "3")
    instrumentor = SklearnInstrumentor()
    instrumentor.instrument(**providers)
    yield instrumentor
    instrumentor.uninstrument()


def _names(span_exporter):
    return [(s.name, s.parent is not None) for s in span_exporter.get_finished_spans()]


def test_pipeline_call_is_one_call_with_its_steps_as_stages_and_fit_records_nothing(
        instrumented, span_exporter, metric_reader, data):
    X, y = data
    model = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=500))])
    model.fit(X, y)
    assert span_exporter.get_finished_spans() == ()
    model.predict(X.iloc[:32])
    spans = span_exporter.get_finished_spans()
    assert [s.name for s in spans] == ["ml.stage scale", "ml.stage clf", "ml.predict Pipeline"]
    call = spans[-1]
    assert all(s.parent.span_id == call.context.span_id for s in spans[:2])
    assert dict(call.attributes) == {"ml.model.name": "Pipeline", "ml.model.version": "3",
                                     "ml.outcome": "success", "ml.batch.size": 32}
    (attrs, value), = points(metric_reader, "ml.model.predictions")
    assert value == 32 and attrs == {"ml.model.name": "Pipeline", "ml.model.version": "3"}
    # A step called on its own is a call of its own model.
    model.named_steps["scale"].transform(X.iloc[:4])
    assert span_exporter.get_finished_spans()[-1].name == "ml.transform StandardScaler"


def test_forest_with_two_jobs_is_one_call_its_trees_record_nothing(instrumented, span_exporter,
                                                                    data):
    X, y = data
    forest = RandomForestClassifier(n_estimators=12, n_jobs=2, random_state=0).fit(X, y)
    forest.predict_proba(X.iloc[:50])
    assert _names(span_exporter) == [("ml.predict_proba RandomForestClassifier", False)]


def test_model_inside_a_user_instrumented_call_is_a_stage_in_its_trace(
        instrumented, providers, span_exporter, data):
    X, y = data
    forest = RandomForestClassifier(n_estimators=8, n_jobs=2, random_state=0).fit(X, y)
    otel_ml.set_model_info(forest, name="forest")

    @otel_ml.instrument_model(name="service", **providers)
    def predict(frame):
        return forest.predict(frame.to_numpy())  # other data than the call's input: a step

    predict(X.iloc[:20])
    spans = span_exporter.get_finished_spans()
    assert [s.name for s in spans] == ["ml.stage forest", "ml.predict service"]
    assert spans[0].parent.span_id == spans[1].context.span_id
    assert {s.context.trace_id for s in spans} == {spans[1].context.trace_id}
    assert dict(spans[0].attributes)["ml.model.name"] == "service"

    # The same model wrapped by wrap_model is that call itself: no stage of its own.
    span_exporter.clear()
    wrapped = otel_ml.wrap_model(forest, "wrapped", **providers)
    wrapped.predict(X.iloc[:5])
    assert _names(span_exporter) == [("ml.predict wrapped", False)]


def test_set_model_info_names_models_and_env_is_read_when_instrument_runs(
        providers, span_exporter, monkeypatch, data, tmp_path):
    X, y = data
    monkeypatch.setenv("OTEL_ML_MODEL_NAME", "from-env")
    monkeypatch.setenv("OTEL_ML_MODEL_VERSION", "7")
    instrumentor = SklearnInstrumentor()
    instrumentor.instrument(**providers)
    try:
        monkeypatch.setenv("OTEL_ML_MODEL_NAME", "changed-later")  # read once, at instrument()
        a = LogisticRegression(max_iter=500).fit(X, y)
        b = LogisticRegression(max_iter=500).fit(X, y)
        reference = tmp_path / "ref.json"
        otel_ml.Reference.from_data(X).save(reference)
        otel_ml.set_model_info(b, name="second", version="2", reference=reference)
        a.predict(X.iloc[:3])
        b.predict(X.iloc[:3])
        # Preprocessing next to the model is not the model the environment names.
        StandardScaler().fit(X).transform(X.iloc[:3])
        spans = span_exporter.get_finished_spans()
        assert [(s.name, s.attributes["ml.model.version"]) for s in spans] == [
            ("ml.predict from-env", "7"), ("ml.predict second", "2"),
            ("ml.transform StandardScaler", "unknown")]
        monitors = {m.name: m for m in instrumentor.monitors}
        assert monitors["second"].reference is not None and monitors["from-env"].reference is None
        assert monitors["StandardScaler"].reference is None
    finally:
        instrumentor.uninstrument()
    with pytest.raises(ValueError, match="does not exist"):
        otel_ml.set_model_info(a, reference=tmp_path / "missing.json")
    with pytest.raises(TypeError):
        otel_ml.set_model_info(None, name="x")


def test_uninstrument_restores_every_original_and_records_nothing(providers, span_exporter,
                                                                   data):
    import joblib
    import sklearn.base

    classes = [Pipeline, LogisticRegression, RandomForestClassifier, StandardScaler,
               sklearn.base.TransformerMixin, joblib.Parallel]
    before = {(c, k): v for c in classes for k, v in vars(c).items()}
    init_subclass = sklearn.base.BaseEstimator.__dict__.get("__init_subclass__")
    instrumentor = SklearnInstrumentor()
    instrumentor.instrument(**providers)
    assert vars(LogisticRegression)["predict_proba"] is not before[
        (LogisticRegression, "predict_proba")]
    instrumentor.uninstrument()
    after = {(c, k): v for c in classes for k, v in vars(c).items()}
    assert after == before
    assert sklearn.base.BaseEstimator.__dict__.get("__init_subclass__") is init_subclass
    X, y = data
    LogisticRegression(max_iter=500).fit(X, y).predict(X.iloc[:3])
    assert span_exporter.get_finished_spans() == ()


def test_a_user_exception_propagates_unchanged_and_is_recorded(instrumented, span_exporter,
                                                               data):
    X, y = data
    model = LogisticRegression(max_iter=500).fit(X, y)
    with pytest.raises(ValueError) as raised:
        model.predict(np.zeros((2, 3)))  # wrong width: scikit-learn's own error
    assert "features" in str(raised.value)
    span, = span_exporter.get_finished_spans()
    assert span.attributes["error.type"] == "ValueError"
    assert span.attributes["ml.outcome"] == "error"


def test_an_instrumentor_that_cannot_patch_logs_one_line_and_leaves_the_library_untouched(
        providers, caplog, data):
    class Broken(LibraryInstrumentor):
        library = "sklearn.base"

        @staticmethod
        def patch(module, calls, patcher):
            patcher.wrap(Pipeline, "predict", calls.predict_wrapper("predict", "auto"))
            raise RuntimeError("library changed")

    original = vars(Pipeline)["predict"]
    with caplog.at_level(logging.WARNING, logger="otel_ml.instrumentation"):
        Broken().instrument(**providers)  # must not raise
    try:
        assert vars(Pipeline)["predict"] is original
        lines = [r.getMessage() for r in caplog.records if r.name == "otel_ml.instrumentation"]
        assert lines == ["otel_ml: sklearn.base is not instrumented: RuntimeError: library changed"]
    finally:
        Broken().uninstrument()


def test_a_bad_reference_costs_drift_only(providers, span_exporter, monkeypatch, tmp_path, caplog,
                                          data):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    monkeypatch.setenv("OTEL_ML_REFERENCE", str(bad))
    instrumentor = SklearnInstrumentor()
    instrumentor.instrument(**providers)
    try:
        X, y = data
        model = LogisticRegression(max_iter=500).fit(X, y)
        with caplog.at_level(logging.WARNING, logger="otel_ml.instrumentation"):
            result = model.predict(X.iloc[:5])
        assert list(result) == list(model.predict(X.iloc[:5]))
        assert any("not used" in r.getMessage() for r in caplog.records)
        assert len(span_exporter.get_finished_spans()) == 2
    finally:
        instrumentor.uninstrument()


_seen: dict = {}


def _task() -> None:
    _seen["span"] = trace.get_current_span().get_span_context()
    _seen["in_call"] = IN_LIBRARY_CALL.get()


def test_a_joblib_task_carries_the_context_into_threads_and_processes(tracer_provider):
    tracer = tracer_provider.get_tracer("t")
    seen = _seen
    task = _task

    with tracer.start_as_current_span("caller") as span:
        token = IN_LIBRARY_CALL.set(True)
        import contextvars
        from opentelemetry import propagate
        carrier = {}
        propagate.inject(carrier)
        threaded = ContextCarrier(task, contextvars.copy_context(), carrier, True)
        IN_LIBRARY_CALL.reset(token)
    for run in (threaded, pickle.loads(pickle.dumps(threaded))):  # a process gets a pickle
        assert run.context is (None if run is not threaded else threaded.context)
        seen.clear()
        worker = threading.Thread(target=run)
        worker.start()
        worker.join()
        assert seen["in_call"] is True
        assert seen["span"].trace_id == span.get_span_context().trace_id
        assert seen["span"].span_id == span.get_span_context().span_id


def test_instrumenting_imports_no_library_and_no_otel_ml():
    import subprocess
    import sys

    code = ("import sys\n"
            "from otel_ml_instrumentation.sklearn import SklearnInstrumentor\n"
            "from otel_ml_instrumentation.xgboost import XGBoostInstrumentor\n"
            "from otel_ml_instrumentation.lightgbm import LightGBMInstrumentor\n"
            "for i in (SklearnInstrumentor, XGBoostInstrumentor, LightGBMInstrumentor):\n"
            "    i().instrument(skip_dep_check=True)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('sklearn', 'xgboost', 'lightgbm', 'otel_ml', 'numpy', 'scipy')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_boosting_libraries_sklearn_api_is_one_call_and_a_booster_is_a_model(
        library, providers, span_exporter, data):
    lib = pytest.importorskip(library)
    if library == "xgboost":
        from otel_ml_instrumentation.xgboost import XGBoostInstrumentor as Instrumentor
        model = lib.XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1)
    else:
        from otel_ml_instrumentation.lightgbm import LightGBMInstrumentor as Instrumentor
        model = lib.LGBMClassifier(n_estimators=5, num_leaves=4, n_jobs=1, verbose=-1)
    X, y = data
    instrumentor = Instrumentor()
    instrumentor.instrument(**providers)
    try:
        model.fit(X, y)
        assert span_exporter.get_finished_spans() == ()
        model.predict(X.iloc[:10])
        model.predict_proba(X.iloc[:10])
        name = type(model).__name__
        assert _names(span_exporter) == [(f"ml.predict {name}", False),
                                         (f"ml.predict_proba {name}", False)]
        span_exporter.clear()
        booster = model.get_booster() if library == "xgboost" else model.booster_
        if library == "xgboost":
            booster.inplace_predict(X.iloc[:4].to_numpy())
            assert _names(span_exporter) == [("ml.inplace_predict Booster", False)]
        else:
            booster.predict(X.iloc[:4].to_numpy())
            assert _names(span_exporter) == [("ml.predict Booster", False)]
    finally:
        instrumentor.uninstrument()
    span_exporter.clear()
    model.predict(X.iloc[:3])
    assert span_exporter.get_finished_spans() == ()


def test_every_meter_and_tracer_carries_the_contract_version_and_schema_url(
        instrumented, span_exporter, metric_reader, data):
    from otel_ml import contract

    X, y = data
    LogisticRegression(max_iter=2000).fit(X, y).predict(X.iloc[:3])
    span, = span_exporter.get_finished_spans()
    scopes = [span.instrumentation_scope] + [
        sm.scope for rm in metric_reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics if sm.scope.name == "otel_ml"]
    assert len(scopes) == 2
    for scope in scopes:
        assert scope.schema_url == contract.SCHEMA_URL
        assert dict(scope.attributes) == {"otel_ml.contract.version": contract.CONTRACT_VERSION}
