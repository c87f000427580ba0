"""The shipped alert conditions, evaluated on the demo's metric snapshot.

Each condition mirrors one alert of ``prometheus/rules/`` (same name, same threshold): the
rules evaluate PromQL in Prometheus, the demo evaluates the equivalent on the data points it
reads in process. ``for:`` durations are not applied here: the view says whether the condition
holds *now*; Prometheus fires after it has held for the rule's ``for:``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..contract import ALL_SEGMENTS, PREDICTION_FEATURE
from .snapshot import Snapshot

__all__ = ["ALERTS", "AlertCondition", "firing"]


@dataclass(frozen=True)
class AlertCondition:
    """One alert condition.

    Attributes:
        name: Alert name in ``prometheus/rules/``.
        summary: What holding means, with the threshold.
        holds: Returns a short detail when the condition holds, else ``None``.
    """

    name: str
    summary: str
    holds: Callable[[Snapshot], str | None]


def _error_rate(s: Snapshot) -> str | None:
    return f"{s.error_rate:.0%} of calls failing" if s.error_rate > 0.05 else None


def _latency(s: Snapshot) -> str | None:
    p99 = s.latency.get("p99")
    return f"p99 {p99 * 1000:.0f} ms" if p99 is not None and p99 > 0.5 else None


def _feature_drift(s: Snapshot) -> str | None:
    features = [f for f in s.drifted_features(ALL_SEGMENTS) if f != PREDICTION_FEATURE]
    return ", ".join(features) if features else None


def _segment_drift(s: Snapshot) -> str | None:
    pairs = sorted({(seg, f) for f, seg in s.drifted if seg not in (ALL_SEGMENTS, None)
                    and f != PREDICTION_FEATURE})
    return ", ".join(f"{f}@{seg}" for seg, f in pairs) if pairs else None


def _prediction_drift(s: Snapshot) -> str | None:
    return "prediction distribution" if PREDICTION_FEATURE in s.drifted_features(ALL_SEGMENTS) else None


def _quality(s: Snapshot) -> str | None:
    problems = sum(s.quality_delta.values())
    if problems <= 0:
        return None
    worst = max(s.quality_delta.items(), key=lambda kv: kv[1])[0]
    return f"{problems:.0f} new problems, most {worst[1]} in {worst[0]}"


def _accuracy(s: Snapshot) -> str | None:
    now = s.performance.get((ALL_SEGMENTS, "accuracy"))
    ref = s.reference_performance.get("accuracy")
    if now is None or ref is None:
        return None
    return f"accuracy {now:.2f} vs {ref:.2f} on validation" if ref - now > 0.05 else None


def _fairness(s: Snapshot) -> str | None:
    worst = [(attr, v) for (attr, metric), v in s.fairness.items()
             if metric == "disparate_impact_ratio" and v < 0.8]
    return ", ".join(f"{a}: disparate impact {v:.2f}" for a, v in worst) or None


def _concept(s: Snapshot) -> str | None:
    on = [d for d, v in s.concept_drift.items() if v >= 1]
    return ", ".join(on) if on else None


#: The conditions, in the order the view lists them.
ALERTS: tuple[AlertCondition, ...] = (
    AlertCondition("MLModelHighErrorRate", "more than 5% of predict calls fail", _error_rate),
    AlertCondition("MLModelHighLatency", "p99 latency above 500 ms", _latency),
    AlertCondition("MLFeatureDrift", "a feature drifted over the drift window", _feature_drift),
    AlertCondition("MLSegmentDrift", "a feature drifted within one segment", _segment_drift),
    AlertCondition("MLPredictionDrift", "the prediction distribution drifted", _prediction_drift),
    AlertCondition("MLDataQualityIssues", "new data-quality problems in the inputs", _quality),
    AlertCondition("MLAccuracyDrop", "accuracy more than 5 points below validation", _accuracy),
    AlertCondition("MLFairnessDisparity", "disparate impact ratio below 0.8", _fairness),
    AlertCondition("MLConceptDrift", "a detector sees a change in the error stream", _concept),
)


def firing(snapshot: Snapshot) -> list[tuple[AlertCondition, str]]:
    """The conditions that hold on ``snapshot``, each with its detail."""
    out = []
    for condition in ALERTS:
        detail = condition.holds(snapshot)
        if detail:
            out.append((condition, detail))
    return out
