"""Reading an SDK metric reader's data points in process (the offline report, the demo's view)."""

from __future__ import annotations

from typing import Any

__all__ = ["read_points"]


def read_points(reader: Any) -> dict[str, list[Any]]:
    """Every data point ``reader`` collects now: metric name -> points.

    Args:
        reader: An SDK metric reader with ``get_metrics_data()`` (``InMemoryMetricReader``).
    """
    out: dict[str, list[Any]] = {}
    data = reader.get_metrics_data()
    if data is None:
        return out
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                out.setdefault(metric.name, []).extend(metric.data.data_points)
    return out
