"""Multivariate drift as mergeable state: what rows observed elsewhere add, per space and
segment.

:class:`~otel_ml._internal.monitor.multivariate.MultivariateDrift` keeps, per projection space
("features", "embedding") and segment, three sums per time slot: rows read, reconstruction
error and centroid distance. A batch job's partition (one slot that holds every row) reads its
sums out as a :class:`MultivariateState`; states of disjoint rows merge by addition, and the
driver's monitor adds the merged sums into its current slot
(:meth:`MultivariateDrift.absorb`): its multivariate drift report and metrics are then those
of one process that observed the same batches now.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MultivariateState"]


class MultivariateState:
    """Per space and segment ``(rows, error sum, distance sum)``; merges by addition.

    Attributes:
        sums: Space name -> segment key -> ``(rows, error sum, distance sum)`` (float array).
    """

    __slots__ = ("sums",)

    def __init__(self) -> None:
        self.sums: dict[str, dict[str, np.ndarray]] = {}

    @property
    def rows(self) -> int:
        """Rows read over every space's segments (each space counts its rows)."""
        return int(sum(s[0] for per in self.sums.values() for s in per.values()))

    def add(self, space: str, segment: str, sums: np.ndarray) -> None:
        """Add ``(rows, error sum, distance sum)`` of ``segment`` in ``space``."""
        per = self.sums.setdefault(space, {})
        mine = per.get(segment)
        per[segment] = np.array(sums, dtype=np.float64) if mine is None else mine + sums

    def merge(self, other: MultivariateState) -> MultivariateState:
        """Add ``other`` (other rows under the same reference projections) into this state.

        Returns:
            This state.
        """
        for space, per in other.sums.items():
            for segment, sums in per.items():
                self.add(space, segment, sums)
        return self
