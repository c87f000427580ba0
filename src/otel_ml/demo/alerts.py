"""The shipped alert conditions, evaluated on the demo's metric snapshot.

Each condition mirrors one alert of ``prometheus/rules/otel-ml-alerts.yml`` (same name, and the
same thresholds: both come from :mod:`otel_ml.thresholds`; ``tests/test_demo.py`` checks the
names against ``tools/gen_rules.py``, where the rules are generated from). Prometheus
evaluates PromQL over 5-minute and 1-hour windows; the demo
evaluates the equivalent on the data points it reads in process: rates over the last refresh,
drift over the monitor's drift window. ``for:`` durations are not applied: the view says
whether the condition holds *now*; Prometheus fires once it has held for the rule's ``for:``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from otel_ml._internal.stats.significance import pooled_z
from otel_ml.contract import ALL_SEGMENTS, PREDICTION_FEATURE
from otel_ml.thresholds import THRESHOLDS, Thresholds
from otel_ml.demo.snapshot import Snapshot

__all__ = ["ALERTS", "THRESHOLDS", "AlertCondition", "Thresholds", "distinct", "firing"]

T = THRESHOLDS


@dataclass(frozen=True)
class AlertCondition:
    """One alert condition.

    Attributes:
        name: Alert name in ``prometheus/rules/otel-ml-alerts.yml``.
        summary: What holding means, with the threshold.
        holds: Returns a short detail when the condition holds, else ``None``.
    """

    name: str
    summary: str
    holds: Callable[[Snapshot], str | None]


def distinct(value: float, threshold: float, digits: int = 2) -> str:
    """``value`` with enough decimals not to read as ``threshold`` (0.1003 -> ``0.1003``)."""
    while digits < 6 and round(value, digits) == round(threshold, digits) and value != threshold:
        digits += 1
    return f"{value:.{digits}f}"


def _psi(s: Snapshot, threshold: float, prediction: bool) -> str | None:
    if s.window_rows.get(ALL_SEGMENTS, sum(s.window_rows.values())) < T.drift_min_observations:
        return None
    hits = []
    for (feature, segment), scores in s.drift.items():
        if segment != ALL_SEGMENTS or (feature == PREDICTION_FEATURE) != prediction:
            continue
        psi = scores.get("psi")
        if psi is not None and psi > threshold:
            hits.append((psi, feature))
    hits.sort(reverse=True)
    return ", ".join(f"{'prediction' if f == PREDICTION_FEATURE else f} psi {v:.2f}"
                     for v, f in hits) or None


def _error_ratio(s: Snapshot) -> str | None:
    return f"{s.error_rate:.0%} of calls fail" if s.error_rate > T.error_ratio else None


def _latency(s: Snapshot) -> str | None:
    p99 = s.latency.get("p99")
    return f"p99 {p99 * 1000:.0f} ms" if p99 is not None and p99 > T.latency_p99_seconds else None


def _quality_ratio(s: Snapshot, check: str, threshold: float, with_issues: bool) -> str | None:
    hits = []
    for (feature, c), n in s.quality_delta.items():
        if c != check:
            continue
        seen = s.observations_delta.get(feature, 0.0)
        total = seen + n if with_issues else seen
        if total > 0 and n / total > threshold:
            hits.append(f"{feature} {n / total:.0%}")
    return ", ".join(sorted(hits)) or None


def _performance(s: Snapshot) -> str | None:
    if s.outcomes < T.performance_min_outcomes:
        return None
    hits = []
    for metric in ("accuracy", "f1_macro"):
        now = s.performance.get((ALL_SEGMENTS, metric))
        ref = s.reference_performance.get(metric)
        if now is not None and ref is not None and ref - now > T.performance_drop:
            hits.append(f"{metric} {now:.2f} vs {ref:.2f}")
    return ", ".join(hits) or None


def _regression_error(s: Snapshot) -> str | None:
    hits = []
    for metric in ("mae", "rmse"):
        now = s.performance.get((ALL_SEGMENTS, metric))
        ref = s.reference_performance.get(metric)
        if now is not None and ref and now / ref > T.regression_error_factor:
            hits.append(f"{metric} x{now / ref:.2f}")
    return ", ".join(hits) or None


def _fairness(s: Snapshot) -> str | None:
    hits = []
    for (attribute, metric), value in sorted(s.fairness.items()):
        if metric == "disparate_impact_ratio":
            if value < T.fairness_impact_ratio:
                hits.append(f"{attribute} {metric} {distinct(value, T.fairness_impact_ratio)}")
        elif metric in ("demographic_parity_difference", "equalized_odds_difference"):
            if value > T.fairness_difference:
                hits.append(f"{attribute} {metric} {distinct(value, T.fairness_difference)}")
    return ", ".join(hits) or None


def _concept(s: Snapshot) -> str | None:
    on = sorted(d for d, v in s.concept_drift.items() if v > 0)
    return ", ".join(on) or None


def _rejected(s: Snapshot) -> str | None:
    if s.interval_s <= 0:
        return None
    calls = s.call_rate
    hits = []
    for reason, n in s.rejected_delta.items():
        rate = n / s.interval_s
        if rate > T.rejected_min_rate and rate / max(rate + calls, 1e-9) > T.rejected_ratio:
            hits.append(reason)
    return ", ".join(sorted(hits)) or None


def _label(feature: str) -> str:
    return "prediction" if feature == PREDICTION_FEATURE else feature


def _segment_psi(s: Snapshot, prediction: bool) -> str | None:
    """A segment's PSI above its threshold and ``segment_factor`` times the fleet's."""
    hits = []
    for (feature, segment), scores in s.drift.items():
        if segment in (ALL_SEGMENTS, None) or (feature == PREDICTION_FEATURE) != prediction:
            continue
        if s.window_rows.get(segment, 0.0) < T.segment_min_rows:
            continue
        psi = scores.get("psi")
        fleet = s.drift.get((feature, ALL_SEGMENTS), {}).get("psi", 0.0)
        if psi is not None and psi > T.segment_psi and psi > T.segment_factor * fleet:
            hits.append((psi, f"{_label(feature)}@{segment}"))
    hits.sort(reverse=True)
    return ", ".join(f"{name} psi {v:.2f}" for v, name in hits) or None


def _segment_loss(s: Snapshot, metrics: tuple[str, ...], threshold: float,
                  ratio: bool) -> str | None:
    """A segment's loss against the reference above ``threshold`` and twice the fleet's."""
    hits = []
    for (segment, metric), value in sorted(s.performance.items(), key=lambda kv: str(kv[0])):
        if segment in (ALL_SEGMENTS, None) or metric not in metrics:
            continue
        if s.outcomes_by_segment.get(str(segment), 0.0) < T.segment_min_outcomes:
            continue
        ref = s.reference_performance.get(metric)
        fleet = s.performance.get((ALL_SEGMENTS, metric))
        if not ref or fleet is None:
            continue
        loss, fleet_loss = ((value / ref - 1, fleet / ref - 1) if ratio
                            else (ref - value, ref - fleet))
        if loss > threshold and loss > T.segment_factor * fleet_loss:
            hits.append(f"{metric}@{segment} {value:.2f} vs {ref:.2f}")
    return ", ".join(hits) or None


def _segment_missing(s: Snapshot) -> str | None:
    hits = []
    for (feature, segment, check), n in sorted(s.segment_quality_delta.items()):
        if check != "missing" or segment in (ALL_SEGMENTS, "None"):
            continue
        total = n + s.segment_observations_delta.get((feature, segment), 0.0)
        if total < T.segment_min_rows or n / total <= T.missing_ratio:
            continue
        fleet_n = s.quality_delta.get((feature, "missing"), 0.0)
        fleet_total = fleet_n + s.observations_delta.get(feature, 0.0)
        fleet = fleet_n / fleet_total if fleet_total else 0.0
        if n / total >= T.segment_factor * fleet:
            hits.append(f"{_label(feature)}@{segment} {n / total:.0%}")
    return ", ".join(hits) or None


def _segment_error_ratio(s: Snapshot) -> str | None:
    """A segment's share of failing calls above the threshold and twice the fleet's, with
    at least ``segment_min_calls`` calls per 5 minutes at the segment's current rate."""
    if s.interval_s <= 0:
        return None
    hits = []
    for segment, calls in sorted(s.segment_calls_delta.items()):
        if calls * 300.0 / s.interval_s < T.segment_min_calls:
            continue
        ratio = s.segment_errors_delta.get(segment, 0.0) / calls
        if ratio > T.error_ratio and ratio >= T.segment_factor * s.error_rate:
            hits.append(f"{segment} {ratio:.0%} of calls fail")
    return ", ".join(hits) or None


