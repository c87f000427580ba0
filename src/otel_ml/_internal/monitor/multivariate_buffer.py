"""The rows of the features space waiting to be projected (multivariate drift).

A call copies its sampled rows (a single row, or at most a few hundred of a batch) into a
preallocated buffer, with the segment and the time slot of the call as a run; the rows are
projected together (one matrix product, :meth:`Projection.apply`) when the buffer is full and
at every read. The buffer has a bounded size (about :data:`BUFFER_BYTES`); a second one is
kept as the spare the next fill uses while the first is being projected.
"""

from __future__ import annotations

import math
import threading
from typing import Any, NamedTuple

import numpy as np

__all__ = ["BUFFER_BYTES", "PendingRows", "Taken", "run_sums"]

#: Bytes of the buffer (its rows: at least MIN_ROWS, at most MAX_ROWS). A busy monitor holds
#: two (the spare); 256 KB each folds a 1,000-row batch's sample every ~6 calls (measured:
#: 128 KB-1 MB cost the same within the noise of a loaded machine, 64 KB a fold per call, far
#: more).
BUFFER_BYTES = 1 << 18
MIN_ROWS = 256
MAX_ROWS = 4096


class Taken(NamedTuple):
    """Rows taken out of the buffer to be projected.

    Attributes:
        rows: ``(n, width)`` rows (a view of ``buffer``, free to overwrite).
        runs: ``[start, stop, segment key, slot]`` of consecutive rows of one segment and slot.
        buffer: The array the rows live in (given back with :meth:`PendingRows.recycle`).
    """

    rows: np.ndarray
    runs: list[list[Any]]
    buffer: np.ndarray


class PendingRows:
    """A bounded buffer of rows of ``width`` values, filled by calls. Thread-safe.

    Args:
        width: Values per row.
    """

    def __init__(self, width: int) -> None:
        rows = max(MIN_ROWS, min(MAX_ROWS, BUFFER_BYTES // (8 * max(width, 1))))
        self._lock = threading.Lock()
        self._rows = np.zeros((rows, width))
        self._spare: np.ndarray | None = None
        self._runs: list[list[Any]] = []
        self._count = 0

    @property
    def capacity(self) -> int:
        """Rows the buffer holds."""
        return int(self._rows.shape[0])

    @property
    def width(self) -> int:
        """Values per row."""
        return int(self._rows.shape[1])

    def put(self, values: np.ndarray, seg: str, slot: int) -> Taken | None:
        """Copy one row (``(width,)``) or a block (``(n, width)``, ``n <= MIN_ROWS``) in;
        what was buffered before when the block does not fit (project it).

        Raises:
            ValueError: Rows of another width.
        """
        if values.shape[-1] != self._rows.shape[1] or values.ndim > 2:
            raise ValueError(f"rows of shape {values.shape} for a projection of "
                             f"{self._rows.shape[1]} features")
        n = values.shape[0] if values.ndim == 2 else 1
        full = None
        with self._lock:
            i = self._count
            if i + n > self._rows.shape[0]:
                full = self._take()
                i = 0
            if values.ndim == 1:
                self._rows[i] = values
            else:
                self._rows[i:i + n] = values
            self._count = i + n
            last = self._runs[-1] if self._runs else None
            if last is not None and last[2] == seg and last[3] == slot:
                last[1] = i + n
            else:
                self._runs.append([i, i + n, seg, slot])
        return full

    def take(self) -> Taken | None:
        """Everything buffered (``None``: nothing); the buffer is empty after."""
        with self._lock:
            return self._take() if self._count else None

    def _take(self) -> Taken:
        buffer = self._rows
        taken = Taken(buffer[:self._count], self._runs, buffer)
        spare = self._spare
        self._rows = spare if spare is not None else np.empty_like(buffer)
        self._spare = None
        self._runs = []
        self._count = 0
        return taken

    def recycle(self, buffer: np.ndarray) -> None:
        """Give a projected buffer back (kept as the spare: one, at most)."""
        with self._lock:
            if self._spare is None and buffer.shape == self._rows.shape:
                self._spare = buffer


def run_sums(runs: list[list[Any]], err: np.ndarray, dist: np.ndarray,
             ) -> dict[tuple[int, str], list[float]]:
    """``(slot, segment) -> [rows, error sum, distance sum]`` of projected rows, by run;
    rows whose error or distance is not finite (beyond the float range) are left out."""
    if len(runs) == 1:
        e, d = float(err.sum()), float(dist.sum())
        if math.isfinite(e) and math.isfinite(d):  # every row finite: the usual case
            counts, es, ds = [err.shape[0]], [e], [d]
            return _by_slot(runs, counts, es, ds)
    ok = np.isfinite(err) & np.isfinite(dist)
    if not ok.all():
        err, dist = np.where(ok, err, 0.0), np.where(ok, dist, 0.0)
    if len(runs) == 1:
        counts, es, ds = [int(ok.sum())], [float(err.sum())], [float(dist.sum())]
    else:
        starts = [r[0] for r in runs]
        counts = np.add.reduceat(ok.astype(np.int64), starts).tolist()
        es = np.add.reduceat(err, starts).tolist()
        ds = np.add.reduceat(dist, starts).tolist()
    return _by_slot(runs, counts, es, ds)


def _by_slot(runs: list[list[Any]], counts: list[int], es: list[float], ds: list[float],
             ) -> dict[tuple[int, str], list[float]]:
    parts: dict[tuple[int, str], list[float]] = {}
    for (_, _, key, slot), c, e, d in zip(runs, counts, es, ds):
        if c:
            sums = parts.setdefault((slot, key), [0, 0.0, 0.0])
            sums[0] += c
            sums[1] += e
            sums[2] += d
    return parts
