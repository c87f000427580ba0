"""The monitoring mixin (``mixin/``): generated, rendered by the Go ``jsonnet``, equal to the
shipped rules and dashboards by default, and valid for promtool with an overridden ``_config``.

``jsonnet`` is built by ``python tools/stack.py install`` (go-jsonnet, cached like the
Collector); promtool comes from the same install. When one is missing these tests are skipped,
or fail when ``OTEL_ML_REQUIRE_STACK=1`` (CI).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from stack.harness import require_binaries, stack_skip_or_fail

ROOT = Path(__file__).resolve().parents[1]
MIXIN = ROOT / "mixin"
RULES = ROOT / "prometheus" / "rules"
DASHBOARDS = ROOT / "grafana" / "dashboards"


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(f"_test_{name}", ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def jsonnet() -> str:
    path = _tool("stack").jsonnet_binary_path()
    if not path.is_file():
        stack_skip_or_fail(f"jsonnet missing ({path}): run `python tools/stack.py install`")
    return str(path)


def _render(jsonnet: str, expr: str) -> dict:
    """The mixin's three (hidden) fields, rendered."""
    fields = ("prometheusRules", "prometheusAlerts", "grafanaDashboards")
    code = f"local m = {expr};\n{{" + ", ".join(f"{f}: m.{f}" for f in fields) + "}"
    out = subprocess.run([jsonnet, "-J", str(MIXIN), "-e", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_the_committed_mixin_is_what_the_generator_writes():
    rendered = _tool("gen_mixin").render()
    assert sorted(rendered) == sorted(p.name for p in MIXIN.glob("*.libsonnet"))
    stale = [name for name, text in rendered.items() if (MIXIN / name).read_text() != text]
    assert not stale, f"run python tools/gen_mixin.py: {stale} out of date"


def test_the_default_rendering_is_the_shipped_rules_alerts_and_dashboards(jsonnet):
    mixin = _render(jsonnet, "import 'mixin.libsonnet'")
    assert mixin["prometheusRules"] == yaml.safe_load((RULES / "otel-ml-recording.yml").read_text())
    assert mixin["prometheusAlerts"] == yaml.safe_load((RULES / "otel-ml-alerts.yml").read_text())
    shipped = {p.name: json.loads(p.read_text()) for p in DASHBOARDS.glob("*.json")}
    assert mixin["grafanaDashboards"] == shipped


OVERRIDE = """(import 'mixin.libsonnet') + {
  _config+:: {
    selector: 'namespace="ml"',
    thresholds+: { psi_warning: 0.2, error_ratio: 0.02 },
    windows+: { '5m': '10m' },
    'for'+: { '15m': '30m' },
    dashboardUidPrefix: 'acme-',
    dashboardTags: ['acme', 'ml'],
    grafanaUrl: 'https://grafana.acme.test',
  },
}"""


def test_an_overridden_config_renders_rules_promtool_accepts(jsonnet, tmp_path):
    promtool = require_binaries("promtool").promtool
    mixin = _render(jsonnet, OVERRIDE)
    files = []
    for field in ("prometheusRules", "prometheusAlerts"):
        path = tmp_path / f"{field}.yml"
        path.write_text(yaml.safe_dump(mixin[field], sort_keys=False))
        files.append(str(path))
    check = subprocess.run([promtool, "check", "rules", *files], capture_output=True, text=True,
                           timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr

    recording = [r for g in mixin["prometheusRules"]["groups"] for r in g["rules"]]
    alerts = {r["alert"]: r for g in mixin["prometheusAlerts"]["groups"] for r in g["rules"]}
    calls = next(r for r in recording if r["record"] == "model:ml_model_predict_calls:rate5m")
    assert calls["expr"] == ('sum by (job, ml_model_name, ml_model_version) '
                             '(rate(ml_model_predict_calls_total{namespace="ml"}[10m]))')
    # Every raw series read carries the selector; recorded names are left alone.
    from otel_ml import contract

    names = {s.prometheus for s in contract.METRICS.values()}
    names |= {f"{n}_{x}" for n in names for x in ("bucket", "sum", "count")}
    raw = re.compile(r"(?<![\w:])(" + "|".join(sorted(names, key=len, reverse=True))
                     + r")(?![\w:])(\{[^}]*\})?")
    seen = 0
    for rule in recording + list(alerts.values()):
        for name, braces in raw.findall(rule["expr"]):
            seen += 1
            assert braces.startswith('{namespace="ml"'), (name, rule["expr"])
    assert seen > 20
    psi = next(a for a in alerts.values() if "> 0.2" in a["expr"] and "psi" in a["expr"])
    assert "warning above 0.2" in psi["annotations"]["description"] and psi["for"] == "30m"
    errors = next(a for a in alerts.values() if "ratio_rate5m > 0.02" in a["expr"])
    assert "2%" in errors["annotations"]["description"]
    boards = mixin["grafanaDashboards"]
    shipped = {json.loads(f.read_text())["uid"]
               for f in (ROOT / "grafana" / "dashboards").glob("*.json")}
    assert len(shipped) >= 5
    assert {b["uid"] for b in boards.values()} == {u.replace("otel-ml-", "acme-") for u in shipped}
    assert all(b["tags"] == ["acme", "ml"] for b in boards.values())
    # The alerts' dashboard links follow the Grafana address and the uids.
    links = [a["annotations"]["dashboard_url"] for a in alerts.values()
             if "dashboard_url" in a.get("annotations", {})]
    assert links and all(u.startswith("https://grafana.acme.test/d/acme-") for u in links)
