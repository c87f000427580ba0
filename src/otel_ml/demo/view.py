"""The demo's terminal output: a live rich view, or plain lines for logs and CI.

Plain lines (``--no-live``) are at most :data:`LINE_WIDTH` characters: one status line per
reading, and one line per alert that starts (``+``, with why) or stops (``-``) holding. The live view is laid out for
the terminal it runs in (:func:`otel_ml.demo.layout.render`): a compact view up to 24 lines
for 80x24, a boxed one for larger terminals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from otel_ml.contract import ALL_SEGMENTS, NO_SEGMENT, PREDICTION_FEATURE
from otel_ml.demo.alerts import firing
from otel_ml.demo.snapshot import Snapshot

__all__ = ["LINE_WIDTH", "LiveView", "PlainView", "ViewState", "feature_label", "fit",
           "plain_line", "rich_available", "segment_label"]

#: Longest plain line (``--no-live`` and the summary).
LINE_WIDTH = 100


@dataclass
class ViewState:
    """Everything one refresh shows.

    Attributes:
        notes: Short lines that explain what the screen cannot (each at most 78 characters).
        phase_number: 1-based index of the phase in the cycle, and ``phase_count`` phases.
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


def plain_line(state: ViewState) -> str:
    """One line summarising a refresh (the ``--no-live`` output), at most :data:`LINE_WIDTH`."""
    s = state.snapshot
    perf = s.performance.get((ALL_SEGMENTS, "accuracy"))
    head = (f"[{state.elapsed_s:6.1f}s] phase={state.phase:<11} calls={s.calls:.0f} "
            f"{s.call_rate:.0f}/s p99={_ms(s.latency.get('p99'))}ms "
            f"errors={s.total_errors:.0f} acc={'-' if perf is None else f'{perf:.2f}'} "
            "drifted=")
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


class PlainView:
    """Prints one line per refresh, and a line per alert that starts or stops holding."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self._holding: dict[str, str] = {}

    def __enter__(self) -> PlainView:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def update(self, state: ViewState) -> None:
        """Print the lines for ``state``."""
        now = {c.name: detail for c, detail in firing(state.snapshot)}
        lines = [plain_line(state), *alert_lines(self._holding, now)]
        self._holding = now
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
