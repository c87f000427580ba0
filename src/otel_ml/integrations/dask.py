"""Reference profiles of Dask DataFrames: partition profiles reduced in a tree of tasks.

``profile(ddf)`` turns every partition into a
:class:`~otel_ml.integrations.partitions.PartitionProfile` and merges them pairwise in a
balanced tree of Dask tasks, so only the final profile reaches the caller. It runs on the
active ``dask.distributed`` client when there is one (else on Dask's default scheduler).
A task's result is used once by the scheduler (a task recomputed after a worker died replaces
its lost result), and a profile refuses to merge a partition twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from otel_ml import ModelMonitor, Reference
from otel_ml.integrations.partitions import (
    PartitionError,
    PartitionProfile,
    Profiles,
    ProfileSpec,
    profile_chunks,
    profile_exactly,
)
from otel_ml.integrations.scoring import BatchState, ScoringSpec, score_partition

__all__ = ["monitor", "partition_profiles", "profile", "profile_segments"]

#: Rows profiled at a time within a partition.
_CHUNK_ROWS = 100_000


def profile(ddf: Any, predictions: str | None = None, labels: str | None = None, *,
            features: Sequence[str] | None = None, exclude: Sequence[str] = (),
            metadata: Mapping[str, str] | None = None, exact_shares: bool = False,
            **builder_options: Any) -> Reference:
    """The reference profile of a Dask DataFrame, equal to ``Reference.from_data`` on its rows.

    The arguments are those of :func:`otel_ml.integrations.spark.profile`.

    Raises:
        otel_ml.integrations.partitions.PartitionError: A partition's column is missing or of
            the wrong type, or partitions disagree on the schema (the message names them).
    """
    spec = ProfileSpec(features=None if features is None else tuple(features),
                       predictions=predictions, labels=labels, exclude=tuple(exclude),
                       options=dict(builder_options))
    return profile_exactly(lambda s: partition_profiles(ddf, s), spec, exact=exact_shares,
                           metadata=metadata).reference


def profile_segments(ddf: Any, segment_by: str, predictions: str | None = None,
                     labels: str | None = None, *, features: Sequence[str] | None = None,
                     exclude: Sequence[str] = (), metadata: Mapping[str, str] | None = None,
                     exact_shares: bool = False, **builder_options: Any) -> Profiles:
    """Every row's profile and one per value of ``segment_by``, in one pass."""
    spec = ProfileSpec(features=None if features is None else tuple(features),
                       predictions=predictions, labels=labels, segment_by=segment_by,
                       exclude=tuple(exclude), options=dict(builder_options))
    return profile_exactly(lambda s: partition_profiles(ddf, s), spec, exact=exact_shares,
                           metadata=metadata)


def partition_profiles(ddf: Any, spec: ProfileSpec) -> PartitionProfile:
    """Profile each partition of ``ddf`` and merge them in a tree of tasks; the result."""
    return _tree(ddf, _profile_in_chunks, spec)


def monitor(ddf: Any, predict_fn: Callable[[Any], Any], *, monitor: ModelMonitor,
            features: Sequence[str] | None = None, labels: str | None = None,
            concept_drift: bool = False) -> BatchState:
    """Score ``ddf`` with ``predict_fn`` on the workers and record its statistics in
    ``monitor``, as if ``monitor.observe(x, predict_fn(x))`` had run here on every partition.

    The arguments are those of :func:`otel_ml.integrations.spark.monitor`.

    Returns:
        The merged state (already recorded in ``monitor``).
    """
    spec = ScoringSpec.of(monitor, predict_fn, features, labels, concept_drift)
    merged = _tree(ddf, score_partition, spec)
    merged.record_into(monitor)
    return merged


def _tree(ddf: Any, each: Callable[[Any, Any, int], Any], spec: Any) -> Any:
    """``each(partition, spec, index)`` on every partition, merged pairwise in a tree of
    tasks (``a.merge(b)``); the result."""
    import dask
    from dask import delayed

    level = [delayed(each, pure=True)(part, spec, i) for i, part in enumerate(ddf.to_delayed())]
    if not level:
        raise PartitionError("no rows: the DataFrame has no partitions")
    merge = delayed(_merge, pure=True)
    while len(level) > 1:
        nxt = [merge(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    (result,) = dask.compute(level[0])
    return result


def _profile_in_chunks(frame: Any, spec: ProfileSpec, partition: int) -> PartitionProfile:
    """``profile_partition`` over slices of ``_CHUNK_ROWS`` rows: chunk-sized temporaries
    instead of partition-sized ones (as Spark's Arrow batches and the files' chunks). The
    profile is that of the whole partition when its rows fit the sample, and otherwise
    another uniform sample of them (keys are drawn slice by slice), the same on every retry."""
    starts = range(0, len(frame), _CHUNK_ROWS) if len(frame) else [0]  # empty: still seen
    return profile_chunks((frame.iloc[i:i + _CHUNK_ROWS] for i in starts), spec, partition)


def _merge(a: Any, b: Any) -> Any:
    return a.merge(b)
