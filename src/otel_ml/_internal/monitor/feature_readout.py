"""Feature read-out: a snapshot of the feature statistics, its drift, and the ten metrics.

A :class:`Snapshot` is taken at collection time (one per collection, reused by every metric of
it) and read by the collectors of :func:`collectors`; drift is evaluated on the snapshot's
windows once, by the first metric that needs it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from otel_ml._internal.core.log import internal_error
from otel_ml._internal.monitor.analysis import Collector
from otel_ml._internal.stats.binplan import BinPlan
from otel_ml._internal.stats.drift import DriftConfig, DriftReport, FeatureDrift, evaluate
from otel_ml._internal.stats.drift_fine import fine_scores
from otel_ml._internal.stats.ring import Window
from otel_ml.contract import ALL_SEGMENTS, NO_SEGMENT, Attr, Check

__all__ = ["SchemaKey", "SegmentTotals", "Snapshot", "collectors", "evaluate_window",
           "issue_observations", "segment_keys"]


class SchemaKey(NamedTuple):
    """Where a schema issue is counted: segment, reported feature name, check."""

    segment: str
    feature: str
    check: str


class SegmentTotals:
    """Cumulative counters of one segment (since start, not windowed).

    Attributes:
        rows: Rows. bins: Counts per reference bin. issues: ``(columns, checks)`` counts.
        outliers: Rows scored as outliers.
    """

    __slots__ = ("bins", "issues", "outliers", "rows")

    def __init__(self, rows: int, bins: np.ndarray, issues: np.ndarray, outliers: int) -> None:
        self.rows = rows
        self.bins = bins
        self.issues = issues
        self.outliers = outliers


class Snapshot:
    """The feature statistics at one moment, copied out of the live counters.

    Attributes:
        at: When it was taken (monotonic seconds).
        plan: The bin plan (``None``: nothing seen yet without a reference).
        totals: Segment -> cumulative counters.
        windows: Segment -> window sums (plus :data:`ALL_SEGMENTS`, their total).
        schema_issues: Schema issue counts outside the plan's columns.
        served: Metrics that read this snapshot already (a second read takes a new one).
        reports: Segment key -> drift report, evaluated on first use.
    """

    __slots__ = ("at", "plan", "reports", "schema_issues", "served", "totals", "windows")

    def __init__(self, at: float, plan: BinPlan | None) -> None:
        self.at = at
        self.plan = plan
        self.totals: dict[str, SegmentTotals] = {}
        self.windows: dict[str, Window] = {}
        self.schema_issues: dict[SchemaKey, int] = {}
        self.served: set[str] = set()
        self.reports: dict[str, DriftReport] | None = None


def segment_keys(snap: Snapshot) -> list[str]:
    """Keys whose windowed values are exported: all traffic, plus each segment when any."""
    keys = [k for k in snap.windows if k != ALL_SEGMENTS]
    if keys == [NO_SEGMENT] or not keys:
        return [ALL_SEGMENTS] if snap.windows else []
    return [ALL_SEGMENTS] + sorted(keys)


def evaluate_window(plan: BinPlan | None, window: Window, key: str, config: DriftConfig,
                    window_s: float) -> DriftReport:
    """Drift of the window ``window`` of segment ``key`` against the plan's reference."""
    segment = None if key == ALL_SEGMENTS else key
    if plan is None or plan.drift_reference is None:
        return DriftReport(segment, window.rows, window_s, {}, None, config, config.alpha,
                           time.time(), reason="no reference profile: drift needs one")
    ref = plan.drift_reference
    counts = np.zeros((len(plan.binned_columns), ref.width))
    for i, c in enumerate(plan.binned_columns):
        start = plan.reference_offsets[c]
        size = plan.reference_sizes[c]
        counts[i, :size] = window.bins[start: start + size]
    prediction_index = plan.binned_columns.index(plan.n_features) \
        if plan.prediction_kind and plan.binned[plan.n_features] else None
    with np.errstate(all="ignore"):
        fine = None
        if plan.fine_rows and window.extended.shape[0] == plan.n_extended:
            fine = fine_scores(ref.fine, *plan.fine_cells(window.extended, window.tails))
        return evaluate(ref, counts, config, segment=segment, rows=window.rows,
                        window_s=window_s, prediction_index=prediction_index,
                        outside=window.outside[plan.binned_columns], fine=fine)


