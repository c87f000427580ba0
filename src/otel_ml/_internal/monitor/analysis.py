"""The one seam every family of signals plugs into.

An :class:`Analysis` is fed each call's prepared batch (and each batch of joined labels),
reports its observations for the observable instruments when metrics are collected, and
contributes its part of the monitor's reports. ``ModelMonitor`` wires the analyses it is
configured with; adding one touches no other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from otel_ml._internal.core.instruments import Points

__all__ = ["Analysis", "Collector", "Points"]

#: Returns the current observations of one metric; called at collection time, never raises.
Collector = Callable[[], Points]


@runtime_checkable
class Analysis(Protocol):
    """One family of signals (feature statistics and drift, outcomes and performance, ...)."""

    def observe(self, batch: Any) -> None:
        """Take one call's prepared batch (cheap: vectorised, O(1) instrument records)."""

    def collectors(self) -> Mapping[str, Collector]:
        """Metric name -> collector, for every observable metric this analysis reports."""

    def report(self) -> Mapping[str, Any]:
        """This analysis' part of the monitor's reports (``{"drift": DriftReport, ...}``)."""

    def after_fork(self) -> None:
        """In a forked child: start from zero so nothing the parent counted is counted twice."""
