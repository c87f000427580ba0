"""Read-out of the outcome side: windowed performance per segment, fairness, the
performance report and the observations of every outcome metric."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from otel_ml._internal.core.instruments import Points
from otel_ml._internal.monitor.attributions import Attributions
from otel_ml._internal.monitor.concept_drift import ConceptDrift
from otel_ml._internal.monitor.error_bins import ErrorBins
from otel_ml._internal.monitor.outcome_stats import OutcomeStats
from otel_ml._internal.monitor.outcome_window import OutcomeWindow, SlotData
from otel_ml._internal.monitor.prediction_store import PredictionStore
from otel_ml._internal.monitor.settings import Settings
from otel_ml._internal.stats.fairness import FairnessReport, fairness_from_counts
from otel_ml._internal.stats.performance import PerformanceReport, Tally, label_str
from otel_ml._internal.stats.task import TaskGuess
from otel_ml.contract import ALL_SEGMENTS, NO_SEGMENT, Attr

__all__ = ["OutcomeReadout"]


class OutcomeReadout:
    """Reads the parts of the outcome side at collection and report time.

    Args:
        settings: The monitor's settings.
        reference_performance: Validation performance stored with the reference profile.
        task: The task.
        store: The prediction store.
        window: The outcome window.
        stats: The scored counters.
        concept: The concept-drift detectors.
        bins: Error analysis by reference bin.
        attributions: Attributions by feature.
    """

    def __init__(self, settings: Settings, reference_performance: Mapping[str, float],
                 task: TaskGuess, store: PredictionStore, window: OutcomeWindow,
                 stats: OutcomeStats, concept: ConceptDrift, bins: ErrorBins,
                 attributions: Attributions) -> None:
        self._settings = settings
        self._reference = {k: v for k, v in reference_performance.items() if math.isfinite(v)}
        self._positive = label_str(settings.positive_class)
        self._task = task
        self._store = store
        self._window = window
        self._stats = stats
        self._concept = concept
        self._bins = bins
        self._attributions = attributions

    def performance_report(self) -> PerformanceReport:
        """Windowed performance, per class and segment, fairness, drift state, error bins."""
        s = self._settings
        win = self._window.sum()
        total = win.total()
        metrics, per_class = total.metrics(self._positive)
        by_segment = {seg: t.metrics(self._positive)[0] for seg, t in sorted(win.tallies.items())}
        attributions, attribution_drift = self._attributions.read(win)
        task = self._task.declared if self._task.declared != "auto" else (
            self._task.inferred or "auto")
        return PerformanceReport(
            model=s.name, version=s.version, task=task, window_s=s.drift_window_s,
            count=total.count, metrics=metrics, per_class=per_class, by_segment=by_segment,
            reference=dict(self._reference), fairness=self._fairness(win),
            concept_drift=self._concept.report(), error_by_bin=self._bins.report(win),
            attributions=attributions, attribution_drift=attribution_drift,
            unmatched=self._stats.unmatched(), store=self._store.stats(),
            confusion=_nested(total.confusion), errors=total.error_distribution())

    def collectors(self) -> dict[str, Callable[[], Points]]:
        """Observable metric name to a function giving its points (without model attributes)."""
        return {
            "ml.model.outcomes": self._stats.outcome_points,
            "ml.model.outcomes.unmatched": self._stats.unmatched_points,
            "ml.model.error.squared": self._stats.squared_points,
            "ml.model.performance": self._performance_points,
            "ml.model.performance.reference": lambda: [
                (v, {Attr.PERF_METRIC: k}) for k, v in self._reference.items()],
            "ml.fairness.group.rate": self._fairness_rate_points,
            "ml.fairness.gap": self._fairness_gap_points,
            "ml.concept_drift.detections": self._concept.detection_points,
            "ml.concept_drift.state": self._concept.state_points,
            "ml.feature.attribution": self._attributions.points,
            "ml.feature.attribution.drift": self._attributions.drift_points,
            "ml.model.error_rate.by_bin": lambda: self._bins.points(self._window.sum()),
        }

    def _fairness(self, win: SlotData) -> FairnessReport | None:
        attribute = self._settings.sensitive_attribute
        if attribute is None:
            return None
        return fairness_from_counts(attribute, win.fairness, self._positive,
                                    self._settings.fairness_min_group_size)

    def _performance_points(self) -> Points:
        win = self._window.sum()
        out = []
        tallies: dict[str, Tally] = {ALL_SEGMENTS: win.total()} if win.tallies else {}
        if set(win.tallies) != {NO_SEGMENT}:
            tallies.update(win.tallies)
        for seg, tally in tallies.items():
            for name, value in tally.metrics(self._positive)[0].items():
                if math.isfinite(value):
                    out.append((value, {Attr.SEGMENT: seg, Attr.PERF_METRIC: name}))
        return out

    def _fairness_rate_points(self) -> Points:
        report = self._fairness(self._window.sum())
        if report is None:
            return []
        return [(v, {Attr.FAIRNESS_ATTRIBUTE: report.attribute, Attr.FAIRNESS_GROUP: g,
                     Attr.FAIRNESS_METRIC: m}) for g, m, v in report.rates()]

    def _fairness_gap_points(self) -> Points:
        report = self._fairness(self._window.sum())
        if report is None:
            return []
        return [(v, {Attr.FAIRNESS_ATTRIBUTE: report.attribute, Attr.FAIRNESS_METRIC: m})
                for m, v in report.gaps().items()]


def _nested(confusion: Mapping[tuple[str, str], int]) -> dict[str, dict[str, int]]:
    """``(predicted, actual) -> n`` as ``actual -> predicted -> n``."""
    out: dict[str, dict[str, int]] = {}
    for (predicted, actual), n in sorted(confusion.items()):
        out.setdefault(actual, {})[predicted] = int(n)
    return out
