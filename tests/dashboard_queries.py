"""The PromQL of every shipped Grafana dashboard panel, ready to run against Prometheus.

Used by ``tests/test_dashboards.py`` (static checks) and by the end-to-end test, which runs each
query against the real Prometheus fed through the real Collector::

    from dashboard_queries import panel_queries
    for q in panel_queries({"service": job, "model": "churn"}):
        assert stack.prom_query(q.expr), q

Variables are substituted the way Grafana does for a Prometheus datasource: a variable used in a
regex matcher (``=~"$model"``) receives its value regex-escaped, several values become
``(a|b)``, and a variable left out (or set to ``"$__all"``) takes the variable's ``allValue``
(``.*``). The dashboards use no Grafana macros (``$__rate_interval`` ...), so nothing else needs
substituting.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DASHBOARDS_DIR", "PanelQuery", "dashboards", "panel_queries", "substitute",
           "variables"]

DASHBOARDS_DIR = Path(__file__).resolve().parents[1] / "grafana" / "dashboards"
_VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
_REGEX_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")


@dataclass(frozen=True)
class PanelQuery:
    """One panel target: ``expr`` has the variables substituted, ``raw`` is as shipped."""

    dashboard: str
    panel: str
    ref_id: str
    expr: str
    raw: str
    exemplar: bool


def dashboards(directory: Path = DASHBOARDS_DIR) -> dict[str, dict]:
    """File name → parsed dashboard JSON."""
    return {p.name: json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))}


def variables(dashboard: Mapping) -> list[dict]:
    return list(dashboard.get("templating", {}).get("list", []))


def _format(values: Sequence[str]) -> str:
    escaped = [_REGEX_SPECIAL.sub(r"\\\\\1", v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def substitute(expr: str, dashboard: Mapping, values: Mapping[str, str | Sequence[str]] | None
               = None) -> str:
    """``expr`` with every template variable of ``dashboard`` replaced.

    Args:
        expr: A panel query as shipped.
        dashboard: The dashboard JSON (for the variables and their ``allValue``).
        values: Variable name → a value or several; missing or ``"$__all"`` means All.

    Raises:
        KeyError: ``expr`` uses a variable the dashboard does not define.
    """
    values = dict(values or {})
    defined = {v["name"]: v for v in variables(dashboard)}

    def replace(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        if name not in defined:
            raise KeyError(f"query uses undefined variable ${name}: {expr}")
        value = values.get(name, "$__all")
        chosen = [value] if isinstance(value, str) else list(value)
        if chosen == ["$__all"] or not chosen:
            return defined[name].get("allValue") or ".*"
        return _format(chosen)

    return _VAR.sub(replace, expr)


def panel_queries(values: Mapping[str, str | Sequence[str]] | None = None,
                  directory: Path = DASHBOARDS_DIR) -> Iterator[PanelQuery]:
    """Every Prometheus target of every panel of every dashboard, variables substituted."""
    for fname, dash in dashboards(directory).items():
        for panel in _panels(dash.get("panels", [])):
            for target in panel.get("targets", []):
                raw = target.get("expr")
                if not raw:
                    continue
                yield PanelQuery(dash.get("title", fname), panel.get("title", ""),
                                 target.get("refId", ""), substitute(raw, dash, values), raw,
                                 bool(target.get("exemplar")))


def _panels(panels: list[dict]) -> Iterator[dict]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))
