"""The demo loop: serve traffic through the instrumented model and show its telemetry."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from otel_ml.contract import ALL_SEGMENTS
from .alerts import firing
from .model import FeatureStoreTimeout, load_data, train_model, DemoService
from .snapshot import Snapshot
from .traffic import DEFAULT_PHASES, LabelQueue, Phase, PhaseClock, TrafficGenerator
from .view import LiveView, PlainView, ViewState, rich_available

__all__ = ["DemoOptions", "DemoSummary", "PhaseSummary", "run_demo"]

MODEL_NAME = "diabetes-progression"
MODEL_VERSION = "1.0.0"
#: Cycle length when the demo runs until Ctrl-C.
ENDLESS_CYCLE_S = 120.0


@dataclass
class DemoOptions:
    """How the demo runs (the ``otel-ml demo`` options).

    Attributes:
        duration_s: Seconds to run; 0 runs until Ctrl-C (the phases then repeat).
        rate: Predict calls per second.
        seed: Random seed (the same seed sends the same requests).
        otlp: OTLP endpoint to export to as well; ``None`` uses
            ``OTEL_EXPORTER_OTLP_ENDPOINT`` when set, else telemetry stays in process.
        live: Redraw a rich view in place; ``False`` prints one line per refresh.
        cycle_s: Length of one cycle of phases (default: the duration, or 120 s).
        refresh_s: Seconds between readings of the metrics (default: 1, shorter for short runs).
        phases: The traffic phases.
        label_share: Share of predictions whose label arrives later.
    """

    duration_s: float = 60.0
    rate: float = 50.0
    seed: int = 0
    otlp: str | None = None
    live: bool = True
    cycle_s: float | None = None
    refresh_s: float | None = None
    phases: Sequence[Phase] = DEFAULT_PHASES
    label_share: float = 0.7

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first option out of range."""
        if not self.duration_s >= 0:
            raise ValueError(f"--duration must be >= 0 seconds, got {self.duration_s}")
        if not self.rate > 0:
            raise ValueError(f"--rate must be > 0 calls/s, got {self.rate}")
        if self.cycle_s is not None and not self.cycle_s > 0:
            raise ValueError(f"cycle must be > 0 seconds, got {self.cycle_s}")
        if not 0 <= self.label_share <= 1:
            raise ValueError(f"label share must be within [0, 1], got {self.label_share}")


