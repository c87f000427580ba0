"""Prometheus rules: valid for promtool, every alert tested on both sides, annotations complete.

promtool comes from ``python tools/stack.py install`` (Debian's ``prometheus`` package). When it
is missing the promtool tests are skipped, or fail when ``OTEL_ML_REQUIRE_STACK=1`` (CI).
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tools import gen_rules  # noqa: E402

RULES = sorted((REPO / "prometheus" / "rules").glob("*.yml"))
TESTS = sorted((REPO / "prometheus" / "tests").glob("*.yml"))
RUNBOOKS = REPO / "docs" / "runbooks.md"
SEVERITIES = {"warning", "critical"}  # the routes of alertmanager/alertmanager.yml


def _promtool() -> str:
    path = os.environ.get("OTEL_ML_PROMTOOL_BIN") or shutil.which("promtool")
    if not path:
        reason = ("promtool not found: run `python tools/stack.py install` "
                  "(or apt-get install prometheus)")
        if os.environ.get("OTEL_ML_REQUIRE_STACK", "").strip() == "1":
            pytest.fail(f"{reason} (OTEL_ML_REQUIRE_STACK=1 turns a missing stack into a failure)")
        pytest.skip(reason)
    return path


@functools.lru_cache(maxsize=None)
def _groups(path: Path) -> list[dict]:
    return yaml.safe_load(path.read_text())["groups"]


def _alerts() -> list[dict]:
    return [r for p in RULES for g in _groups(p) for r in g["rules"] if "alert" in r]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([_promtool(), *args], capture_output=True, text=True, timeout=120)


# ----------------------------------------------------------------------------- promtool


@pytest.mark.parametrize("path", RULES, ids=lambda p: p.name)
def test_promtool_check_rules(path):
    result = _run("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", TESTS, ids=lambda p: p.name)
def test_promtool_test_rules(path):
    result = _run("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules_fails_on_a_wrong_expectation(tmp_path):
    """The harness can fail: a test expecting an alert that cannot fire makes promtool exit 1."""
    test = yaml.safe_load((REPO / "prometheus/tests/alerts_test.yml").read_text())
    test["rule_files"] = [str((REPO / "prometheus/tests" / f).resolve()) for f in test["rule_files"]]
    case = next(t for t in test["tests"] if t["name"].startswith("error ratio"))
    case["alert_rule_test"] = [dict(case["alert_rule_test"][0], eval_time="5m",
                                    exp_alerts=case["alert_rule_test"][1]["exp_alerts"])]
    test["tests"] = [case]
    path = tmp_path / "wrong_test.yml"
    path.write_text(yaml.safe_dump(test))
    result = _run("test", "rules", str(path))
    assert result.returncode == 1, result.stdout


def test_fast_profile_renders_valid_rules_with_the_same_names(tmp_path):
    paths = gen_rules.render_files(tmp_path, gen_rules.FAST)
    for path in paths:
        result = _run("check", "rules", str(path))
        assert result.returncode == 0, result.stdout + result.stderr
    fast = [r.get("record") or r.get("alert") for p in sorted(paths) for g in _groups(p)
            for r in g["rules"]]
    shipped = [r.get("record") or r.get("alert") for p in RULES for g in _groups(p)
               for r in g["rules"]]
    assert fast == shipped
    fast_for = {r["alert"]: r["for"] for p in paths for g in _groups(p) for r in g["rules"]
                if "alert" in r}
    assert set(fast_for.values()) <= {"0s", "5s"}


# ----------------------------------------------------------------------------- coverage


@functools.lru_cache(maxsize=None)
def _alert_tests() -> list[tuple[str, str, list]]:
    """(alertname, eval_time, exp_alerts) of every alert_rule_test in prometheus/tests."""
    out = []
    for path in TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for t in case.get("alert_rule_test", []):
                out.append((t["alertname"], t["eval_time"], t.get("exp_alerts") or []))
    return out


def _minutes(duration: str) -> float:
    units = {"s": 1 / 60, "m": 1, "h": 60}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+)([smh])", duration))


@pytest.mark.parametrize("alert", _alerts(), ids=lambda a: a["alert"])
def test_every_alert_is_tested_on_both_sides_of_its_for_window(alert):
    tests = [t for t in _alert_tests() if t[0] == alert["alert"]]
    firing = [_minutes(t[1]) for t in tests if t[2]]
    quiet = [_minutes(t[1]) for t in tests if not t[2]]
    assert firing, f"{alert['alert']}: no promtool test where it fires"
    assert quiet, f"{alert['alert']}: no promtool test where it does not fire"
    # Some quiet evaluation lies less than one step (1m) before a firing one.
    assert any(0 < f - q <= 1 for f in firing for q in quiet), (
        f"{alert['alert']}: no test just before the alert starts firing")
    for name, _, exp in tests:
        for e in exp:
            assert e["exp_labels"]["severity"] == alert["labels"]["severity"]
            assert set(e["exp_annotations"]) == set(alert["annotations"])


def test_promtool_tests_order_groups_like_the_generator():
    expected = [g["name"] for p in RULES for g in _groups(p)]
    recording = [g["name"] for g in gen_rules.recording_groups()]
    for path in TESTS:
        order = yaml.safe_load(path.read_text()).get("group_eval_order")
        assert order in (recording, recording + [n for n in expected if n not in recording]), path


# ----------------------------------------------------------------------------- content


@pytest.mark.parametrize("alert", _alerts(), ids=lambda a: a["alert"])
def test_alert_has_severity_annotations_and_a_runbook_section(alert):
    assert alert["labels"]["severity"] in SEVERITIES
    annotations = alert["annotations"]
    assert annotations["summary"] and annotations["description"]
    base, _, anchor = annotations["runbook_url"].partition("#")
    assert base == gen_rules.RUNBOOK_BASE and base.endswith("docs/runbooks.md")
    assert f'<a id="{anchor}"></a>' in RUNBOOKS.read_text(), anchor
    assert alert["for"] in {"0m", "5m", "10m", "15m", "30m"}


def test_segment_alerts_name_the_segment_and_link_the_root_cause_row():
    segment = [a for a in _alerts() if a["alert"].startswith("MLSegment")]
    assert {a["alert"] for a in segment} == {a.name for a in gen_rules.SEGMENT_ALERTS} == {
        "MLSegmentFeatureDrift", "MLSegmentPredictionDrift",
        "MLSegmentPerformanceBelowReference", "MLSegmentErrorAboveReference",
        "MLSegmentMissingValuesSurge", "MLSegmentErrorRatioHigh"}
    for a in segment:
        assert "{{ $labels.ml_segment }}" in a["annotations"]["summary"], a["alert"]
        assert "{{ $labels.ml_segment }}" in a["annotations"]["description"], a["alert"]
        url = a["annotations"]["dashboard_url"]
        assert url.startswith(f"{gen_rules.GRAFANA_BASE}/d/{gen_rules.ROOT_CAUSE_DASHBOARD}/?")
        assert "var-segment={{ $labels.ml_segment | urlquery }}" in url
        # Every segment alert requires a minimum of rows and that the segment differs from
        # the fleet (the thresholds module's values, interpolated).
        t = gen_rules.THRESHOLDS
        assert (f">= {t.segment_min_rows}" in a["expr"]
                or f">= {t.segment_min_outcomes}" in a["expr"]
                or f">= {t.segment_min_calls}" in a["expr"]), a["alert"]
        assert f"{t.segment_factor} * model" in a["expr"], a["alert"]
    assert not [a for a in _alerts() if a["alert"] not in {s["alert"] for s in segment}
                and "dashboard_url" in a["annotations"]]


def test_root_cause_dashboard_row_exists():
    dashboard = json.loads((REPO / "grafana/dashboards" /
                            f"{gen_rules.ROOT_CAUSE_DASHBOARD}.json").read_text())
    assert gen_rules.ROOT_CAUSE_ROW in [p["title"] for p in dashboard["panels"]
                                        if p["type"] == "row"]
    assert "segment" in [v["name"] for v in dashboard["templating"]["list"]]


def test_alertmanager_inhibits_exactly_what_segment_alerts_explain():
    """Each segment alert inhibits the fleet alerts it explains, and nothing else inhibits
    on a segment alert's behalf (the `explains` of gen_rules and the shipped config agree)."""
    config = yaml.safe_load((REPO / "alertmanager/alertmanager.yml").read_text())
    found = {}
    for rule in config["inhibit_rules"]:
        source = [m for m in rule["source_matchers"] if m.startswith("alertname=")]
        if not source:
            continue
        name = source[0].split("=", 1)[1].strip('"')
        target = next(m for m in rule["target_matchers"] if m.startswith("alertname="))
        targets = target.split("=", 1)[1].lstrip("~").strip('"').split("|")
        assert 'ml_segment=""' in rule["target_matchers"], rule  # only fleet alerts
        found[name] = (set(targets), set(rule["equal"]))
    expected = {a.name: (set(a.explains), {"job", *gen_rules.MODEL[1:], *a.explains_equal})
                for a in gen_rules.SEGMENT_ALERTS}
    assert found == expected
    fleet = {a["alert"] for a in _alerts()}
    assert set().union(*(t for t, _ in found.values())) <= fleet
    # One notification per model version and segment, whatever the alert.
    route = next(r for r in config["route"]["routes"]
                 if r.get("matchers") == ['ml_segment=~".+"'])
    assert route["group_by"] == ["job", "ml_model_name", "ml_model_version", "ml_segment"]
    assert config["route"]["routes"][0] is route  # before the severity routes


