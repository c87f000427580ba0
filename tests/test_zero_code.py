"""``opentelemetry-instrument python examples/zero_code_*.py`` gives what the decorator gives.

Each example (no otel_ml import) runs under the real ``opentelemetry-instrument`` command in a
subprocess, exporting OTLP/HTTP to the project's test receiver, and again with its model
wrapped by ``otel_ml.wrap_model``; the spans (names, parents, attributes) and the ``ml.*``
metrics (every series and its last value, CPU time aside) must be the same, and the served
rows' shifted feature must be found drifted against ``OTEL_ML_REFERENCE``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from otlp_receiver import OTLPReceiver, attributes
from zero_code import (instrumented_env, opentelemetry_instrument, run_decorated, run_zero_code,
                       save_reference)

pytestmark = pytest.mark.slow

EXAMPLES = [("zero_code_sklearn.py", "sklearn"), ("zero_code_xgboost.py", "xgboost"),
            ("zero_code_lightgbm.py", "lightgbm")]
SHIFT = "mean radius:1.6"
CALLS, ROWS = 20, 16
#: Values that differ between two runs of the same calls.
_VARYING = {"ml.model.predict.cpu.time"}


def _spans(receiver: OTLPReceiver) -> Counter:
    spans = [span for _, span in receiver.spans()]
    names = {span.span_id: span.name for span in spans}
    return Counter((span.name, names.get(span.parent_span_id) if span.parent_span_id else None,
                    tuple(sorted(attributes(span.attributes).items()))) for span in spans)


def _metrics(receiver: OTLPReceiver) -> dict:
    last = {}
    for point in receiver.metric_points():
        if point.name.startswith("ml.") and point.name not in _VARYING:
            last[(point.name, tuple(sorted(point.attributes.items())))] = point.value
    return last


def _collect(receiver: OTLPReceiver) -> tuple[Counter, dict]:
    receiver.wait_for(lambda: receiver.metric_points("ml.model.predict.calls"), timeout=20)
    return _spans(receiver), _metrics(receiver)


@pytest.mark.parametrize("example, library", EXAMPLES, ids=[lib for _, lib in EXAMPLES])
def test_zero_code_run_equals_the_decorated_run(example, library, tmp_path):
    pytest.importorskip(library)
    reference = save_reference(example, tmp_path)
    runs = {}
    for mode in ("zero-code", "decorated"):
        with OTLPReceiver("http") as receiver:
            env = instrumented_env(tmp_path, receiver.endpoint, service="zero-code-test",
                                   model="breast-cancer", reference=reference)
            if mode == "zero-code":
                proc = run_zero_code(example, env, "--calls", str(CALLS), "--rows", str(ROWS),
                                     "--shift", SHIFT)
            else:
                proc = run_decorated(example, env, CALLS, ROWS, SHIFT)
            assert f"served {CALLS * ROWS}" in proc.stdout
            runs[mode] = _collect(receiver)
    (zero_spans, zero_metrics), (dec_spans, dec_metrics) = runs["zero-code"], runs["decorated"]

    # What the zero-code run produced, stated outright, then compared whole.
    predict = [s for s in zero_spans.elements() if s[0] == "ml.predict breast-cancer"]
    assert len(predict) == CALLS and all(parent is None for _, parent, _ in predict)
    assert sum(1 for s in zero_spans.elements() if s[0] == "ml.predict_proba breast-cancer") == 1
    attrs = dict(predict[0][2])
    assert attrs["ml.model.name"] == "breast-cancer" and attrs["ml.model.version"] == "1.0.0"
    assert attrs["ml.batch.size"] == ROWS
    if library == "sklearn":  # the Pipeline's steps are stages of each call
        stages = Counter((name, parent) for name, parent, _ in zero_spans.elements()
                         if name.startswith("ml.stage"))
        assert stages == {("ml.stage scale", "ml.predict breast-cancer"): CALLS,
                          ("ml.stage classify", "ml.predict breast-cancer"): CALLS,
                          ("ml.stage scale", "ml.predict_proba breast-cancer"): 1,
                          ("ml.stage classify", "ml.predict_proba breast-cancer"): 1}
    else:  # the Booster call inside the scikit-learn API is not another call
        assert {name for name, _, _ in zero_spans} == {"ml.predict breast-cancer",
                                                       "ml.predict_proba breast-cancer"}
    assert zero_spans == dec_spans

    calls = {k: v for k, v in zero_metrics.items() if k[0] == "ml.model.predict.calls"}
    assert sum(calls.values()) == CALLS + 1
    assert zero_metrics[("ml.model.predictions", (("ml.model.name", "breast-cancer"),
                                                  ("ml.model.version", "1.0.0")))] \
        == (CALLS + 1) * ROWS
    drifted = {dict(k[1])["ml.feature.name"]: v for k, v in zero_metrics.items()
               if k[0] == "ml.feature.drifted"}
    assert drifted["mean radius"] == 1
    assert drifted["mean texture"] == 0
    assert not [k for k in zero_metrics if k[0] == "ml.telemetry.errors"]
    assert zero_metrics.keys() == dec_metrics.keys()
    # Floating-point sums may differ in the last digit (the order rows were summed in).
    assert zero_metrics == pytest.approx(dec_metrics, rel=1e-9)


def test_disabled_instrumentation_leaves_sklearn_alone_and_others_on(tmp_path):
    pytest.importorskip("xgboost")
    script = ("from sklearn.datasets import load_breast_cancer\n"
              "from sklearn.linear_model import LogisticRegression\n"
              "import xgboost\n"
              "X, y = load_breast_cancer(return_X_y=True)\n"
              "LogisticRegression(max_iter=3000).fit(X, y).predict(X[:5])\n"
              "xgboost.XGBClassifier(n_estimators=3, n_jobs=1).fit(X, y).predict(X[:5])\n")
    names = {}
    for disabled in ("system_metrics", "system_metrics,sklearn"):
        with OTLPReceiver("http") as receiver:
            env = instrumented_env(tmp_path, receiver.endpoint, service="disabled-test",
                                   model=None, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=disabled)
            proc = subprocess.run([opentelemetry_instrument(), sys.executable, "-c", script],
                                  env=env, capture_output=True, text=True, timeout=180)
            assert proc.returncode == 0, proc.stderr
            receiver.wait_for(lambda: receiver.spans(), timeout=20)
            names[disabled] = sorted(span.name for _, span in receiver.spans())
    assert names["system_metrics"] == ["ml.predict LogisticRegression", "ml.predict XGBClassifier"]
    assert names["system_metrics,sklearn"] == ["ml.predict XGBClassifier"]
