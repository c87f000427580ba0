"""The live view's layouts: compact for 80x24 terminals, boxed panels for larger ones.

Both show the same five things: traffic, the top drifting features, data quality,
performance and fairness, and which shipped alert conditions hold, plus the notes that
explain what a number alone cannot. Neither truncates a number: names are short, and a list
too long for its line ends with ``+N`` (how many were left out).
"""

from __future__ import annotations

import math
from typing import Any

from otel_ml.contract import ALL_SEGMENTS
from otel_ml.thresholds import THRESHOLDS
from otel_ml.demo.alerts import ALERTS, distinct, firing
from otel_ml.demo.snapshot import Snapshot
from otel_ml.demo.view import ViewState, feature_label, fit, fit_where, segment_label

__all__ = ["COMPACT_MAX_HEIGHT", "COMPACT_MAX_WIDTH", "render"]

#: Terminals up to this size (either side) get the compact layout.
COMPACT_MAX_WIDTH = 119
COMPACT_MAX_HEIGHT = 47

_GAPS = {"demographic_parity_difference": "parity gap",
         "equalized_odds_difference": "odds gap",
         "disparate_impact_ratio": "impact ratio"}


def render(state: ViewState, width: int = 80, height: int = 24) -> Any:
    """The rich renderable for one refresh, laid out for a ``width`` x ``height`` terminal."""
    if width <= COMPACT_MAX_WIDTH or height <= COMPACT_MAX_HEIGHT:
        return _compact(state, width, height)
    return _full(state, width)


# ---------------------------------------------------------------------------- rows
def _num(value: float | None, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.{digits}f}" if abs(value) < 100 else f"{value:,.0f}"


def _traffic_rows(state: ViewState, detail: bool) -> list[tuple[str, str]]:
    s = state.snapshot
    lat = " / ".join("-" if s.latency.get(q) is None else f"{s.latency[q] * 1000:.1f}"
                     for q in ("p50", "p95", "p99"))
    rows = [("calls", f"{s.calls:,.0f} ({s.call_rate:.0f}/s)")]
    if detail:
        rows.append(("rows predicted", f"{s.predictions:,.0f}"))
    rows += [("p50/p95/p99", f"{lat} ms"),
            ("errors", f"{s.total_errors:,.0f} ({s.error_rate:.0%} now)")]
    if detail:
        rows += [(f"  {etype}", f"{n:,.0f}") for etype, n in sorted(s.errors.items())[:2]]
    rows.append(("labels", f"{s.outcomes:,.0f} joined, {state.labels_pending:,} pending"))
    if detail and state.spans:
        rows.append(("spans", ", ".join(f"{state.spans[k]:,} {k}" for k in
                                        ("predict", "stage", "outcome") if k in state.spans)))
    return rows


def _drift_rows(s: Snapshot, n: int) -> list[tuple[str, str, str, str, bool]]:
    """``(feature, segment, psi, ks/chi2 p, drifted)`` by PSI, highest first."""
    out = []
    for feature, segment, scores, drifted in s.top_drift(n):
        p = min(s.pvalues.get((feature, segment), {}).values(), default=float("nan"))
        psi = scores.get("psi", max(scores.values(), default=float("nan")))
        pv = "-" if not math.isfinite(p) else (f"{p:.0e}" if 0 < p < 1e-3 else f"{p:.3f}")
        out.append((feature_label(feature), segment_label(segment), _num(psi, 2), pv, drifted))
    return out


