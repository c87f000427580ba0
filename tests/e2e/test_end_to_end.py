"""End to end: what otel_ml emits is what the shipped dashboards and alerts query.

Runs the real programs on 127.0.0.1 (``tests/stack/harness.py``): our Collector build with
``collector/config.yaml``, Prometheus scraping it every second with the shipped recording and
alert rules rendered by ``tools/gen_rules.py`` with the FAST profile (same names and
expressions, windows 5m→20s, 1h→2m, 24h→5m, ``for:`` of seconds), Alertmanager with the shipped
routing delivering to an in-process webhook, and Jaeger v2. Two models served through otel_ml
(``traffic.py``) send traffic with late labels, a new segment, an error burst and a drifted
feature, and the tests assert:

* every query of every dashboard panel (template variables substituted as Grafana does)
  returns data, and every panel that shows exemplars has exemplars;
* every recording rule produces series and evaluates without error;
* the error-ratio alert fires during the error burst, reaches the webhook through the
  critical route, and resolves (in Prometheus and as a resolved notification) after it;
* the feature-drift alert fires for the drifted feature only and reaches the webhook;
* a predict trace with its nested pipeline stages is in Jaeger, and latency exemplars'
  trace ids resolve to the predict spans they were recorded in;
* the ``ml_*`` series names in Prometheus are exactly the contract's, with the contract's
  labels;
* a shadow pair's agreement rate and each version's accuracy (a shadow pair and an A/B split)
  in Prometheus equal what the traffic computed itself, and a challenger's span links to its
  champion's span in Jaeger.

The tests share one stack and one traffic run (module fixtures) and run in file order: the
error burst, then the drift, then the read-only checks. Each waits with a bounded loop and
fails with the last Prometheus answer. Run them with::

    OTEL_ML_REQUIRE_STACK=1 .venv/bin/python -m pytest tests/e2e -q
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

_HERE = Path(__file__).resolve().parent
_REPO = _HERE.parents[1]
for _path in (str(_HERE), str(_REPO)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from dashboard_queries import panel_queries  # noqa: E402
from stack import harness  # noqa: E402
from tools import gen_rules  # noqa: E402
from traffic import (  # noqa: E402
    CLASSIFIER,
    DRIFTED,
    FEATURES,
    JOB,
    REGRESSOR,
    SERVICE_NAME,
    SHADOW,
    SPLIT,
    SPLIT_PRICE,
    STAGES,
    Scenario,
)

from otel_ml import contract  # noqa: E402
from otel_ml.contract import Attr, prometheus_label  # noqa: E402

pytestmark = pytest.mark.e2e

ERROR_ALERT = "MLModelErrorRatioHigh"
DRIFT_ALERTS = ("MLFeatureDriftWarning", "MLFeatureDriftCritical")
#: Labels every series gets from the Collector's exporter and the scrape, whatever the metric.
#: Panels that only a regression model fills.
REGRESSION_PANELS = {"MAE and RMSE (1h)", "MAE by segment (1h)"}
INFRA_LABELS = {"__name__", "job", "instance", "otel_scope_name", "otel_scope_version"}
# The scope's schema URL and contract version (docs/metrics.md, "Naming"; issue 18).
INFRA_LABELS |= {"otel_scope_schema_url", "otel_scope_otel_ml_contract_version"}
#: The Versions dashboard shows the shadow pair, except the panels only a split (or a
#: regression split) fills.
VERSIONS_DASHBOARD = "otel-ml / Versions"
VERSIONS_PANEL_MODELS = {"Split assignments /s": SPLIT, "MAE by version (1h)": SPLIT_PRICE}

_T0 = time.monotonic()


def _log(message: str) -> None:
    """Progress with the time since the module started (shown with ``-s`` or on failure)."""
    print(f"[e2e +{time.monotonic() - _T0:6.1f}s] {message}", flush=True)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def fast_stack(stack_binaries, tmp_path_factory) -> harness.Stack:
    """The real stack with the FAST rules (its own Prometheus: nothing else writes to it)."""
    workdir = tmp_path_factory.mktemp("otel-ml-e2e")
    rules = gen_rules.render_files(workdir / "rules", gen_rules.FAST)
    started = time.monotonic()
    running = harness.start_stack(workdir, binaries=stack_binaries, rule_files=rules,
                                  scrape_interval="1s", evaluation_interval="1s")
    _log(f"stack up in {time.monotonic() - started:.1f}s")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def scenario(fast_stack) -> Scenario:
    """Traffic running through otel_ml into the stack, warm: both models' call rates and the
    classifier's labelled outcomes are in Prometheus."""
    traffic = Scenario(fast_stack.otlp_grpc_url).start()
    try:
        def warm() -> bool:
            traffic.check()
            # Rates above 0: two exports with the same count (a late export) give a rate of 0,
            # and every ratio over the call rate is then undefined.
            calls = _models(fast_stack,
                            f'model:ml_model_predict_calls:rate5m{{job="{JOB}"}} > 0')
            outcomes = _models(fast_stack, f'model:ml_model_outcomes:increase1h{{job="{JOB}"}}')
            regression = _models(fast_stack, f'model:ml_model_mae:1h{{job="{JOB}"}}')
            return ({CLASSIFIER, REGRESSOR} <= calls and CLASSIFIER in outcomes
                    and REGRESSOR in regression)

        _wait(fast_stack, warm, 90, "traffic to reach Prometheus (call rates, outcomes, MAE)",
              f'model:ml_model_predict_calls:rate5m{{job="{JOB}"}}')
        _log(f"traffic warm: {traffic.calls} calls, {traffic.labels_sent} labels")
        yield traffic
    finally:
        traffic.stop()


