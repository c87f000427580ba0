"""The demo's terminal output: a live rich view, or plain lines for logs and CI.

Plain lines (``--no-live``) are at most :data:`LINE_WIDTH` characters: one status line per
reading, and one line per alert that starts (``+``, with why) or stops (``-``) holding. The live view is laid out for
the terminal it runs in (:func:`otel_ml.demo.layout.render`): a compact view up to 24 lines
for 80x24, a boxed one for larger terminals.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from otel_ml.contract import ALL_SEGMENTS, NO_SEGMENT, PREDICTION_FEATURE
from otel_ml.demo.alerts import firing
from otel_ml.demo.snapshot import Snapshot

__all__ = ["LINE_WIDTH", "LiveView", "PlainView", "ViewState", "feature_label", "fit",
           "fit_where", "plain_line", "rich_available", "segment_label", "where_line"]

#: Longest plain line (``--no-live`` and the summary).
LINE_WIDTH = 100


@dataclass
class ViewState:
    """Everything one refresh shows.

    Attributes:
        notes: Short lines that explain what the screen cannot (each at most 78 characters).
        phase_number: 1-based index of the phase in the cycle, and ``phase_count`` phases.
        where: The root-cause ranking in one line (:func:`where_line`), or ``""``.
    """

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
    notes: Sequence[str] = ()
    phase_number: int = 1
    phase_count: int = 1
    seed: int = 0
    where: str = ""


def rich_available() -> bool:
    """Whether the optional ``rich`` package is installed."""
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


def feature_label(name: str) -> str:
    """A feature's name on screen (the predictions are ``prediction``)."""
    return "prediction" if name == PREDICTION_FEATURE else name


def segment_label(segment: str | None) -> str:
    """A segment's name on screen (all traffic is ``all``)."""
    if segment in (None, ALL_SEGMENTS):
        return "all"
    return "(none)" if segment == NO_SEGMENT else str(segment)


def fit(items: Sequence[str], width: int, sep: str = ", ") -> str:
    """Join whole ``items`` within ``width`` characters; ``+N`` counts the ones left out."""
    out = ""
    for i, item in enumerate(items):
        candidate = item if not out else out + sep + item
        rest = len(items) - i - 1
        tail = f" +{rest}" if rest else ""
        if len(candidate) + len(tail) > width:
            return f"{out} +{len(items) - i}" if out else f"+{len(items)}"
        out = candidate
    return out


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None or not math.isfinite(seconds) else f"{seconds * 1000:.1f}"


def _drifted_labels(s: Snapshot) -> list[str]:
    """Drifted features, all traffic first, then per segment as ``feature@segment``."""
    single = len(s.segments_seen()) <= 1
    pairs = sorted(s.drifted, key=lambda p: (p[1] not in (ALL_SEGMENTS, None), str(p[1]), p[0]))
    return [feature_label(f) + ("" if seg in (ALL_SEGMENTS, None) else f"@{segment_label(seg)}")
            for f, seg in pairs if seg in (ALL_SEGMENTS, None) or not single]


def where_line(report: Any, skip: Sequence[str] = ()) -> str:
    """The root-cause ranking (``monitor.root_cause_report()``) in one line, whole (the views
    fit it to their width with :func:`fit_where`): the top segment, its share and prediction PSI (their product ranks
    it), then its features by PSI, except those in ``skip`` (the ``segment_by`` column: within
    its own segment it holds one value, a PSI that says nothing). ``""`` unless a per-segment
    alert condition holds for the top segment (with one segment sending traffic, or every
    segment alike, the fleet-wide figures say it all).
    """
    segment = report.top_segment
    causes = (*report.prediction_drift, *report.performance, *report.features.get(segment, ()))
    if segment is None or not any(c.exceeded and c.segment == segment for c in causes):
        return ""
    head = f"where: {segment_label(segment)}"
    cause = next((c for c in (*report.prediction_drift, *report.performance)
                  if c.segment == segment), None)
    if cause is not None and cause.share is not None:
        measure = "prediction PSI" if cause.kind == "prediction_drift" else cause.measure
        head += (f" (share {cause.share:.0%} x {measure} {cause.value:.2f} = "
                 f"{cause.contribution:.2f})")
    features = [f"{feature_label(str(c.feature))} {c.value:.2f}"
                for c in report.features.get(segment, ()) if c.feature not in skip]
    return head + (", features " + ", ".join(features) if features else "")


