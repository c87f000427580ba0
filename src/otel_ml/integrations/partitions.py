"""Mergeable per-partition reference profiles: what Spark, Dask and ``otel-ml profile
--workers`` compute on each partition and merge on the driver.

Each partition becomes one :class:`PartitionProfile`: a :class:`otel_ml.ReferenceBuilder` per
segment (and one over all rows), the partition's schema, and the tally of its labelled
predictions. Profiles merge exactly (moments, counts, categories; the quantile samples as a
uniform sample of the union), so merging the partitions in any order, or in a tree, gives the
profile of every row.

Retries and speculative execution: a profile carries the set of partitions it covers, and
merging two profiles that share a partition raises instead of counting it twice; a partition's
sampling keys come from ``(seed, partition)``, so a retried partition yields the same profile.

No engine is imported here: the functions work on pandas frames (or any mapping of columns
``ReferenceBuilder.update`` reads) and can be tested, or used with another engine, on their
own.
"""

from __future__ import annotations

import pickle
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from otel_ml import Reference, ReferenceBuilder
from otel_ml._internal.stats.performance import Tally, label_str, label_strings

__all__ = ["ALL_ROWS", "PartitionError", "PartitionProfile", "ProfileSpec", "Profiles",
           "merge_tree", "profile_chunks", "profile_exactly", "profile_partition"]

#: Key of the builder over every row in :attr:`PartitionProfile.builders`.
ALL_ROWS = ""

_NUMERIC_KINDS = "iuf"


class PartitionError(ValueError):
    """A partition cannot be profiled or merged; the message names the partition and column."""


@dataclass(frozen=True)
class ProfileSpec:
    """What to profile, shipped to every partition.

    Attributes:
        features: Feature columns in order (``None``: every column but the others named here).
        predictions: Column holding the model's predictions (profiled as the prediction).
        labels: Column holding the actual labels or values (never a feature; with
            ``predictions``, the reference's performance is computed from both).
        segment_by: Column whose values are segments: one profile per segment as well.
        exclude: Columns that are not features (ids, timestamps...).
        options: Keyword arguments of :class:`otel_ml.ReferenceBuilder` (``seed`` is the base
            of every partition's own seed).
        edges_from: Reuse this reference's bin edges (the second, exact pass).
    """

    features: tuple[str, ...] | None = None
    predictions: str | None = None
    labels: str | None = None
    segment_by: str | None = None
    exclude: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    edges_from: Reference | None = None
    segment_edges: Mapping[str, Reference] | None = None

    def __post_init__(self) -> None:
        ReferenceBuilder(**self._builder_options(0))  # fail fast on a bad option

    def feature_columns(self, columns: Sequence[str]) -> list[str]:
        """The feature columns of a partition with ``columns``."""
        if self.features is not None:
            return list(self.features)
        skip = {self.predictions, self.labels, self.segment_by, *self.exclude}
        return [str(c) for c in columns if c not in skip]

    def builder(self, partition: int, segment: str, salt: int = 0) -> ReferenceBuilder:
        """A builder whose sampling keys depend only on ``(seed, partition, segment, salt)``."""
        seed = np.random.SeedSequence(
            [int(self.options.get("seed", 0)), partition, zlib.crc32(segment.encode()), salt])
        options = self._builder_options(int(seed.generate_state(1)[0]))
        if segment != ALL_ROWS:
            options.pop("expected_rows", None)  # a segment's rows are not known up front
            if self.segment_edges is not None:
                options["edges_from"] = self.segment_edges.get(segment)
        return ReferenceBuilder(**options)

    def _builder_options(self, seed: int) -> dict[str, Any]:
        options = {k: v for k, v in self.options.items() if k != "seed"}
        return {**options, "seed": seed, "edges_from": self.edges_from}


