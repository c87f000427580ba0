"""Monitoring a batch job by partitions: each partition is scored and counted where it runs,
the partitions' statistics are merged, and the driver's monitor records the result.

A :class:`BatchState` holds what a partition's rows add to a monitor's feature statistics
(counts per reference bin of every feature and of the predictions, moments, data-quality
counts, outliers, per segment) and to its multivariate drift (sums of rows, reconstruction
error and centroid distance per segment). States merge by addition, in any order or tree; a state
carries the partitions it covers and refuses to merge a partition twice, so a retried or
duplicated partition can never be counted twice. ``BatchState.record_into(monitor)`` then
counts the merged rows in the monitor as if it had observed them itself: its drift report,
data-quality and feature metrics, and so its alerts, equal those of one process that called
``monitor.observe(features, predict_fn(features))`` on every partition. Executors need no
collector access; only the driver's monitor exports.

Works without any engine (:func:`score_partition` on pandas frames); Spark and Dask use it in
:func:`otel_ml.integrations.spark.monitor` and :func:`otel_ml.integrations.dask.monitor`.
With ``labels`` (a column), each partition also scores its labels as
``monitor.record_outcomes(labels, predictions, segments=<segment column>, groups=<sensitive
attribute column>)`` would, and the merged :class:`OutcomeState` is recorded too: the
performance report and exported performance, fairness and outcome metrics equal one
process's. The concept-drift detectors (sequential) are fed only with ``concept_drift=True``:
each partition then carries its per-row errors and the driver feeds them in partition order.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from otel_ml import ModelMonitor
from otel_ml._internal.instrument.model_monitor import absorb_statistics
from otel_ml._internal.monitor.feature_state import FeatureState
from otel_ml._internal.monitor.multivariate_state import MultivariateState
from otel_ml._internal.monitor.outcome_state import OutcomeState
from otel_ml._internal.monitor.partition_monitor import PartitionMonitor
from otel_ml.integrations.partitions import PartitionError

__all__ = ["BatchState", "ScoringSpec", "score_chunks", "score_partition"]


@dataclass(frozen=True)
class ScoringSpec:
    """What every partition needs, shipped to the executors.

    Attributes:
        settings: The driver monitor's settings.
        reference: The driver monitor's reference profile.
        predict_fn: The model: features (a pandas frame) -> predictions.
        features: Feature columns passed to ``predict_fn`` (default: every column but the
            monitor's segment and sensitive-attribute columns and ``labels``).
        labels: Column of the labels (``None``: no outcomes are scored).
        concept_drift: Carry each partition's per-row errors (1 bit per row for a classifier,
            8 bytes for a regressor) so the driver feeds its concept-drift detectors in
            partition order (default: off; the detectors are then not fed).
    """

    settings: Any
    reference: Any
    predict_fn: Callable[[Any], Any]
    features: tuple[str, ...] | None = None
    labels: str | None = None
    concept_drift: bool = False

    @classmethod
    def of(cls, monitor: ModelMonitor, predict_fn: Callable[[Any], Any],
           features: Sequence[str] | None = None, labels: str | None = None,
           concept_drift: bool = False) -> ScoringSpec:
        """The spec of ``monitor`` (``labels``: the column of labels to score, or ``None``;
        ``concept_drift``: carry the error streams for the driver's detectors).

        Raises:
            ValueError: The monitor has no reference profile.
            TypeError: ``predict_fn`` is not callable.
        """
        if not isinstance(monitor, ModelMonitor):
            raise TypeError(f"monitor must be an otel_ml.ModelMonitor, got "
                            f"{type(monitor).__name__}")
        if not callable(predict_fn):
            raise TypeError(f"predict_fn must be callable, got {type(predict_fn).__name__}")
        if monitor.reference is None:
            raise ValueError("monitoring a batch job by partitions needs a reference profile: "
                             "ModelMonitor(..., reference=...)")
        if labels is not None and not isinstance(labels, str):
            raise TypeError(f"labels must be a column name (str), got {type(labels).__name__}")
        if labels is not None and features is not None and labels in features:
            raise ValueError(f"the labels column {labels!r} is also a feature")
        if concept_drift and labels is None:
            raise ValueError("concept_drift=True needs labels (the column of labels)")
        return cls(monitor.settings, monitor.reference, predict_fn,
                   None if features is None else tuple(features), labels, bool(concept_drift))

    def split(self, frame: Any) -> tuple[Any, Any]:
        """``(what the monitor observes, what predict_fn is given)`` of a partition's frame."""
        extra = [c for c in (self.settings.segment_by, self.settings.sensitive_attribute)
                 if isinstance(c, str) and c in frame.columns]
        if self.labels is not None:
            if self.labels not in frame.columns:
                raise KeyError(f"no labels column {self.labels!r} (columns: "
                               f"{list(frame.columns)})")
            if self.features is None:
                frame = frame.drop(columns=[self.labels])
        if self.features is None:
            return frame, frame.drop(columns=extra)
        absent = [c for c in self.features if c not in frame.columns]
        if absent:
            raise KeyError(f"no column(s) {absent} (columns: {list(frame.columns)})")
        return frame[[*self.features, *extra]], frame[list(self.features)]

    def outcome_columns(self, frame: Any) -> dict[str, Any]:
        """``record_outcomes``' keyword arguments of a partition's frame: ``y_true`` (the
        labels), ``segments`` (the monitor's segment column) and ``groups`` (its sensitive
        attribute column), each when present."""
        s = self.settings
        out: dict[str, Any] = {"y_true": frame[self.labels].to_numpy()}
        if isinstance(s.segment_by, str) and s.segment_by in frame.columns:
            out["segments"] = frame[s.segment_by].to_numpy()
        if s.sensitive_attribute is not None and s.sensitive_attribute in frame.columns:
            out["groups"] = frame[s.sensitive_attribute].to_numpy()
        return out


@dataclass
class BatchState:
    """What scored partitions add to a monitor; merges by addition.

    Attributes:
        partitions: Partitions covered (never merged twice).
        features: The feature statistics (per segment).
        multivariate: The multivariate drift sums (rows, reconstruction error, centroid
            distance per projection space and segment).
        outcomes: The scored labels (per-segment performance tallies, fairness counts,
            cumulative counts, unmatched labels, error histogram), or ``None`` without labels.
    """

    partitions: frozenset[int]
    features: FeatureState
    multivariate: MultivariateState = field(default_factory=MultivariateState)
    outcomes: OutcomeState | None = None

    @property
    def labelled(self) -> int:
        """Labelled rows scored (0 without labels)."""
        return 0 if self.outcomes is None else self.outcomes.labelled

    @property
    def rows(self) -> int:
        """Rows scored."""
        return self.features.rows

    def merge(self, other: BatchState) -> BatchState:
        """Add ``other`` (other partitions, the same monitor) into this state.

        Returns:
            This state.

        Raises:
            PartitionError: A partition is in both (it would be counted twice), or the states
                were counted over different reference bins.
        """
        twice = self.partitions & other.partitions
        if twice:
            raise PartitionError(f"partition(s) {sorted(twice)[:10]} merged twice: a retried "
                                 "or duplicated partition would be counted twice")
        try:
            self.features.merge(other.features)
            if other.outcomes is not None:  # into a copy: ``other`` stays as it was
                self.outcomes = (self.outcomes or OutcomeState()).merge(other.outcomes)
        except ValueError as exc:
            raise PartitionError(str(exc)) from exc
        self.multivariate.merge(other.multivariate)
        self.partitions = self.partitions | other.partitions
        return self

    def record_into(self, monitor: ModelMonitor) -> None:
        """Count these rows in ``monitor`` as if it had observed them now (and, with labels,
        as if ``monitor.record_outcomes`` had scored them now; its concept-drift detectors
        are fed the partitions' errors in partition order only with ``concept_drift``)."""
        absorb_statistics(monitor, self)

    def to_bytes(self) -> bytes:
        """The state as bytes (pickle: for the engine's transport within one job)."""
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def from_bytes(data: bytes) -> BatchState:
        """The state from :meth:`to_bytes`."""
        state = pickle.loads(data)
        if not isinstance(state, BatchState):
            raise TypeError(f"not a BatchState: {type(state).__name__}")
        return state

    @staticmethod
    def merge_all(states: Iterable[BatchState]) -> BatchState:
        """Merge states (e.g. every partition's) into one.

        Raises:
            PartitionError: No state, or see :meth:`merge`.
        """
        merged: BatchState | None = None
        for state in states:
            merged = state if merged is None else merged.merge(state)
        if merged is None:
            raise PartitionError("no partitions to merge")
        return merged


def score_partition(frame: Any, spec: ScoringSpec, partition: int) -> BatchState:
    """Score one partition (a pandas frame) with ``spec.predict_fn`` and count it.

    Raises:
        PartitionError: A feature column is missing or the model failed; the message names
            the partition (the model's own exception is chained).
    """
    return score_chunks([frame], spec, partition)


def score_chunks(chunks: Iterable[Any], spec: ScoringSpec, partition: int) -> BatchState:
    """Score one partition given as chunks (Arrow batches) and count it."""
    counted = PartitionMonitor(spec.settings, spec.reference)
    for frame in chunks:
        if len(frame) == 0:
            continue
        try:
            observed, x = spec.split(frame)
        except KeyError as exc:
            raise PartitionError(f"partition {partition}: {exc.args[0]}") from None
        try:
            predictions = spec.predict_fn(x)
        except Exception as exc:
            raise PartitionError(f"partition {partition}: predict_fn raised "
                                 f"{type(exc).__name__}: {exc}") from exc
        counted.observe(observed, predictions)
        if spec.labels is not None:
            counted.record_outcomes(y_pred=predictions, keep_errors=spec.concept_drift,
                                    **spec.outcome_columns(frame))
    return BatchState(frozenset([partition]), counted.state(), counted.multivariate_state(),
                      counted.outcome_state(partition if spec.concept_drift else None))
