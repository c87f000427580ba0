"""The statistics side of a monitor for one partition of a batch job: no instruments, no
export, a window that holds every row; read out as a mergeable :class:`FeatureState`."""

from __future__ import annotations

import dataclasses
from typing import Any

from otel_ml._internal.core.caps import CappedValues
from otel_ml._internal.monitor.feature_ingest import FeatureIngest
from otel_ml._internal.monitor.feature_state import FeatureState
from otel_ml._internal.monitor.feature_stats import FeatureStatistics
from otel_ml._internal.monitor.settings import Settings
from otel_ml._internal.reference.profile import Reference

__all__ = ["PartitionMonitor"]

#: Window and slot length of a partition's statistics: one slot that never ends.
_FOREVER = 1e15


class PartitionMonitor:
    """Feature statistics of the rows a partition scores, with a monitor's settings.

    Args:
        settings: The driver's monitor settings (its window and slots are replaced by one
            slot that holds every row).
        reference: The driver's reference profile (the bins every partition counts in).

    Raises:
        ValueError: No reference (without one, each partition would fix its own plan).
    """

    def __init__(self, settings: Settings, reference: Reference | None) -> None:
        if reference is None:
            raise ValueError("monitoring a batch job by partitions needs a reference profile: "
                             "ModelMonitor(..., reference=...)")
        local = dataclasses.replace(settings, drift_window_s=_FOREVER, slot_s=_FOREVER)
        segments = CappedValues("segment", settings.max_segments, settings.segments)
        self._ingest = FeatureIngest(local, reference, segments)
        self._features = FeatureStatistics(local, self._ingest)

    def observe(self, x: Any, predictions: Any = None) -> None:
        """Count one batch of inputs and predictions, as ``ModelMonitor.observe`` does."""
        self._features.observe(self._ingest.prepare(x, predictions, segment=None,
                                                    output="auto"))

    def state(self) -> FeatureState:
        """Everything counted, as mergeable state."""
        return self._features.state()
