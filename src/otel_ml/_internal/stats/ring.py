"""Preallocated statistics of one segment: a ring of time slots plus cumulative counters."""

from __future__ import annotations

import numpy as np

from otel_ml.contract import Check

__all__ = ["CHECK_INDEX", "Delta", "SegmentStats"]

#: Column of each check in the issue matrices.
CHECK_INDEX = {check: i for i, check in enumerate(Check.ALL)}


class Delta:
    """What one batch adds: counts per reference bin, moments, issues, outliers.

    Attributes:
        rows: Rows in the batch.
        bins: Counts per reference bin (flat over the binned columns).
        n: Finite values per column. s1, s2: Sums of ``x - shift`` and its square per column.
        issues: ``(columns, checks)`` counts.
        outliers: Rows scored as outliers.
    """

    __slots__ = ("bins", "issues", "n", "outliers", "rows", "s1", "s2")

    def __init__(self, columns: int, bins: int) -> None:
        self.rows = 0
        self.bins = np.zeros(bins, dtype=np.int64)
        self.n = np.zeros(columns, dtype=np.int64)
        self.s1 = np.zeros(columns)
        self.s2 = np.zeros(columns)
        self.issues = np.zeros((columns, len(CHECK_INDEX)), dtype=np.int64)
        self.outliers = 0


class SegmentStats:
    """Statistics of one segment, memory fixed at creation.

    The window is a ring of ``slots`` time slots; slot ``k`` of the ring holds absolute slot
    number ``ids[k]`` (``-1``: empty). A slot is zeroed when it is reused for a newer time.

    Args:
        slots: Slots in the window.
        columns: Columns tracked (features, then the prediction).
        bins: Reference bins over all binned columns.
    """

    __slots__ = (
        "bins",
        "ids",
        "issues",
        "outliers",
        "rows",
        "w_bins",
        "w_n",
        "w_rows",
        "w_s1",
        "w_s2",
    )

    def __init__(self, slots: int, columns: int, bins: int) -> None:
        self.ids = np.full(slots, -1, dtype=np.int64)
        self.w_rows = np.zeros(slots, dtype=np.int64)
        self.w_bins = np.zeros((slots, bins), dtype=np.int64)
        self.w_n = np.zeros((slots, columns), dtype=np.int64)
        self.w_s1 = np.zeros((slots, columns))
        self.w_s2 = np.zeros((slots, columns))
        self.rows = 0
        self.bins = np.zeros(bins, dtype=np.int64)
        self.issues = np.zeros((columns, len(CHECK_INDEX)), dtype=np.int64)
        self.outliers = 0

    def add(self, delta: Delta, slot: int) -> None:
        """Fold ``delta`` into absolute time slot ``slot`` and into the cumulative counters."""
        k = slot % self.ids.shape[0]
        if self.ids[k] != slot:
            self.ids[k] = slot
            self.w_rows[k] = 0
            self.w_bins[k] = 0
            self.w_n[k] = 0
            self.w_s1[k] = 0.0
            self.w_s2[k] = 0.0
        self.w_rows[k] += delta.rows
        self.w_bins[k] += delta.bins
        self.w_n[k] += delta.n
        self.w_s1[k] += delta.s1
        self.w_s2[k] += delta.s2
        self.rows += delta.rows
        self.bins += delta.bins
        self.issues += delta.issues
        self.outliers += delta.outliers

    def window(self, slot: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(rows, bins, n, s1, s2)`` summed over the slots of the window ending at ``slot``."""
        live = (self.ids > slot - self.ids.shape[0]) & (self.ids <= slot)
        return (int(self.w_rows[live].sum()), self.w_bins[live].sum(axis=0),
                self.w_n[live].sum(axis=0), self.w_s1[live].sum(axis=0),
                self.w_s2[live].sum(axis=0))
