"""What a monitor tells in process: drift, performance, root cause, version comparison and
the HTML page.

:class:`MonitorReports` is the part of :class:`ModelMonitor` that reads its analyses'
reports; the monitor wires the analyses (``_features``, ``_multivariate``, ``_outcomes``) and
its ``reference`` and ``settings``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from otel_ml._internal.monitor.multivariate_report import with_multivariate

if TYPE_CHECKING:
    from pathlib import Path

    from otel_ml._internal.instrument.comparisons import ComparisonReport
    from otel_ml._internal.monitor.feature_stats import FeatureStatistics
    from otel_ml._internal.monitor.multivariate import MultivariateDrift
    from otel_ml._internal.monitor.outcome_analysis import OutcomeAnalysis
    from otel_ml._internal.monitor.root_cause import RootCauseReport
    from otel_ml._internal.monitor.settings import Settings
    from otel_ml._internal.reference.profile import Reference
    from otel_ml._internal.stats.drift import DriftReport
    from otel_ml._internal.stats.performance import PerformanceReport

__all__ = ["MonitorReports"]


class MonitorReports:
    """The in-process reports of a :class:`ModelMonitor` (a base class of it)."""

    _features: FeatureStatistics
    _multivariate: MultivariateDrift
    _outcomes: OutcomeAnalysis
    reference: Reference | None
    settings: Settings

    def drift_report(self) -> DriftReport:
        """Drift of every feature, the predictions and the joint distribution (``.multivariate``)."""
        return with_multivariate(self._features.drift_report(), self._multivariate.report())

    def performance_report(self) -> PerformanceReport:
        """Windowed performance, per segment, fairness and concept drift state."""
        return self._outcomes.performance_report()

    def report_html(self, path: str | os.PathLike[str], *, title: str | None = None,
                    provenance: Sequence[tuple[str, str]] = ()) -> Path:
        """Write the current window as one self-contained HTML page (``docs/report.md``).

        Args:
            path: Where to write it. Needs Jinja2 (``pip install 'otel-ml[report]'``).
            title: Page title (default: the model's name and version).
            provenance: Extra ``(what, value)`` rows for the page's provenance table.
        """
        from otel_ml._internal.report.page import write_monitor_report

        return write_monitor_report(self._features, self.performance_report(), self.reference,
                                    self.settings, path, title=title, provenance=provenance)

    def root_cause_report(self) -> RootCauseReport:
        """Where a change comes from: segments ranked by their contribution to the prediction
        drift and to the performance loss, the features of the top segments by drift, and the
        features by error-rate spread across their reference bins (each entry with its value
        and threshold). The in-process form of the dashboard's "Where is it coming from" row."""
        from otel_ml._internal.monitor.root_cause import root_cause_report

        return root_cause_report(self.drift_report(), self.performance_report())

    def comparison_report(self) -> ComparisonReport | None:
        """This version against its challengers (``otel_ml.shadow``, ``otel_ml.split``):
        agreement, prediction distance, performance and the two-sided test of the difference;
        the first challenger's report, the others in its ``others``. ``None`` when the monitor
        is no champion."""
        from otel_ml._internal.instrument.comparisons import report_for

        return report_for(self)  # type: ignore[arg-type]  # ModelMonitor is the only subclass