def test_alert_names_are_unique_and_cover_the_issue():
    names = [a["alert"] for a in _alerts()]
    assert len(names) == len(set(names))
    assert {"MLFeatureDriftWarning", "MLFeatureDriftCritical", "MLPredictionDrift",
            "MLModelErrorRatioHigh", "MLModelLatencyP99High", "MLFeatureMissingValuesSurge",
            "MLFeatureUnseenCategoriesSurge", "MLModelPerformanceBelowReference",
            "MLFairnessGap", "MLConceptDriftDetected", "MLRejectedRequestsSpike",
            "MLModelTelemetryAbsent"} <= set(names)


def test_thresholds_are_written_once():
    """Each threshold appears in the rules exactly where the generator interpolates it."""
    text = {p.name: p.read_text() for p in RULES}["otel-ml-alerts.yml"]
    t = gen_rules.THRESHOLDS
    assert f"> {t.psi_warning}\n" in text and f"> {t.psi_critical}\n" in text
    assert f"ratio_rate5m > {t.error_ratio}" in text
    assert f"p99_5m > {t.latency_p99_seconds}" in text


def test_recording_rule_names_follow_level_metric_operation():
    for name in gen_rules.recorded_names():
        level, metric, operation = name.split(":")
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", level), name
        assert metric.startswith("ml_"), name
        assert re.fullmatch(r"[a-z0-9_]+", operation), name
    assert len(set(gen_rules.recorded_names())) == len(gen_rules.recorded_names())


