"""Zero code through the real stack: ``opentelemetry-instrument python examples/zero_code_*.py``
-> the Collector (the shipped config) -> Prometheus and Jaeger.

The example imports no otel_ml; the instrumentor names the model from ``OTEL_ML_MODEL_NAME``
and compares its inputs with ``OTEL_ML_REFERENCE``. Prometheus must hold the calls, the
per-feature statistics, the shifted feature's drift (the process's own verdict and the fleet
PSI the recording rules compute from the per-bin counters), and Jaeger the call's trace with
the Pipeline's steps as stages.
"""

from __future__ import annotations

import uuid

import pytest
from zero_code import instrumented_env, run_zero_code, save_reference

from otel_ml import contract

from stack import harness

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EXAMPLES = [("zero_code_sklearn.py", "sklearn"), ("zero_code_xgboost.py", "xgboost"),
            ("zero_code_lightgbm.py", "lightgbm")]
#: Calls spread over ~8 s: the per-bin counters grow across scrapes (PSI is from increase()).
CALLS, ROWS = 30, 16


def _value(stack, expr: str) -> float | None:
    result = stack.prom_query(expr)
    return float(result[0]["value"][1]) if result else None


@pytest.mark.parametrize("example, library", EXAMPLES, ids=[lib for _, lib in EXAMPLES])
def test_zero_code_example_reaches_prometheus_and_jaeger_with_drift(stack, tmp_path, example,
                                                                    library):
    pytest.importorskip(library)
    model = f"zero-{library}-{uuid.uuid4().hex[:8]}"
    service = f"zero-code-{library}"
    reference = save_reference(example, tmp_path)
    env = instrumented_env(tmp_path, stack.otlp_http_url, service=service, model=model,
                           reference=reference)
    run_zero_code(example, env, "--calls", str(CALLS), "--rows", str(ROWS),
                  "--shift", "mean radius:1.6", "--pause", "0.25")

    sel = f'ml_model_name="{model}"'
    stack.wait_for(lambda: _value(stack, f"sum(ml_model_predict_calls_total{{{sel}}})")
                   == CALLS + 1, timeout=60, description="calls in Prometheus")
    assert _value(stack, f"sum(ml_model_predictions_total{{{sel}}})") == (CALLS + 1) * ROWS
    # Every series says which metric contract its name follows (docs/metrics.md, "Naming").
    labels = stack.prom_series(f"ml_model_predict_calls_total{{{sel}}}")[0]
    assert labels["otel_scope_name"] == "otel_ml"
    assert labels["otel_scope_otel_ml_contract_version"] == contract.CONTRACT_VERSION
    assert _value(stack, f'ml_feature_drifted{{{sel},ml_feature_name="mean radius"}}') == 1
    assert _value(stack, f'ml_feature_drifted{{{sel},ml_feature_name="mean texture"}}') == 0
    mean = _value(stack, f'ml_feature_mean{{{sel},ml_feature_name="mean radius",'
                         f'ml_segment="__all__"}}')
    assert mean is not None and mean > 18  # ~14 in the training data, times 1.6
    series = stack.wait_for_series(f"model_feature:ml_feature_psi:1h{{{sel}}}", timeout=60)
    assert series
    psi = {s["metric"]["ml_feature_name"]: float(s["value"][1]) for s in stack.prom_query(
        f"model_feature:ml_feature_psi:1h{{{sel}}}")}
    assert psi["mean radius"] > 0.25 > psi["mean texture"]

    traces = harness.http_get_json(f"{stack.jaeger.query_url}/api/traces",
                                   {"service": service, "limit": 100})["data"]
    names = {span["operationName"] for trace in traces for span in trace["spans"]}
    assert f"ml.predict {model}" in names and f"ml.predict_proba {model}" in names
    if library == "sklearn":
        assert {"ml.stage scale", "ml.stage classify"} <= names
