"""Static checks of the Grafana dashboards and provisioning, and of every metric name consumers use.

The names used by dashboard queries, rule expressions and the docs must exist in the metric
contract (``contract.METRICS[*].prometheus_series``), in ``contract.EXTERNAL_METRICS`` or among
the recording rules. The end-to-end test runs the same queries against a real Prometheus.
"""

from __future__ import annotations

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

from dashboard_queries import dashboards, panel_queries, substitute, variables  # noqa: E402
from promql_names import metric_names  # noqa: E402

from otel_ml import contract  # noqa: E402
from otel_ml.contract import Attr, prometheus_label  # noqa: E402

PROVISIONING = REPO / "grafana" / "provisioning"
DASHBOARDS = dashboards()
RULE_FILES = sorted((REPO / "prometheus" / "rules").glob("*.yml"))
REQUIRED_VARIABLES = ["service", "model", "version", "segment"]
_VAR_USE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def _rules() -> list[dict]:
    return [r for p in RULE_FILES for g in yaml.safe_load(p.read_text())["groups"]
            for r in g["rules"]]


RECORDED = {r["record"] for r in _rules() if "record" in r}
CONTRACT_SERIES = {s for m in contract.METRICS.values() for s in m.prometheus_series}
KNOWN = CONTRACT_SERIES | set(contract.EXTERNAL_METRICS) | RECORDED | {"ALERTS"}
LABELS = {prometheus_label(v) for k, v in vars(Attr).items() if k.isupper()} | {"ml_class"}


def _datasources() -> dict[str, dict]:
    out = {}
    for path in sorted((PROVISIONING / "datasources").glob("*.yml")):
        for ds in yaml.safe_load(path.read_text()).get("datasources", []):
            out[ds["uid"]] = ds
    return out


def _all_panels(panels):
    for panel in panels:
        yield panel
        yield from _all_panels(panel.get("panels", []))


def _uses(text: str) -> set[str]:
    return {m.group(1) or m.group(2) for m in _VAR_USE.finditer(text)} - {"__all"}


def test_five_dashboards_ship():
    assert {d["uid"] for d in DASHBOARDS.values()} == {
        "otel-ml-overview", "otel-ml-drift", "otel-ml-performance", "otel-ml-pipeline",
        "otel-ml-versions"}


# ----------------------------------------------------------------------------- provisioning


def test_datasources_prometheus_with_exemplar_links_to_jaeger():
    ds = _datasources()
    assert ds["prometheus"]["type"] == "prometheus" and ds["jaeger"]["type"] == "jaeger"
    links = ds["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert {"name": "trace_id", "datasourceUid": "jaeger"} in links
    assert ds["prometheus"]["url"] == "http://prometheus:9090"
    assert ds["jaeger"]["url"] == "http://jaeger:16686"


def test_dashboard_provider_reads_the_directory_compose_mounts():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"]
                  if v.startswith("./"))
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    providers = [p for path in (PROVISIONING / "dashboards").glob("*.yml")
                 for p in yaml.safe_load(path.read_text())["providers"]]
    assert [p["options"]["path"] for p in providers] == [mounts["./grafana/dashboards"]]


# ----------------------------------------------------------------------------- dashboard JSON


@pytest.mark.parametrize("fname", sorted(DASHBOARDS))
def test_dashboard_structure(fname):
    dash = DASHBOARDS[fname]
    assert dash["schemaVersion"] >= 36 and dash["uid"] and dash["title"].startswith("otel-ml / ")
    ids = [p["id"] for p in _all_panels(dash["panels"])]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {fname}"
    positions = [(p["gridPos"]["x"], p["gridPos"]["y"]) for p in _all_panels(dash["panels"])]
    assert len(positions) == len(set(positions)), f"overlapping panels in {fname}"
    for panel in _all_panels(dash["panels"]):
        assert 0 <= panel["gridPos"]["x"] and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]


@pytest.mark.parametrize("fname", sorted(DASHBOARDS))
def test_datasource_uids_exist_in_provisioning(fname):
    uids = set(_datasources())
    dash = DASHBOARDS[fname]
    used = [p["datasource"]["uid"] for p in _all_panels(dash["panels"]) if "datasource" in p]
    used += [t["datasource"]["uid"] for p in _all_panels(dash["panels"])
             for t in p.get("targets", [])]
    used += [v["datasource"]["uid"] for v in variables(dash)]
    used += [a["datasource"]["uid"] for a in dash["annotations"]["list"]]
    assert used and set(used) <= uids