@dataclass
class PartitionProfile:
    """The mergeable profile of one or more partitions.

    Attributes:
        partitions: Partitions covered (a partition is never merged twice).
        rows: Rows covered.
        schema: Column -> ``"numeric"`` or ``"other"``, with the first partition that had
            rows (empty partitions say nothing about kinds).
        columns: Columns of the partitions and the first partition that had them.
        builders: Segment (``ALL_ROWS``: every row) -> builder.
        tally: Labelled predictions (``None`` without labels).
        task: ``"classification"`` or ``"regression"`` when labelled.
    """

    partitions: frozenset[int]
    rows: int = 0
    schema: dict[str, tuple[str, int]] = field(default_factory=dict)
    columns: tuple[tuple[str, ...], int] | None = None
    builders: dict[str, ReferenceBuilder] = field(default_factory=dict)
    tally: Tally | None = None
    task: str | None = None

    def merge(self, other: PartitionProfile) -> PartitionProfile:
        """Fold ``other`` (other partitions of the same data) into this profile.

        Returns:
            This profile.

        Raises:
            PartitionError: A partition is in both (it would count twice), the columns
                differ, or a column is numeric in one partition and not in another.
        """
        twice = self.partitions & other.partitions
        if twice:
            raise PartitionError(f"partition(s) {sorted(twice)[:10]} merged twice: a retried "
                                 "or duplicated partition would be counted twice")
        self._merge_schema(other)
        for segment, builder in other.builders.items():
            mine = self.builders.get(segment)
            if mine is None:
                self.builders[segment] = builder
            else:
                try:
                    mine.merge(builder)
                except ValueError as exc:
                    raise PartitionError(f"partitions {_ids(self.partitions)} and "
                                         f"{_ids(other.partitions)}: {exc}") from exc
        if other.tally is not None:
            if self.tally is None:
                self.tally, self.task = other.tally, other.task
            elif self.task != other.task:
                raise PartitionError(f"the predictions are {self.task} in partitions "
                                     f"{_ids(self.partitions)} and {other.task} in "
                                     f"{_ids(other.partitions)}")
            else:
                self.tally.merge(other.tally)
        self.partitions = self.partitions | other.partitions
        self.rows += other.rows
        return self

    def _merge_schema(self, other: PartitionProfile) -> None:
        if other.columns is not None:
            if self.columns is None:
                self.columns = other.columns
            elif set(self.columns[0]) != set(other.columns[0]):
                mine, theirs = set(self.columns[0]), set(other.columns[0])
                raise PartitionError(
                    f"the schema differs between partitions: partition {other.columns[1]} "
                    f"lacks {sorted(mine - theirs)} and has {sorted(theirs - mine)} "
                    f"compared with partition {self.columns[1]}")
        for column, (kind, where) in other.schema.items():
            seen = self.schema.get(column)
            if seen is None:
                self.schema[column] = (kind, where)
            elif seen[0] != kind:
                raise PartitionError(
                    f"column {column!r} is {_kind_text(seen[0])} in partition {seen[1]} and "
                    f"{_kind_text(kind)} in partition {where}")

    def to_bytes(self) -> bytes:
        """The profile as bytes (pickle: for the engine's own transport between trusted
        processes of one job, never for storage)."""
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def from_bytes(data: bytes) -> PartitionProfile:
        """The profile from :meth:`to_bytes`."""
        profile = pickle.loads(data)
        if not isinstance(profile, PartitionProfile):
            raise TypeError(f"not a PartitionProfile: {type(profile).__name__}")
        return profile

    def references(self, *, metadata: Mapping[str, str] | None = None) -> Profiles:
        """The reference of every row and of each segment.

        Raises:
            PartitionError: No partition had rows.
        """
        whole = self.builders.get(ALL_ROWS)
        if whole is None or whole.rows == 0:
            raise PartitionError(f"no rows in the {len(self.partitions)} partition(s)")
        performance = None
        if self.tally is not None and self.tally.count:
            performance = self.tally.metrics()[0]
        overall = whole.build(performance=performance, metadata=metadata)
        segments = {s: b.build(metadata=metadata) for s, b in sorted(self.builders.items())
                    if s != ALL_ROWS and b.rows}
        return Profiles(overall, segments)


