"""Multivariate drift: the analysis that watches the joint distribution of the inputs.

A change in how features move together (a correlation that flips while every marginal stays
the same) passes every univariate test. NannyML's data-reconstruction method catches it: a
PCA fitted on the standardised reference features (``Reference.projections["features"]``)
reconstructs rows like the reference ones well and others worse. Streaming, per batch: one
matrix product gives each row's reconstruction error and its distance to the reference
centroid; their sums and the row count accumulate per segment in the time-slot ring. At
collection the window's mean is compared with the upper bound of reference windows of the
same size (bootstrap, :meth:`Projection.upper`). The embeddings' projection (space
``"embedding"``) is watched the same way, from the errors the feature ingest computed.

The features space costs a call little: a batch's sampled rows are copied into a
preallocated buffer with their segment and time slot, and projected together (one matrix
product) when the buffer is full and at every read (collection, reports, state); they land in
the slot of the call that brought them. A batch gives at most :data:`_SAMPLE_ROWS` rows (every
k-th) until its segment has :data:`_DENSE_ROWS` rows in the current time slot; after that
only one batch of the segment's in :data:`_SPARSE_CALLS` is read (the others cost a counter): a
quiet window keeps all the rows it can use, a busy one enough for a tight band (at least
``_DENSE_ROWS`` per slot) without paying for the rest. Single rows and
small batches are not copied again: they are read from the feature statistics' own row buffer
when it is folded (:meth:`MultivariateDrift.rows_from`). Batches with per-row segments are
projected on the call.

Memory: ``slots x segments x spaces x 3`` floats, independent of traffic and of the width.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from otel_ml._internal.core.log import internal_error, log_limited
from otel_ml._internal.monitor.analysis import Collector, Points
from otel_ml._internal.monitor.batch import Batch
from otel_ml._internal.monitor.feature_stats import FeatureStatistics, buffers_rows
from otel_ml._internal.monitor.multivariate_buffer import MIN_ROWS, PendingRows, Taken, run_sums
from otel_ml._internal.monitor.multivariate_state import MultivariateState
from otel_ml._internal.monitor.settings import Settings
from otel_ml._internal.reference.profile import Reference
from otel_ml._internal.reference.projection import EMBEDDING, FEATURES, Projection
from otel_ml._internal.stats.binplan import BinPlan
from otel_ml._internal.stats.ring import SlotRing
from otel_ml.contract import ALL_SEGMENTS, NO_SEGMENT, Attr
from otel_ml.thresholds import THRESHOLDS

__all__ = ["QUANTITIES", "MultivariateDrift"]

#: The two per-row quantities, as named in reports and metrics.
QUANTITIES = ("reconstruction_error", "centroid_distance")
#: Rows of one batch the feature space reads at most (every k-th row beyond; a batch's
#: sample always fits the buffer) while its segment's current slot holds fewer than
#: _DENSE_ROWS of them; after that one batch in _SPARSE_CALLS of the segment's is read. A
#: batch read costs a 1,000-row call about 8-10 us (the copy into cold buffer lines, the
#: lock, its share of the projection), whatever the rows read (measured: 256 rows a call
#: 1.08x the call without multivariate drift, 32 rows a call 1.03x).
_SAMPLE_ROWS = MIN_ROWS
_DENSE_ROWS = 1024
_SPARSE_CALLS = 8


class _Space:
    """One projection's ring: per segment ``(slots, 3)`` sums (rows, errors, distances)."""

    __slots__ = ("columns", "name", "projection", "sums")

    def __init__(self, name: str, projection: Projection, columns: np.ndarray | None) -> None:
        self.name = name
        self.projection = projection
        self.columns = columns  # plan columns read (features space; None: all, in order)
        self.sums: dict[str, np.ndarray] = {}