# --------------------------------------------------------------------------- helpers


def _models(stack: harness.Stack, expr: str) -> set[str]:
    return {r["metric"].get("ml_model_name", "") for r in stack.prom_query(expr)}


def _wait(stack: harness.Stack, predicate: Callable[[], Any], timeout: float, description: str,
          show: str | None = None) -> Any:
    """``harness.wait_for`` whose timeout message adds the last result of ``show`` (PromQL)
    and the alerts Prometheus holds."""
    try:
        return harness.wait_for(predicate, timeout=timeout, interval=0.5, description=description)
    except TimeoutError as exc:
        details = [str(exc)]
        if show:
            try:
                details.append(f"{show} -> {stack.prom_query(show)}")
            except Exception as query_exc:  # noqa: BLE001 - only diagnostics
                details.append(f"{show} -> {query_exc!r}")
        try:
            details.append(f"alerts: {_alert_summary(stack.prometheus.alerts())}")
        except Exception as alerts_exc:  # noqa: BLE001
            details.append(f"alerts: {alerts_exc!r}")
        raise AssertionError("\n".join(details)) from None


def _alert_summary(alerts: list[dict]) -> list[tuple]:
    return [(a["labels"].get("alertname"), a["labels"].get("ml_model_name"),
             a["labels"].get("ml_feature_name"), a["state"], a.get("value")) for a in alerts]


def _prom_alerts(stack: harness.Stack, alertname: str | tuple[str, ...], **labels: str
                 ) -> list[dict]:
    """Pending/firing alerts of our job named ``alertname`` with ``labels``."""
    names = (alertname,) if isinstance(alertname, str) else alertname
    return [a for a in stack.prometheus.alerts()
            if a["labels"].get("alertname") in names and a["labels"].get("job") == JOB
            and all(a["labels"].get(k) == v for k, v in labels.items())]


def _firing(stack: harness.Stack, alertname: str | tuple[str, ...], **labels: str) -> list[dict]:
    return [a for a in _prom_alerts(stack, alertname, **labels) if a["state"] == "firing"]


def _webhook_alerts(stack: harness.Stack) -> list[tuple[dict, dict]]:
    """``(notification, alert)`` for every alert of every webhook notification received."""
    assert stack.webhook is not None
    return [(payload, alert) for payload in stack.webhook.payloads()
            for alert in payload.get("alerts", [])]


