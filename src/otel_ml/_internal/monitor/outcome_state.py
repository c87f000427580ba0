"""Outcomes as mergeable state: what labelled rows scored elsewhere add to a monitor.

A batch job whose labels are columns scores each partition's labels where it runs
(``record_outcomes`` on the partition's outcome side, a window that holds every row). What
that adds is a sum: per-segment performance tallies (confusion counts, Brier and log-loss sums,
error sums), fairness counts, the cumulative confusion counts and squared-error sums behind the
Prometheus counters, unmatched labels by reason, and the ``ml.model.error.absolute`` histogram
per segment (:class:`ErrorTally`: counts and sums per bucket, extremes). States of disjoint rows
merge by addition; the driver's monitor adds the merged state into its current slot
(:meth:`OutcomeStats.absorb`).

Not a sum: the concept-drift detectors are sequential (they need the errors one by one, in
order). Opt-in, a state carries each partition's error stream (:attr:`OutcomeState.streams`:
1 bit per row for a classifier, 8 bytes for a regressor) and the driver feeds them in
partition order. The error-by-bin and attribution tallies are not fed by ``record_outcomes``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np

from otel_ml._internal.monitor.outcome_window import SlotData
from otel_ml._internal.stats.performance import Tally
from otel_ml.contract import ERROR_BUCKETS, NO_SEGMENT, Attr

__all__ = ["ErrorTally", "OutcomeState"]


class ErrorTally:
    """A histogram recorder (``record(value, attributes)``) that keeps, per segment and
    bucket, the count, sum, minimum and maximum of the values: enough to record the same
    histogram again elsewhere (:meth:`replay`) with equal bucket counts, count, min and max,
    and a sum equal up to rounding.

    Args:
        buckets: The histogram's explicit bucket boundaries (a value ``v`` falls in bucket
            ``bisect_left(buckets, v)``, as in the OpenTelemetry SDK).
    """

    __slots__ = ("buckets", "per")

    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = tuple(float(b) for b in buckets)
        #: Segment -> ``(4, buckets + 1)``: counts, sums, minima, maxima.
        self.per: dict[str, np.ndarray] = {}

    def _row(self, segment: str) -> np.ndarray:
        row = self.per.get(segment)
        if row is None:
            row = self.per[segment] = np.zeros((4, len(self.buckets) + 1))
            row[2], row[3] = np.inf, -np.inf
        return row

    def record(self, value: float, attributes: Mapping[str, str] | None = None) -> None:
        """Count one value (the OpenTelemetry histogram's ``record``)."""
        row = self._row(str((attributes or {}).get(Attr.SEGMENT, NO_SEGMENT)))
        i = bisect_left(self.buckets, value)
        row[0, i] += 1
        row[1, i] += value
        row[2, i] = min(row[2, i], value)
        row[3, i] = max(row[3, i], value)

    @property
    def count(self) -> int:
        """Values recorded."""
        return int(sum(row[0].sum() for row in self.per.values()))

    def merge(self, other: ErrorTally) -> ErrorTally:
        """Add ``other`` (same buckets) into this tally; returns ``self``.

        Raises:
            ValueError: Other buckets.
        """
        if other.buckets != self.buckets:
            raise ValueError("error histograms with different buckets")
        for seg, theirs in other.per.items():
            row = self._row(seg)
            row[:2] += theirs[:2]
            np.minimum(row[2], theirs[2], out=row[2])
            np.maximum(row[3], theirs[3], out=row[3])
        return self

    def values(self) -> Iterator[tuple[str, list[float]]]:
        """Per segment, values that fill the same buckets with the same counts, sums,
        minima and maxima: each bucket's minimum and maximum, the rest at the mean of the
        others (kept within them)."""
        for seg, row in self.per.items():
            out: list[float] = []
            for i in np.flatnonzero(row[0]).tolist():
                c, s, lo, hi = int(row[0, i]), float(row[1, i]), float(row[2, i]), float(row[3, i])
                if c == 1:
                    out.append(lo)
                    continue
                out += (lo, hi)
                if c > 2:
                    out += [min(max((s - lo - hi) / (c - 2), lo), hi)] * (c - 2)
            yield seg, out

    def replay(self, record: Callable[[float, str], None]) -> None:
        """``record(value, segment)`` for every value of :meth:`values`."""
        for seg, values in self.values():
            for v in values:
                record(v, seg)


class OutcomeState:
    """What labelled rows scored elsewhere add to a monitor's outcome side; merges by
    addition.

    Attributes:
        window: Per-segment tallies and fairness counts (``SlotData``).
        undecided: Probability scores of rows whose output was ambiguous (only 0.0 and 1.0)
            while the output was not decided, by segment.
        settled: Whether ambiguous rows' probability scores count (``None``: undecided).
        task: The task the predictions showed (``None``: none seen).
        confusion: Cumulative ``(segment, predicted, actual) -> rows``.
        squared: Cumulative squared-error sums by segment.
        unmatched: Labels not scored, by reason.
        errors: The absolute-error histogram per segment.
        streams: Partition -> its per-row errors fed to the concept-drift detectors, in
            order (packed: see :meth:`keep_stream`); empty unless asked for.
    """

    __slots__ = ("confusion", "errors", "settled", "squared", "streams", "task", "undecided",
                 "unmatched", "window")

    def __init__(self, buckets: Sequence[float] = ERROR_BUCKETS) -> None:
        self.window = SlotData()
        self.undecided: dict[str, Tally] = {}
        self.settled: bool | None = None
        self.task: str | None = None
        self.confusion: dict[tuple[str, str, str], int] = {}
        self.squared: dict[str, float] = {}
        self.unmatched: dict[str, int] = {}
        self.errors = ErrorTally(buckets)
        self.streams: dict[int, tuple[int, np.ndarray]] = {}

    def keep_stream(self, partition: int, errors: np.ndarray) -> None:
        """Carry ``partition``'s error stream: a classifier's 0/1 errors as bits, a
        regressor's absolute errors as float64."""
        if self.task == "regression":
            self.streams[partition] = (-1, np.asarray(errors, dtype=np.float64))
        else:
            self.streams[partition] = (int(errors.shape[0]), np.packbits(errors > 0.5))

    def error_streams(self) -> Iterator[np.ndarray]:
        """The carried error streams, in partition order."""
        for partition in sorted(self.streams):
            n, data = self.streams[partition]
            yield data if n < 0 else np.unpackbits(data, count=n).astype(np.float64)

    @property
    def labelled(self) -> int:
        """Labelled rows scored."""
        return self.window.total().count

    def settle(self, include: bool) -> None:
        """The output is decided: count the undecided probability scores (``include``) or
        drop them."""
        if include:
            for seg, tally in self.undecided.items():
                self.window.tallies.setdefault(seg, Tally()).merge(tally)
        self.undecided = {}
        self.settled = include

    def merge(self, other: OutcomeState) -> OutcomeState:
        """Add ``other`` (other rows, the same monitor) into this state; returns ``self``.

        Raises:
            ValueError: The states saw different tasks, or read the output differently.
        """
        if self.task is not None and other.task is not None and self.task != other.task:
            raise ValueError(f"partitions' predictions show different tasks ({self.task} and "
                             f"{other.task})")
        self.task = self.task or other.task
        if None not in (self.settled, other.settled) and self.settled != other.settled:
            raise ValueError("partitions read the model's output differently (probabilities "
                             "in one, labels in another): declare output= on the monitor")
        for seg, tally in other.undecided.items():
            self.undecided.setdefault(seg, Tally()).merge(tally)
        decided = self.settled if self.settled is not None else other.settled
        if decided is not None:
            self.settle(decided)
        self.window.add(other.window)
        for key, n in other.confusion.items():
            self.confusion[key] = self.confusion.get(key, 0) + n
        for seg, v in other.squared.items():
            self.squared[seg] = self.squared.get(seg, 0.0) + v
        for reason, n in other.unmatched.items():
            self.unmatched[reason] = self.unmatched.get(reason, 0) + n
        self.errors.merge(other.errors)
        self.streams.update(other.streams)  # disjoint partitions (BatchState checks)
        return self
