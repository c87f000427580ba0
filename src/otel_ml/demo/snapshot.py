"""What the demo shows, read from the metrics that would be exported (an in-memory reader).

The live view never looks inside the monitor: it collects the same data points a
``PeriodicExportingMetricReader`` would send over OTLP, through the SDK's
``InMemoryMetricReader``, and summarises them the way the dashboards and alert rules do
(rates from counter deltas, percentiles from histogram buckets).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from otel_ml._internal.core.readout import read_points
from otel_ml.contract import ALL_SEGMENTS, Attr

__all__ = ["Snapshot", "histogram_quantile", "read_points"]

Key = tuple[tuple[str, Any], ...]


def histogram_quantile(q: float, bounds: Sequence[float], counts: Sequence[float]) -> float | None:
    """The ``q`` quantile of a bucketed histogram, interpolated as Prometheus does.

    Args:
        q: Quantile within [0, 1].
        bounds: Upper bounds of the finite buckets (``len(counts) - 1`` of them).
        counts: Per-bucket counts (not cumulative); the last bucket is ``+Inf``.

    Returns:
        The estimate, or ``None`` when the histogram is empty. Values in the ``+Inf`` bucket
        report the highest finite bound, like ``histogram_quantile``.
    """
    total = float(sum(counts))
    if total <= 0:
        return None
    rank = q * total
    cumulative = 0.0
    for i, count in enumerate(counts):
        if count and cumulative + count >= rank:
            if i >= len(bounds):
                return float(bounds[-1]) if bounds else None
            lower = 0.0 if i == 0 else float(bounds[i - 1])
            upper = float(bounds[i])
            return lower + (upper - lower) * (rank - cumulative) / count
        cumulative += count
    return float(bounds[-1]) if bounds else None


def _key(attrs: Mapping[str, Any], *names: str) -> Key:
    return tuple((n, attrs.get(n)) for n in names)


@dataclass
class Snapshot:
    """One reading of the metrics, plus what changed since the previous reading.

    Attributes:
        at: Monotonic time of the reading (seconds).
        calls: Predict calls so far (``ml.model.predict.calls``).
        predictions: Rows predicted so far (``ml.model.predictions``).
        errors: Failed calls so far by ``error.type`` (``ml.model.predict.errors``).
        latency_buckets: Bucket bounds and cumulative counts of ``ml.model.predict.duration``.
        interval_s: Seconds since the previous reading (0 for the first).
        call_rate: Calls per second since the previous reading.
        error_rate: Share of calls that failed since the previous reading.
        latency: p50/p95/p99 in seconds over the calls since the previous reading.
        drift: ``(feature, segment) -> {method: score}`` (``ml.feature.drift.score``).
        pvalues: ``(feature, segment) -> {method: p-value}`` (``ml.feature.drift.pvalue``).
        drifted: ``(feature, segment)`` pairs whose drift decision holds (``ml.feature.drifted``).
        window_rows: Rows in the drift window by segment (``ml.drift.window.rows``).
        quality: ``(feature, check) -> count`` so far (``ml.data_quality.issues``).
        quality_delta: The same, since the previous reading.
        outliers: Outlier rows so far (``ml.model.outliers``).
        outcomes: Labelled predictions so far (``ml.model.outcomes``).
        unmatched: Labels not joined to a prediction, by reason.
        performance: ``(segment, metric) -> value`` (``ml.model.performance``).
        reference_performance: ``metric -> value`` (``ml.model.performance.reference``).
        fairness: ``(attribute, metric) -> value`` (``ml.fairness.gap``).
        concept_drift: ``detector -> state`` (``ml.concept_drift.state``).
        stage_errors: Failed pipeline stages so far by (stage, error type).
        observations: Non-missing values so far per feature (``ml.feature.observations``).
        observations_delta: The same, since the previous reading.
        rejected: Requests refused so far by reason (``ml.model.requests.rejected``).
        rejected_delta: The same, since the previous reading.
        detections: Concept-drift detections so far by detector.
        outcomes_by_segment: Labelled predictions so far per segment.
        segment_quality: ``(feature, segment, check) -> count`` so far.
        segment_quality_delta: The same, since the previous reading.
        segment_observations: Non-missing values so far per ``(feature, segment)``.
        segment_observations_delta: The same, since the previous reading.
        segment_calls: Predict calls so far per call segment (``ml.model.predict.calls``).
        segment_calls_delta: The same, since the previous reading.
        segment_errors: Failed calls so far per call segment, every error type.
        segment_errors_delta: The same, since the previous reading.
        compared_rows: Rows a shadow challenger's prediction was compared on so far
            (``ml.model.comparison.rows``).
        disagreements: Compared rows where it predicted another class.
        pairs: ``(champion version, challenger version)`` compared (``ml.model.comparison.info``).
        version_performance: ``version -> {metric: value}`` over every segment, for every
            version (the windowed ``ml.model.performance``, ``count`` included).
        expected_confusion: ``(predicted, actual) -> expected count`` so far, every segment
            (``ml.model.expected.confusion``; performance estimated without labels).
        estimated: ``rows``, ``absolute`` (expected absolute errors) and ``variance:<metric>``
            sums so far (``ml.model.estimated.*``).
    """

    at: float = 0.0
    calls: float = 0.0
    predictions: float = 0.0
    errors: dict[str, float] = field(default_factory=dict)
    latency_bounds: tuple[float, ...] = ()
    latency_counts: tuple[float, ...] = ()
    interval_s: float = 0.0
    call_rate: float = 0.0
    error_rate: float = 0.0
    latency: dict[str, float | None] = field(default_factory=dict)
    drift: dict[tuple[str, str | None], dict[str, float]] = field(default_factory=dict)
    pvalues: dict[tuple[str, str | None], dict[str, float]] = field(default_factory=dict)
    drifted: set[tuple[str, str | None]] = field(default_factory=set)
    window_rows: dict[str | None, float] = field(default_factory=dict)
    quality: dict[tuple[str, str], float] = field(default_factory=dict)
    quality_delta: dict[tuple[str, str], float] = field(default_factory=dict)
    outliers: float = 0.0
    outcomes: float = 0.0
    unmatched: dict[str, float] = field(default_factory=dict)
    performance: dict[tuple[str | None, str], float] = field(default_factory=dict)
    reference_performance: dict[str, float] = field(default_factory=dict)
    fairness: dict[tuple[str, str], float] = field(default_factory=dict)
    concept_drift: dict[str, float] = field(default_factory=dict)
    stage_errors: dict[tuple[str, str], float] = field(default_factory=dict)
    observations: dict[str, float] = field(default_factory=dict)
    observations_delta: dict[str, float] = field(default_factory=dict)
    rejected: dict[str, float] = field(default_factory=dict)
    rejected_delta: dict[str, float] = field(default_factory=dict)
    detections: dict[str, float] = field(default_factory=dict)
    outcomes_by_segment: dict[str, float] = field(default_factory=dict)
    segment_quality: dict[tuple[str, str, str], float] = field(default_factory=dict)
    segment_quality_delta: dict[tuple[str, str, str], float] = field(default_factory=dict)
    segment_observations: dict[tuple[str, str], float] = field(default_factory=dict)
    segment_observations_delta: dict[tuple[str, str], float] = field(default_factory=dict)
    segment_calls: dict[str, float] = field(default_factory=dict)
    segment_calls_delta: dict[str, float] = field(default_factory=dict)
    segment_errors: dict[str, float] = field(default_factory=dict)
    segment_errors_delta: dict[str, float] = field(default_factory=dict)
    #: (segment, space) -> (reconstruction error, its upper bound) over the drift window.
    multivariate: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    compared_rows: float = 0.0
    disagreements: float = 0.0
    pairs: list[tuple[str, str]] = field(default_factory=list)
    version_performance: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def agreement(self) -> float | None:
        """Share of compared rows where the challenger agrees with the model, or ``None``."""
        return 1.0 - self.disagreements / self.compared_rows if self.compared_rows else None
    expected_confusion: dict[tuple[str, str], float] = field(default_factory=dict)
    estimated: dict[str, float] = field(default_factory=dict)

    @property
    def total_errors(self) -> float:
        """Failed calls so far, every error type."""
        return float(sum(self.errors.values()))

    def drifted_features(self, segment: str | None = ALL_SEGMENTS) -> list[str]:
        """Drifted features of one segment (default: all traffic; ``None``: any segment)."""
        return sorted({f for f, s in self.drifted if segment is None or s == segment})

    def segments_seen(self) -> list[str]:
        """Segments (not the all-traffic one) with rows in the drift window, sorted."""
        return sorted(str(seg) for seg, rows in self.window_rows.items()
                      if seg not in (ALL_SEGMENTS, None) and rows > 0)

    def top_drift(self, n: int = 5) -> list[tuple[str, str | None, dict[str, float], bool]]:
        """The ``n`` (feature, segment) pairs with the highest PSI, highest first.

        PSI is the score the view and the drift alerts show, so it is the order too (a pair
        without a PSI sorts by its largest finite score). While a single segment sends
        traffic its rows repeat the all-traffic ones and are left out.
        """
        segments = self.segments_seen()
        rows = []
        for key, scores in self.drift.items():
            if len(segments) <= 1 and key[1] not in (ALL_SEGMENTS, None):
                continue
            psi = scores.get("psi")
            finite = [v for v in scores.values() if math.isfinite(v)]
            order = psi if psi is not None and math.isfinite(psi) else max(finite, default=0.0)
            rows.append((-order, str(key[0]), str(key[1]), key, scores))
        rows.sort()
        return [(key[0], key[1], scores, key in self.drifted) for *_, key, scores in rows[:n]]

    @classmethod
    def read(cls, reader: Any, at: float, previous: Snapshot | None = None,
             exclude_versions: tuple[str, ...] = ()) -> Snapshot:
        """Collect the reader now and summarise; ``previous`` gives rates and recent latency;
        ``exclude_versions`` leaves a shadow challenger's own points out."""
        return cls.from_points(read_points(reader), at, previous, exclude_versions)

    @classmethod
    def from_points(cls, data: Mapping[str, Iterable[Any]], at: float,
                    previous: Snapshot | None = None,
                    exclude_versions: tuple[str, ...] = ()) -> Snapshot:
        """Summarise collected data points (see :func:`read_points`); points of the model
        versions in ``exclude_versions`` (a shadow challenger) are left out."""
        snap = cls(at=at)

        def get(name: str) -> list[Any]:
            points = list(data.get(name, ()))
            if not exclude_versions:
                return points
            return [p for p in points
                    if p.attributes.get(Attr.MODEL_VERSION) not in exclude_versions]

        for p in data.get("ml.model.comparison.info", ()):
            snap.pairs.append((str(p.attributes.get(Attr.MODEL_VERSION)),
                               str(p.attributes.get(Attr.CHALLENGER_VERSION))))
        for p in data.get("ml.model.performance", ()):  # every version, challengers too
            if p.attributes.get(Attr.SEGMENT) == ALL_SEGMENTS:
                version = str(p.attributes.get(Attr.MODEL_VERSION))
                metric = str(p.attributes.get(Attr.PERF_METRIC))
                snap.version_performance.setdefault(version, {})[metric] = float(p.value)
        snap.compared_rows = sum(p.value for p in get("ml.model.comparison.rows"))
        snap.disagreements = sum(p.value for p in get("ml.model.comparison.disagreements"))
        for p in get("ml.model.predict.calls"):
            seg = str(p.attributes.get(Attr.SEGMENT))
            snap.segment_calls[seg] = snap.segment_calls.get(seg, 0.0) + p.value
        snap.calls = sum(snap.segment_calls.values())
        snap.predictions = sum(p.value for p in get("ml.model.predictions"))
        for p in get("ml.model.predict.errors"):
            etype = str(p.attributes.get(Attr.ERROR_TYPE, "?"))
            snap.errors[etype] = snap.errors.get(etype, 0.0) + p.value
            seg = str(p.attributes.get(Attr.SEGMENT))
            snap.segment_errors[seg] = snap.segment_errors.get(seg, 0.0) + p.value
        bounds: tuple[float, ...] = ()
        counts: list[float] = []
        for p in get("ml.model.predict.duration"):
            if not counts:
                bounds, counts = tuple(p.explicit_bounds), [0.0] * len(p.bucket_counts)
            if tuple(p.explicit_bounds) == bounds:
                counts = [a + b for a, b in zip(counts, p.bucket_counts)]
        snap.latency_bounds, snap.latency_counts = bounds, tuple(counts)
        for p in get("ml.feature.drift.score"):
            a = p.attributes
            key = (str(a.get(Attr.FEATURE)), a.get(Attr.SEGMENT))
            snap.drift.setdefault(key, {})[str(a.get(Attr.METHOD))] = float(p.value)
        for p in get("ml.feature.drift.pvalue"):
            a = p.attributes
            key = (str(a.get(Attr.FEATURE)), a.get(Attr.SEGMENT))
            snap.pvalues.setdefault(key, {})[str(a.get(Attr.METHOD))] = float(p.value)
        for p in get("ml.feature.drifted"):
            if p.value >= 1:
                snap.drifted.add((str(p.attributes.get(Attr.FEATURE)),
                                  p.attributes.get(Attr.SEGMENT)))
        upper = {(str(p.attributes.get(Attr.SEGMENT)),
                  str(p.attributes.get(Attr.MULTIVARIATE_SPACE))): float(p.value)
                 for p in get("ml.drift.reconstruction_error.upper")}
        for p in get("ml.drift.reconstruction_error"):
            key = (str(p.attributes.get(Attr.SEGMENT)),
                   str(p.attributes.get(Attr.MULTIVARIATE_SPACE)))
            if key in upper:
                snap.multivariate[key] = (float(p.value), upper[key])
        for p in get("ml.drift.window.rows"):
            seg = p.attributes.get(Attr.SEGMENT)
            snap.window_rows[seg] = snap.window_rows.get(seg, 0.0) + p.value
        for p in get("ml.data_quality.issues"):
            key = (str(p.attributes.get(Attr.FEATURE)), str(p.attributes.get(Attr.CHECK)))
            snap.quality[key] = snap.quality.get(key, 0.0) + p.value
            seg_key = (key[0], str(p.attributes.get(Attr.SEGMENT)), key[1])
            snap.segment_quality[seg_key] = snap.segment_quality.get(seg_key, 0.0) + p.value
        snap.outliers = sum(p.value for p in get("ml.model.outliers"))
        for p in get("ml.model.outcomes"):
            seg = str(p.attributes.get(Attr.SEGMENT))
            snap.outcomes_by_segment[seg] = snap.outcomes_by_segment.get(seg, 0.0) + p.value
        snap.outcomes = sum(snap.outcomes_by_segment.values())
        for p in get("ml.model.outcomes.unmatched"):
            reason = str(p.attributes.get(Attr.REASON, "?"))
            snap.unmatched[reason] = snap.unmatched.get(reason, 0.0) + p.value
        for p in get("ml.model.performance"):
            key = (p.attributes.get(Attr.SEGMENT), str(p.attributes.get(Attr.PERF_METRIC)))
            snap.performance[key] = float(p.value)
        for p in get("ml.model.performance.reference"):
            snap.reference_performance[str(p.attributes.get(Attr.PERF_METRIC))] = float(p.value)
        for p in get("ml.fairness.gap"):
            key = (str(p.attributes.get(Attr.FAIRNESS_ATTRIBUTE)),
                   str(p.attributes.get(Attr.FAIRNESS_METRIC)))
            snap.fairness[key] = float(p.value)
        for p in get("ml.concept_drift.state"):
            snap.concept_drift[str(p.attributes.get(Attr.DETECTOR))] = float(p.value)
        for p in get("ml.pipeline.stage.errors"):
            key = (str(p.attributes.get(Attr.STAGE)), str(p.attributes.get(Attr.ERROR_TYPE)))
            snap.stage_errors[key] = snap.stage_errors.get(key, 0.0) + p.value
        for p in get("ml.feature.observations"):
            feature = str(p.attributes.get(Attr.FEATURE))
            snap.observations[feature] = snap.observations.get(feature, 0.0) + p.value
            pair = (feature, str(p.attributes.get(Attr.SEGMENT)))
            snap.segment_observations[pair] = snap.segment_observations.get(pair, 0.0) + p.value
        for p in get("ml.model.requests.rejected"):
            reason = str(p.attributes.get(Attr.REASON, "?"))
            snap.rejected[reason] = snap.rejected.get(reason, 0.0) + p.value
        for p in get("ml.concept_drift.detections"):
            detector = str(p.attributes.get(Attr.DETECTOR))
            snap.detections[detector] = snap.detections.get(detector, 0.0) + p.value
        for p in get("ml.model.expected.confusion"):
            key = (str(p.attributes.get(Attr.CLASS_PREDICTED)),
                   str(p.attributes.get(Attr.CLASS_ACTUAL)))
            snap.expected_confusion[key] = snap.expected_confusion.get(key, 0.0) + p.value
        for name, key in (("ml.model.estimated.rows", "rows"),
                          ("ml.model.estimated.error.absolute", "absolute"),
                          ("ml.model.estimated.variance", "variance")):
            for p in get(name):
                if key == "variance":
                    key = f"variance:{p.attributes.get(Attr.PERF_METRIC)}"
                snap.estimated[key] = snap.estimated.get(key, 0.0) + p.value

        base = previous if previous is not None else cls()
        dt = at - base.at if previous is not None else 0.0
        snap.interval_s = dt
        d_calls = snap.calls - base.calls
        snap.call_rate = d_calls / dt if dt > 0 else 0.0
        d_errors = snap.total_errors - base.total_errors
        snap.error_rate = d_errors / d_calls if d_calls > 0 else 0.0
        recent = list(counts)
        if base.latency_counts and len(base.latency_counts) == len(recent):
            recent = [max(0.0, a - b) for a, b in zip(recent, base.latency_counts)]
        snap.latency = {f"p{int(q * 100)}": histogram_quantile(q, bounds, recent)
                        for q in (0.5, 0.95, 0.99)}
        snap.quality_delta = _delta(snap.quality, base.quality)
        snap.observations_delta = _delta(snap.observations, base.observations)
        snap.rejected_delta = _delta(snap.rejected, base.rejected)
        snap.segment_quality_delta = _delta(snap.segment_quality, base.segment_quality)
        snap.segment_observations_delta = _delta(snap.segment_observations,
                                                 base.segment_observations)
        snap.segment_calls_delta = _delta(snap.segment_calls, base.segment_calls)
        snap.segment_errors_delta = _delta(snap.segment_errors, base.segment_errors)
        return snap


def _delta(now: Mapping[Any, float], before: Mapping[Any, float]) -> dict[Any, float]:
    return {k: v - before.get(k, 0.0) for k, v in now.items() if v - before.get(k, 0.0) > 0}
