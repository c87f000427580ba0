"""Reference profiles of Dask DataFrames: partition profiles reduced in a tree of tasks.

``profile(ddf)`` turns every partition into a
:class:`~otel_ml.integrations.partitions.PartitionProfile` and merges them pairwise in a
balanced tree of Dask tasks, so only the final profile reaches the caller. It runs on the
active ``dask.distributed`` client when there is one (else on Dask's default scheduler).
A task's result is used once by the scheduler (a task recomputed after a worker died replaces
its lost result), and a profile refuses to merge a partition twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from otel_ml import Reference
from otel_ml.integrations.partitions import (
    PartitionProfile,
    Profiles,
    ProfileSpec,
    profile_exactly,
    profile_partition,
)

__all__ = ["partition_profiles", "profile", "profile_segments"]


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
    import dask
    from dask import delayed

    level = [delayed(profile_partition, pure=True)(part, spec, i)
             for i, part in enumerate(ddf.to_delayed())]
    if not level:
        from otel_ml.integrations.partitions import PartitionError

        raise PartitionError("no rows: the DataFrame has no partitions")
    merge = delayed(_merge, pure=True)
    while len(level) > 1:
        nxt = [merge(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    (result,) = dask.compute(level[0])
    return result


def _merge(a: PartitionProfile, b: PartitionProfile) -> PartitionProfile:
    return a.merge(b)