@pytest.mark.parametrize("fname", sorted(DASHBOARDS))
def test_template_variables_defined_before_use(fname):
    dash = DASHBOARDS[fname]
    names = [v["name"] for v in variables(dash)]
    assert names[:4] == REQUIRED_VARIABLES
    assert variables(dash)[0]["query"]["query"] == "label_values(ml_model_info, job)"
    for i, var in enumerate(variables(dash)):
        assert _uses(var["query"]["query"]) <= set(names[:i]), var["name"]
    texts = [t["expr"] for p in _all_panels(dash["panels"]) for t in p.get("targets", [])]
    texts += [a["expr"] for a in dash["annotations"]["list"]]
    texts += [link["url"] for p in _all_panels(dash["panels"]) for link in p.get("links", [])]
    for text in texts:
        assert _uses(text) <= set(names), text


def test_queries_never_hard_code_job_or_group_by_scope():
    for q in panel_queries():
        for m in re.finditer(r'\bjob\s*(=~|!~|!=|=)\s*"([^"]*)"', q.raw):
            assert m.groups() == ("=~", "$service"), q
        assert "otel_scope" not in q.raw, q


def test_substitution_matches_grafana():
    dash = DASHBOARDS["otel-ml-overview.json"]
    raw = 'x{job=~"$service", ml_model_name=~"$model", ml_model_version=~"${version}"}'
    assert substitute(raw, dash, {"service": "shop/scorer", "model": ["a.b", "c"]}) == (
        'x{job=~"shop/scorer", ml_model_name=~"(a\\\\.b|c)", ml_model_version=~".*"}')
    with pytest.raises(KeyError):
        substitute('x{a=~"$nope"}', dash)


def test_every_panel_query_is_valid_promql(tmp_path):
    """promtool parses each query (variables substituted) as a recording rule expression."""
    promtool = os.environ.get("OTEL_ML_PROMTOOL_BIN") or shutil.which("promtool")
    if not promtool:
        reason = "promtool not found: run `python tools/stack.py install`"
        if os.environ.get("OTEL_ML_REQUIRE_STACK", "").strip() == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    rules = [{"record": f"check:panel:q{i}", "expr": q.expr}
             for i, q in enumerate(panel_queries({"service": "shop/scorer", "model": "churn"}))]
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(rules) >= 40


def test_latency_panels_request_exemplars():
    exemplar = [q for q in panel_queries() if q.exemplar]
    assert {q.dashboard for q in exemplar} >= {"otel-ml / Model overview", "otel-ml / Pipeline"}
    assert all("_bucket" in q.raw for q in exemplar)


# ----------------------------------------------------------------------------- metric names


def test_metric_name_extraction():
    assert metric_names('sum by (ml_feature_name) (rate(a_total{job=~"x"}[5m])) / on (job) '
                        'group_left () (b:c:d > 0) or vector(0)') == {"a_total", "b:c:d"}


@pytest.mark.parametrize("q", list(panel_queries()), ids=lambda q: f"{q.dashboard}:{q.panel}:{q.ref_id}")
def test_dashboard_queries_use_contract_names(q):
    names = metric_names(q.raw)
    assert names, q
    assert names <= KNOWN, names - KNOWN


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r.get("record") or r.get("alert"))
def test_rule_expressions_use_contract_names(rule):
    names = metric_names(rule["expr"])
    assert names <= KNOWN, names - KNOWN


def test_variable_queries_use_contract_names():
    for dash in DASHBOARDS.values():
        for var in variables(dash):
            inner = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", var["query"]["query"])
            assert inner, var
            assert metric_names(inner.group(1)) <= KNOWN
            assert inner.group(2) in LABELS | {"job"}


DOCS = sorted((REPO / "docs").glob("*.md")) + sorted(REPO.glob("README*.md"))
_CODE = re.compile(r"`([^`\n]+)`")
_SERIES_LIKE = re.compile(r"\b(?:[a-z_]+:ml_[a-z0-9_]+:[a-z0-9_]+|ml_[a-z0-9_]+|process_[a-z_]+)\b")
_OTEL_LIKE = re.compile(r"^ml(\.[a-z_]+)+$")


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_docs_use_contract_names(path):
    otel_names = set(contract.METRICS) | {v for k, v in vars(Attr).items() if k.isupper()}
    unknown = set()
    for code in _CODE.findall(path.read_text()):
        for word in _SERIES_LIKE.findall(code):
            if word not in KNOWN and word not in LABELS:
                unknown.add(word)
        if _OTEL_LIKE.match(code) and code not in otel_names:
            unknown.add(code)
    assert not unknown, f"{path.name} names what the contract does not define: {sorted(unknown)}"


def test_runbooks_cite_existing_panels_and_dashboards():
    titles = {d["title"] for d in DASHBOARDS.values()}
    titles |= {p["title"] for d in DASHBOARDS.values() for p in _all_panels(d["panels"])}
    text = (REPO / "docs" / "runbooks.md").read_text()
    for cited in re.findall(r"(?<!\*)\*([^*\n]+)\*(?!\*)", text):
        assert any(t.startswith(cited) for t in titles), f"runbooks cite unknown panel {cited!r}"