def _quality_rows(s: Snapshot, n: int) -> list[tuple[str, str, str, str]]:
    ranked = sorted(s.quality.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return [(feature_label(f), check, f"{total:,.0f}", f"+{s.quality_delta.get((f, check), 0):,.0f}")
            for (f, check), total in ranked]


def _performance_rows(s: Snapshot, detail: bool) -> list[tuple[str, str]]:
    rows = []
    segments = s.segments_seen()
    for (segment, metric), value in sorted(s.performance.items(),
                                           key=lambda kv: (kv[0][0] != ALL_SEGMENTS,
                                                           str(kv[0][0]), kv[0][1])):
        if metric != "accuracy" and not (detail and metric == "f1_macro"
                                         and segment == ALL_SEGMENTS):
            continue
        if segment != ALL_SEGMENTS and len(segments) <= 1:
            continue  # one segment sending traffic: its figure is the all-traffic one
        ref = s.reference_performance.get(metric)
        tail = (f" ({'reference' if detail else 'ref'} {ref:.2f})"
                if ref is not None and segment == ALL_SEGMENTS else "")
        rows.append((f"{metric} {segment_label(segment)}", f"{value:.2f}{tail}"))
    for (attribute, metric), value in sorted(s.fairness.items()):
        if not detail and metric != "equalized_odds_difference":
            continue
        limit = (THRESHOLDS.fairness_impact_ratio if metric == "disparate_impact_ratio"
                 else THRESHOLDS.fairness_difference)
        side = "min" if metric == "disparate_impact_ratio" else "max"
        rows.append((f"{_GAPS.get(metric, metric)} {attribute}",
                     f"{distinct(value, limit)} ({side} {limit})"))
    detected = sorted(d for d, v in s.concept_drift.items() if v >= 1)
    if s.concept_drift:
        which = (", ".join(detected) if detected and detail
                 else f"{len(detected)} of {len(s.concept_drift)}")
        rows.append(("concept drift", f"DETECTED ({which})" if detected else "stable"))
    if not s.performance and not s.fairness:
        rows.insert(0, ("waiting for labels", ""))
    return rows


def _alert_lines(s: Snapshot, width: int) -> tuple[list[tuple[str, str]], list[str]]:
    """``(name, detail fitted to the line)`` of the holding alerts, and the quiet names."""
    on = dict((c.name, detail) for c, detail in firing(s))
    name_width = max((len(n) for n in on), default=0) + 2
    holding = [(name, fit(on[name].split(", "), max(width - name_width, 12)))
               for name in (c.name for c in ALERTS) if name in on]
    return holding, [c.name for c in ALERTS if c.name not in on]


# ---------------------------------------------------------------------------- compact
def _compact(state: ViewState, width: int, height: int) -> Any:
    """At most ``height`` lines, no box: for 80x24."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    s = state.snapshot
    total = "until Ctrl-C" if not state.duration_s else f"of {state.duration_s:.0f}s"
    head = Text.assemble(("otel-ml demo ", "bold"), (state.model, "cyan"),
                         f"  {state.elapsed_s:.0f}s {total}  seed {state.seed}")
    phase = Text.assemble((f"phase {state.phase_number}/{state.phase_count} ", "dim"),
                          (state.phase, "bold magenta"), f": {state.phase_description}")
    half = max((width - 3) // 2, 30)

    def section(title: str, rows: list[tuple[str, ...]], justify: tuple[str, ...]) -> Any:
        table = Table(title=title, title_justify="left", title_style="bold", box=None,
                      show_header=False, pad_edge=False, padding=(0, 1, 0, 0), width=half)
        for j in justify:
            table.add_column(justify=j, no_wrap=True)  # type: ignore[arg-type]
        for row in rows:
            table.add_row(*row)
        return table

    traffic = section("Traffic", _traffic_rows(state, detail=False), ("left", "left"))
    drift_rows = [(f, seg, psi, Text("DRIFT", style="bold red") if d else Text("ok", "green"))
                  for f, seg, psi, _, d in _drift_rows(s, 4)]
    drift = section("Drift (PSI)", drift_rows or [("-", "", "", "")],
                    ("left", "left", "right", "left"))
    quality = section("Data quality (total, new)", _quality_rows(s, 4) or [("none so far", "", "", "")],
                      ("left", "left", "right", "right"))
    perf = section("Performance", _performance_rows(s, detail=False)[:4],
                   ("left", "left"))
    top = Table.grid(padding=(0, 1))
    top.add_column(width=half)
    top.add_column(width=half)
    top.add_row(traffic, drift)
    top.add_row(quality, perf)

    holding, quiet = _alert_lines(s, width)
    phase_lines = -(-len(phase.plain) // max(width, 1))
    used = 1 + phase_lines + 1 + 5 + 5 + 1  # header, phase, blank, two section rows, title
    where = fit_where(state.where, width) if state.where else ""
    room = max(height - used - 1 - bool(where), 1)  # one line for a note (and the ranking)
    alerts = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1, 0, 0))
    alerts.add_column(no_wrap=True, style="bold red")
    alerts.add_column(no_wrap=True)
    shown = holding if len(holding) <= room else holding[:room - 1]
    for name, detail in shown:
        alerts.add_row(name, detail)
    if len(shown) < len(holding):
        alerts.add_row(f"+{len(holding) - len(shown)} more", "")
    title = Text.assemble(("Alerts holding now: ", "bold"),
                          f"{len(holding)} of {len(ALERTS)}" if holding else "none")
    parts: list[Any] = [head, phase, Text(""), top, title]
    if holding:
        parts.append(alerts)
    if where:
        parts.append(Text(where, style="bold yellow"))
    notes = room - len(shown) - (len(shown) < len(holding))
    for note in list(state.notes)[:max(notes, 1)]:
        parts.append(Text(note[:width], style="dim"))
    return Group(*parts)


# ---------------------------------------------------------------------------- full
def _full(state: ViewState, width: int) -> Any:
    """Boxed panels for terminals of 120x48 and more (at most 48 lines)."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    s = state.snapshot
    total = "until Ctrl-C" if not state.duration_s else f"of {state.duration_s:.0f}s"
    header = Text.assemble(
        ("otel-ml demo ", "bold"), (state.model, "cyan"),
        f"  {state.elapsed_s:.0f}s {total}  seed {state.seed}  phase "
        f"{state.phase_number}/{state.phase_count} ", (state.phase, "bold magenta"),
        f": {state.phase_description}\n", ("telemetry: ", "dim"), (state.destination, "dim"))

    def table(title: str, columns: tuple[str, ...] | None, rows: list[tuple[Any, ...]],
              justify: tuple[str, ...]) -> Any:
        t = Table(title=title, title_justify="left", expand=True,
                  show_header=columns is not None)
        for i, j in enumerate(justify):
            cells = [str(row[i]) for row in rows] + ([columns[i]] if columns else [])
            t.add_column(columns[i] if columns else "", justify=j, no_wrap=True,  # type: ignore[arg-type]
                         min_width=max(len(c) for c in cells))
        for row in rows:
            t.add_row(*row)
        return t

    traffic = table("Traffic", None, _traffic_rows(state, detail=True), ("left", "left"))
    drift_rows = [(f, seg, psi, p, Text("yes", style="bold red") if d else Text("no", "green"))
                  for f, seg, psi, p, d in _drift_rows(s, 6)]
    drift = table("Top drifting features (by PSI)", ("feature", "segment", "psi", "test p",
                                                     "drifted"),
                  drift_rows or [("-", "", "", "", "")],
                  ("left", "left", "right", "right", "left"))
    quality = table("Data quality", ("feature", "check", "total", "new"),
                    _quality_rows(s, 5) or [("-", "none so far", "", "")],
                    ("left", "left", "right", "right"))
    perf = table("Performance and fairness", None, _performance_rows(s, detail=True)[:9],
                 ("left", "left"))
    grid = Table.grid(expand=True, padding=(0, 1))
    grid.add_column(ratio=1)
    grid.add_column(ratio=1)
    grid.add_row(traffic, drift)
    grid.add_row(quality, perf)

    name_width = max((len(c.name) for c, _ in firing(s)), default=2)
    holding, quiet = _alert_lines(s, width - 11)
    alerts = Table(title="Shipped alert conditions (now)", expand=True, title_justify="left",
                   show_header=False)
    alerts.add_column("alert", no_wrap=True)
    alerts.add_column("state", ratio=1, no_wrap=True)
    for name, detail in holding:
        alerts.add_row(Text(name, style="bold red"), detail)
    if quiet:
        alerts.add_row(Text("ok", style="green"),
                       Text(fit(quiet, width - 11 - name_width), style="dim"))
    parts: list[Any] = [header, grid, alerts]
    if state.where:
        parts.append(Text(fit_where(state.where, width - 4), style="bold yellow"))
    parts.extend(Text(note, style="dim") for note in state.notes)
    return Panel(Group(*parts), border_style="blue")
