"""What each phase of a demo run did and showed, and the summary printed at the end.

An alert is credited to the phase in which it *started* holding. One that keeps holding into
the next phase (the drift window still holds the previous phase's rows for a while) is listed
there as "still holding from" its phase, not as raised again.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import IO

from otel_ml.contract import ALL_SEGMENTS
from otel_ml.demo.alerts import firing
from otel_ml.demo.snapshot import Snapshot
from otel_ml.demo.view import LINE_WIDTH, feature_label, fit_where

__all__ = ["AlertLedger", "DemoSummary", "PhaseSummary", "print_summary"]


@dataclass
class PhaseSummary:
    """What one phase did and what the telemetry showed at its end.

    Attributes:
        name: Phase name.
        started_s: Seconds after the start.
        calls: Calls sent in the phase.
        errors: Calls that failed in the phase.
        drifted: Drifted features over all traffic at the phase's end (from the metrics;
            the predictions are ``prediction``).
        drifted_by_segment: Drifted features per segment at the phase's end.
        expected: Features the phase shifts.
        detected_after_s: Seconds from the phase's start until every expected feature showed
            as drifted in some segment (``None``: not within the phase).
        accuracy: Windowed accuracy at the phase's end, once labels have arrived.
        quality: Data-quality problems found so far at the phase's end, by (feature, check).
        alerts: Alert conditions that started holding during the phase.
        carried: Alerts holding during the phase since an earlier one: name -> that phase.
        expected_alerts: Alerts the phase is meant to raise.
        where: The last root-cause line the phase showed (top segment and its features,
            ``monitor.root_cause_report()``), or ``""``.
    """

    name: str
    started_s: float
    calls: int = 0
    errors: int = 0
    drifted: list[str] = field(default_factory=list)
    drifted_by_segment: dict[str, list[str]] = field(default_factory=dict)
    expected: tuple[str, ...] = ()
    detected_after_s: float | None = None
    accuracy: float | None = None
    quality: dict[tuple[str, str], float] = field(default_factory=dict)
    alerts: set[str] = field(default_factory=set)
    carried: dict[str, str] = field(default_factory=dict)
    expected_alerts: tuple[str, ...] = ()
    where: str = ""


@dataclass
class DemoSummary:
    """The whole run.

    Attributes:
        reference_accuracy: The accuracy the monitor compares with (the model on the study
            rows the traffic replays).
        notes: The view's explanations, printed under the summary.
    """

    phases: list[PhaseSummary]
    calls: int
    errors: int
    labels_sent: int
    elapsed_s: float
    interrupted: bool
    final: Snapshot
    validation_accuracy: float
    reference_accuracy: float | None = None
    notes: tuple[str, ...] = ()


class AlertLedger:
    """Credits each alert to the phase in which it started holding.

    An alert that keeps holding for other reasons (a drift alert whose features are now all
    different ones) counts as raised again, in the phase where the new reasons appeared.
    """

    def __init__(self) -> None:
        self._since: dict[str, tuple[PhaseSummary, set[str]]] = {}

    def observe(self, phase: PhaseSummary, snapshot: Snapshot, elapsed_s: float) -> None:
        """Record a reading taken during ``phase`` (also the one that closes it)."""
        now = {c.name: _subjects(detail) for c, detail in firing(snapshot)}
        for name in [n for n in self._since if n not in now]:
            del self._since[name]
        for name, subjects in now.items():
            began, before = self._since.get(name, (None, set()))
            if began is None or not subjects & before:
                began = phase
                self._since[name] = (phase, subjects)
            if began is phase:
                phase.alerts.add(name)
            else:
                phase.carried[name] = began.name
        if phase.expected and phase.detected_after_s is None:
            if set(phase.expected) <= {f for f, _ in snapshot.drifted}:
                phase.detected_after_s = elapsed_s - phase.started_s

    def close(self, phase: PhaseSummary, snapshot: Snapshot, elapsed_s: float) -> None:
        """The reading at the end of ``phase``: its last alerts and what it ends with."""
        self.observe(phase, snapshot, elapsed_s)
        phase.drifted = [feature_label(f) for f in snapshot.drifted_features(ALL_SEGMENTS)]
        by_segment: dict[str, list[str]] = {}
        for feature, segment in sorted(snapshot.drifted, key=lambda p: (str(p[1]), p[0])):
            if segment not in (ALL_SEGMENTS, None):
                by_segment.setdefault(str(segment), []).append(feature_label(feature))
        phase.drifted_by_segment = by_segment
        phase.accuracy = snapshot.performance.get((ALL_SEGMENTS, "accuracy"))
        phase.quality = dict(snapshot.quality)


def _subjects(detail: str) -> set[str]:
    """What an alert's detail is about: the first word of each item (``bmi psi 0.73``)."""
    return {item.split()[0] for item in detail.split(", ") if item.strip()}