def _label_values(stack: harness.Stack, label: str, match: str) -> set[str]:
    return set(harness.http_get_json(
        f"{stack.prometheus.url}/api/v1/label/{label}/values",
        {"match[]": match, "start": f"{time.time() - 3600:.3f}",
         "end": f"{time.time() + 60:.3f}"})["data"])


# --------------------------------------------------------------------------- alerts


def test_error_alert_fires_during_error_burst_and_resolves_after(fast_stack, scenario):
    stack = fast_stack
    ratio = (f'model:ml_model_predict_errors:ratio_rate5m{{job="{JOB}",'
             f'ml_model_name="{CLASSIFIER}"}}')
    # Baseline: one call in 250 fails, far below the 5% threshold: nothing pending.
    baseline = stack.prom_query(ratio)
    assert baseline and float(baseline[0]["value"][1]) < gen_rules.THRESHOLDS.error_ratio, baseline
    assert not _prom_alerts(stack, ERROR_ALERT), _alert_summary(stack.prometheus.alerts())

    scenario.set_failure_rate(0.5)
    burst = time.monotonic()
    try:
        alert = _wait(stack, lambda: _firing(stack, ERROR_ALERT, ml_model_name=CLASSIFIER),
                      90, f"{ERROR_ALERT} firing for {CLASSIFIER}", ratio)[0]
        _log(f"{ERROR_ALERT} firing {time.monotonic() - burst:.1f}s after the burst started")
        assert alert["labels"]["severity"] == "critical"
        assert alert["labels"]["ml_model_version"] == "1.0.0"
        assert CLASSIFIER in alert["annotations"]["summary"]
        assert alert["annotations"]["runbook_url"].endswith(f"#{ERROR_ALERT.lower()}")
        assert float(alert["value"]) > gen_rules.THRESHOLDS.error_ratio

        def delivered(status: str) -> tuple[dict, dict] | None:
            return next(((p, a) for p, a in _webhook_alerts(stack)
                         if a["labels"].get("alertname") == ERROR_ALERT
                         and a["labels"].get("ml_model_name") == CLASSIFIER
                         and a["status"] == status), None)

        payload, notified = _wait(stack, lambda: delivered("firing"), 30,
                                  f"{ERROR_ALERT} firing notification at the webhook")
        assert payload["receiver"] == "ml-critical", payload  # routed by severity
        assert notified["labels"]["job"] == JOB
        assert notified["annotations"]["description"], notified
    finally:
        scenario.set_failure_rate(0.0)
    recovered = time.monotonic()
    assert scenario.errors > 0

    _wait(stack, lambda: not _prom_alerts(stack, ERROR_ALERT, ml_model_name=CLASSIFIER), 90,
          f"{ERROR_ALERT} to resolve in Prometheus after the burst", ratio)
    _log(f"{ERROR_ALERT} resolved {time.monotonic() - recovered:.1f}s after the burst ended")
    assert float(stack.prom_query(ratio)[0]["value"][1]) <= gen_rules.THRESHOLDS.error_ratio
    _wait(stack, lambda: delivered("resolved"), 30,
          f"{ERROR_ALERT} resolved notification at the webhook")
    # The regression model never failed: its alert never even went pending.
    assert not stack.prom_series(f'ALERTS{{alertname="{ERROR_ALERT}",'
                                 f'ml_model_name="{REGRESSOR}"}}')


