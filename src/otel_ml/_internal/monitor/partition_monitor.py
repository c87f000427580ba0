"""The statistics side of a monitor for one partition of a batch job: no instruments, no
export, a window that holds every row; read out as a mergeable :class:`FeatureState`,
:class:`MultivariateState` and (when labels are scored) :class:`OutcomeState`."""

from __future__ import annotations

import dataclasses
from typing import Any

from opentelemetry import trace

from otel_ml._internal.core.caps import CappedValues
from otel_ml._internal.core.state import Switch
from otel_ml._internal.monitor.feature_ingest import FeatureIngest
from otel_ml._internal.monitor.feature_state import FeatureState
from otel_ml._internal.monitor.feature_stats import FeatureStatistics
from otel_ml._internal.monitor.multivariate import MultivariateDrift
from otel_ml._internal.monitor.multivariate_state import MultivariateState
from otel_ml._internal.monitor.outcome_analysis import OutcomeAnalysis
from otel_ml._internal.monitor.outcome_state import ErrorTally, OutcomeState
from otel_ml._internal.monitor.settings import Settings
from otel_ml._internal.reference.profile import Reference
from otel_ml.contract import ERROR_BUCKETS

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
        local = dataclasses.replace(settings, drift_window_s=_FOREVER, slot_s=_FOREVER,
                                    outcome_store_size=0)
        segments = CappedValues("segment", settings.max_segments, settings.segments)
        self._settings, self._reference, self._segments = local, reference, segments
        self._ingest = FeatureIngest(local, reference, segments)
        self._outcomes: OutcomeAnalysis | None = None  # made at the first labels
        self._errors = ErrorTally(ERROR_BUCKETS)
        self._features = FeatureStatistics(local, self._ingest)
        self._multivariate = MultivariateDrift(local, reference, self._ingest.plan, dense=True)

    def observe(self, x: Any, predictions: Any = None) -> None:
        """Count one batch of inputs and predictions, as ``ModelMonitor.observe`` does."""
        batch = self._ingest.prepare(x, predictions, segment=None, output="auto")
        self._features.observe(batch)
        self._multivariate.observe(batch)

    def record_outcomes(self, y_true: Any, y_pred: Any, segments: Any = None,
                        groups: Any = None, *, keep_errors: bool = False) -> None:
        """Score labels and predictions, as ``ModelMonitor.record_outcomes`` does
        (``keep_errors``: keep the concept-drift error stream, see :meth:`outcome_state`).

        Raises:
            ValueError: ``groups`` given but the monitor has no ``sensitive_attribute``.
        """
        if self._outcomes is None:
            self._outcomes = OutcomeAnalysis(
                self._settings, reference=self._reference, features=self._ingest,
                tracer=trace.NoOpTracer(), switch=Switch(False),
                instruments={"ml.model.error.absolute": self._errors,  # type: ignore[arg-type]
                             "ml.model.requests.rejected": None},
                segment_values=self._segments, keep_errors=keep_errors)
        self._outcomes.record_outcomes(y_true, y_pred, segments=segments, groups=groups)

    def outcome_state(self, partition: int | None = None) -> OutcomeState | None:
        """The scored labels as mergeable state (``None``: no labels were scored); with
        ``partition``, carrying the kept error stream as that partition's."""
        if self._outcomes is None:
            return None
        state = self._outcomes.state()
        state.errors = ErrorTally(ERROR_BUCKETS).merge(self._errors)
        stream = self._outcomes.error_stream()
        if partition is not None and stream is not None:
            state.keep_stream(partition, stream)
        return state

    def state(self) -> FeatureState:
        """Everything counted, as mergeable state."""
        return self._features.state()

    def multivariate_state(self) -> MultivariateState:
        """The multivariate drift sums (per space and segment), as mergeable state."""
        return self._multivariate.state()