def _wrap(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, LINE_WIDTH, initial_indent=indent, subsequent_indent=indent + "  ",
                         break_on_hyphens=False)


def print_summary(summary: DemoSummary, out: IO[str]) -> None:
    """Print the per-phase summary of a run (lines of at most 100 characters)."""
    how = "interrupted" if summary.interrupted else "finished"
    lines = [""]
    lines += _wrap(f"otel-ml demo {how} after {summary.elapsed_s:.1f}s: {summary.calls:,} calls, "
                   f"{summary.errors:,} failed, {summary.labels_sent:,} labels joined later", "")
    if summary.reference_accuracy is not None:
        lines += _wrap(f"accuracy is compared with {summary.reference_accuracy:.2f}, the model "
                       "on the study rows the traffic replays (held-out validation: "
                       f"{summary.validation_accuracy:.2f})", "")
    previous_quality: dict[tuple[str, str], float] = {}
    for phase in summary.phases:
        new_quality = {k: v - previous_quality.get(k, 0.0) for k, v in phase.quality.items()
                       if v - previous_quality.get(k, 0.0) > 0}
        previous_quality = phase.quality
        head = (f"  {phase.name:<11} from {phase.started_s:5.1f}s: {phase.calls:,} calls, "
                f"{phase.errors:,} errors")
        if phase.accuracy is not None:
            head += f", accuracy {phase.accuracy:.2f}"
        lines.append(head)
        drifted = "drifted at end: " + (", ".join(phase.drifted) or "none")
        drifted += "".join(f"; in {seg}: {', '.join(fs)}"
                           for seg, fs in phase.drifted_by_segment.items())
        lines += _wrap(drifted, " " * 4)
        if phase.expected:
            what = "+".join(phase.expected)
            lines += _wrap(f"{what} detected after {phase.detected_after_s:.1f}s"
                           if phase.detected_after_s is not None
                           else f"{what} not detected within the phase", " " * 4)
        if new_quality:
            worst = sorted(new_quality.items(), key=lambda kv: -kv[1])[:3]
            lines += _wrap("quality: " + ", ".join(f"{c} {feature_label(f)} x{n:.0f}"
                                                   for (f, c), n in worst), " " * 4)
        if phase.where:
            lines.append(" " * 4 + fit_where(phase.where, LINE_WIDTH - 4))
        if phase.alerts:
            lines += _wrap("alerts raised: " + ", ".join(sorted(phase.alerts)), " " * 4)
        by_origin: dict[str, list[str]] = {}
        for name, origin in sorted(phase.carried.items()):
            by_origin.setdefault(origin, []).append(name)
        for origin, names in by_origin.items():
            lines += _wrap(f"still holding from {origin}: {', '.join(names)}", " " * 4)
        missed = [a for a in phase.expected_alerts
                  if a not in phase.alerts and a not in phase.carried]
        if missed:
            lines += _wrap("expected but not seen: " + ", ".join(missed), " " * 4)
    final = summary.final
    if final is not None and final.agreement is not None:  # the shadow phase's challenger
        lines += _wrap(f"shadow: the challenger agreed with the model on {final.agreement:.1%} "
                       f"of {final.compared_rows:,.0f} rows compared", "")
    if summary.notes:
        lines.append("notes:")
        for note in summary.notes:
            lines += _wrap(note, "  ")
    print("\n".join(lines), file=out)