def collectors(read: Callable[[str], Snapshot], config: DriftConfig,
               window_s: float) -> dict[str, Collector]:
    """The feature metrics' collectors, each reading the snapshot ``read(metric)`` gives.

    Args:
        read: Gives the snapshot to read for a metric (one per collection).
        config: The drift decision rule.
        window_s: The window's length (for the reports).
    """

    def reports(snap: Snapshot) -> dict[str, DriftReport]:
        if snap.reports is None:
            snap.reports = {k: evaluate_window(snap.plan, snap.windows[k], k, config, window_s)
                            for k in segment_keys(snap)}
        return snap.reports

    def guard(name: str, fn: Callable[[Snapshot], list]) -> Collector:
        def collect() -> list:
            try:
                return fn(read(name))
            except Exception as exc:
                internal_error(f"collect:{name}", exc)
                return []
        return collect

    return {
        "ml.feature.observations": guard("ml.feature.observations", _observations),
        "ml.reference.bin.share": guard("ml.reference.bin.share", _shares),
        "ml.feature.mean": guard("ml.feature.mean", lambda s: _moments(s, mean=True)),
        "ml.feature.stddev": guard("ml.feature.stddev", lambda s: _moments(s, mean=False)),
        "ml.feature.drift.score": guard("ml.feature.drift.score",
                                        lambda s: _per_method(reports(s), scores=True)),
        "ml.feature.drift.pvalue": guard("ml.feature.drift.pvalue",
                                         lambda s: _per_method(reports(s), scores=False)),
        "ml.feature.drifted": guard("ml.feature.drifted", lambda s: _drifted(reports(s))),
        "ml.drift.window.rows": guard("ml.drift.window.rows", _window_rows),
        "ml.data_quality.issues": guard("ml.data_quality.issues", issue_observations),
        "ml.model.outliers": guard("ml.model.outliers", _outliers),
    }


def _observations(snap: Snapshot) -> list:
    plan = snap.plan
    out: list = []
    if plan is None or not plan.n_reference:
        return out
    for key, totals in snap.totals.items():
        for c in plan.binned_columns:
            start = int(plan.reference_offsets[c])
            name = plan.labels[c]
            for j, label in enumerate(plan.bin_labels[c]):
                out.append((int(totals.bins[start + j]),
                            {Attr.FEATURE: name, Attr.SEGMENT: key, Attr.BIN: label}))
    return out


def _shares(snap: Snapshot) -> list:
    plan = snap.plan
    if plan is None:
        return []
    return [(float(share), {Attr.FEATURE: plan.labels[c], Attr.BIN: plan.bin_labels[c][j]})
            for c in plan.binned_columns for j, share in enumerate(plan.shares[c])]


def _moments(snap: Snapshot, *, mean: bool) -> list:
    plan = snap.plan
    out: list = []
    if plan is None:
        return out
    for key in segment_keys(snap):
        w = snap.windows[key]
        for c in range(plan.n_columns):
            if plan.categorical[c] or w.n[c] == 0:
                continue
            with np.errstate(all="ignore"):
                mean_dev = w.s1[c] / w.n[c]
                if mean:
                    value = plan.shifts[c] + mean_dev
                else:
                    value = math.sqrt(max(w.s2[c] / w.n[c] - mean_dev * mean_dev, 0.0))
            if not math.isfinite(value):  # sums overflowed (values near 1e308)
                continue
            out.append((float(value), {Attr.FEATURE: plan.labels[c], Attr.SEGMENT: key}))
    return out


def _features_of(report: DriftReport) -> list[FeatureDrift]:
    items = list(report.features.values())
    if report.prediction is not None:
        items.append(report.prediction)
    return items


def _per_method(reports: dict[str, DriftReport], *, scores: bool) -> list:
    out: list = []
    for key, report in reports.items():
        for f in _features_of(report):
            for method, value in (f.scores if scores else f.pvalues).items():
                if math.isfinite(value):
                    out.append((value, {Attr.FEATURE: f.feature, Attr.SEGMENT: key,
                                        Attr.METHOD: method}))
    return out


def _drifted(reports: dict[str, DriftReport]) -> list:
    return [(1 if f.drifted else 0, {Attr.FEATURE: f.feature, Attr.SEGMENT: key})
            for key, report in reports.items() for f in _features_of(report)]


def _window_rows(snap: Snapshot) -> list:
    return [(int(snap.windows[k].rows), {Attr.SEGMENT: k}) for k in segment_keys(snap)]


def issue_observations(snap: Snapshot) -> list:
    """``(count, attributes)`` of ``ml.data_quality.issues``: per segment, feature and check."""
    out: list = []
    plan = snap.plan
    for segment, totals in snap.totals.items() if plan is not None else ():
        cs, ks = np.nonzero(totals.issues)
        for c, k in zip(cs.tolist(), ks.tolist()):
            out.append((int(totals.issues[c, k]), {Attr.FEATURE: plan.labels[c],
                                                   Attr.SEGMENT: segment,
                                                   Attr.CHECK: Check.ALL[k]}))
    out += [(n, {Attr.FEATURE: key.feature, Attr.SEGMENT: key.segment, Attr.CHECK: key.check})
            for key, n in snap.schema_issues.items()]
    return out


def _outliers(snap: Snapshot) -> list:
    plan = snap.plan
    if plan is None or not plan.has_outliers:
        return []
    return [(int(t.outliers), {Attr.SEGMENT: k}) for k, t in snap.totals.items()]
