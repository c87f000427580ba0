"""Feature statistics as mergeable state: what rows observed elsewhere add, per segment.

A batch job scores its partitions on other machines; each partition's
:class:`~otel_ml._internal.monitor.feature_stats.FeatureStatistics` (with a window that holds
every slot) is read out as a :class:`FeatureState`, the states are merged (sums of counts and
moments), and the driver's monitor absorbs the merged state into its current slot: its drift
report, data-quality counters and exported metrics are then those of one process that
observed every row now.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from otel_ml._internal.monitor.feature_readout import SchemaKey
from otel_ml._internal.stats.ring import Delta, SegmentStats

__all__ = ["FeatureState"]


class FeatureState:
    """Per-segment sums (rows, counts per reference bin, moments, data-quality issues,
    outliers) and schema-issue counts; states of disjoint rows merge by addition.

    Attributes:
        deltas: Segment -> what its rows add.
        schema: Schema issues by (segment, feature, check) -> rows.
    """

    __slots__ = ("deltas", "schema")

    def __init__(self) -> None:
        self.deltas: dict[str, Delta] = {}
        self.schema: dict[SchemaKey, int] = {}

    @classmethod
    def of(cls, stats: Mapping[str, SegmentStats], schema: Mapping[SchemaKey, int],
           slot: int) -> FeatureState:
        """The state of segment statistics whose window (ending at ``slot``) holds every row."""
        state = cls()
        for key, st in stats.items():
            window = st.window(slot)
            d = Delta(window.n.shape[0], window.bins.shape[0])
            d.rows, d.outliers = st.rows, st.outliers
            d.bins, d.issues = st.bins.copy(), st.issues.copy()
            d.n, d.s1, d.s2 = window.n, window.s1, window.s2
            if window.extended.shape[0]:
                d.extended, d.tails = window.extended, window.tails
            state.deltas[key] = d
        state.schema = dict(schema)
        return state

    @property
    def rows(self) -> int:
        """Rows counted over every segment."""
        return sum(d.rows for d in self.deltas.values())

    def merge(self, other: FeatureState) -> FeatureState:
        """Add ``other`` (statistics of other rows under the same reference) into this state.

        Returns:
            This state.

        Raises:
            ValueError: The states were made with different bin plans.
        """
        for key, d in other.deltas.items():
            mine = self.deltas.get(key)
            if mine is None:
                self.deltas[key] = _copy(d)
                continue
            if mine.bins.shape != d.bins.shape or mine.n.shape != d.n.shape:
                raise ValueError(f"segment {key!r}: feature states of different bin plans "
                                 f"({mine.bins.shape[0]} and {d.bins.shape[0]} bins)")
            mine.add(d)
            mine.rows += d.rows
            mine.outliers += d.outliers
        for k, n in other.schema.items():
            self.schema[k] = self.schema.get(k, 0) + n
        return self


def _copy(d: Delta) -> Delta:
    c = Delta(d.n.shape[0], d.bins.shape[0])
    c.rows, c.outliers = d.rows, d.outliers
    c.bins, c.n, c.s1, c.s2, c.issues = (np.array(a) for a in (d.bins, d.n, d.s1, d.s2,
                                                                 d.issues))
    if d.extended is not None and d.tails is not None:
        c.extended, c.tails = d.extended.copy(), d.tails.copy()
    return c
