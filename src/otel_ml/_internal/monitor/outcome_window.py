"""The outcome side's window: per-slot tallies on the one time-slot ring (:class:`SlotRing`).

Scoring, fairness, error-by-bin and attributions add into the :class:`SlotData` of the current
slot; read-outs sum the live slots (cached until something changes or the slot turns).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from otel_ml._internal.monitor.settings import Settings
from otel_ml._internal.stats.performance import Tally
from otel_ml._internal.stats.ring import SlotRing

__all__ = ["OutcomeWindow", "SlotData", "grow_grid"]

#: Fairness tally key: ``(group, actual is positive, predicted is positive)``.
FairnessKey = tuple[str, bool, bool]


class SlotData:
    """What one time slot (or the sum of the window) holds.

    Attributes:
        tallies: Performance tallies by segment.
        fairness: Row counts by :data:`FairnessKey`.
        bin_n: ``(features, bins)`` labelled rows per reference bin (``None``: none yet).
        bin_err: ``(features, bins)`` summed errors per reference bin.
        attr_sum: Sum of absolute attributions by feature.
        attr_n: Attribution values by feature.
        undecided: Probability scores (Brier, log loss) by segment of rows whose output was
            ambiguous (only 0.0 and 1.0) before the monitor decided how to read it: added to
            :attr:`tallies` if it decides probabilities, dropped otherwise
            (:meth:`OutcomeWindow.settle`). Never part of a sum.
    """

    __slots__ = ("attr_n", "attr_sum", "bin_err", "bin_n", "fairness", "tallies", "undecided")

    def __init__(self) -> None:
        self.tallies: dict[str, Tally] = {}
        self.fairness: dict[FairnessKey, int] = {}
        self.bin_n: np.ndarray | None = None
        self.bin_err: np.ndarray | None = None
        self.attr_sum: dict[str, float] = {}
        self.attr_n: dict[str, int] = {}
        self.undecided: dict[str, Tally] = {}

    def total(self) -> Tally:
        """The tallies of every segment merged."""
        out = Tally()
        for tally in self.tallies.values():
            out.merge(tally)
        return out

    def add(self, other: SlotData) -> None:
        """Add ``other`` into this one."""
        for seg, tally in other.tallies.items():
            self.tallies.setdefault(seg, Tally()).merge(tally)
        for k, n in other.fairness.items():
            self.fairness[k] = self.fairness.get(k, 0) + n
        if other.bin_n is not None:
            self.bin_n = _add_grid(self.bin_n, other.bin_n)
            self.bin_err = _add_grid(self.bin_err, other.bin_err)
        for f, v in other.attr_sum.items():
            self.attr_sum[f] = self.attr_sum.get(f, 0.0) + v
            self.attr_n[f] = self.attr_n.get(f, 0) + other.attr_n[f]


class OutcomeWindow:
    """Per-slot :class:`SlotData` over a :class:`SlotRing` of ``drift_window_s / slot_s``
    slots. Writers hold :attr:`lock` while they add into :meth:`current` and call
    :meth:`changed` after.

    Args:
        settings: ``drift_window_s`` and ``slot_s``.
        clock: Monotonic seconds.
    """

    def __init__(self, settings: Settings, clock: Callable[[], float]) -> None:
        self.lock = threading.Lock()
        self.clock = clock
        self._ring = SlotRing(settings.slots, settings.slot_s)
        self._data: list[SlotData] = [SlotData() for _ in range(settings.slots)]
        self._version = 0
        self._cache: tuple[tuple[int, int], SlotData] | None = None
        #: Whether ambiguous rows' probability scores count (``None``: not decided yet).
        self.settled: bool | None = None

    def settle(self, include: bool) -> None:
        """The output is decided: add the undecided probability scores of every slot to its
        tallies (``include``: it is probabilities) or drop them (hold :attr:`lock`)."""
        if self.settled is not None:
            return
        self.settled = include
        for data in self._data:
            if include:
                for seg, tally in data.undecided.items():
                    data.tallies.setdefault(seg, Tally()).merge(tally)
            data.undecided = {}
        self._version += 1

    def current(self, now: float) -> SlotData:
        """The data of the slot of time ``now`` (hold :attr:`lock`)."""
        place, reused = self._ring.claim(self._ring.slot_at(now))
        if reused:
            self._data[place] = SlotData()
        return self._data[place]

    def changed(self) -> None:
        """Say that a slot changed (hold :attr:`lock`): the next :meth:`sum` recomputes."""
        self._version += 1

    def sum(self) -> SlotData:
        """The live slots summed (cached; treat as read-only)."""
        slot = self._ring.slot_at(self.clock())
        with self.lock:
            key = (self._version, slot)
            if self._cache is not None and self._cache[0] == key:
                return self._cache[1]
            total = SlotData()
            for place in np.flatnonzero(self._ring.live(slot)).tolist():
                total.add(self._data[place])
            self._cache = (key, total)
            return total


    def undecided(self) -> dict[str, Tally]:
        """The live slots' undecided probability scores, summed by segment."""
        slot = self._ring.slot_at(self.clock())
        out: dict[str, Tally] = {}
        with self.lock:
            for place in np.flatnonzero(self._ring.live(slot)).tolist():
                for seg, tally in self._data[place].undecided.items():
                    out.setdefault(seg, Tally()).merge(tally)
        return out


def grow_grid(grid: np.ndarray | None, rows: int, cols: int) -> np.ndarray:
    """``grid`` grown (zero-filled) to at least ``rows x cols``."""
    if grid is None:
        return np.zeros((rows, cols))
    if grid.shape[0] >= rows and grid.shape[1] >= cols:
        return grid
    out = np.zeros((max(rows, grid.shape[0]), max(cols, grid.shape[1])))
    out[: grid.shape[0], : grid.shape[1]] = grid
    return out


def _add_grid(total: np.ndarray | None, grid: np.ndarray) -> np.ndarray:
    total = grow_grid(None if total is None else total.copy(), *grid.shape)
    total[: grid.shape[0], : grid.shape[1]] += grid
    return total
