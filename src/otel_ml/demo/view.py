"""The demo's terminal output: a live rich view, or plain lines for logs and CI."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import IO, Any

from otel_ml.contract import ALL_SEGMENTS, NO_SEGMENT, PREDICTION_FEATURE
from .alerts import ALERTS, firing
from .snapshot import Snapshot

__all__ = ["LiveView", "PlainView", "ViewState", "rich_available"]


@dataclass
class ViewState:
    """Everything one refresh shows."""

    snapshot: Snapshot
    phase: str
    phase_description: str
    elapsed_s: float
    duration_s: float
    model: str
    destination: str
    labels_sent: int = 0
    labels_pending: int = 0
    spans: dict[str, int] = field(default_factory=dict)


def rich_available() -> bool:
    """Whether the optional ``rich`` package is installed."""
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def _segment(segment: str | None) -> str:
    if segment in (None, ALL_SEGMENTS):
        return "all"
    return "(none)" if segment == NO_SEGMENT else str(segment)


def _feature(name: str) -> str:
    return "prediction" if name == PREDICTION_FEATURE else name


def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return "-"
    return f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"


def plain_line(state: ViewState) -> str:
    """One line summarising a refresh (the ``--no-live`` output)."""
    s = state.snapshot
    drifted = ",".join(_feature(f) + ("" if seg in (ALL_SEGMENTS, None) else f"@{_segment(seg)}")
                       for f, seg in sorted(s.drifted, key=lambda p: (str(p[1]), p[0])))
    perf = s.performance.get((ALL_SEGMENTS, "accuracy"))
    alerts = ",".join(c.name for c, _ in firing(s))
    quality = sum(s.quality_delta.values())
    return (f"[{state.elapsed_s:6.1f}s] phase={state.phase:<11} calls={s.calls:.0f} "
            f"rate={s.call_rate:.0f}/s p50={_ms(s.latency.get('p50'))} "
            f"p99={_ms(s.latency.get('p99'))} errors={s.total_errors:.0f} "
            f"drifted={drifted or '-'} quality_new={quality:.0f} "
            f"accuracy={'-' if perf is None else f'{perf:.2f}'} alerts={alerts or '-'}")


class PlainView:
    """Prints one line per refresh."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def __enter__(self) -> PlainView:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def update(self, state: ViewState) -> None:
        """Print the line for ``state``."""
        print(plain_line(state), file=self.out, flush=True)


class LiveView:
    """A full-screen-free live table redrawn in place with rich."""

    def __init__(self, out: IO[str] | None = None) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console(file=out) if out is not None else Console()
        self.live = Live(console=self.console, auto_refresh=False, transient=False)

    def __enter__(self) -> LiveView:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.live.__exit__(*exc)

    def update(self, state: ViewState) -> None:
        """Redraw with ``state``."""
        self.live.update(render(state), refresh=True)


def render(state: ViewState) -> Any:
    """The rich renderable for one refresh."""
    from rich.console import Group
    from rich.markup import escape
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    s = state.snapshot
    total = "until Ctrl-C" if not state.duration_s else f"of {state.duration_s:.0f}s"
    header = Text.assemble(
        ("otel-ml demo ", "bold"), (state.model, "cyan"), "  ",
        (f"{state.elapsed_s:.0f}s {total}", ""), "  phase ", (state.phase, "bold magenta"),
        f": {state.phase_description}\n",
        ("telemetry: ", "dim"), (state.destination, "dim"))

    traffic = Table(title="Traffic", show_header=False, expand=True, title_justify="left")
    traffic.add_row("calls", f"{s.calls:,.0f} ({s.call_rate:.0f}/s)")
    traffic.add_row("rows predicted", f"{s.predictions:,.0f}")
    for q in ("p50", "p95", "p99"):
        traffic.add_row(f"latency {q}", _ms(s.latency.get(q)))
    traffic.add_row("errors", f"{s.total_errors:,.0f} ({s.error_rate:.0%} now)")
    for etype, n in sorted(s.errors.items()):
        traffic.add_row(escape(f"  {etype}"), f"{n:,.0f}")
    traffic.add_row("labels", f"{s.outcomes:,.0f} joined, {state.labels_pending} pending")
    if state.spans:
        traffic.add_row("spans", ", ".join(f"{k} {v:,}" for k, v in sorted(state.spans.items())))

    drift = Table(title="Top drifting features", expand=True, title_justify="left")
    for col in ("feature", "segment", "psi", "ks p", "drifted"):
        drift.add_column(col)
    for feature, segment, scores, drifted in s.top_drift(6):
        pvalue = s.pvalues.get((feature, segment), {})
        p = min(pvalue.values(), default=float("nan"))
        psi = scores.get("psi", max(scores.values(), default=float("nan")))
        drift.add_row(escape(_feature(feature)), escape(_segment(segment)), _fmt(psi), _fmt(p),
                      Text("yes", style="bold red") if drifted else Text("no", style="green"))

    quality = Table(title="Data quality", expand=True, title_justify="left")
    for col in ("feature", "check", "total", "new"):
        quality.add_column(col)
    for (feature, check), n in sorted(s.quality.items(), key=lambda kv: -kv[1])[:5]:
        quality.add_row(escape(feature), check, f"{n:,.0f}", f"{s.quality_delta.get((feature, check), 0):,.0f}")
    if not s.quality:
        quality.add_row("-", "none so far", "", "")

    perf = Table(title="Performance and fairness", show_header=False, expand=True,
                 title_justify="left")
    for (segment, metric), value in sorted(s.performance.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        if metric in ("accuracy", "f1_macro"):
            ref = s.reference_performance.get(metric)
            tail = f" (validation {ref:.2f})" if ref is not None and segment == ALL_SEGMENTS else ""
            perf.add_row(escape(f"{metric} [{_segment(segment)}]"), f"{value:.3f}{tail}")
    for (attribute, metric), value in sorted(s.fairness.items()):
        perf.add_row(escape(f"{metric} [{attribute}]"), _fmt(value))
    for detector, value in sorted(s.concept_drift.items()):
        perf.add_row(escape(f"concept drift [{detector}]"),
                     Text("DETECTED", style="bold red") if value >= 1 else Text("stable"))
    if not s.performance and not s.fairness:
        perf.add_row("waiting for labels", "")

    alerts = Table(title="Shipped alert conditions (now)", expand=True, title_justify="left",
                   show_header=False)
    alerts.add_column("alert", no_wrap=True, min_width=32)
    alerts.add_column("state", ratio=1)
    on = {c.name: detail for c, detail in firing(s)}
    for condition in ALERTS:
        if condition.name in on:
            alerts.add_row(condition.name, Text(f"HOLDS: {on[condition.name]}", style="bold red"))
    quiet = [c.name for c in ALERTS if c.name not in on]
    if quiet:
        alerts.add_row(Text("ok", style="green"), Text(", ".join(quiet), style="dim"))

    grid = Table.grid(expand=True)
    grid.add_column(ratio=1)
    grid.add_column(ratio=1)
    grid.add_row(traffic, drift)
    grid.add_row(quality, perf)
    return Panel(Group(header, grid, alerts), border_style="blue")
