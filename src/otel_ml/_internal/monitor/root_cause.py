"""Where is it coming from: segments and features ranked by their part in a change.

:func:`root_cause_report` reads only the public reports (a :class:`DriftReport` with its
per-segment reports, a :class:`PerformanceReport` with its per-segment metrics and error by
reference bin) and ranks, as the root-cause recording rules of ``tools/gen_rules.py`` do in
PromQL (the *Where is it coming from* dashboard row):

* segments by their contribution to the prediction drift: share of the rows in the window x
  PSI of the predictions within the segment;
* segments by their contribution to the performance loss: share of the labelled rows x loss
  against the reference (points of accuracy or macro F1 lost; relative increase of MAE or RMSE);
* within the top segments, features by PSI;
* features by the spread of the error rate (MAE for a regressor) across their reference bins.

Every entry (:class:`Cause`) says what changed, by how much, against which threshold, and
whether the matching per-segment alert's condition holds (threshold, at least
``segment_factor`` x the fleet-wide value, enough rows): the thresholds are those of
:mod:`otel_ml.thresholds`, the same the alerts use.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from otel_ml.contract import PREDICTION_FEATURE
from otel_ml.thresholds import THRESHOLDS, Thresholds
from otel_ml._internal.stats.drift import DriftReport, FeatureDrift
from otel_ml._internal.stats.performance import PerformanceReport

__all__ = ["Cause", "RootCauseReport", "root_cause_report", "TOP_SEGMENTS", "TOP_FEATURES"]

#: Segments ranked in each list, and features ranked within each top segment (the same ``k``
#: as the ``topk`` recording rules).
TOP_SEGMENTS = 3
TOP_FEATURES = 5

#: Performance metrics where higher is better (loss = reference - value) and where lower is
#: better (loss = value / reference - 1).
_HIGHER_BETTER = ("accuracy", "f1_macro")
_LOWER_BETTER = ("mae", "rmse")


@dataclass(frozen=True)
class Cause:
    """One ranked entry of a :class:`RootCauseReport`.

    Attributes:
        kind: ``"prediction_drift"`` or ``"performance"`` (a segment's contribution),
            ``"feature_drift"`` (a feature within a segment) or ``"error_by_bin"`` (a feature's
            error-rate spread across its reference bins, all segments).
        measure: What was measured: ``"psi"``, a performance metric name (``"accuracy"``,
            ``"mae"``...) or ``"error_spread"``.
        value: How much it changed: the PSI, the loss against the reference, or the spread.
        threshold: The threshold the value is held to (from :mod:`otel_ml.thresholds`);
            ``None`` for the error-by-bin ranking, which no alert judges.
        exceeded: Whether the matching alert condition holds: value above the threshold, at
            least ``segment_factor`` x the fleet-wide value and enough rows (for segments).
        segment: The segment (``None`` for fleet-wide entries).
        feature: The feature (``None`` for segment entries).
        fleet: The same figure over all traffic, when there is one.
        share: Share of the rows (drift) or labelled rows (performance) the segment holds.
        contribution: What the ranking sorts by: ``share x value`` for segments, ``value``
            for features.
        rows: Rows (or labelled rows) behind the figure.
        detail: Extra context in words (e.g. the worst and best bins).
    """

    kind: str
    measure: str
    value: float
    threshold: float | None
    exceeded: bool
    segment: str | None = None
    feature: str | None = None
    fleet: float | None = None
    share: float | None = None
    contribution: float = 0.0
    rows: int = 0
    detail: str = ""

    def __str__(self) -> str:
        where = " / ".join(x for x in (self.segment and f"segment {self.segment}",
                                       self.feature) if x)
        context = [f"threshold {_fmt(self.threshold)}"] if self.threshold is not None else []
        if self.fleet is not None:
            context.append(f"all traffic {_fmt(self.fleet)}")
        text = f"{where}: {self.measure} {_fmt(self.value)}"
        if context:
            text += f" ({', '.join(context)})"
        if self.share is not None:
            text += f", {self.share:.0%} of the rows -> contribution {_fmt(self.contribution)}"
        if self.detail:
            text += f"; {self.detail}"
        return text + (" [ALERT]" if self.exceeded else "")


@dataclass(frozen=True)
class RootCauseReport:
    """Segments and features ranked by their part in the prediction drift and the performance
    loss (``monitor.root_cause_report()``).

    Attributes:
        model: Model name.
        version: Model version.
        prediction_drift: Segments by contribution to the prediction drift, largest first.
        performance: Segments by contribution to the performance loss, largest first (the
            top segments of each metric that has a reference value).
        features: Segment to its features by PSI, largest first, for the top segments of both
            rankings.
        error_by_bin: Features by error-rate spread across their reference bins, largest first.
        fleet_prediction_psi: PSI of the predictions over all traffic (``None``: unknown).
        fleet_loss: Metric to the loss over all traffic.
        reason: Why nothing could be ranked (e.g. no segments), else ``""``.
    """

    model: str
    version: str
    prediction_drift: tuple[Cause, ...] = ()
    performance: tuple[Cause, ...] = ()
    features: dict[str, tuple[Cause, ...]] = field(default_factory=dict)
    error_by_bin: tuple[Cause, ...] = ()
    fleet_prediction_psi: float | None = None
    fleet_loss: dict[str, float] = field(default_factory=dict)
    reason: str = ""

    @property
    def top_segment(self) -> str | None:
        """The segment most responsible: the first whose alert condition holds (performance
        first, then prediction drift), else the largest contribution to the prediction drift."""
        for causes in (self.performance, self.prediction_drift):
            for cause in causes:
                if cause.exceeded:
                    return cause.segment
        ranked = self.performance or self.prediction_drift
        return ranked[0].segment if ranked and ranked[0].contribution > 0 else None

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-serialisable)."""
        return {
            "model": self.model, "version": self.version, "top_segment": self.top_segment,
            "prediction_drift": [asdict(c) for c in self.prediction_drift],
            "performance": [asdict(c) for c in self.performance],
            "features": {s: [asdict(c) for c in cs] for s, cs in self.features.items()},
            "error_by_bin": [asdict(c) for c in self.error_by_bin],
            "fleet_prediction_psi": self.fleet_prediction_psi,
            "fleet_loss": dict(self.fleet_loss), "reason": self.reason,
        }

    def __str__(self) -> str:
        lines = [f"root cause of {self.model} {self.version}: "
                 + (f"segment {self.top_segment}" if self.top_segment else
                    self.reason or "no segment stands out")]
        for title, causes in (("segments by contribution to the prediction drift",
                               self.prediction_drift),
                              ("segments by contribution to the performance loss",
                               self.performance)):
            if causes:
                lines.append(f"  {title}:")
                lines.extend(f"    {i}. {c}" for i, c in enumerate(causes, 1))
        for segment, causes in self.features.items():
            lines.append(f"  features of segment {segment} by PSI:")
            lines.extend(f"    {i}. {c}" for i, c in enumerate(causes, 1))
        if self.error_by_bin:
            lines.append("  features by error-rate spread across reference bins:")
            lines.extend(f"    {i}. {c}" for i, c in enumerate(self.error_by_bin, 1))
        return "\n".join(lines)


def root_cause_report(drift: DriftReport, performance: PerformanceReport, *,
                      thresholds: Thresholds = THRESHOLDS, top_segments: int = TOP_SEGMENTS,
                      top_features: int = TOP_FEATURES) -> RootCauseReport:
    """Rank segments and features by their part in the drift and the performance loss.

    Args:
        drift: The monitor's drift report (all traffic, with ``.segments``).
        performance: The monitor's performance report (with ``by_segment`` and
            ``error_by_bin``).
        thresholds: The alert thresholds (default: the shipped ones).
        top_segments: Segments kept in each ranking (per metric for the performance).
        top_features: Features kept per top segment and in the error-by-bin ranking.

    Returns:
        The ranking; empty lists (and a ``reason``) when there is nothing to rank.
    """
    t = thresholds
    fleet_psi = _psi(drift.prediction)
    drift_ranked = _rank(_drift_causes(drift, fleet_psi, t))[:top_segments]
    fleet_loss = _losses(performance.metrics, performance.reference)
    by_metric: dict[str, list[Cause]] = {}
    for cause in _performance_causes(performance, fleet_loss, t):
        by_metric.setdefault(cause.measure, []).append(cause)
    perf_ranked = _rank([c for causes in by_metric.values() for c in _rank(causes)[:top_segments]])
    tops = list(dict.fromkeys(c.segment for c in (*drift_ranked, *perf_ranked)
                              if c.segment is not None and c.contribution > 0))
    features = {s: tuple(_rank(_feature_causes(drift.segments[s], drift, t))[:top_features])
                for s in tops if s in drift.segments}
    reason = "" if drift.segments or performance.by_segment else (
        "no segments: set segment_by on the monitor")
    return RootCauseReport(
        model=performance.model, version=performance.version,
        prediction_drift=tuple(drift_ranked), performance=tuple(perf_ranked),
        features={s: cs for s, cs in features.items() if cs},
        error_by_bin=tuple(_rank(_error_bin_causes(performance.error_by_bin))[:top_features]),
        fleet_prediction_psi=fleet_psi, fleet_loss=fleet_loss, reason=reason)


# ---------------------------------------------------------------------------- the rankings
def _drift_causes(drift: DriftReport, fleet_psi: float | None, t: Thresholds) -> list[Cause]:
    total = sum(r.rows for r in drift.segments.values())
    out = []
    for segment, report in drift.segments.items():
        psi = _psi(report.prediction)
        if psi is None or total <= 0:
            continue
        share = report.rows / total
        rows = report.prediction.rows if report.prediction is not None else 0
        out.append(Cause(
            kind="prediction_drift", measure="psi", value=psi, threshold=t.segment_psi,
            exceeded=_segment_alert(psi, t.segment_psi, fleet_psi, rows >= t.segment_min_rows, t),
            segment=segment, feature=PREDICTION_FEATURE, fleet=fleet_psi, share=share,
            contribution=share * psi, rows=rows))
    return out


def _performance_causes(perf: PerformanceReport, fleet_loss: Mapping[str, float],
                        t: Thresholds) -> list[Cause]:
    counts = {s: m.get("count", 0.0) for s, m in perf.by_segment.items()}
    total = sum(counts.values())
    out = []
    for segment, metrics in perf.by_segment.items():
        if total <= 0:
            break
        share = counts[segment] / total
        for metric, loss in _losses(metrics, perf.reference).items():
            threshold = (t.performance_drop if metric in _HIGHER_BETTER
                         else t.regression_error_factor - 1.0)
            enough = counts[segment] >= t.segment_min_outcomes
            out.append(Cause(
                kind="performance", measure=metric, value=loss, threshold=threshold,
                exceeded=_segment_alert(loss, threshold, fleet_loss.get(metric), enough, t),
                segment=segment, fleet=fleet_loss.get(metric), share=share,
                contribution=share * loss, rows=int(counts[segment]),
                detail=f"{metric} {_fmt(metrics[metric])} against "
                       f"{_fmt(perf.reference[metric])} on validation data"))
    return out


def _feature_causes(segment: DriftReport, fleet: DriftReport, t: Thresholds) -> list[Cause]:
    out = []
    for name, f in segment.features.items():
        psi = _psi(f)
        if psi is None:
            continue
        fleet_psi = _psi(fleet.features.get(name))
        out.append(Cause(
            kind="feature_drift", measure="psi", value=psi, threshold=t.segment_psi,
            exceeded=_segment_alert(psi, t.segment_psi, fleet_psi,
                                    f.rows >= t.segment_min_rows, t),
            segment=segment.segment, feature=name, fleet=fleet_psi, contribution=psi,
            rows=f.rows, detail=f.reason if f.drifted else ""))
    return out


def _error_bin_causes(error_by_bin: Mapping[str, Mapping[str, Mapping[str, float]]]
                      ) -> list[Cause]:
    out = []
    for feature, cells in error_by_bin.items():
        if len(cells) < 2:
            continue
        worst = max(cells, key=lambda b: cells[b]["error"])
        best = min(cells, key=lambda b: cells[b]["error"])
        spread = cells[worst]["error"] - cells[best]["error"]
        out.append(Cause(
            kind="error_by_bin", measure="error_spread", value=spread, threshold=None,
            exceeded=False, feature=feature, contribution=spread,
            rows=int(sum(c["count"] for c in cells.values())),
            detail=(f"bin {worst}: {_fmt(cells[worst]['error'])} over "
                    f"{int(cells[worst]['count'])} rows, bin {best}: "
                    f"{_fmt(cells[best]['error'])} over {int(cells[best]['count'])} rows")))
    return out


# ---------------------------------------------------------------------------- helpers
def _segment_alert(value: float, threshold: float, fleet: float | None, enough: bool,
                   t: Thresholds) -> bool:
    """The per-segment alert condition: above the threshold, at least ``segment_factor`` x the
    fleet-wide value (the segment differs from the rest), and enough rows."""
    return (enough and value > threshold
            and (fleet is None or value > t.segment_factor * fleet))


def _losses(metrics: Mapping[str, float], reference: Mapping[str, float]) -> dict[str, float]:
    """Loss against the reference, larger is worse (the ``loss1h`` recording rules)."""
    out = {}
    for name in _HIGHER_BETTER:
        if name in metrics and name in reference:
            out[name] = reference[name] - metrics[name]
    for name in _LOWER_BETTER:
        if name in metrics and reference.get(name, 0) > 0:
            out[name] = metrics[name] / reference[name] - 1.0
    return out


def _psi(f: FeatureDrift | None) -> float | None:
    if f is None:
        return None
    psi = f.scores.get("psi")
    return float(psi) if psi is not None and math.isfinite(psi) else None


def _rank(causes: list[Cause]) -> list[Cause]:
    return sorted(causes, key=lambda c: (-c.contribution, c.segment or "", c.feature or ""))


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3g}"
