"""A live monitor's report page: one snapshot of its statistics, drift evaluated on it.

``ModelMonitor.report_html`` calls :func:`write_monitor_report`; ``otel-ml report --html`` goes
through the same method after reading the file into an offline monitor, so the page shows the
numbers the exported metrics and ``drift_report()`` show.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from otel_ml._internal.report.content import build_content
from otel_ml._internal.report.html import write_html

if TYPE_CHECKING:
    from otel_ml._internal.monitor.feature_stats import FeatureStatistics
    from otel_ml._internal.monitor.settings import Settings
    from otel_ml._internal.stats.performance import PerformanceReport

__all__ = ["write_monitor_report"]


def write_monitor_report(features: FeatureStatistics, performance: PerformanceReport | None,
                         reference: Any, settings: Settings, path: str | os.PathLike[str], *,
                         title: str | None = None,
                         provenance: Sequence[tuple[str, str]] = ()) -> Path:
    """Write the report of the monitor's current window to ``path``; returns the path.

    Args:
        features: The monitor's feature statistics (one snapshot is taken).
        performance: Its performance report over the same window.
        reference: Its reference profile, or ``None``.
        settings: Its settings (model, window).
        path: Where to write the HTML file.
        title: Page title (default: the model's name and version).
        provenance: Extra ``(what, value)`` rows; one named like a default row replaces it.
    """
    snap = features.snapshot()
    drift = features.drift_report(snap)
    window = (f"the last {settings.drift_window_s:g} s (slots of {settings.slot_s:g} s); "
              "data-quality counts since start")
    content = build_content(snap, drift, performance, reference=reference, model=settings.name,
                            version=settings.version, window=window,
                            provenance=list(provenance), title=title)
    return write_html(content, path)