@dataclass
class PhaseSummary:
    """What one phase did and what the telemetry showed at its end.

    Attributes:
        name: Phase name.
        started_s: Seconds after the start.
        calls: Calls sent in the phase.
        errors: Calls that failed in the phase.
        drifted: Drifted features over all traffic at the phase's end (from the metrics).
        drifted_by_segment: Drifted features per segment at the phase's end.
        expected: Features the phase shifts.
        detected_after_s: Seconds from the phase's start until every expected feature showed
            as drifted in some segment (``None``: not within the phase).
        accuracy: Windowed accuracy at the phase's end, once labels have arrived.
        quality: Data-quality problems found during the phase, by (feature, check).
        alerts: Alert conditions that held at some reading during the phase.
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


@dataclass
class DemoSummary:
    """The whole run."""

    phases: list[PhaseSummary]
    calls: int
    errors: int
    labels_sent: int
    elapsed_s: float
    interrupted: bool
    final: Snapshot
    validation_accuracy: float


def _span_counter() -> Any:
    from opentelemetry.sdk.trace import SpanProcessor

    class SpanCounter(SpanProcessor):
        """Counts ended spans by kind (for the view; exports nothing)."""

        def __init__(self) -> None:
            self.counts: Counter[str] = Counter()
            self._lock = threading.Lock()

        def on_end(self, span: Any) -> None:
            name = span.name
            kind = ("predict" if name.startswith("ml.predict") else
                    "stage" if name.startswith("ml.stage") else
                    "outcome" if name.startswith("ml.outcome") else "other")
            with self._lock:
                self.counts[kind] += 1
                if not span.status.is_ok:
                    self.counts["error"] += 1

    return SpanCounter()


def _providers(options: DemoOptions, reader: Any, spans: Any) -> tuple[Any, Any, str, bool]:
    """Tracer and meter providers: OTLP through ``configure`` when asked, else in process."""
    endpoint = options.otlp or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if endpoint:
        from otel_ml._internal.core.config import configure

        telemetry = configure("otel-ml-demo", endpoint=options.otlp, metric_readers=[reader],
                              span_processors=[spans], export_interval_ms=5000, force=True)
        if telemetry.meter_provider is None:  # OTEL_SDK_DISABLED=true
            raise ValueError("OTEL_SDK_DISABLED=true: the demo has nothing to show")
        return (telemetry.tracer_provider, telemetry.meter_provider,
                f"exported over OTLP to {endpoint}", True)
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    resource = Resource.create({"service.name": "otel-ml-demo"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(spans)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    return (tracer_provider, meter_provider,
            "in process (no collector); add --otlp http://localhost:4317 to export", False)


def run_demo(options: DemoOptions, out: IO[str] | None = None,
             stop: threading.Event | None = None) -> DemoSummary:
    """Run the demo until its duration ends, ``stop`` is set, or Ctrl-C.

    Args:
        options: How to run.
        out: Where the view and the summary go (default: standard output).
        stop: Set it from another thread to end the run early.

    Returns:
        The summary (also printed).
    """
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from otel_ml._internal.instrument.model_monitor import ModelMonitor
    from otel_ml._internal.reference.profile import Reference

    options.validate()
    out = out if out is not None else sys.stdout
    live = options.live
    if live and not rich_available():
        print("otel-ml demo: rich is not installed (pip install 'otel-ml[demo]'); "
              "printing plain lines instead", file=out)
        live = False

    data = load_data()
    model, medians, validation_accuracy = train_model(data, options.seed)
    cycle = options.cycle_s or options.duration_s or ENDLESS_CYCLE_S
    clock = PhaseClock(options.phases, cycle)
    window = max(cycle / 5, 0.5)
    refresh = options.refresh_s or min(1.0, max(cycle / 40, 0.25))
    reference = Reference.from_data(
        data.frame, predictions=model.predict(_features(data.frame)),
        categorical=["sex", "source"], performance={"accuracy": validation_accuracy})

    reader = InMemoryMetricReader()
    spans = _span_counter()
    tracer_provider, meter_provider, destination, configured = _providers(options, reader, spans)
    monitor = ModelMonitor(
        MODEL_NAME, MODEL_VERSION, task="classification", reference=reference,
        segment_by="source", sensitive_attribute="sex", positive_class=1,
        drift_window_s=window, slot_s=window / 6,
        tracer_provider=tracer_provider, meter_provider=meter_provider)
    service = DemoService(model, medians, options.seed)
    predict = monitor(service.predict)

    traffic = TrafficGenerator(data, options.seed)
    labels = LabelQueue(options.label_share, (0.02 * cycle, 0.08 * cycle), options.seed)
    stop = stop or threading.Event()
    summaries: list[PhaseSummary] = []
    calls = errors = labels_sent = sent = 0
    previous = Snapshot.read(reader, time.monotonic())
    start = time.monotonic()
    next_call = next_view = start
    current = -1
    cycle_no = -1
    interrupted = False
    view = LiveView(out if out is not sys.stdout else None) if live else PlainView(out)
    try:
        with view:
            while not stop.is_set():
                now = time.monotonic()
                elapsed = now - start
                if options.duration_s and elapsed >= options.duration_s:
                    break
                index = clock.index(elapsed)
                this_cycle = int(elapsed // cycle)
                if index != current or this_cycle != cycle_no:
                    if summaries:
                        _close_phase(summaries[-1], Snapshot.read(reader, now, previous))
                    current, cycle_no = index, this_cycle
                    phase = clock.phases[index]
                    service.failure_rate = phase.failure_rate
                    service.slow_rate = phase.slow_rate
                    summaries.append(PhaseSummary(phase.name, elapsed, expected=phase.expect_drift))
                for pid, actual in labels.due(now):
                    monitor.record_outcome(pid, actual)
                    labels_sent += 1
                if now >= next_view:
                    snapshot = Snapshot.read(reader, now, previous)
                    previous = snapshot
                    _observe_phase(summaries[-1], snapshot, elapsed)
                    view.update(ViewState(
                        snapshot, phase.name, phase.description, elapsed, options.duration_s,
                        f"{MODEL_NAME} {MODEL_VERSION}", destination, labels_sent, len(labels),
                        dict(spans.counts)))
                    next_view = now + refresh
                if now < next_call:
                    time.sleep(max(0.0, min(next_call, next_view) - now))
                    continue
                frame, truth = traffic.request(phase, traffic.batch_size())
                sent += 1
                pid = f"req-{options.seed}-{sent:09d}"
                summaries[-1].calls += 1
                calls += 1
                try:
                    predict(frame, prediction_id=pid)
                except FeatureStoreTimeout:
                    errors += 1
                    summaries[-1].errors += 1
                else:
                    labels.push(now, pid, truth)
                next_call += 1.0 / options.rate
                if next_call < now - 1.0:  # fell behind by more than a second: do not burst
                    next_call = now
    except KeyboardInterrupt:
        interrupted = True
    final = Snapshot.read(reader, time.monotonic(), previous)
    if summaries:
        _close_phase(summaries[-1], final)
    summary = DemoSummary(summaries, calls, errors, labels_sent, time.monotonic() - start,
                          interrupted, final, validation_accuracy)
    monitor.close()
    if configured:
        from otel_ml._internal.core.config import shutdown

        shutdown(timeout_s=3.0)
    else:
        meter_provider.shutdown()
        tracer_provider.shutdown()
    print_summary(summary, out)
    return summary


def _features(frame: Any) -> Any:
    from .model import _matrix

    return _matrix(frame)


def _observe_phase(phase: PhaseSummary, snapshot: Snapshot, elapsed: float) -> None:
    phase.alerts.update(c.name for c, _ in firing(snapshot))
    if phase.expected and phase.detected_after_s is None:
        drifted = {f for f, _ in snapshot.drifted}
        if set(phase.expected) <= drifted:
            phase.detected_after_s = elapsed - phase.started_s


def _close_phase(phase: PhaseSummary, snapshot: Snapshot) -> None:
    phase.drifted = snapshot.drifted_features(ALL_SEGMENTS)
    by_segment: dict[str, list[str]] = {}
    for feature, segment in sorted(snapshot.drifted, key=lambda p: (str(p[1]), p[0])):
        if segment not in (ALL_SEGMENTS, None):
            by_segment.setdefault(str(segment), []).append(feature)
    phase.drifted_by_segment = by_segment
    phase.accuracy = snapshot.performance.get((ALL_SEGMENTS, "accuracy"))
    phase.quality = dict(snapshot.quality)


def print_summary(summary: DemoSummary, out: IO[str]) -> None:
    """Print the per-phase summary of a run."""
    how = "interrupted" if summary.interrupted else "finished"
    print(f"\notel-ml demo {how} after {summary.elapsed_s:.1f}s: {summary.calls} calls, "
          f"{summary.errors} failed, {summary.labels_sent} labels joined later "
          f"(validation accuracy {summary.validation_accuracy:.2f})", file=out)
    previous_quality: dict[tuple[str, str], float] = {}
    for phase in summary.phases:
        new_quality = {k: v - previous_quality.get(k, 0.0) for k, v in phase.quality.items()
                       if v - previous_quality.get(k, 0.0) > 0}
        previous_quality = phase.quality
        parts = [f"  {phase.name:<11} from {phase.started_s:5.1f}s: {phase.calls} calls, "
                 f"{phase.errors} errors"]
        parts.append("drifted at end: " + (", ".join(phase.drifted) or "none"))
        for segment, features in phase.drifted_by_segment.items():
            parts.append(f"in {segment}: {', '.join(features)}")
        if phase.expected:
            parts.append(f"{'+'.join(phase.expected)} detected after {phase.detected_after_s:.1f}s"
                         if phase.detected_after_s is not None
                         else f"{'+'.join(phase.expected)} not detected within the phase")
        if phase.accuracy is not None:
            parts.append(f"accuracy {phase.accuracy:.2f}")
        if new_quality:
            worst = sorted(new_quality.items(), key=lambda kv: -kv[1])[:3]
            parts.append("quality: " + ", ".join(f"{c} {f} x{n:.0f}" for (f, c), n in worst))
        if phase.alerts:
            parts.append("alerts: " + ", ".join(sorted(phase.alerts)))
        print("; ".join(parts), file=out)
