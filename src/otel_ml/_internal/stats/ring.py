"""Preallocated statistics of one segment: a ring of time slots plus cumulative counters."""

from __future__ import annotations

import numpy as np

from otel_ml.contract import Check

__all__ = ["CHECK_INDEX", "Delta", "SegmentStats", "SlotRing", "Window"]

#: Column of each check in the issue matrices.
CHECK_INDEX = {check: i for i, check in enumerate(Check.ALL)}
_OUT_OF_RANGE = CHECK_INDEX[Check.OUT_OF_RANGE]


class SlotRing:
    """The one time-slot ring: which of ``slots`` places an absolute slot number uses, and
    which places belong to the window ending at a given slot.

    Place ``k`` holds absolute slot number ``ids[k]`` (``-1``: never used). Owners keep their
    per-slot data in arrays (or lists) indexed by place and clear a place when :meth:`claim`
    says it was reused for a newer slot.

    Args:
        slots: Places in the ring (the window is ``slots`` slots long).
        slot_s: Length of one slot in seconds.
    """

    __slots__ = ("ids", "slot_s")

    def __init__(self, slots: int, slot_s: float) -> None:
        self.ids = np.full(slots, -1, dtype=np.int64)
        self.slot_s = float(slot_s)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def slot_at(self, now: float) -> int:
        """Absolute slot number of time ``now`` (seconds)."""
        return int(now // self.slot_s)

    def claim(self, slot: int) -> tuple[int, bool]:
        """Place of absolute slot ``slot``, and whether it was just reused (clear it then)."""
        k = slot % self.ids.shape[0]
        if self.ids[k] == slot:
            return k, False
        self.ids[k] = slot
        return k, True

    def live(self, slot: int) -> np.ndarray:
        """Boolean mask of the places inside the window that ends at ``slot``."""
        return (self.ids > slot - self.ids.shape[0]) & (self.ids <= slot)

    def reset(self) -> None:
        """Forget every slot (e.g. in a forked child)."""
        self.ids[:] = -1


class Delta:
    """What one batch adds: counts per reference bin, moments, issues, outliers.

    Attributes:
        rows: Rows in the batch.
        bins: Counts per reference bin (flat over the binned columns).
        n: Finite values per column. s1, s2: Sums of ``x - shift`` and its square per column.
        issues: ``(columns, checks)`` counts.
        outliers: Rows scored as outliers.
        extended: Counts per extended bin (the fine resolution of drift; ``None``: none).
        tails: Sums of the values per tail bin (the extended bins outside the central 99%,
            numbered first; ``None``: none).
    """

    __slots__ = ("bins", "extended", "issues", "n", "outliers", "rows", "s1", "s2", "tails")

    def __init__(self, columns: int, bins: int) -> None:
        self.rows = 0
        self.bins = np.zeros(bins, dtype=np.int64)
        self.n = np.zeros(columns, dtype=np.int64)
        self.s1 = np.zeros(columns)
        self.s2 = np.zeros(columns)
        self.issues = np.zeros((columns, len(CHECK_INDEX)), dtype=np.int64)
        self.outliers = 0
        self.extended: np.ndarray | None = None
        self.tails: np.ndarray | None = None

    def add(self, other: Delta) -> None:
        """Fold ``other``'s counts and moments into this delta (rows and outliers aside: the
        two describe the same rows, e.g. their features and their predictions)."""
        self.bins += other.bins
        self.n += other.n
        with np.errstate(all="ignore"):  # moments of huge values overflow: not the host's concern
            self.s1 += other.s1
            self.s2 += other.s2
        self.issues += other.issues
        if other.extended is not None and other.tails is not None:
            if self.extended is None or self.tails is None:
                self.extended, self.tails = other.extended.copy(), other.tails.copy()
            else:
                self.extended += other.extended
                self.tails += other.tails


class Window:
    """Sums over the slots of one window.

    Attributes:
        rows: Rows. bins: Counts per reference bin. n: Finite values per column.
        s1, s2: Sums of ``x - shift`` and of its square per column.
        outside: Values beyond the reference range per column (``out_of_range``).
        extended: Counts per extended bin. tails: Sums of the values per tail bin.
    """

    __slots__ = ("bins", "extended", "n", "outside", "rows", "s1", "s2", "tails")

    def __init__(self, rows: int, bins: np.ndarray, n: np.ndarray, s1: np.ndarray,
                 s2: np.ndarray, outside: np.ndarray, extended: np.ndarray | None = None,
                 tails: np.ndarray | None = None) -> None:
        self.rows = rows
        self.bins = bins
        self.n = n
        self.s1 = s1
        self.s2 = s2
        self.outside = outside
        self.extended = np.zeros(0, dtype=np.int64) if extended is None else extended
        self.tails = np.zeros(0) if tails is None else tails

    @classmethod
    def empty(cls, columns: int, bins: int, extended: int = 0, tails: int = 0) -> Window:
        """A window that saw nothing."""
        return cls(0, np.zeros(bins, dtype=np.int64), np.zeros(columns, dtype=np.int64),
                   np.zeros(columns), np.zeros(columns), np.zeros(columns, dtype=np.int64),
                   np.zeros(extended, dtype=np.int64), np.zeros(tails))

    def __add__(self, other: Window) -> Window:
        with np.errstate(all="ignore"):  # moments of huge values overflow: not the host's concern
            return Window(self.rows + other.rows, self.bins + other.bins, self.n + other.n,
                          self.s1 + other.s1, self.s2 + other.s2, self.outside + other.outside,
                          self.extended + other.extended, self.tails + other.tails)


class SegmentStats:
    """Statistics of one segment, memory fixed at creation.

    The window is a :class:`SlotRing` of ``slots`` time slots; a slot's arrays are zeroed when
    the ring reuses it for a newer time.

    Args:
        slots: Slots in the window.
        columns: Columns tracked (features, then the prediction).
        bins: Reference bins over all binned columns.
        extended: Extended bins over all binned columns (``slots x extended`` counts: the
            fine resolution of drift).
        tails: Tail bins (``slots x tails`` sums of values).
    """

    __slots__ = (
        "bins",
        "ring",
        "issues",
        "outliers",
        "rows",
        "w_bins",
        "w_extended",
        "w_n",
        "w_outside",
        "w_rows",
        "w_s1",
        "w_s2",
        "w_tails",
    )

    def __init__(self, slots: int, columns: int, bins: int, extended: int = 0,
                 tails: int = 0) -> None:
        self.ring = SlotRing(slots, 1.0)
        self.w_rows = np.zeros(slots, dtype=np.int64)
        self.w_bins = np.zeros((slots, bins), dtype=np.int64)
        self.w_n = np.zeros((slots, columns), dtype=np.int64)
        self.w_s1 = np.zeros((slots, columns))
        self.w_s2 = np.zeros((slots, columns))
        self.w_outside = np.zeros((slots, columns), dtype=np.int64)
        self.w_extended = np.zeros((slots, extended), dtype=np.int64)
        self.w_tails = np.zeros((slots, tails))
        self.rows = 0
        self.bins = np.zeros(bins, dtype=np.int64)
        self.issues = np.zeros((columns, len(CHECK_INDEX)), dtype=np.int64)
        self.outliers = 0

    def add(self, delta: Delta, slot: int) -> None:
        """Fold ``delta`` into absolute time slot ``slot`` and into the cumulative counters."""
        k, reused = self.ring.claim(slot)
        if reused:
            self.w_rows[k] = 0
            self.w_bins[k] = 0
            self.w_n[k] = 0
            self.w_s1[k] = 0.0
            self.w_s2[k] = 0.0
            self.w_outside[k] = 0
            self.w_extended[k] = 0
            self.w_tails[k] = 0.0
        self.w_rows[k] += delta.rows
        self.w_bins[k] += delta.bins
        self.w_n[k] += delta.n
        self.w_outside[k] += delta.issues[:, _OUT_OF_RANGE]
        with np.errstate(all="ignore"):  # moments of huge values overflow: not the host's concern
            self.w_s1[k] += delta.s1
            self.w_s2[k] += delta.s2
            if delta.extended is not None and delta.tails is not None and \
                    delta.extended.shape[0] == self.w_extended.shape[1]:
                self.w_extended[k] += delta.extended
                self.w_tails[k] += delta.tails
        self.rows += delta.rows
        self.bins += delta.bins
        self.issues += delta.issues
        self.outliers += delta.outliers

    def window(self, slot: int) -> Window:
        """The sums over the slots of the window ending at ``slot``."""
        live = self.ring.live(slot)
        with np.errstate(all="ignore"):  # moments of huge values overflow: not the host's concern
            return Window(int(self.w_rows[live].sum()), self.w_bins[live].sum(axis=0),
                          self.w_n[live].sum(axis=0), self.w_s1[live].sum(axis=0),
                          self.w_s2[live].sum(axis=0), self.w_outside[live].sum(axis=0),
                          self.w_extended[live].sum(axis=0), self.w_tails[live].sum(axis=0))