def test_drift_alert_fires_for_the_drifted_feature_only(fast_stack, scenario):
    stack = fast_stack
    psi = f'model_feature:ml_feature_psi:1h{{job="{JOB}",ml_model_name="{CLASSIFIER}"}}'
    scenario.start_drift()
    started = time.monotonic()
    alert = _wait(stack, lambda: _firing(stack, DRIFT_ALERTS, ml_model_name=CLASSIFIER,
                                         ml_feature_name=DRIFTED),
                  120, f"a feature drift alert firing for {DRIFTED!r}", psi)[0]
    _log(f"{alert['labels']['alertname']} firing for {DRIFTED} "
         f"{time.monotonic() - started:.1f}s after the drift started")
    assert alert["labels"]["severity"] in ("warning", "critical")
    assert DRIFTED in alert["annotations"]["summary"]

    notified = _wait(stack, lambda: next(
        ((p, a) for p, a in _webhook_alerts(stack)
         if a["labels"].get("alertname") in DRIFT_ALERTS and a["status"] == "firing"
         and a["labels"].get("ml_feature_name") == DRIFTED), None),
        30, f"drift notification for {DRIFTED!r} at the webhook")
    payload, notified = notified
    assert notified["labels"]["ml_model_name"] == CLASSIFIER
    assert payload["receiver"] == f"ml-{notified['labels']['severity']}", payload

    # PSI keeps rising past the critical level; Alertmanager then inhibits the warning for the
    # same model and feature (alertmanager/alertmanager.yml inhibit_rules).
    critical = "MLFeatureDriftCritical"
    _wait(stack, lambda: _firing(stack, critical, ml_model_name=CLASSIFIER,
                                 ml_feature_name=DRIFTED), 90, f"{critical} for {DRIFTED!r}", psi)
    _log(f"{critical} firing {time.monotonic() - started:.1f}s after the drift started")

    def inhibited_warning() -> dict | None:
        return next((a for a in stack.am_alerts()
                     if a["labels"].get("alertname") == "MLFeatureDriftWarning"
                     and a["labels"].get("ml_feature_name") == DRIFTED
                     and a["status"]["state"] == "suppressed" and a["status"]["inhibitedBy"]),
                    None)

    _wait(stack, inhibited_warning, 30, "Alertmanager to inhibit the drift warning")

    # PSI of every other feature stays under the warning level.
    values = {r["metric"]["ml_feature_name"]: float(r["value"][1]) for r in stack.prom_query(psi)}
    _log("PSI over the window: " + ", ".join(f"{f}={v:.3f}" for f, v in sorted(values.items())))
    assert set(FEATURES) <= set(values), values
    assert values[DRIFTED] > gen_rules.THRESHOLDS.psi_warning, values
    calm = {f: v for f, v in values.items()
            if f not in (DRIFTED, contract.PREDICTION_FEATURE)}
    assert all(v < gen_rules.THRESHOLDS.psi_warning for v in calm.values()), values

    # Only the drifted feature ever had a drift alert firing in Prometheus (the ALERTS series
    # cover the whole run) or at the webhook. A calm feature may go *pending* for a moment at
    # start-up (PSI over the first few hundred rows is biased upwards): that is what `for:`
    # absorbs, so pending states are not counted.
    ever = stack.prom_series(
        f'ALERTS{{alertname=~"{"|".join(DRIFT_ALERTS)}",alertstate="firing"}}')
    assert {s.get("ml_feature_name") for s in ever} == {DRIFTED}, ever
    assert {s.get("ml_model_name") for s in ever} == {CLASSIFIER}, ever
    delivered = {a["labels"].get("ml_feature_name") for _, a in _webhook_alerts(stack)
                 if a["labels"].get("alertname") in DRIFT_ALERTS}
    assert delivered == {DRIFTED}, delivered


# --------------------------------------------------------------------------- dashboards, rules