def _multivariate(s: Snapshot) -> str | None:
    """A segment's reconstruction error above its bound (all traffic only without segments)."""
    segmented = any(seg != ALL_SEGMENTS for seg, _ in s.multivariate)
    hits = [f"{space}@{seg} {v:.2f} > {u:.2f}" for (seg, space), (v, u)
            in sorted(s.multivariate.items())
            if v > u and (seg != ALL_SEGMENTS or not segmented)]
    return ", ".join(hits) or None


def _disagreement(s: Snapshot) -> str | None:
    if s.compared_rows < T.challenger_min_rows:
        return None
    ratio = s.disagreements / s.compared_rows
    if ratio > T.challenger_disagreement_ratio:
        return f"challenger disagrees on {ratio:.1%} of {s.compared_rows:,.0f} rows"
    return None


def _challenger_test(s: Snapshot, better: bool) -> str | None:
    """The two-proportion z of each challenger's windowed accuracy against its champion's."""
    hits = []
    for champion, challenger in s.pairs:
        a, b = s.version_performance.get(champion, {}), s.version_performance.get(challenger, {})
        if "accuracy" not in a or "accuracy" not in b:
            continue
        n_a, n_b = a.get("count", 0.0), b.get("count", 0.0)
        if min(n_a, n_b) < T.challenger_min_outcomes:
            continue
        z = pooled_z(a["accuracy"] * n_a, n_a, b["accuracy"] * n_b, n_b)
        if (better and z > T.challenger_z) or (not better and z < -T.challenger_z):
            hits.append(f"{challenger} accuracy {b['accuracy']:.3f} vs {a['accuracy']:.3f} "
                        f"(z {z:+.1f})")
    return ", ".join(hits) or None


