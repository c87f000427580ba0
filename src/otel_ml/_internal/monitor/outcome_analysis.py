"""Outcomes and performance: the ground-truth side of a monitor, behind the
:class:`~otel_ml._internal.monitor.analysis.Analysis` protocol.

Wires the parts, each in its own module: the :class:`PredictionStore` (predictions remembered
on the hot path), the :class:`OutcomeJoin` (labels joined to them, traced), the
:class:`OutcomeStats` (scoring into counters and the :class:`OutcomeWindow`), the
:class:`ConceptDrift` detectors, :class:`ErrorBins`, :class:`Attributions`,
:class:`RejectedRequests`, and the :class:`OutcomeReadout` (report and collectors).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from opentelemetry import trace

from otel_ml._internal.core.instruments import Instruments
from otel_ml._internal.core.state import Switch
from otel_ml._internal.monitor.analysis import Collector
from otel_ml._internal.monitor.attributions import Attributions
from otel_ml._internal.monitor.concept_drift import ConceptDrift
from otel_ml._internal.monitor.error_bins import ErrorBins
from otel_ml._internal.monitor.estimation import EstimationAnalysis
from otel_ml._internal.monitor.outcome_join import OutcomeJoin
from otel_ml._internal.monitor.outcome_readout import OutcomeReadout
from otel_ml._internal.monitor.outcome_state import OutcomeState
from otel_ml._internal.monitor.outcome_stats import OutcomeStats
from otel_ml._internal.monitor.outcome_window import OutcomeWindow
from otel_ml._internal.monitor.prediction_store import PredictionStore
from otel_ml._internal.monitor.rejected import RejectedRequests
from otel_ml._internal.monitor.settings import Settings
from otel_ml._internal.reference.profile import Reference
from otel_ml._internal.stats.performance import PerformanceReport, label_str
from otel_ml._internal.stats.output_kind import OutputReading, kind_from_profile
from otel_ml._internal.stats.task import TaskGuess
from otel_ml.contract import Attr

__all__ = ["FeatureSide", "OutcomeAnalysis"]


class FeatureSide(Protocol):
    """What the outcome side needs of the feature side (``FeatureIngest``)."""

    def batch_of(self, x: Any, rows: int | None = None) -> Any:
        """A batch over a kept input."""

    def bin_rows(self, batch: Any) -> Any:
        """The ``RowBins`` of a batch's input, or ``None``."""

    def bin_label(self, feature: str, index: int) -> str:
        """Label of a reference bin."""

    # Also read when present: ``plan``, the bin plan of the batches' matrices (the loss
    # model of direct loss estimation reads its columns there).