def test_every_dashboard_panel_query_returns_data(fast_stack, scenario):
    stack = fast_stack
    # Every panel with the model variable set to the classifier, except the regression
    # panels, set to the regression model (a classifier has no MAE).
    queries = [q for q in panel_queries({"service": JOB, "model": CLASSIFIER})
               if q.panel not in REGRESSION_PANELS and q.dashboard != VERSIONS_DASHBOARD]
    queries += [q for q in panel_queries({"service": JOB, "model": REGRESSOR})
                if q.panel in REGRESSION_PANELS]
    for model in {SHADOW, *VERSIONS_PANEL_MODELS.values()}:
        queries += [q for q in panel_queries({"service": JOB, "model": model})
                    if q.dashboard == VERSIONS_DASHBOARD
                    and VERSIONS_PANEL_MODELS.get(q.panel, SHADOW) == model]
    assert len(queries) == len(list(panel_queries())), "a regression panel was renamed"
    pending = {(q.dashboard, q.panel, q.ref_id, q.expr): q for q in queries}
    last: dict[tuple, Any] = {}

    def all_answered() -> bool:
        scenario.check()
        for key, q in list(pending.items()):
            result = stack.prom_query(q.expr)
            last[key] = result
            if result and (not q.exemplar or _exemplar_trace_ids(stack, q.expr)):
                del pending[key]
        return not pending

    try:
        harness.wait_for(all_answered, timeout=90, interval=1.0,
                         description="every panel query to return data")
    except TimeoutError:
        lines = [f"{len(pending)} of {len(queries)} panel queries return no data "
                 "(or, for exemplar panels, no exemplars):"]
        lines += [f"  {d} / {p} [{r}]: {e}\n    last result: {last.get((d, p, r, e))}"
                  for d, p, r, e in pending]
        pytest.fail("\n".join(lines))

    # The segment that appeared during the run is on the per-segment panels.
    by_segment = {q.panel: q for q in queries}
    for panel in ("PSI by segment (1h)", "Accuracy by segment (1h)"):
        segments = {r["metric"].get("ml_segment") for r in stack.prom_query(by_segment[panel].expr)}
        assert {"eu", "us", "apac"} <= segments, (panel, segments)
    stages = {r["metric"].get("ml_stage_name")
              for r in stack.prom_query(by_segment["Stage duration p95"].expr)}
    assert stages == set(STAGES), stages
    errors = stack.prom_query(by_segment["Errors by type /s"].expr)
    assert {r["metric"].get("error_type") for r in errors} == {"FeatureStoreTimeout"}, errors


def _exemplar_trace_ids(stack: harness.Stack, expr: str) -> list[str]:
    return [e["labels"]["trace_id"] for s in stack.prom_exemplars(expr)
            for e in s["exemplars"] if e["labels"].get("trace_id")]


def test_every_recording_rule_produces_series(fast_stack, scenario):
    stack = fast_stack
    names = gen_rules.recorded_names(gen_rules.FAST)
    assert names == gen_rules.recorded_names()  # FAST changes windows, never names
    missing: dict[str, Any] = {}

    def all_recorded() -> bool:
        missing.clear()
        for name in names:
            if not stack.prom_query(f'{name}{{job="{JOB}"}}'):
                missing[name] = stack.prom_query(f"count({name})")
        return not missing

    try:
        harness.wait_for(all_recorded, timeout=60, interval=1.0,
                         description="every recording rule to produce series")
    except TimeoutError:
        pytest.fail(f"recording rules without series for job {JOB}: {sorted(missing)}")
    unhealthy = [(r.get("name"), r.get("health"), r.get("lastError"))
                 for group in stack.prometheus.rules() for r in group["rules"]
                 if r.get("health") != "ok" or r.get("lastError")]
    assert not unhealthy, unhealthy


