"""What the visual report shows, gathered from one snapshot of the feature statistics.

Every figure comes from the code that computes the exported metrics and the in-process
reports: the drift report (:func:`~otel_ml._internal.monitor.feature_readout.evaluate_window`
on the snapshot's windows), the counts per reference bin of the same windows, the data-quality
counters (:func:`~otel_ml._internal.monitor.feature_readout.issue_observations`) and the
performance report. Nothing here recomputes a statistic; it only arranges them (orders the
features by how far past its threshold each one is, lays out the heat map).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from otel_ml._internal.monitor.feature_readout import Snapshot, issue_observations
from otel_ml._internal.stats.drift import METHODS, DriftConfig, DriftReport, FeatureDrift
from otel_ml._internal.stats.performance import PerformanceReport
from otel_ml.contract import ALL_SEGMENTS, PREDICTION_FEATURE, Attr, Check
from otel_ml.thresholds import THRESHOLDS
from otel_ml.version import __version__

__all__ = ["Distribution", "FeatureView", "HeatCell", "ReportContent", "build_content",
           "reference_digest"]

#: Data-quality checks shown per feature, with their share of the rows.
FEATURE_CHECKS = (Check.MISSING, Check.NON_FINITE, Check.OUT_OF_RANGE, Check.UNSEEN_CATEGORY,
                  Check.TYPE_MISMATCH)
#: Share of a feature's rows above which a check is a problem (the alert thresholds).
QUALITY_LIMITS = {Check.MISSING: THRESHOLDS.missing_ratio,
                  Check.UNSEEN_CATEGORY: THRESHOLDS.unseen_ratio}


@dataclass(frozen=True)
class Distribution:
    """Reference vs current shares over the reference bins of one column.

    Attributes:
        labels: Each bin's label (a value range, or a category).
        reference: The reference share of each bin.
        current: The window's share of each bin (of ``count`` binned values).
        count: Values of the window that fell in a bin.
    """

    labels: list[str]
    reference: list[float]
    current: list[float]
    count: int


@dataclass(frozen=True)
class FeatureView:
    """One feature (or the predictions) as the report shows it.

    Attributes:
        name: Feature name (``"__prediction__"``: the predictions).
        kind: ``"numeric"`` or ``"categorical"``.
        drift: Its drift over the window (all segments).
        distribution: Reference vs current shares (``None``: not binned).
        quality: Check -> ``(count, share of the rows)``, for the checks that counted any.
        severity: How far past its decision threshold it is (1.0: at the threshold).
    """

    name: str
    kind: str
    drift: FeatureDrift
    distribution: Distribution | None
    quality: dict[str, tuple[int, float]]
    severity: float


@dataclass(frozen=True)
class HeatCell:
    """One cell of the features x segments heat map.

    Attributes:
        segment: Segment value. score: The heat map method's score (``None``: not computable).
        level: ``score`` relative to twice its threshold, clipped to 0..1 (the colour).
        drifted: The decision of the rule in this segment. reason: Its words.
        rows: Values of the feature in the segment's window.
    """

    segment: str
    score: float | None
    level: float
    drifted: bool
    reason: str
    rows: int


@dataclass
class ReportContent:
    """Everything one report shows.

    Attributes:
        title: Page title. model, version: The model. generated: ISO time of the report.
        drift: The drift report (all traffic, with ``segments``).
        rule: The decision rule in words. rule_rows: Its parameters, ``(name, value)``.
        features: Feature views, most drifted first.
        prediction: The predictions' view, if profiled.
        segments: Segment values of the heat map's columns.
        heat_method: The method the heat map colours by. heat_threshold: Its threshold.
        heat: Feature -> its cells, one per segment (features in :attr:`features` order, then
            the predictions).
        quality: ``(feature, check, count, share, over its limit)``, largest share first.
        performance: The performance report (``None``: no outcome side).
        confusion_labels: Classes of the confusion matrix (actual = rows, predicted = columns).
        provenance: ``(what, value)`` rows.
    """

    title: str
    model: str
    version: str
    generated: str
    drift: DriftReport
    rule: str
    rule_rows: list[tuple[str, str]]
    features: list[FeatureView]
    prediction: FeatureView | None
    segments: list[str]
    heat_method: str
    heat_threshold: float
    heat: dict[str, list[HeatCell]]
    quality: list[tuple[str, str, int, float, bool]]
    performance: PerformanceReport | None
    confusion_labels: list[str] = field(default_factory=list)
    provenance: list[tuple[str, str]] = field(default_factory=list)

    def fact(self, what: str) -> str:
        """The provenance row ``what`` (``""`` when absent)."""
        return next((v for k, v in self.provenance if k == what), "")


def reference_digest(reference: Any) -> str:
    """SHA-256 of a reference's JSON form (keys sorted): the same profile, the same digest."""
    text = json.dumps(reference.to_dict(), sort_keys=True, allow_nan=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build_content(snap: Snapshot, drift: DriftReport, performance: PerformanceReport | None,
                  *, reference: Any, model: str, version: str, window: str,
                  provenance: list[tuple[str, str]] | None = None,
                  title: str | None = None) -> ReportContent:
    """Arrange one snapshot's drift, distributions, quality and performance for the page.

    Args:
        snap: The feature statistics' snapshot ``drift`` was evaluated on.
        drift: The drift report of ``snap`` (all traffic, ``segments`` per segment).
        performance: The performance report over the same window, or ``None``.
        reference: The reference profile (``None``: no distributions).
        model, version: The model.
        window: The window in words (e.g. ``"every row of data.csv"``).
        provenance: Extra ``(what, value)`` rows (data file, its hash, ...); a row named like
            a default one (``"window"``) replaces it.
        title: Page title (default: the model's name).
    """
    rows_of = _rows_by_segment(snap)
    quality_counts = _quality(snap)
    total_rows = sum(rows_of.values())
    views = {f.feature: _view(snap, f, drift.config, quality_counts, total_rows)
             for f in list(drift.features.values())}
    ordered = sorted(views.values(), key=lambda v: (not v.drift.drifted, -v.severity, v.name))
    prediction = None
    if drift.prediction is not None:
        prediction = _view(snap, drift.prediction, drift.config, quality_counts, total_rows)
    heat_method = _heat_method(drift.config)
    threshold = drift.config.threshold(heat_method)
    segments = sorted(drift.segments)
    rows_shown = ordered + ([prediction] if prediction is not None else [])
    heat = {v.name: [_cell(drift.segments[s], v.name, s, heat_method, threshold)
                     for s in segments] for v in rows_shown} if segments else {}
    quality = sorted(((f, c, n, n / total_rows if total_rows else 0.0,
                       n / total_rows > QUALITY_LIMITS.get(c, math.inf) if total_rows else False)
                      for (f, c), n in quality_counts.items() if n),
                     key=lambda q: (-q[3], q[0], q[1]))
    confusion_labels: list[str] = []
    if performance is not None and performance.confusion:
        confusion_labels = sorted(set(performance.confusion)
                                  | {p for row in performance.confusion.values() for p in row})
    rule, rule_rows = _rule(drift)
    rows = [("model", f"{model} {version}"), ("window", window),
            ("rows in the window", f"{drift.rows:,}"),
            ("otel_ml version", __version__),
            ("report generated", _iso(datetime.now(timezone.utc)))]
    if reference is not None:
        rows += [("reference created", str(reference.created)),
                 ("reference rows", f"{reference.rows:,}"),
                 ("reference sha256 (JSON form)", reference_digest(reference))]
    else:
        rows.append(("reference", "none: no drift or distributions"))
    generated = rows[4][1]
    extra = dict(provenance or ())
    rows = [(k, extra.pop(k, v)) for k, v in rows] + list(extra.items())
    return ReportContent(
        title=title or f"{model} {version}: drift, data quality and performance",
        model=model, version=version, generated=generated, drift=drift, rule=rule,
        rule_rows=rule_rows, features=ordered, prediction=prediction, segments=segments,
        heat_method=heat_method, heat_threshold=threshold, heat=heat, quality=quality,
        performance=performance, confusion_labels=confusion_labels, provenance=rows)


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


def _rows_by_segment(snap: Snapshot) -> dict[str, int]:
    return {k: int(t.rows) for k, t in snap.totals.items()}


def _quality(snap: Snapshot) -> dict[tuple[str, str], int]:
    """Feature, check -> count over every segment (the ``ml.data_quality.issues`` points)."""
    out: dict[tuple[str, str], int] = {}
    for value, attrs in issue_observations(snap):
        key = (str(attrs[Attr.FEATURE]), str(attrs[Attr.CHECK]))
        out[key] = out.get(key, 0) + int(value)
    return out


def _view(snap: Snapshot, f: FeatureDrift, config: DriftConfig,
          quality: dict[tuple[str, str], int], total_rows: int) -> FeatureView:
    checks = {c: (quality.get((f.feature, c), 0),
                  quality.get((f.feature, c), 0) / total_rows if total_rows else 0.0)
              for c in FEATURE_CHECKS if quality.get((f.feature, c), 0)}
    return FeatureView(f.feature, f.kind, f, _distribution(snap, f.feature), checks,
                       _severity(f, config))


def _severity(f: FeatureDrift, config: DriftConfig) -> float:
    """How far past the threshold the deciding score is: score / threshold for distances,
    log p / log threshold for tests; the default rule takes its effect size."""
    if not f.computable:
        return 0.0
    if config.method is not None:
        method = config.method
    else:
        method = config.numeric_effect if f.kind == "numeric" else config.categorical_effect
    if METHODS[method].is_test:
        p = f.pvalues.get(method)
        threshold = config.threshold(method)
        if p is None:
            return 0.0
        return math.log(max(p, 1e-300)) / math.log(threshold)
    value = f.scores.get(method)
    if value is None:
        return 0.0
    minimum = config.threshold(method) if config.method is not None else (
        config.numeric_min_effect if f.kind == "numeric" else config.categorical_min_effect)
    return value / minimum if minimum > 0 else value


def _distribution(snap: Snapshot, feature: str) -> Distribution | None:
    plan = snap.plan
    window = snap.windows.get(ALL_SEGMENTS)
    if plan is None or window is None:
        return None
    c = plan.labels.index(feature) if feature in plan.labels else -1
    if c < 0 or not plan.binned[c]:
        return None
    start, size = int(plan.reference_offsets[c]), int(plan.reference_sizes[c])
    counts = np.asarray(window.bins[start: start + size], dtype=np.float64)
    total = float(counts.sum())
    current = (counts / total).tolist() if total > 0 else [0.0] * size
    return Distribution(_bin_labels(plan, c, size), [float(s) for s in plan.shares[c]],
                        current, int(total))


def _bin_labels(plan: Any, c: int, size: int) -> list[str]:
    edges = plan.reference_edges[c]
    if edges is not None:
        e = [_short(x) for x in edges]
        if not e:
            return ["all"]
        return [f"< {e[0]}"] + [f"{a} to {b}" for a, b in zip(e[:-1], e[1:])] + [f">= {e[-1]}"]
    codes = plan.categories[c]
    categories = list(plan.profiles[c].categories[: codes.other])
    return [str(x) for x in categories] + ["(other)"][: max(size - len(categories), 0)]


def _short(x: float) -> str:
    return f"{x:.4g}"


def _heat_method(config: DriftConfig) -> str:
    """The heat map's score: the configured distance, else the Jensen-Shannon distance (0..1,
    numeric and categorical alike)."""
    if config.method is not None and not METHODS[config.method].is_test:
        return config.method
    return "jensen_shannon"


def _cell(report: DriftReport, feature: str, segment: str, method: str,
          threshold: float) -> HeatCell:
    f = report.features.get(feature) if feature != PREDICTION_FEATURE else report.prediction
    if f is None:
        return HeatCell(segment, None, 0.0, False, "not tracked", 0)
    score = f.scores.get(method)
    level = min(max(score / (2 * threshold), 0.0), 1.0) if score is not None and threshold > 0 \
        else 0.0
    return HeatCell(segment, score, level, f.drifted, f.reason, f.rows)


def _rule(drift: DriftReport) -> tuple[str, list[tuple[str, str]]]:
    """The decision rule in words and its parameters (what ``otel-ml report`` prints)."""
    c = drift.config
    if c.method is not None:
        m = METHODS[c.method]
        side = "p-value <= " if m.is_test else "score >= "
        return (f"a feature drifted when its {c.method} {side}{c.threshold(c.method):.3g}",
                [("method", c.method), ("threshold", f"{c.threshold(c.method):.3g}"),
                 ("minimum rows", str(c.min_rows))])
    return ("a feature drifted when its test's p-value is at most alpha per test (KS for "
            "numeric, chi-squared for categorical features) and its effect size at least "
            "its minimum",
            [("alpha", f"{c.alpha:.3g}"), ("correction", c.correction),
             ("alpha per test", f"{drift.alpha_per_test:.3g}"),
             ("numeric effect", f"{c.numeric_effect} >= {c.numeric_min_effect:.3g}"),
             ("categorical effect", f"{c.categorical_effect} >= {c.categorical_min_effect:.3g}"),
             ("minimum rows", str(c.min_rows))])