class OutcomeAnalysis:
    """The outcome side of one model.

    Args:
        settings: The monitor's settings.
        reference: The reference profile (``performance``, ``attributions``,
            ``feature_names``), or ``None``.
        features: The feature side (batches over kept inputs, reference bins).
        tracer: The tracer of the outcome spans.
        instruments: The instruments (``ml.model.error.absolute``,
            ``ml.model.requests.rejected``), by metric name.
        switch: The monitor's on/off switch.
        segment_values: Caps segment values (shared with the monitor).
        clock: Monotonic seconds.
        keep_errors: Keep the per-row errors fed to the concept-drift detectors, in order
            (:meth:`error_stream`; a batch job's partition).

    Raises:
        ValueError: A sensitive attribute is declared for a regression model, or is empty.
        TypeError: The sensitive attribute is not a string.
    """

    def __init__(self, settings: Settings, *, reference: Reference | None,
                 features: FeatureSide,
                 tracer: trace.Tracer, instruments: Instruments, switch: Switch,
                 segment_values: Callable[[Any], str],
                 clock: Callable[[], float] = time.monotonic,
                 keep_errors: bool = False) -> None:
        _check_sensitive(settings)
        self._keep_errors = keep_errors
        self._settings = settings
        self._reference = reference
        self._features = features
        self._tracer = tracer
        self._instruments = instruments
        self._switch = switch
        self._segment_values = segment_values
        self._clock = clock
        self._attributes = {Attr.MODEL_NAME: settings.name, Attr.MODEL_VERSION: settings.version}
        self._task = TaskGuess(settings.task, settings.output)
        #: How the output is read: decided once (declared, the reference, or the first batch
        #: that shows it) and kept across a fork.
        self._outputs = OutputReading(
            settings.name, settings.output,
            kind_from_profile(reference.prediction) if reference is not None else None)
        self._store = PredictionStore(
            settings, self._task, settings.sensitive_attribute is not None or reference is not None,
            features, clock)
        #: Keep what scoring the call's label will need (the hot path; O(1), never raises):
        #: ``remember(prediction_id, batch, result, output, span_context, segment, own_id)``.
        self.remember = self._store.remember
        #: Performance without labels: its own analysis, fed the calls this side remembers
        #: (off, and not on the call path, without a reference fitted with labels).
        self._estimation = EstimationAnalysis(settings, reference, features.batch_of, clock,
                                              lambda: getattr(features, "plan", None))
        if self._estimation.active:
            self.remember = self._remember_and_estimate
        self._build()

    def _build(self) -> None:
        s, reference = self._settings, self._reference
        self._rejected = RejectedRequests(
            self._attributes, self._instruments["ml.model.requests.rejected"], self._switch)
        window = OutcomeWindow(s, self._clock)
        concept = ConceptDrift(s.drift_window_s, self._clock)
        bins = ErrorBins(s.max_features, self._features)
        stats = OutcomeStats(s.name, self._attributes,
                             self._instruments["ml.model.error.absolute"],
                             tuple(label_str(c) for c in s.classes or ()),
                             label_str(s.positive_class), window, concept, bins,
                             self._keep_errors)
        ref_names = tuple(reference.feature_names) if reference is not None else ()
        self._attributions = Attributions(
            s.name, s.max_features, s.feature_names or ref_names,
            _floats(reference.attributions if reference is not None else None), window)
        self._join = OutcomeJoin(s, self._tracer, self._attributes, self._switch,
                                 self._segment_values, self._task, self._outputs, self._store,
                                 stats,
                                 bins if reference is not None else None, self._clock,
                                 self._estimation.labelled if self._estimation.active
                                 else None)
        self._readout = OutcomeReadout(s, _floats(reference.performance
                                                  if reference is not None else None),
                                       self._task, self._store, window, stats, concept, bins,
                                       self._attributions)
        self._points = {**self._readout.collectors(), **self._estimation.collectors()}
        self._stats = stats

    # ------------------------------------------------------------------ Analysis protocol
    def observe(self, batch: Any) -> None:
        """Nothing to do per batch: a call's prediction is remembered by :attr:`remember`
        (it needs the call's id and span), and the outcome side learns when labels arrive."""

    def collectors(self) -> dict[str, Collector]:
        """Observable metric name to a function giving its points (without model attributes)."""
        # Each reads the current parts, so the monitor's collectors survive after_fork.
        return {name: functools.partial(self._collect, name) for name in self._points}

    def _collect(self, name: str) -> Any:
        return self._points[name]()

    def report(self) -> dict[str, Any]:
        """``{"performance": PerformanceReport}``."""
        return {"performance": self.performance_report()}

    def after_fork(self) -> None:
        """In a forked child: start empty (the parent's predictions are the parent's)."""
        self._task.reset()
        self._store.reset()
        self._estimation.after_fork()
        self._build()

    # ------------------------------------------------------------------ labels and more
    def record_outcome(self, prediction_id: str, actual: Any) -> None:
        """Score the label of one remembered call (never raises; any thread)."""
        self._join.record_outcome(prediction_id, actual)

    def record_outcomes(self, y_true: Any, y_pred: Any, segments: Any = None,
                        groups: Any = None) -> None:
        """Score labels and predictions that arrive together (see :class:`OutcomeJoin`)."""
        self._join.record_outcomes(y_true, y_pred, segments=segments, groups=groups)

    def record_attributions(self, attributions: Any,
                            feature_names: Sequence[str] | None = None) -> None:
        """Add per-row attributions (never raises)."""
        if not self._switch.off:
            self._attributions.record(attributions, feature_names)

    def record_rejected(self, reason: str) -> None:
        """Count one request refused before predict (never raises)."""
        self._rejected.record(reason)

    def performance_report(self) -> PerformanceReport:
        """Windowed performance, per segment, fairness, concept drift, error bins; the
        estimate without labels and suspect labels when the reference has what they need."""
        return self._estimation.complete(self._readout.performance_report())

    def _remember_and_estimate(self, prediction_id: str, batch: Any, result: Any, output: str,
                               span_context: Any, segment: str | None,
                               own_id: bool = False) -> None:
        self._store.remember(prediction_id, batch, result, output, span_context, segment,
                             own_id)
        self._estimation.observe_call(result, output, segment, batch,
                                      None if batch is None else batch.input)

    def estimate(self, predictions: Any, output: str, segment: str | None, batch: Any,
                 x: Any) -> None:
        """Feed predictions of code that is not decorated to the estimate (never raises)."""
        if predictions is not None:
            self._estimation.observe_call(predictions, output, segment, batch, x)

    def state(self) -> OutcomeState:
        """Everything scored so far as mergeable state (see :class:`OutcomeState`; the error
        histogram is the recorder given as ``ml.model.error.absolute``)."""
        state = self._stats.state()
        task = self._task
        state.task = task.declared if task.declared != "auto" else task.inferred
        return state

    def error_stream(self) -> Any:
        """The per-row errors fed to the concept-drift detectors, in order (``None`` unless
        made with ``keep_errors``)."""
        return self._stats.error_stream()

    def absorb(self, state: OutcomeState) -> None:
        """Count labelled rows scored elsewhere (same monitor settings) as if scored now;
        the concept-drift detectors are fed only the error streams the state carries."""
        if state.task is not None and not self._task.known:
            self._task.inferred, self._task.known = state.task, True
        self._stats.absorb(state, self._clock())

    def inferred_task(self) -> str | None:
        """``"classification"`` or ``"regression"`` from the first predictions, else ``None``."""
        return self._task.inferred

    def store_stats(self) -> dict[str, int]:
        """Prediction store: records and bytes held, evicted and expired since start."""
        return self._store.stats()


def _check_sensitive(settings: Settings) -> None:
    sensitive = settings.sensitive_attribute
    if sensitive is None:
        return
    if not isinstance(sensitive, str):
        raise TypeError("sensitive_attribute must be a column name (str), got "
                        f"{type(sensitive).__name__}")
    if not sensitive.strip():
        raise ValueError("sensitive_attribute must not be empty")
    if settings.task == "regression":
        raise ValueError("fairness metrics need a classifier: sensitive_attribute "
                         f"{sensitive!r} was given for a regression model")


def _floats(value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping):
        return {}
    out = {}
    for k, v in value.items():
        try:
            out[str(k)] = float(v)
        except (TypeError, ValueError):  # a value of the user's reference: skipped
            continue
    return out