def test_estimated_performance_tracks_the_realised_one(fast_stack, scenario):
    """Issue 17 through the real Collector and Prometheus: the label-free estimates the
    recording rules compute from the expected-confusion and expected-error counters agree with
    the realised figures once labels arrive, and MLEstimateDiverges stays quiet."""
    stack = fast_stack
    sel = f'job="{JOB}", ml_model_name="{{}}"'

    def one(expr: str) -> float | None:
        result = stack.prom_query(expr)
        return float(result[0]["value"][1]) if result else None

    def figures() -> dict[str, float] | None:
        scenario.check()
        out = {
            "est_acc": one(f"model:ml_model_estimated_accuracy:ratio1h{{{sel.format(CLASSIFIER)}}}"),
            "acc": one(f"model:ml_model_accuracy:ratio1h{{{sel.format(CLASSIFIER)}}}"),
            "est_mae": one(f"model:ml_model_estimated_mae:1h{{{sel.format(REGRESSOR)}}}"),
            "mae": one(f"model:ml_model_mae:1h{{{sel.format(REGRESSOR)}}}"),
            "suspect": one(f"sum(ml_outcome_suspect_labels_total{{{sel.format(CLASSIFIER)}}})"),
            "excluded": one(f'sum(ml_model_estimation_excluded_total{{{sel.format(CLASSIFIER)}, '
                            f'ml_reason="missing"}})'),
        }
        return out if all(v is not None for v in out.values()) else None

    got = _wait(stack, figures, 90, "estimated and realised performance of both models")
    _log(f"estimated vs realised: {got}")
    assert abs(got["est_acc"] - got["acc"]) < 0.05, got
    assert abs(got["est_mae"] - got["mae"]) / got["mae"] < 0.2, got
    assert got["suspect"] > 0 and got["excluded"] > 0, got
    bands = stack.prom_query(f'model:ml_model_estimated_performance:upper1h{{{sel.format(CLASSIFIER)}}}')
    assert bands and float(bands[0]["value"][1]) >= got["est_acc"], bands
    assert not _prom_alerts(stack, "MLEstimateDiverges"), _prom_alerts(stack, "MLEstimateDiverges")


# --------------------------------------------------------------------------- contract


#: Every metric but GPU memory, which has points only on a machine with a GPU.
EXERCISED = [spec for spec in contract.METRICS.values()
             if spec.name != "ml.process.gpu.memory.usage"]


def test_prometheus_received_exactly_the_contract(fast_stack, scenario):
    stack = fast_stack
    expected = {series for spec in EXERCISED for series in spec.prometheus_series}
    job = f'{{job="{JOB}"}}'

    def received() -> set[str]:
        return {n for n in _label_values(stack, "__name__", job) if n.startswith("ml_")}

    names = _wait(stack, lambda: received() if expected <= received() else None, 60,
                  "every contract metric in Prometheus")
    assert names == expected, (f"missing: {sorted(expected - names)}; "
                               f"not in the contract: {sorted(names - expected)}")
    # Outside our job too: no ml_* series that the contract does not define.
    everywhere = {n for n in _label_values(stack, "__name__", '{__name__=~"ml_.+"}')}
    defined = {series for spec in contract.METRICS.values() for series in spec.prometheus_series}
    assert everywhere <= defined, sorted(everywhere - defined)
    for external in ("process_cpu_time_seconds_total", "process_memory_usage_bytes"):
        assert external in contract.EXTERNAL_METRICS
        assert stack.prom_series(f'{external}{job}'), external

    # Labels: each metric carries exactly the contract's attributes (plus the scrape's).
    wrong = {}
    for spec in EXERCISED:
        allowed = {prometheus_label(a) for a in spec.attributes}
        for series_name in spec.prometheus_series:
            series = stack.prom_series(f'{series_name}{job}')
            seen = set().union(*(s.keys() for s in series)) - INFRA_LABELS
            want = allowed | ({"le"} if series_name.endswith("_bucket") else set())
            if seen != want:
                wrong[series_name] = {"unexpected": sorted(seen - want),
                                      "never seen": sorted(want - seen)}
    assert not wrong, wrong
    # The service identity went to job/instance (honor_labels), not exported_*.
    sample = stack.prom_series(f'ml_model_predict_calls_total{job}')[0]
    assert sample["instance"] == "e2e-7" and "exported_job" not in sample, sample


# --------------------------------------------------------------------------- traces


def _span_tree(trace_json: dict) -> tuple[dict, dict[str, list[dict]]]:
    """(root span, parent span id → children) of a Jaeger trace."""
    spans = {s["spanID"]: s for s in trace_json["spans"]}
    children: dict[str, list[dict]] = {}
    roots = []
    for span in spans.values():
        parents = [r["spanID"] for r in span.get("references", []) if r["refType"] == "CHILD_OF"]
        if parents and parents[0] in spans:
            children.setdefault(parents[0], []).append(span)
        else:
            roots.append(span)
    assert len(roots) == 1, [s["operationName"] for s in roots]
    return roots[0], children