def fit_where(line: str, width: int) -> str:
    """A :func:`where_line` within ``width``: whole features (``+N`` for the rest); when the
    first feature would not fit, the figures shrink (``(40% x PSI 2.18)``), then go."""
    if len(line) <= width:
        return line
    head, sep, features = line.partition(", features ")
    items = features.split(", ") if sep else []
    segment = head.split(" (")[0]
    short = re.search(r"share (\S+) x (?:.* )?(\S+) (\S+) = ", head)
    heads = [head, *([f"{segment} ({short[1]} x {short[2]} {short[3]})"] if short else []),
             segment]
    for candidate in heads:
        room = width - len(candidate) - len(sep)
        first = items[0] + (f" +{len(items) - 1}" if len(items) > 1 else "") if items else ""
        if len(first) <= room:
            return candidate + sep + fit(items, room) if items else candidate
    return segment[:width]


def plain_line(state: ViewState) -> str:
    """One line summarising a refresh (the ``--no-live`` output), at most :data:`LINE_WIDTH`."""
    s = state.snapshot
    perf = s.performance.get((ALL_SEGMENTS, "accuracy"))
    head = (f"[{state.elapsed_s:6.1f}s] phase={state.phase:<11} calls={s.calls:.0f} "
            f"{s.call_rate:.0f}/s p99={_ms(s.latency.get('p99'))}ms "
            f"errors={s.total_errors:.0f} acc={'-' if perf is None else f'{perf:.2f}'} "
            + ("" if s.agreement is None else f"agree={s.agreement:.0%} ") + "drifted=")
    return head + (fit(_drifted_labels(s), LINE_WIDTH - len(head), sep=",") or "-")


def alert_lines(before: dict[str, str], now: dict[str, str]) -> list[str]:
    """Lines for the alerts that started (``+``) or stopped (``-``) holding."""
    lines = []
    for name, detail in now.items():
        if name not in before:
            head = f"{'':9}+ {name}: "
            lines.append(head + fit(detail.split(", "), LINE_WIDTH - len(head)))
    lines.extend(f"{'':9}- {name}" for name in before if name not in now)
    return lines


def _where_subjects(line: str) -> tuple[str, ...]:
    """The names in a :func:`where_line`: the segment, then the features (not the figures)."""
    if not line:
        return ()
    segment = line.removeprefix("where: ").split(" (")[0].split(",")[0]
    _, _, features = line.partition(", features ")
    return (segment, *(f.split()[0] for f in features.split(", ") if f))


class PlainView:
    """Prints one line per refresh, and a line per alert that starts or stops holding."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self._holding: dict[str, str] = {}
        self._where = ""

    def __enter__(self) -> PlainView:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def update(self, state: ViewState) -> None:
        """Print the lines for ``state``."""
        now = {c.name: detail for c, detail in firing(state.snapshot)}
        lines = [plain_line(state), *alert_lines(self._holding, now)]
        self._holding = now
        # The ranking when the names it shows change (not every refresh).
        where = fit_where(state.where, LINE_WIDTH - 9)
        if where and _where_subjects(where) != _where_subjects(self._where):
            lines.append(f"{'':9}{where}")
        self._where = where
        print("\n".join(lines), file=self.out, flush=True)


class LiveView:
    """A live view redrawn in place with rich, laid out for the terminal's size."""

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
        from otel_ml.demo.layout import render

        width, height = self.console.size
        # One line spare: the cursor rests under the view without scrolling it.
        self.live.update(render(state, width, height - 1), refresh=True)