def test_no_rule_groups_by_the_scope_labels():
    for path in RULES:
        assert "otel_scope" not in path.read_text(), path


def test_fleet_psi_rule_agrees_with_the_library(tmp_path):
    """The PromQL PSI over the exported bin counters equals the monitor's in-process PSI."""
    np = pytest.importorskip("numpy")
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider

    import otel_ml

    rng = np.random.default_rng(7)
    ref = otel_ml.Reference.from_data(rng.normal(size=(5000, 2)), feature_names=["a", "b"])
    reader = InMemoryMetricReader()
    monitor = otel_ml.ModelMonitor("m", "1", task="classification", reference=ref,
                                   meter_provider=MeterProvider(metric_readers=[reader]),
                                   tracer_provider=TracerProvider())
    predict = monitor(lambda x: (x[:, 0] > 0).astype(int))
    for _ in range(8):
        predict(rng.normal(size=(500, 2)) + [0.6, 0.0])  # feature a shifted
    series, psi = [], {}
    labels = 'job="ns/svc", instance="i", ml_model_name="m", ml_model_version="1"'
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for p in metric.data.data_points:
                    a = p.attributes
                    if metric.name == "ml.feature.observations":
                        series.append({"series": f'ml_feature_observations_total{{{labels}, '
                                       f'ml_feature_name="{a["ml.feature.name"]}", ml_segment='
                                       f'"{a["ml.segment"]}", ml_feature_bin="{a["ml.feature.bin"]}"}}',
                                       "values": f"0 {p.value}x5"})
                    elif metric.name == "ml.reference.bin.share":
                        series.append({"series": f'ml_reference_bin_share{{{labels}, '
                                       f'ml_feature_name="{a["ml.feature.name"]}", '
                                       f'ml_feature_bin="{a["ml.feature.bin"]}"}}',
                                       "values": f"{p.value!r}x5"})
                    elif (metric.name == "ml.feature.drift.score"
                          and a["ml.drift.method"] == "psi" and a["ml.segment"] == "__all__"):
                        psi[a["ml.feature.name"]] = p.value
    assert psi["a"] > 0.1 > psi["b"]
    recording = str(REPO / "prometheus/rules/otel-ml-recording.yml")
    test = {"rule_files": [recording], "evaluation_interval": "1m",
            "group_eval_order": [g["name"] for g in gen_rules.recording_groups()],
            "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": [
                {"expr": f'abs(model_feature:ml_feature_psi:1h{{ml_feature_name="{f}"}} - {v!r})'
                         " < bool 1e-6", "eval_time": "3m",
                 "exp_samples": [{"labels": '{job="ns/svc", ml_model_name="m", '
                                  f'ml_model_version="1", ml_feature_name="{f}"}}', "value": 1}]}
                for f, v in psi.items()]}]}
    path = tmp_path / "psi_test.yml"
    path.write_text(yaml.safe_dump(test))
    result = _run("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