def _tags(span: dict) -> dict[str, Any]:
    return {t["key"]: t["value"] for t in span.get("tags", [])}


def test_predict_trace_with_nested_stages_is_in_jaeger(fast_stack, scenario):
    stack = fast_stack

    def complete_trace() -> dict | None:
        for trace_id in list(scenario.trace_ids)[-40:-5]:
            found = stack.jaeger_trace(trace_id)
            if found and len(found["spans"]) == 1 + len(STAGES):
                return found
        return None

    found = _wait(stack, complete_trace, 60, "a predict trace with all its stages in Jaeger")
    root, children = _span_tree(found)
    assert root["operationName"] == f"ml.predict {CLASSIFIER}"
    tags = _tags(root)
    assert tags[Attr.MODEL_NAME] == CLASSIFIER and tags[Attr.OUTCOME] == "success", tags
    assert found["processes"][root["processID"]]["serviceName"] == SERVICE_NAME
    stages = sorted(children.get(root["spanID"], []), key=lambda s: s["startTime"])
    assert [s["operationName"] for s in stages] == [f"ml.stage {n}" for n in STAGES]
    for stage in stages:
        stage_tags = _tags(stage)
        assert stage_tags[Attr.MODEL_NAME] == CLASSIFIER, stage_tags
        assert stage_tags[Attr.ROWS_IN] == tags[Attr.BATCH_SIZE], (stage_tags, tags)
        assert root["startTime"] <= stage["startTime"]
        assert stage["startTime"] + stage["duration"] <= root["startTime"] + root["duration"]


def test_latency_exemplars_resolve_to_predict_traces(fast_stack, scenario):
    stack = fast_stack
    bucket = (f'ml_model_predict_duration_seconds_bucket{{job="{JOB}",'
              f'ml_model_name="{CLASSIFIER}"}}')
    exemplars = _wait(stack, lambda: [e for s in stack.prom_exemplars(bucket)
                                      for e in s["exemplars"] if e["labels"].get("trace_id")],
                      60, "latency exemplars with a trace_id", bucket)
    # The newest few: older traces are certainly exported by now, newer ones may still be
    # in the span processor's queue.
    exemplars.sort(key=lambda e: e["timestamp"])
    checked = 0
    for exemplar in exemplars[-6:-1] or exemplars[-1:]:
        trace_id = exemplar["labels"]["trace_id"]
        found = _wait(stack, lambda: stack.jaeger_trace(trace_id), 30,
                      f"exemplar trace {trace_id} in Jaeger")
        root, _ = _span_tree(found)
        assert root["operationName"] == f"ml.predict {CLASSIFIER}", root["operationName"]
        span_id = exemplar["labels"].get("span_id")
        if span_id:
            assert root["spanID"] == span_id, (exemplar, root["spanID"])
        checked += 1
    assert checked


# --------------------------------------------------------------------------- versions


def _outcomes_by_version(stack: harness.Stack, model: str) -> dict[str, list[int]]:
    """Per version: [labelled rows, correct ones] from the raw confusion counters."""
    out: dict[str, list[int]] = {}
    for r in stack.prom_query(f'ml_model_outcomes_total{{job="{JOB}", ml_model_name="{model}"}}'):
        labels, value = r["metric"], int(float(r["value"][1]))
        counts = out.setdefault(labels["ml_model_version"], [0, 0])
        counts[0] += value
        if labels["ml_class_predicted"] == labels["ml_class_actual"]:
            counts[1] += value
    return out


def _one(stack: harness.Stack, expr: str) -> float | None:
    result = stack.prom_query(expr)
    return float(result[0]["value"][1]) if len(result) == 1 else None


