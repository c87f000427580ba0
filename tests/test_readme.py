"""The README's Quickstart runs as written (issue 13, item 1), and callers' own prediction ids
join late labels through every way of instrumenting a model."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import otel_ml

ROOT = Path(__file__).resolve().parents[1]

#: What the Quickstart leaves to the reader: a training frame, a fitted model, one request's
#: frame and id, and its label. A scikit-learn model on a data set bundled with scikit-learn.
PRELUDE = '''
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

data = load_breast_cancer(as_frame=True)
columns = [str(c) for c in data.feature_names[:5]]
X_all = data.frame[columns].copy()
X_all["country"] = np.where(np.arange(len(X_all)) % 3 == 0, "fr", "de")
y_all = data.target.to_numpy()
X_train, y_train = X_all.iloc[:400], y_all[:400]
model = make_pipeline(ColumnTransformer([("numeric", StandardScaler(), columns)]),
                      LogisticRegression(max_iter=1000))
model.fit(X_train, y_train)
frame = X_all.iloc[[450]]
request_id = "req-450"
churned = int(y_all[450])
'''

EPILOGUE = '''
import json
report = predict.monitor.performance_report()
print("@@RESULT@@" + json.dumps({"count": report.count, "segments": sorted(report.by_segment),
                                 "unmatched": report.unmatched}))
otel_ml.shutdown()
'''


def quickstart_code() -> str:
    """The first ``python`` code block under the README's ``## Quickstart`` heading."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Quickstart", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "no python code block in the README's Quickstart"
    return match.group(1)


def test_the_quickstart_runs_verbatim_and_joins_the_late_label(tmp_path):
    code = quickstart_code()
    assert "prediction_id=request_id" in code and "record_outcome(request_id, churned)" in code
    script = tmp_path / "quickstart.py"
    script.write_text(PRELUDE + code + EPILOGUE, encoding="utf-8")
    env = {**os.environ, "OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none",
           "OTEL_ML_SYSTEM_METRICS": "false"}
    env.pop("OTEL_SDK_DISABLED", None)
    proc = subprocess.run([sys.executable, "-W", "error::DeprecationWarning:otel_ml",
                           str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@RESULT@@")]
    result = json.loads(line[len("@@RESULT@@"):])
    # The label joined the prediction made under the caller's id, in the call's segment.
    assert result["count"] == 1, result
    assert result["segments"] == ["fr"], result  # row 450: 450 % 3 == 0
    assert not any(result["unmatched"].values()), result
    assert (tmp_path / "reference.json").is_file()


# ---------------------------------------------------------------------- the id keyword
def test_an_undeclared_id_keyword_is_consumed_not_passed_on(providers, span_exporter):
    received = []

    @otel_ml.instrument_model(name="churn", **providers)
    def predict(X):
        received.append(X)
        return [1]

    assert predict([[1.0]], prediction_id="order-7") == [1]
    assert received == [[[1.0]]]
    (span,) = span_exporter.get_finished_spans()
    assert span.attributes["ml.prediction.id"] == "order-7"
    predict.monitor.record_outcome("order-7", 1)
    assert predict.monitor.performance_report().count == 1


def test_a_declared_id_parameter_is_passed_through(providers):
    seen = []

    @otel_ml.instrument_model(name="churn", **providers)
    def predict(X, *, prediction_id=None):
        seen.append((prediction_id, otel_ml.current_prediction_id()))
        return [0]

    predict([[1.0]], prediction_id="order-8")
    assert seen == [("order-8", "order-8")]


def test_kwargs_alone_do_not_receive_the_id(providers):
    seen = []

    @otel_ml.instrument_model(name="churn", **providers)
    def predict(X, **options):
        seen.append(options)
        return [0]

    predict([[1.0]], prediction_id="order-9", threshold=0.3)
    assert seen == [{"threshold": 0.3}]


def test_a_custom_id_keyword_and_none(providers):
    seen = []

    @otel_ml.instrument_model(name="churn", prediction_id_arg="request_id", **providers)
    def predict(X):
        seen.append(otel_ml.current_prediction_id())
        return [0]

    predict([[1.0]], request_id=1234)
    assert seen == ["1234"]

    @otel_ml.instrument_model(name="plain", prediction_id_arg=None, **providers)
    def plain(X, **options):
        return options

    assert plain([[1.0]], prediction_id="x") == {"prediction_id": "x"}


def test_the_id_keyword_is_consumed_when_telemetry_is_disabled(providers, monkeypatch):
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")

    @otel_ml.instrument_model(name="churn", **providers)
    def predict(X):
        return [0]

    assert predict([[1.0]], prediction_id="order-1") == [0]


def test_generators_and_coroutines_consume_the_id_too(providers):
    import asyncio

    @otel_ml.instrument_model(name="gen", **providers)
    def stream(X):
        yield from X

    @otel_ml.instrument_model(name="coro", **providers)
    async def apredict(X):
        return X

    assert list(stream([1, 2], prediction_id="g")) == [1, 2]
    assert asyncio.run(apredict([3], prediction_id="c")) == [3]


def test_wrap_model_joins_a_label_by_the_callers_own_id(providers, span_exporter):
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True)
    binary = (y == 2).astype(int)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, binary)
    model = otel_ml.wrap_model(pipeline, "iris", "1", **providers)

    labels = model.predict(X[:4], prediction_id="batch-1")
    np.testing.assert_array_equal(labels, pipeline.predict(X[:4]))
    proba = model.predict_proba(X[4:5], prediction_id="row-5")
    np.testing.assert_allclose(proba, pipeline.predict_proba(X[4:5]))

    spans = {s.attributes.get("ml.prediction.id"): s for s in span_exporter.get_finished_spans()
             if s.name.startswith("ml.predict")}
    assert {"batch-1", "row-5"} <= set(spans)
    model.monitor.record_outcome("batch-1", binary[:4])
    report = model.monitor.performance_report()
    assert report.count == 4 and not any(report.unmatched.values())
    # The pipeline's steps were still traced as stages (the id did not send it to the
    # pipeline's own method with keyword arguments).
    stages = [s for s in span_exporter.get_finished_spans() if s.name.startswith("ml.stage")]
    assert {s.name for s in stages} == {"ml.stage standardscaler", "ml.stage logisticregression"}


def test_quickstart_block_is_found():
    code = quickstart_code()
    assert textwrap.dedent(code) == code and "instrument_model" in code