@dataclass(frozen=True)
class Profiles:
    """The result of a partitioned profile: every row's reference and one per segment.

    Attributes:
        reference: The profile of every row.
        segments: Segment value -> the profile of its rows (empty without ``segment_by``).
    """

    reference: Reference
    segments: dict[str, Reference]


def profile_partition(frame: Any, spec: ProfileSpec, partition: int) -> PartitionProfile:
    """Profile one partition (a pandas frame, or a mapping of column name -> values).

    Raises:
        PartitionError: A column is missing or holds values of the wrong type; the message
            names the partition and the column.
    """
    return profile_chunks([frame], spec, partition)


def profile_chunks(chunks: Iterable[Any], spec: ProfileSpec, partition: int
                   ) -> PartitionProfile:
    """Profile one partition given as chunks (Arrow batches, a file read in pieces).

    Raises:
        PartitionError: A column is missing, holds values of the wrong type, or the chunks'
            columns differ; the message names the partition and the column.
    """
    state = PartitionProfile(frozenset([partition]))
    for frame in chunks:
        _add_chunk(state, frame, spec, partition)
    # A builder whose sample still holds every value draws its sampling keys only when it is
    # merged, from the receiving builder: keys drawn here, from the partition's own seed, make
    # the merged sample the same whatever the order or tree of the merges.
    state.builders = {segment: spec.builder(partition, segment, 1).merge(builder)
                      for segment, builder in state.builders.items()}
    return state


def _add_chunk(state: PartitionProfile, frame: Any, spec: ProfileSpec, partition: int) -> None:
    columns = [str(c) for c in (frame.columns if hasattr(frame, "columns") else frame)]
    rows = len(frame) if hasattr(frame, "columns") else _mapping_rows(frame)
    if state.columns is None:
        state.columns = (tuple(columns), partition)
    elif set(columns) != set(state.columns[0]):
        raise PartitionError(f"partition {partition}: the columns differ between its chunks: "
                             f"{list(state.columns[0])} and {columns}")
    features = spec.feature_columns(columns)
    needed = [*features, *(c for c in (spec.predictions, spec.labels, spec.segment_by) if c)]
    missing = [c for c in needed if c not in columns]
    if missing:
        raise PartitionError(f"partition {partition}: no column(s) {missing} "
                             f"(columns: {columns})")
    if rows == 0:
        return
    state.rows += rows
    for c in features:
        state.schema.setdefault(c, (_kind_of(frame[c]), partition))
    predictions = frame[spec.predictions] if spec.predictions else None
    _update(state, spec, ALL_ROWS, {c: frame[c] for c in features}, predictions, partition)
    if spec.segment_by:
        segments = np.array([label_str(v) for v in _values(frame[spec.segment_by])],
                            dtype=object)
        for segment in sorted(set(segments.tolist())):
            take = np.flatnonzero(segments == segment)
            cols = {c: _take(frame[c], take) for c in features}
            preds = None if predictions is None else _take(predictions, take)
            _update(state, spec, segment, cols, preds, partition)
    if spec.labels and spec.predictions:
        task, tally = _tally(frame[spec.predictions], frame[spec.labels], partition)
        if state.tally is None:
            state.task, state.tally = task, tally
        elif state.task != task:
            raise PartitionError(f"partition {partition}: the predictions are {state.task} in "
                                 f"one chunk and {task} in another")
        else:
            state.tally.merge(tally)