class MultivariateDrift:
    """Reconstruction error and centroid distance per segment: an :class:`Analysis`.

    Args:
        settings: The monitor's settings (window and slots).
        reference: The reference and its projections (nothing is watched without one).
        plan: The bin plan (where the projected features are in the batch's matrix).
        clock: Monotonic time in seconds.
        dense: Read every batch, however many rows the slot holds (a batch job's partitions:
            what they read depends on their batches only, not on the order they came in).
    """

    def __init__(self, settings: Settings, reference: Reference | None, plan: BinPlan | None,
                 clock: Callable[[], float] = time.monotonic, *, dense: bool = False) -> None:
        self._name = settings.name
        self._clock = clock
        self._dense_rows = math.inf if dense else _DENSE_ROWS
        self._ring = SlotRing(settings.slots, settings.slot_s)
        self._min_rows = THRESHOLDS.multivariate_min_rows
        self._spaces: list[_Space] = []
        projections = reference.projections if reference is not None else {}
        features = projections.get(FEATURES)
        if features is not None and plan is not None:
            index = [plan.index.get(c) for c in features.columns]
            if None in index:
                log_limited(f"mv:{self._name}", "otel_ml: %s: the reference's multivariate "
                            "projection reads features the monitor does not track "
                            "(max_features); multivariate drift is off", self._name)
            else:
                columns = None if index == list(range(plan.n_features)) else np.array(index)
                self._spaces.append(_Space(FEATURES, features, columns))
        if projections.get(EMBEDDING) is not None:
            self._spaces.append(_Space(EMBEDDING, projections[EMBEDDING], None))
        self._features: FeatureStatistics | None = None
        self._reset()

    def rows_from(self, features: FeatureStatistics) -> None:
        """Read the rows ``features`` buffers (single rows, small batches) from its buffer
        when it folds them, instead of copying them again on the call: such a call costs
        this analysis nothing. Reads (reports, collection) fold that buffer first."""
        if self._spaces and self._spaces[0].name == FEATURES:
            features.add_row_sink(self._fold_rows)
            self._features = features

    def _fold_rows(self, values: np.ndarray, segments: list[str]) -> None:
        """Project rows of the features' buffer (plan order), each with its segment."""
        space = self._spaces[0]
        rows = values if space.columns is None else values[:, space.columns]
        err, dist = space.projection.row_errors(rows)
        if len(set(segments)) == 1:
            self._add(space, err, dist, segments[0], None)
        else:
            self._add(space, err, dist, NO_SEGMENT, np.array(segments, dtype=object))

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._ring.reset()
        self._sampled: dict[str, int] = {}  # rows read per segment in _sampled_slot
        self._skipped: dict[str, int] = {}  # its batches past _DENSE_ROWS, per segment
        self._sampled_slot = -1
        for space in self._spaces:
            space.sums = {}
        first = self._spaces[0] if self._spaces else None
        self._pending = PendingRows(first.projection.dim if first is not None
                                    and first.name == FEATURES else 0)

    @property
    def spaces(self) -> tuple[str, ...]:
        """The spaces watched (``"features"``, ``"embedding"``)."""
        return tuple(s.name for s in self._spaces)

    # ------------------------------------------------------------------ Analysis
    def observe(self, batch: Batch) -> None:
        """Fold one call's rows (the features space's through the buffer). Never raises."""
        if not self._spaces or batch is None:
            return
        try:
            self._observe(batch)
        except Exception as exc:
            internal_error("multivariate", exc)

    def _observe(self, batch: Batch) -> None:
        seg = NO_SEGMENT if batch.segment is None else batch.segment
        for space in self._spaces:
            if space.name == EMBEDDING:
                if batch.projected is not None:
                    err, dist = batch.projected
                    segs = batch.segments if batch.segments is not None and \
                        batch.segments.shape[0] == err.shape[0] else None
                    self._add(space, err, dist, seg, segs)
                continue
            if self._features is not None and buffers_rows(batch):
                continue  # read from the features' row buffer when it is folded
            m = batch.matrix
            if m is not None and m.values is not None:
                # A systematic sample of each batch (every step-th row): the window's mean
                # stays unbiased and its band is that of the rows used.
                slot = self._ring.slot_at(self._clock())
                n = m.values.shape[0]
                cap = self._cap(seg, slot)
                if not cap:  # a busy slot: this batch is not read
                    continue
                step = -(-n // cap) if n > cap else 1
                values = m.values[::step] if step > 1 else m.values
                self._sampled[seg] = self._sampled.get(seg, 0) + values.shape[0]
                if space.columns is not None:
                    values = values[:, space.columns]
                if batch.segments is not None:  # per-row segments: projected now
                    err, dist = space.projection.row_errors(values)
                    self._add(space, err, dist, seg, batch.segments[::step])
                else:
                    self._buffer(values, seg, slot)
            elif batch.row_prediction is not None and batch.input is not None:
                row = batch.input
                if type(row) is not np.ndarray or row.ndim != 1:
                    row = np.asarray(row, dtype=np.float64).reshape(-1)
                self._buffer(row if space.columns is None else row[space.columns], seg)

    def _cap(self, seg: str, slot: int) -> int:
        """Rows a batch of segment ``seg`` reads at most now (0: none; :data:`_DENSE_ROWS`)."""
        if slot != self._sampled_slot:  # a new slot: every segment reads densely again
            self._sampled, self._skipped = {}, {}
            self._sampled_slot = slot
        if self._sampled.get(seg, 0) < self._dense_rows:
            return _SAMPLE_ROWS
        calls = self._skipped[seg] = self._skipped.get(seg, 0) + 1
        return _SAMPLE_ROWS if calls % _SPARSE_CALLS == 0 else 0

    def _buffer(self, values: np.ndarray, seg: str, slot: int | None = None) -> None:
        """Copy one row (``(width,)``) or a block (``(n, width)``) into the buffer."""
        slot = self._ring.slot_at(self._clock()) if slot is None else slot
        full = self._pending.put(values, seg, slot)
        if full is not None:
            self._fold(full)

    def _fold(self, taken: Taken) -> None:
        """Project taken rows together; add each run's sums into its segment and slot."""
        space = self._spaces[0]
        try:
            if taken.rows.shape[0]:
                err, dist = space.projection.row_errors(taken.rows, overwrite=True)
                for (slot, key), (c, e, d) in run_sums(taken.runs, err, dist).items():
                    self._add_parts(space, [(key, c, e, d)], slot)
        finally:
            self._pending.recycle(taken.buffer)

    def flush(self) -> None:
        """Project the buffered rows now (the features' row buffer too, when read from)."""
        if self._features is not None:
            self._features.flush()
        taken = self._pending.take()
        if taken is not None:
            self._fold(taken)

    def _add(self, space: _Space, err: np.ndarray, dist: np.ndarray, seg: str,
             segments: np.ndarray | None) -> None:
        ok = np.isfinite(err) & np.isfinite(dist)
        if not ok.all():  # rows beyond the float range: left out of the sums
            err, dist = err[ok], dist[ok]
            segments = segments[ok] if segments is not None else None
        if err.shape[0] == 0:
            return
        if segments is None:
            parts = [(seg, err.shape[0], float(err.sum()), float(dist.sum()))]
        else:
            keys, inverse = np.unique(segments, return_inverse=True)
            counts = np.bincount(inverse, minlength=keys.shape[0])
            es = np.bincount(inverse, weights=err, minlength=keys.shape[0])
            ds = np.bincount(inverse, weights=dist, minlength=keys.shape[0])
            parts = [(str(k), int(counts[i]), float(es[i]), float(ds[i]))
                     for i, k in enumerate(keys)]
        self._add_parts(space, parts)

    def _add_parts(self, space: _Space, parts: list[tuple[str, float, float, float]],
                   slot: int | None = None) -> None:
        """Add ``(segment, rows, error sum, distance sum)`` into the slot ``slot`` (default:
        the current one; a slot that has left the ring is dropped)."""
        with self._lock:
            now = self._ring.slot_at(self._clock())
            slot = now if slot is None else slot
            ids = self._ring.ids
            if slot <= now - ids.shape[0] or ids[slot % ids.shape[0]] > slot:
                return  # out of the window already
            place, fresh = self._ring.claim(slot)
            if fresh:
                for other in self._spaces:
                    for sums in other.sums.values():
                        sums[place] = 0.0
            for key, rows, e, d in parts:
                sums = space.sums.get(key)
                if sums is None:
                    sums = space.sums[key] = np.zeros((len(self._ring), 3))
                sums[place] += (rows, e, d)

    # ------------------------------------------------------------------ state
    def state(self) -> MultivariateState:
        """The window's sums as mergeable state (every row when the window holds every slot:
        a batch job's partition monitor)."""
        self.flush()
        state = MultivariateState()
        with self._lock:
            live = self._ring.live(self._ring.slot_at(self._clock()))
            for space in self._spaces:
                for key, sums in space.sums.items():
                    state.add(space.name, key, sums[live].sum(axis=0))
        return state

    def absorb(self, state: MultivariateState) -> None:
        """Add ``state`` (rows observed elsewhere, same reference) into the current slot.

        Raises:
            ValueError: ``state`` has a space this monitor does not watch.
        """
        by_name = {s.name: s for s in self._spaces}
        unknown = sorted(set(state.sums) - set(by_name))
        if unknown:
            raise ValueError(f"multivariate state of space(s) {unknown} this monitor does "
                             f"not watch (it watches {sorted(by_name)})")
        for name, per in state.sums.items():
            self._add_parts(by_name[name], [(k, float(v[0]), float(v[1]), float(v[2]))
                                            for k, v in per.items()])

    # ------------------------------------------------------------------ reading
    def windows(self) -> dict[str, dict[str, np.ndarray]]:
        """Space -> segment key -> ``(rows, error sum, distance sum)`` over the window
        (with :data:`ALL_SEGMENTS`, and per segment when there are segments)."""
        self.flush()
        out: dict[str, dict[str, np.ndarray]] = {}
        with self._lock:
            live = self._ring.live(self._ring.slot_at(self._clock()))
            for space in self._spaces:
                per = {k: s[live].sum(axis=0) for k, s in space.sums.items()}
                if per:
                    total = sum(per.values())
                    keys = [k for k in per if k != NO_SEGMENT]
                    if not keys:
                        per = {}
                    per[ALL_SEGMENTS] = total
                out[space.name] = per
        return out

    def _entry(self, space: _Space, sums: np.ndarray) -> dict[str, Any]:
        rows = int(sums[0])
        out: dict[str, Any] = {}
        for i, quantity in enumerate(QUANTITIES):
            value = float(sums[1 + i] / rows) if rows else math.nan
            upper = space.projection.upper(quantity, rows) if rows else math.nan
            judged = rows >= self._min_rows
            out[quantity] = {"value": value, "upper": upper, "rows": rows,
                             "drifted": bool(judged and value > upper)}
        return out

    def report(self) -> Mapping[str, Any]:
        """``{"multivariate": {segment key: {space: {quantity: {value, upper, rows,
        drifted}}}}}`` (segment ``None`` is all traffic)."""
        out: dict[Any, dict[str, Any]] = {}
        by_name = {s.name: s for s in self._spaces}
        for name, per in self.windows().items():
            for key, sums in per.items():
                seg = None if key == ALL_SEGMENTS else key
                out.setdefault(seg, {})[name] = self._entry(by_name[name], sums)
        return {"multivariate": out}

    def _points(self, quantity: int, upper: bool) -> Points:
        points = []
        windows = self.windows()
        for space in self._spaces:
            per = windows.get(space.name, {})
            for key, sums in per.items():
                rows = int(sums[0])
                if rows < self._min_rows:
                    continue
                q = QUANTITIES[quantity]
                value = space.projection.upper(q, rows) if upper else \
                    float(sums[1 + quantity] / rows)
                if math.isfinite(value):
                    points.append((value, {Attr.SEGMENT: key, Attr.MULTIVARIATE_SPACE: space.name}))
        return points

    def collectors(self) -> Mapping[str, Collector]:
        """The reconstruction error and centroid distance of each space and their bounds."""
        def make(q: int, upper: bool) -> Collector:
            def collect() -> Points:
                try:
                    return self._points(q, upper)
                except Exception as exc:
                    internal_error("multivariate", exc)
                    return []
            return collect

        if not self._spaces:
            return {}
        return {"ml.drift.reconstruction_error": make(0, False),
                "ml.drift.reconstruction_error.upper": make(0, True),
                "ml.drift.centroid_distance": make(1, False),
                "ml.drift.centroid_distance.upper": make(1, True)}

    def after_fork(self) -> None:
        """In a forked child: drop what the parent counted; fresh locks."""
        self._reset()