def test_shadow_agreement_and_split_accuracy_equal_what_the_traffic_computed(fast_stack,
                                                                             scenario):
    """The shadow pair's agreement rate and each version's accuracy in Prometheus (through
    the Collector) equal what the traffic computed from the predictions and labels it sent;
    the recording rules over their window agree while the traffic runs."""
    stack = fast_stack
    pair = f'job="{JOB}", ml_model_name="{SHADOW}"'
    rule = f"model_challenger:ml_model_comparison_agreement:ratio1h{{{pair}}}"
    _wait(stack, lambda: _one(stack, rule) is not None, 60, "the agreement rule", rule)
    with scenario._lock:
        running = 1 - scenario.shadow_disagreements / scenario.shadow_rows
    assert _one(stack, rule) == pytest.approx(running, abs=0.03)
    accuracy = f'model:ml_model_accuracy:ratio1h{{job="{JOB}", ml_model_name="{SPLIT}"}}'
    _wait(stack, lambda: len(stack.prom_query(accuracy)) == 2, 60, "split accuracy rules",
          accuracy)

    scenario.pause_versions()
    scenario.shadow.shadow.drain(10)

    def settled() -> bool:
        with scenario._lock:
            rows, dis = scenario.shadow_rows, scenario.shadow_disagreements
            sent = {k: list(v) for k, v in scenario.version_outcomes.items()}
        got_rows = _one(stack, f"sum(ml_model_comparison_rows_total{{{pair}}})")
        got_dis = _one(stack, f"sum(ml_model_comparison_disagreements_total{{{pair}}})")
        if (got_rows, got_dis) != (rows, dis):
            return False
        for model in (SHADOW, SPLIT):
            expected = {v: c for (m, v), c in sent.items() if m == model}
            if _outcomes_by_version(stack, model) != expected:
                return False
        return True

    _wait(stack, settled, 60, "Prometheus' counters to equal the traffic's tallies",
          f"ml_model_comparison_rows_total{{{pair}}}")
    agreement = _one(stack, f"1 - sum(ml_model_comparison_disagreements_total{{{pair}}})"
                            f" / sum(ml_model_comparison_rows_total{{{pair}}})")
    assert agreement == pytest.approx(1 - scenario.shadow_disagreements / scenario.shadow_rows,
                                      rel=1e-12)
    assert 0.8 < agreement < 0.99  # the challenger disagrees on a known, non-trivial share
    for model, versions in ((SHADOW, ("1.0.0", "1.1.0")), (SPLIT, ("a", "b"))):
        got = _outcomes_by_version(stack, model)
        assert set(got) == set(versions)
        for version in versions:
            labelled, correct = scenario.version_outcomes[(model, version)]
            assert labelled > 0
            assert got[version][1] / got[version][0] == correct / labelled, (model, version)
    # The split routed by key: each variant got traffic, and the comparison pairs are declared.
    pairs = {(r["metric"]["ml_model_name"], r["metric"]["ml_model_challenger_version"])
             for r in stack.prom_query(f'model_challenger:ml_model_comparison_info:group'
                                       f'{{job="{JOB}"}}')}
    assert pairs == {(SHADOW, "1.1.0"), (SPLIT, "b"), (SPLIT_PRICE, "b")}
    # In Jaeger, a challenger span (its own trace) links to its champion's span.
    link = _wait(stack, lambda: _challenger_link(stack), 60,
                 "a challenger span linked to its champion's span in Jaeger")
    champion = stack.jaeger_trace(link["traceID"])
    assert champion is not None
    linked = [s for s in champion["spans"] if s["spanID"] == link["spanID"]]
    assert linked and _tags(linked[0])[Attr.MODEL_ROLE] == "champion", linked


def _challenger_link(stack: harness.Stack) -> dict | None:
    """The reference of one challenger span of the shadow pair to its champion's span."""
    found = harness.http_get_json(f"{stack.jaeger.query_url}/api/traces", {
        "service": SERVICE_NAME, "operation": f"ml.predict {SHADOW}", "limit": "40",
        "lookback": "1h"}).get("data") or []
    for trace_json in found:
        for span in trace_json["spans"]:
            if _tags(span).get(Attr.MODEL_ROLE) != "challenger":
                continue
            for ref in span.get("references", []):
                if ref.get("traceID") != span["traceID"]:
                    return ref
    return None