def merge_tree(profiles: Iterable[PartitionProfile],
               merge: Callable[[PartitionProfile, PartitionProfile], PartitionProfile]
               | None = None) -> PartitionProfile:
    """Merge profiles pairwise, level by level (a balanced tree: each level halves them).

    Raises:
        PartitionError: Nothing to merge, or a merge fails (see :meth:`PartitionProfile.merge`).
    """
    level = list(profiles)
    if not level:
        raise PartitionError("no rows: there are no partitions to merge")
    join = merge or (lambda a, b: a.merge(b))
    while len(level) > 1:
        nxt = [join(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def profile_exactly(run: Callable[[ProfileSpec], PartitionProfile], spec: ProfileSpec, *,
                    exact: bool = True, metadata: Mapping[str, str] | None = None,
                    rows: int | None = None) -> Profiles:
    """Profile with ``run`` (one pass over every partition, merged); with ``exact`` and more
    rows than the sample holds, a second pass counts the bin shares and means exactly over the
    first pass's edges (as ``Reference.from_file`` does).

    Args:
        run: Profiles every partition with the given spec and returns the merged profile.
        spec: What to profile.
        exact: Make the second pass when the data exceeds the sample.
        metadata: Free-form string pairs stored with the profiles.
        rows: Every partition's rows together, when known up front (or the builder option
            ``expected_rows``): the partitions' samples then keep only the keys that can be
            among the smallest (see :class:`ReferenceBuilder`), checked after the merge
            (profiled again without the bound in the rare case it did not hold).
    """
    sample = int(spec.options.get("sample_size", ReferenceBuilder().sample_size))
    options = {k: v for k, v in spec.options.items() if k != "expected_rows"}
    plain = replace(spec, options=options)
    if rows is None:
        rows = spec.options.get("expected_rows")  # given as a builder option
    merged = None
    if rows is not None and rows > sample:
        merged = run(replace(plain, options={**options, "expected_rows": rows}))
        whole = merged.builders.get(ALL_ROWS)
        if whole is not None and not whole.sample_complete():
            merged = None  # fewer values than rows (missing ones): the bound dropped too many
    if merged is None:
        merged = run(plain)
    first = merged.references(metadata=metadata)
    if not exact or first.reference.rows <= sample:
        return first
    # The exact pass keeps no sample: its central range and fine bins are the first pass's
    # (the same seeds draw the same sample again).
    second = run(replace(plain, edges_from=first.reference, segment_edges=first.segments,
                         options={**options, "sample": False}))
    return second.references(metadata=metadata)


def _update(state: PartitionProfile, spec: ProfileSpec, segment: str, cols: dict[str, Any],
            predictions: Any, partition: int) -> None:
    builder = state.builders.get(segment)
    if builder is None:
        builder = state.builders[segment] = spec.builder(partition, segment)
    try:
        builder.update(cols, predictions)
    except ValueError as exc:
        where = "" if segment == ALL_ROWS else f" segment {segment!r}"
        raise PartitionError(f"partition {partition}{where}: {exc}") from exc


def _tally(predictions: Any, labels: Any, partition: int) -> tuple[str, Tally]:
    pred, truth = np.asarray(_values(predictions)), np.asarray(_values(labels))
    tally = Tally()
    if pred.dtype.kind in "biuUSO":
        tally.add_labels(label_strings(pred), label_strings(truth))
        return "classification", tally
    try:
        errors = pred.astype(np.float64) - truth.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise PartitionError(f"partition {partition}: the labels are not numbers for numeric "
                             f"predictions: {exc}") from exc
    tally.add_errors(errors)
    return "regression", tally


def _kind_of(column: Any) -> str:
    dtype = getattr(column, "dtype", None)
    kind = getattr(dtype, "kind", "O")
    return "numeric" if kind in _NUMERIC_KINDS else "other"


def _kind_text(kind: str) -> str:
    return "numeric" if kind == "numeric" else "not numeric (strings, booleans or objects)"


def _values(column: Any) -> Any:
    return column.to_numpy() if hasattr(column, "to_numpy") else column


def _take(column: Any, index: np.ndarray) -> Any:
    if hasattr(column, "iloc"):
        return column.iloc[index]
    return np.asarray(column)[index]


def _mapping_rows(frame: Mapping[str, Any]) -> int:
    for column in frame.values():
        return len(column)
    return 0


def _ids(partitions: frozenset[int]) -> str:
    ids = sorted(partitions)
    return ",".join(map(str, ids[:5])) + (",..." if len(ids) > 5 else "")