def _estimates(s: Snapshot) -> dict[str, tuple[float, float, float]]:
    """Estimated ``accuracy`` / ``mae`` since start: ``(value, per-row variance, rows)``."""
    out = {}
    conf = s.expected_confusion
    rows = sum(conf.values())
    if rows > 0:
        right = sum(v for (p, a), v in conf.items() if p == a)
        out["accuracy"] = (right / rows, s.estimated.get("variance:accuracy", 0.0) / rows, rows)
    n = s.estimated.get("rows", 0.0)
    if not conf and n > 0 and "absolute" in s.estimated:
        out["mae"] = (s.estimated["absolute"] / n, s.estimated.get("variance:mae", 0.0) / n, n)
    return out


def _estimated_below(s: Snapshot) -> str | None:
    hits = []
    for metric, (value, var, n) in _estimates(s).items():
        ref = s.reference_performance.get(metric)
        if ref is None or n < T.estimate_min_rows:
            continue
        half = 1.96 * (var / n) ** 0.5
        if metric == "accuracy" and ref - (value + half) > T.performance_drop:
            hits.append(f"estimated accuracy {value:.3f} (reference {ref:.3f})")
        if metric == "mae" and ref > 0 and (value - half) / ref > T.regression_error_factor:
            hits.append(f"estimated MAE {value:.3g} (reference {ref:.3g})")
    return ", ".join(hits) or None


def _estimate_diverges(s: Snapshot) -> str | None:
    hits = []
    for metric, (value, var, _) in _estimates(s).items():
        realised = s.performance.get((ALL_SEGMENTS, metric))
        if realised is None or s.outcomes < T.performance_min_outcomes:
            continue
        band = 1.96 * (var / s.outcomes) ** 0.5
        scale = value if metric == "mae" and value > 0 else 1.0
        tolerance = T.estimate_mae_tolerance if metric == "mae" else T.estimate_tolerance
        if abs(realised - value) / scale > band / scale + tolerance:
            hits.append(f"{metric} realised {realised:.3g}, estimated {value:.3g}")
    return ", ".join(hits) or None


