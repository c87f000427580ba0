"""Reference profiles of Spark DataFrames: one profile per partition, merged on the driver.

``profile(df)`` runs :func:`~otel_ml.integrations.partitions.profile_partition` on every
partition with ``mapInPandas`` (Arrow batches; the executors need otel_ml, numpy and pandas,
not a collector) and merges the partitions' profiles in a tree (``RDD.treeReduce``): the
executors merge groups of profiles, the driver the groups' results. A partition's result is
used once by Spark (a failed or speculative attempt's output is discarded), and a profile
refuses to merge a partition twice.

Memory: a profile holds at most ``sample_size`` values (and keys) per feature and segment,
so the driver's merge holds O(groups x features x sample_size) floats, groups being about
sqrt(partitions) at the default depth (see ``docs/distributed.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from otel_ml import ModelMonitor, Reference
from otel_ml.integrations.scoring import BatchState, ScoringSpec, score_chunks
from otel_ml.integrations.partitions import (
    PartitionError,
    PartitionProfile,
    Profiles,
    ProfileSpec,
    profile_exactly,
    merge_tree,
    profile_chunks,
)

__all__ = ["monitor", "partition_profiles", "profile", "profile_segments"]

_SCHEMA = "partition long, state binary"
#: Rows per builder update (Arrow batches are joined up to this).
_CHUNK_ROWS = 100_000


def profile(df: Any, predictions: str | None = None, labels: str | None = None, *,
            features: Sequence[str] | None = None, exclude: Sequence[str] = (),
            metadata: Mapping[str, str] | None = None, exact_shares: bool = False,
            **builder_options: Any) -> Reference:
    """The reference profile of a Spark DataFrame, equal to ``Reference.from_data`` on its rows.

    Args:
        df: A ``pyspark.sql.DataFrame``.
        predictions: Column holding the model's predictions (profiled as the prediction).
        labels: Column holding the actual labels (not a feature; with ``predictions``, the
            reference's performance is computed from both).
        features: Feature columns (default: every other column).
        exclude: Columns that are not features (ids, timestamps).
        metadata: Free-form string pairs stored with the profile.
        exact_shares: With more rows than ``sample_size``, a second pass over ``df`` counts the
            bin shares and bin means exactly over the first pass's edges (cache ``df``).
            Without it they come from the merged uniform sample (standard error
            ``sqrt(p(1-p)/sample_size)``).
        **builder_options: Options of :class:`otel_ml.ReferenceBuilder` (``bins``,
            ``categorical``, ``max_categories``, ``sample_size``, ``seed``,
            ``expected_rows``). ``expected_rows=df.count()`` (cheap on Parquet) keeps each
            partition's state to about its share of the sample instead of a whole sample
            (checked after the merge; a wrong count costs a pass, never a wrong profile).

    Returns:
        The profile of every row.

    Raises:
        otel_ml.integrations.partitions.PartitionError: A partition's column is missing or of
            the wrong type, or partitions disagree on the schema (the message names them).
    """
    spec = _spec(predictions, labels, None, features, exclude, builder_options)
    return profile_exactly(lambda s: partition_profiles(df, s), spec, exact=exact_shares,
                           metadata=metadata).reference


def profile_segments(df: Any, segment_by: str, predictions: str | None = None,
                     labels: str | None = None, *, features: Sequence[str] | None = None,
                     exclude: Sequence[str] = (), metadata: Mapping[str, str] | None = None,
                     exact_shares: bool = False, **builder_options: Any) -> Profiles:
    """Every row's profile and one per value of ``segment_by``, in one pass.

    The arguments are those of :func:`profile`; ``segment_by`` is never a feature.
    """
    spec = _spec(predictions, labels, segment_by, features, exclude, builder_options)
    return profile_exactly(lambda s: partition_profiles(df, s), spec, exact=exact_shares,
                           metadata=metadata)


def partition_profiles(df: Any, spec: ProfileSpec, *, depth: int = 2) -> PartitionProfile:
    """Profile each partition of ``df`` on the executors and merge them in a tree.

    Args:
        df: A ``pyspark.sql.DataFrame``.
        spec: What to profile.
        depth: Levels of the merge tree (``RDD.treeReduce``): with 2, the executors merge
            groups of about sqrt(partitions) profiles and the driver merges those results,
            so the driver holds about sqrt(partitions) profiles, not one per partition.
    """
    def run(batches: Iterator[Any]) -> Iterator[Any]:
        import pandas as pd
        from pyspark import TaskContext

        context = TaskContext.get()
        partition = context.partitionId() if context is not None else 0
        state = profile_chunks(_coalesced(batches), spec, partition)
        yield pd.DataFrame({"partition": [partition], "state": [state.to_bytes()]})

    states = df.mapInPandas(run, schema=_SCHEMA).rdd.map(_state_of)
    try:
        return states.treeReduce(_merge, depth=depth)
    except ValueError as exc:
        if "empty" in str(exc).lower() and states.getNumPartitions() == 0:
            raise PartitionError("no rows: the DataFrame has no partitions") from None
        raise


def _coalesced(batches: Iterator[Any], rows: int = _CHUNK_ROWS) -> Iterator[Any]:
    """Arrow batches (10,000 rows by default) joined into chunks of about ``rows``: fewer
    builder updates, each merging the new values into the sample once."""
    import pandas as pd

    held: list[Any] = []
    count = 0
    for batch in batches:
        held.append(batch)
        count += len(batch)
        if count >= rows:
            yield held[0] if len(held) == 1 else pd.concat(held, ignore_index=True)
            held, count = [], 0
    if held:
        yield held[0] if len(held) == 1 else pd.concat(held, ignore_index=True)


def _state_of(row: Any) -> PartitionProfile:
    return PartitionProfile.from_bytes(bytes(row["state"]))


def _merge(a: PartitionProfile, b: PartitionProfile) -> PartitionProfile:
    return a.merge(b)


def monitor(df: Any, predict_fn: Callable[[Any], Any], *, monitor: ModelMonitor,
            features: Sequence[str] | None = None, labels: str | None = None,
            concept_drift: bool = False, depth: int = 2) -> BatchState:
    """Score ``df`` with ``predict_fn`` on the executors and record its statistics in
    ``monitor`` (on the driver), as if ``monitor.observe(x, predict_fn(x))`` had run here on
    every partition.

    Args:
        df: A ``pyspark.sql.DataFrame`` of features (and the monitor's segment and sensitive
            attribute columns, when it has them).
        predict_fn: The model: a pandas frame of features (one Arrow batch) -> predictions.
        monitor: The driver's monitor; it needs a reference profile.
        features: Feature columns given to ``predict_fn`` (default: all but the monitor's
            segment and sensitive-attribute columns and ``labels``).
        labels: Column of the labels: each partition also scores them as
            ``monitor.record_outcomes(labels, predictions, segments=<segment column>,
            groups=<sensitive-attribute column>)`` would, and the merged outcomes are recorded
            too (performance, fairness, outcome metrics).
        concept_drift: With ``labels``: each partition also carries its per-row errors (1 bit
            per row for a classifier, 8 bytes for a regressor) and the driver feeds its
            concept-drift detectors with them in partition order (default off: not fed).
        depth: Levels of the merge tree (``RDD.treeReduce``).

    Returns:
        The merged state (already recorded in ``monitor``).

    Raises:
        ValueError: The monitor has no reference profile.
        otel_ml.integrations.partitions.PartitionError: A partition lacks a feature column or
            ``predict_fn`` raised (the message names the partition).
    """
    spec = ScoringSpec.of(monitor, predict_fn, features, labels, concept_drift)

    def run(batches: Iterator[Any]) -> Iterator[Any]:
        import pandas as pd
        from pyspark import TaskContext

        context = TaskContext.get()
        partition = context.partitionId() if context is not None else 0
        state = score_chunks(batches, spec, partition)
        yield pd.DataFrame({"partition": [partition], "state": [state.to_bytes()]})

    states = df.mapInPandas(run, schema=_SCHEMA).rdd.map(_batch_state_of)
    if states.getNumPartitions() == 0:
        raise PartitionError("no rows: the DataFrame has no partitions")
    merged = states.treeReduce(_merge_batch, depth=depth)
    merged.record_into(monitor)
    return merged


def _batch_state_of(row: Any) -> BatchState:
    return BatchState.from_bytes(bytes(row["state"]))


def _merge_batch(a: BatchState, b: BatchState) -> BatchState:
    return a.merge(b)


def _spec(predictions: str | None, labels: str | None, segment_by: str | None,
          features: Sequence[str] | None, exclude: Sequence[str],
          options: Mapping[str, Any]) -> ProfileSpec:
    return ProfileSpec(features=None if features is None else tuple(features),
                       predictions=predictions, labels=labels, segment_by=segment_by,
                       exclude=tuple(exclude), options=dict(options))
