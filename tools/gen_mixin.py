#!/usr/bin/env python3
"""The monitoring mixin (``mixin/``): the shipped rules, alerts and dashboards as jsonnet.

    python tools/gen_mixin.py           # rewrite mixin/*.libsonnet
    python tools/gen_mixin.py --check   # exit 1 when the committed files are out of date

The mixin is generated from the very generators that write ``prometheus/rules/*.yml`` and
``grafana/dashboards/*.json`` (``tools/gen_rules.py``, ``tools/gen_dashboards.py``), run once
with *marked* settings: every threshold of :mod:`otel_ml.thresholds` is a number that remembers
its name (and any arithmetic or format applied to it), every window and ``for:`` a marker
string. Where a marker lands in a rule, annotation or panel, the jsonnet reads
``$._config`` instead; raw metric names in PromQL get the ``_config.selector`` matcher. So the
default rendering is the shipped files (``tests/test_mixin.py`` checks it with the Go
``jsonnet``) and a user overrides ``_config`` the kubernetes-mixin way::

    local mixin = (import 'otel-ml/mixin.libsonnet') + {
      _config+:: {
        selector: 'namespace="ml"',
        thresholds+: { psi_warning: 0.2 },
        windows+: { '5m': '10m' },
        dashboardUidPrefix: 'acme-ml-',
        dashboardTags: ['acme', 'ml'],
        grafanaUrl: 'https://grafana.example.com',
      },
    };
    { 'rules.yaml': std.manifestYamlDoc(mixin.prometheusRules),
      'alerts.yaml': std.manifestYamlDoc(mixin.prometheusAlerts) }
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TOOLS = Path(__file__).resolve().parent
for path in (REPO / "src", REPO, TOOLS):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import _generated  # noqa: E402
from otel_ml import contract, thresholds  # noqa: E402

__all__ = ["MIXIN_DIR", "render"]

MIXIN_DIR = REPO / "mixin"
_OPEN, _CLOSE = "\u27e6", "\u27e7"  # ⟦ ⟧: markers no generated text contains
_MARK = re.compile(f"{_OPEN}([^{_CLOSE}]*){_CLOSE}")
_UID_PREFIX = "otel-ml-"
_TAGS = ["otel-ml"]
#: Where the shipped alerts link to (gen_rules.GRAFANA_BASE): ``_config.grafanaUrl``.
_GRAFANA_URL = "http://127.0.0.1:3000"
#: A dashboard link in an annotation: Grafana's address and the uid prefix come from _config.
_DASHBOARD_LINK = f"{_GRAFANA_URL}/d/{_UID_PREFIX}"


# --------------------------------------------------------------------------- marked values
class _Marked:
    """Arithmetic and formatting of a threshold that remember the jsonnet expression."""

    expr: str

    def _new(self, value: Any, expr: str) -> Any:
        cls = _MarkedFloat if isinstance(value, float) else _MarkedInt
        return cls(value, expr)

    def __format__(self, spec: str) -> str:
        kind = "int" if isinstance(self, int) else "float"
        return f"{_OPEN}t|{self.expr}|{spec}|{kind}{_CLOSE}"

    def __str__(self) -> str:
        return self.__format__("")

    __repr__ = __str__

    def __sub__(self, other: Any) -> Any:
        return self._new(self._v() - other, f"({self.expr} - {other})")

    def __add__(self, other: Any) -> Any:
        return self._new(self._v() + other, f"({self.expr} + {other})")

    def __mul__(self, other: Any) -> Any:
        return self._new(self._v() * other, f"({self.expr} * {other})")

    __rmul__ = __mul__

    def __round__(self, ndigits: int | None = None) -> Any:
        return self  # jsonnet formats with 15 significant digits: same text

    def _v(self) -> Any:
        return (float if isinstance(self, float) else int)(self)


class _MarkedFloat(_Marked, float):
    def __new__(cls, value: float, expr: str) -> _MarkedFloat:
        obj = float.__new__(cls, value)
        obj.expr = expr
        return obj


class _MarkedInt(_Marked, int):
    def __new__(cls, value: int, expr: str) -> _MarkedInt:
        obj = int.__new__(cls, value)
        obj.expr = expr
        return obj


class _MarkedWindows(dict):
    """Every key is present; its value is a marker for ``c.<field>['key']``."""

    def __init__(self, field: str) -> None:
        super().__init__()
        self.field = field
        self.used: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.used.add(key)
        return f"{_OPEN}{self.field}|{key}{_CLOSE}"

    def get(self, key: str, default: Any = None) -> str:  # type: ignore[override]
        return self[key]

    def __contains__(self, key: object) -> bool:
        return True


def _marked_thresholds() -> Any:
    defaults = thresholds.Thresholds()
    values = {}
    for f in dataclasses.fields(defaults):
        value = getattr(defaults, f.name)
        expr = f"c.thresholds.{f.name}"
        values[f.name] = (_MarkedInt(value, expr) if isinstance(value, int)
                          and not isinstance(value, bool) else _MarkedFloat(value, expr))
    return thresholds.Thresholds(**values)


def _load(name: str, path: Path, patches: dict[tuple[Any, str], Any]) -> Any:
    """A fresh copy of a generator module, executed with ``patches`` applied."""
    saved = {key: getattr(key[0], key[1], None) for key in patches}
    try:
        for (owner, attr), value in patches.items():
            setattr(owner, attr, value)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        return module
    finally:
        for (owner, attr), value in saved.items():
            setattr(owner, attr, value)


def _marked_generators() -> tuple[Any, Any]:
    marked = _marked_thresholds()
    rules = _load("_mixin_gen_rules", TOOLS / "gen_rules.py",
                  {(thresholds, "Thresholds"): lambda: marked})
    import tools  # the namespace package gen_dashboards imports gen_rules from

    dashboards = _load("_mixin_gen_dashboards", TOOLS / "gen_dashboards.py",
                       {(tools, "gen_rules"): rules})
    return rules, dashboards


# --------------------------------------------------------------------------- selector
def _raw_names() -> list[str]:
    names = set()
    for spec in contract.METRICS.values():
        base = spec.prometheus
        names.add(base)
        if spec.kind is contract.Kind.HISTOGRAM:
            names.update(f"{base}_{suffix}" for suffix in ("bucket", "sum", "count"))
    return sorted(names, key=len, reverse=True)


_RAW = re.compile(r"(?<![\w:])(" + "|".join(map(re.escape, _raw_names())) + r")(?![\w:])(\{)?")


def _with_selector(expr: str) -> str:
    """Mark where ``_config.selector`` goes after each raw metric name of ``expr``."""
    return _RAW.sub(lambda m: m[1] + (f"{{{_OPEN}s|in{_CLOSE}" if m[2] else
                                      f"{_OPEN}s|bare{_CLOSE}"), expr)


# --------------------------------------------------------------------------- jsonnet
def _marker(body: str) -> str:
    kind, *rest = body.split("|")
    if kind == "t":
        expr, spec, number = rest
        if spec == "":
            return f"f.num({expr}, '{number}')"
        if spec == ".0%":
            return f"f.percent({expr})"
        raise ValueError(f"format {spec!r} of a threshold has no jsonnet form: add it to fmt")
    if kind in ("w", "f"):
        return f"c[{json.dumps('windows' if kind == 'w' else 'for')}][{json.dumps(rest[0])}]"
    if kind == "s":
        return "f.selectorIn(c.selector)" if rest[0] == "in" else "f.selector(c.selector)"
    raise ValueError(f"unknown marker {body!r}")


def _string(text: str) -> str:
    if _DASHBOARD_LINK in text:  # an alert's link: to the user's Grafana and dashboard uids
        head, _, tail = text.partition(_DASHBOARD_LINK)
        link = '(c.grafanaUrl + "/d/" + c.dashboardUidPrefix)'
        return " + ".join([*([_string(head)] if head else []), link,
                           *([_string(tail)] if tail else [])])
    parts, pos = [], 0
    for m in _MARK.finditer(text):
        if m.start() > pos:
            parts.append(json.dumps(text[pos:m.start()], ensure_ascii=False))
        parts.append(_marker(m[1]))
        pos = m.end()
    if pos < len(text) or not parts:
        parts.append(json.dumps(text[pos:], ensure_ascii=False))
    return parts[0] if len(parts) == 1 else "(" + " + ".join(parts) + ")"


def _emit(value: Any, indent: int, key: str | None = None) -> str:
    pad = "  " * (indent + 1)
    end = "  " * indent
    if isinstance(value, _Marked):
        return value.expr
    if isinstance(value, bool) or value is None or isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        if key in ("expr", "query"):
            value = _with_selector(value)
        return _string(value)
    if isinstance(value, list):
        if key == "tags" and value == _TAGS:
            return "c.dashboardTags"
        if not value:
            return "[]"
        return "[\n" + "".join(f"{pad}{_emit(v, indent + 1)},\n" for v in value) + end + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        lines = []
        for k, v in value.items():
            text = (f"c.dashboardUidPrefix + {json.dumps(v[len(_UID_PREFIX):])}"
                    if k == "uid" and isinstance(v, str)
                    and v.startswith(_UID_PREFIX) else _emit(v, indent + 1, k))
            lines.append(f"{pad}{json.dumps(k)}: {text},\n")
        return "{\n" + "".join(lines) + end + "}"
    raise TypeError(f"cannot write {type(value).__name__} as jsonnet")


_HEADER = ("// GENERATED by tools/gen_mixin.py from src/otel_ml/contract.py, thresholds.py and the\n"
           "// rule and dashboard generators: do not edit by hand. Override _config instead.\n")

_FMT = _HEADER + """// Formatting numbers as the Python generators do (the default rendering is the shipped files).
{
  // Python's str(): integers as is; floats with 15 significant digits and a '.0' when whole.
  num(x, kind)::
    if kind == 'int' then std.toString(x)
    else
      local s = std.format('%.15g', x);
      if std.length(std.findSubstr('.', s)) > 0 || std.length(std.findSubstr('e', s)) > 0
      then s else s + '.0',
  // Python's format(x, '.0%').
  percent(x):: std.format('%.0f%%', x * 100),
  // After a metric name without braces: {selector}, or nothing.
  selector(s):: if s == '' then '' else '{' + s + '}',
  // Inside a metric's braces, before its own matchers: "selector, ", or nothing.
  selectorIn(s):: if s == '' then '' else s + ', ',
}
"""

_MIXIN = _HEADER + """// The otel-ml monitoring mixin: prometheusRules, prometheusAlerts, grafanaDashboards, _config.
(import 'config.libsonnet') +
(import 'rules.libsonnet') +
(import 'alerts.libsonnet') +
(import 'dashboards.libsonnet')
"""


def _part(field: str, body: str) -> str:
    return (_HEADER + "local f = import 'fmt.libsonnet';\n{\n  local c = $._config,\n"
            f"  {field}+:: {body},\n}}\n")


def _config(windows: _MarkedWindows, for_: _MarkedWindows, rules: Any) -> str:
    defaults = thresholds.Thresholds()
    shipped = rules.DEFAULT
    config = {
        "selector": "",
        "thresholds": {f.name: getattr(defaults, f.name) for f in dataclasses.fields(defaults)},
        "windows": {k: shipped.w(k) for k in sorted(windows.used)},
        "for": {k: shipped.f(k) for k in sorted(for_.used)},
        "dashboardUidPrefix": _UID_PREFIX,
        "dashboardTags": _TAGS,
        "grafanaUrl": _GRAFANA_URL,
    }
    doc = ("// selector: PromQL matchers added to every raw otel-ml metric the rules and dashboards\n"
           "//   read (e.g. 'namespace=\"ml\"'); thresholds: otel_ml.thresholds; windows: the range\n"
           "//   used for each nominal window of a recorded name (rate5m keeps its name);\n"
           "//   for: the 'for:' used for each nominal duration.\n")
    return _HEADER + doc + "{\n  _config+:: " + json.dumps(config, indent=2).replace(
        "\n", "\n  ") + ",\n}\n"


def render() -> dict[str, str]:
    """File name (relative to ``mixin/``) → text."""
    rules, dashboards = _marked_generators()
    windows, for_ = _MarkedWindows("w"), _MarkedWindows("f")
    profile = rules.Profile(windows=windows, for_=for_)
    recording = {"groups": rules.recording_groups(profile)}
    alerts = {"groups": rules.alert_groups(profile)}
    boards = {fname: build() for fname, build in dashboards.DASHBOARDS.items()}
    board_text = "{\n" + "".join(
        f"    {json.dumps(fname)}: {_emit(board, 2)},\n" for fname, board in boards.items()) + "  }"
    return {
        "mixin.libsonnet": _MIXIN,
        "fmt.libsonnet": _FMT,
        "config.libsonnet": _config(windows, for_, rules),
        "rules.libsonnet": _part("prometheusRules", _emit(recording, 1)),
        "alerts.libsonnet": _part("prometheusAlerts", _emit(alerts, 1)),
        "dashboards.libsonnet": _part("grafanaDashboards", board_text),
    }


def main(argv: list[str] | None = None) -> int:
    return _generated.main(__doc__, "gen_mixin.py", MIXIN_DIR, render, argv)


if __name__ == "__main__":
    sys.exit(main())