#: The conditions, in the order of the rules file.
ALERTS: tuple[AlertCondition, ...] = (
    AlertCondition("MLFeatureDriftWarning", f"a feature's PSI > {T.psi_warning}",
                   lambda s: _psi(s, T.psi_warning, prediction=False)),
    AlertCondition("MLFeatureDriftCritical", f"a feature's PSI > {T.psi_critical}",
                   lambda s: _psi(s, T.psi_critical, prediction=False)),
    AlertCondition("MLPredictionDrift", f"the predictions' PSI > {T.psi_prediction}",
                   lambda s: _psi(s, T.psi_prediction, prediction=True)),
    AlertCondition("MLModelErrorRatioHigh", f"more than {T.error_ratio:.0%} of calls fail",
                   _error_ratio),
    AlertCondition("MLModelLatencyP99High", f"p99 latency above {T.latency_p99_seconds}s",
                   _latency),
    AlertCondition("MLFeatureMissingValuesSurge",
                   f"more than {T.missing_ratio:.0%} of a feature's values missing",
                   lambda s: _quality_ratio(s, "missing", T.missing_ratio, with_issues=True)),
    AlertCondition("MLFeatureUnseenCategoriesSurge",
                   f"more than {T.unseen_ratio:.0%} of a feature's values unseen categories",
                   lambda s: _quality_ratio(s, "unseen_category", T.unseen_ratio,
                                            with_issues=False)),
    AlertCondition("MLModelPerformanceBelowReference",
                   f"accuracy or macro F1 more than {T.performance_drop} below validation",
                   _performance),
    AlertCondition("MLModelErrorAboveReference",
                   f"MAE or RMSE above {T.regression_error_factor}x validation", _regression_error),
    AlertCondition("MLFairnessGap",
                   f"parity/odds difference > {T.fairness_difference} or "
                   f"disparate impact < {T.fairness_impact_ratio}", _fairness),
    AlertCondition("MLConceptDriftDetected", "a detector sees a change in the error stream",
                   _concept),
    AlertCondition("MLRejectedRequestsSpike",
                   f"more than {T.rejected_ratio:.0%} of requests refused for one reason",
                   _rejected),
    AlertCondition("MLSegmentFeatureDrift",
                   f"a feature's PSI in a segment > {T.segment_psi} and "
                   f"{T.segment_factor}x the fleet's", lambda s: _segment_psi(s, prediction=False)),
    AlertCondition("MLSegmentPredictionDrift",
                   f"the predictions' PSI in a segment > {T.segment_psi} and "
                   f"{T.segment_factor}x the fleet's", lambda s: _segment_psi(s, prediction=True)),
    AlertCondition("MLSegmentPerformanceBelowReference",
                   f"a segment's accuracy or macro F1 more than {T.performance_drop} below "
                   f"validation and {T.segment_factor}x the fleet's drop",
                   lambda s: _segment_loss(s, ("accuracy", "f1_macro"), T.performance_drop,
                                           ratio=False)),
    AlertCondition("MLSegmentErrorAboveReference",
                   f"a segment's MAE or RMSE above {T.regression_error_factor}x validation and "
                   f"{T.segment_factor}x the fleet's increase",
                   lambda s: _segment_loss(s, ("mae", "rmse"), T.regression_error_factor - 1,
                                           ratio=True)),
    AlertCondition("MLSegmentErrorRatioHigh",
                   f"more than {T.error_ratio:.0%} of a segment's calls fail and "
                   f"{T.segment_factor}x the fleet's share", _segment_error_ratio),
    AlertCondition("MLSegmentMissingValuesSurge",
                   f"more than {T.missing_ratio:.0%} of a feature's values missing in a segment "
                   f"and {T.segment_factor}x the fleet's share", _segment_missing),
    AlertCondition("MLMultivariateDrift",
                   "a segment's reconstruction error above its reference bound", _multivariate),
    AlertCondition("MLEstimatedPerformanceBelowReference",
                   f"accuracy estimated before labels (upper band) more than "
                   f"{T.performance_drop} below validation", _estimated_below),
    AlertCondition("MLEstimateDiverges",
                   f"realised accuracy or MAE outside the estimate's band + "
                   f"{T.estimate_tolerance}", _estimate_diverges),
    AlertCondition("MLChallengerDisagreementHigh",
                   f"a shadow challenger disagrees on more than "
                   f"{T.challenger_disagreement_ratio:.0%} of rows", _disagreement),
    AlertCondition("MLChallengerWorse",
                   f"a challenger's accuracy significantly lower (|z| > {T.challenger_z})",
                   lambda s: _challenger_test(s, better=False)),
    AlertCondition("MLChallengerBetter",
                   f"a challenger's accuracy significantly higher (|z| > {T.challenger_z})",
                   lambda s: _challenger_test(s, better=True)),
)


def firing(snapshot: Snapshot) -> list[tuple[AlertCondition, str]]:
    """The conditions that hold on ``snapshot``, each with its detail."""
    out = []
    for condition in ALERTS:
        detail = condition.holds(snapshot)
        if detail:
            out.append((condition, detail))
    return out
