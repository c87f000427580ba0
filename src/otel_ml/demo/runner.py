"""The demo loop: serve traffic through the instrumented model and show its telemetry."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any

from otel_ml.thresholds import THRESHOLDS
from otel_ml.demo.model import (DemoService, FeatureStoreTimeout, StudyFigures, ThresholdModel,
                                disagreement_share, feature_matrix, load_data, study_figures,
                                train_model)
from otel_ml.demo.snapshot import Snapshot
from otel_ml.demo.summary import AlertLedger, DemoSummary, PhaseSummary, print_summary
from otel_ml.demo.traffic import DEFAULT_PHASES, LabelQueue, Phase, PhaseClock, TrafficGenerator
from otel_ml.demo.view import LiveView, PlainView, ViewState, rich_available, where_line

__all__ = ["DemoOptions", "run_demo", "scenario_notes"]

MODEL_NAME = "diabetes-progression"
MODEL_VERSION = "1.0.0"
#: The column that names each row's segment (the clinic).
SEGMENT_BY = "source"
#: The shadow phase's challenger: the same model, positive above this probability (not 0.5).
CHALLENGER_VERSION = "1.1.0-rc1"
CHALLENGER_THRESHOLD = 0.6
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
    study = study_figures(model, data)
    notes = scenario_notes(study, options.seed)
    cycle = options.cycle_s or options.duration_s or ENDLESS_CYCLE_S
    clock = PhaseClock(options.phases, cycle)
    window = max(cycle / 5, 0.5)
    refresh = options.refresh_s or min(1.0, max(cycle / 40, 0.25))
    reference = Reference.from_data(
        data.frame, predictions=model.predict(feature_matrix(data.frame)),
        categorical=["sex", "source"],
        # The traffic replays the study's rows: this is the accuracy to expect while nothing
        # is wrong (the held-out validation accuracy is lower, and would read as a rise).
        performance={"accuracy": study.accuracy})

    reader = InMemoryMetricReader()
    spans = _span_counter()
    tracer_provider, meter_provider, destination, configured = _providers(options, reader, spans)
    monitor = ModelMonitor(
        MODEL_NAME, MODEL_VERSION, task="classification", reference=reference,
        segment_by=SEGMENT_BY, sensitive_attribute="sex", positive_class=1,
        drift_window_s=window, slot_s=window / 6,
        tracer_provider=tracer_provider, meter_provider=meter_provider)
    service = DemoService(model, medians, options.seed)
    # A challenger in shadow of the model: the caller gets the model's answer; the challenger
    # runs on the same requests off the call's path only in the phases that ask for it.
    from otel_ml._internal.instrument.shadow import shadow

    challenger = DemoService(ThresholdModel(model, CHALLENGER_THRESHOLD), medians, options.seed)
    predict = shadow(service.predict, challenger.predict, name=MODEL_NAME,
                     champion_version=MODEL_VERSION, challenger_version=CHALLENGER_VERSION,
                     monitor=monitor, sample=0.0, task="classification", reference=reference,
                     # Every pair compared (no CPU budget): the phase shows the known agreement,
                     # and on a busy machine a budget would leave too few pairs to show it.
                     max_share=None,
                     statistics=False,  # its calls and labels only: collection stays cheap
                     drift_window_s=window, slot_s=window / 6,
                     tracer_provider=tracer_provider, meter_provider=meter_provider)
    expected_disagreement = disagreement_share(model, data, CHALLENGER_THRESHOLD)

    def read(at: float, before: Snapshot | None = None) -> Snapshot:
        return Snapshot.read(reader, at, before, exclude_versions=(CHALLENGER_VERSION,))

    traffic = TrafficGenerator(data, options.seed)
    labels = LabelQueue(options.label_share, (0.02 * cycle, 0.08 * cycle), options.seed)
    stop = stop or threading.Event()
    summaries: list[PhaseSummary] = []
    ledger = AlertLedger()
    calls = errors = labels_sent = sent = 0
    previous = read(time.monotonic())
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
                    if summaries:  # the reading at the boundary belongs to the ending phase
                        previous = read(now, previous)
                        ledger.close(summaries[-1], previous, elapsed)
                    current, cycle_no = index, this_cycle
                    phase = clock.phases[index]
                    service.failure_rate = phase.failure_rate
                    service.slow_rate = phase.slow_rate
                    predict.shadow.sample = 1.0 if phase.challenger else 0.0
                    summaries.append(PhaseSummary(phase.name, elapsed, expected=phase.expect_drift,
                                                  expected_alerts=phase.expect_alerts))
                for pid, actual in labels.due(now):
                    predict.record_outcome(pid, actual)  # to both versions
                    labels_sent += 1
                if now >= next_view:
                    snapshot = read(now, previous)
                    previous = snapshot
                    ledger.observe(summaries[-1], snapshot, elapsed)
                    where = _where(monitor)
                    summaries[-1].where = where or summaries[-1].where
                    description = (_shadow_line(snapshot, expected_disagreement)
                                   if phase.challenger else phase.description)
                    view.update(ViewState(
                        snapshot, phase.name, description, elapsed, options.duration_s,
                        f"{MODEL_NAME} {MODEL_VERSION}", destination, labels_sent, len(labels),
                        dict(spans.counts), notes, index + 1, len(clock.phases), options.seed,
                        where))
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
    predict.shadow.drain(2.0)
    final = read(time.monotonic(), previous)
    if summaries:
        ledger.close(summaries[-1], final, time.monotonic() - start)
    summary = DemoSummary(summaries, calls, errors, labels_sent, time.monotonic() - start,
                          interrupted, final, validation_accuracy, study.accuracy, notes)
    predict.shadow.close()
    predict.shadow.challenger_monitor.close()
    monitor.close()
    if configured:
        from otel_ml._internal.core.config import shutdown

        shutdown(timeout_s=3.0)
    else:
        meter_provider.shutdown()
        tracer_provider.shutdown()
    print_summary(summary, out)
    return summary


def _shadow_line(snapshot: Snapshot, expected: float) -> str:
    """The shadow phase's description: the challenger's measured agreement, live."""
    agreement = snapshot.agreement
    measured = "-" if agreement is None else f"{agreement:.1%}"
    return (f"challenger {CHALLENGER_VERSION} in shadow agrees on {measured} of rows "
            f"(expected {1 - expected:.1%})")


def _where(monitor: Any) -> str:
    """The root-cause ranking in one line (``""`` when nothing stands out or it fails)."""
    try:
        return where_line(monitor.root_cause_report(), skip=(SEGMENT_BY,))
    except Exception:  # the demo shows what it can; the ranking is one line of it
        return ""


def scenario_notes(study: StudyFigures, seed: int) -> tuple[str, ...]:
    """What the screen cannot say by itself: the fairness finding, the accuracy baseline, chance.

    Each note is at most 78 characters (one line of an 80-column terminal).
    """
    limit = THRESHOLDS.fairness_difference
    tpr = ", ".join(f"sex {g} {v:.2f}" for g, v in sorted(study.true_positive_rate.items()))
    gap = study.equalized_odds_difference
    fairness = (f"fairness: odds gap by sex is {gap:.2f} on the study rows (> {limit}): genuine"
                if gap > limit else
                f"fairness: odds gap by sex is {gap:.2f} on the study rows: above {limit} is noise")
    return (
        fairness,
        f"accuracy reference {study.accuracy:.2f}: the model on the rows the traffic replays",
        f"seed {seed} fixes the requests; machine speed changes readings near a threshold",
        f"true-positive rate by sex on the study rows: {tpr}",
    )
