"""A binary classifier's calibration, predicted class and ROC AUC score bin, all from one
lookup per raw score: what confidence-based estimation needs per row, cheaply.

The breakpoints of the calibration curve, of the AUC score bins and the decision threshold
cut ``[0, 1]`` into intervals; inside one interval the predicted class and the score bin are
fixed and the calibration is one line. A raw score's interval is the number of breakpoints at
or below it (``np.searchsorted(breakpoints, p, side="right")``), found by a uniform grid of
:data:`GRID` cells over ``[0, 1]`` (``p * GRID`` is exact: the grid is a power of two): a cell
without a breakpoint inside answers alone, the few scores in a cell holding one are searched.
The calibrated value is the interval's ``slope * (p - x0) + y0``, the same arithmetic as
``np.interp`` on the curve (:meth:`Calibration.apply`).

Sums over rows then need one code per row (the interval, or ``segment * intervals +
interval``) and three ``bincount`` calls; :meth:`ScoreTable.fold` maps the per-interval sums
to the per-predicted-class and per-score-bin sums of
:class:`~otel_ml._internal.stats.estimation.ClassAcc`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from otel_ml._internal.core.scratch import Scratch
from otel_ml._internal.reference.calibration import Calibration

__all__ = ["GRID", "BinarySums", "ScoreTable"]

#: Grid cells over [0, 1] (a power of two, so ``p * GRID`` is exact).
GRID = 1 << 14


class BinarySums(NamedTuple):
    """A binary model's sums over rows (per segment when the leading axis is segments).

    Attributes:
        n: Rows per predicted class (0, 1).
        s1: Sum of the calibrated positive probability per predicted class.
        s2: Sum of its square per predicted class.
        pos: Calibrated positive mass per AUC score bin (``None`` without score bins).
        neg: Calibrated negative mass per AUC score bin (``None`` without score bins).
    """

    n: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    pos: np.ndarray | None
    neg: np.ndarray | None


class ScoreTable:
    """Per-interval constants of a binary calibration (see the module docs).

    Args:
        calibration: A binary calibration (two classes).
        threshold: A row is predicted positive when its raw score is at least this.

    Attributes:
        intervals: Number of intervals (codes ``0..intervals-1``).
        bins: AUC score bins (``len(auc_edges) + 1``), 0 without edges.
    """

    def __init__(self, calibration: Calibration, threshold: float) -> None:
        if calibration.k != 2:
            raise ValueError("a score table needs a binary calibration")
        xs, ys = calibration.curves[1]
        edges = calibration.auc_edges
        parts = [xs, [float(threshold)]] + ([] if edges is None else [edges])
        points = np.unique(np.concatenate(parts).astype(np.float64))
        points = points[np.isfinite(points)]
        self._points = points
        self.intervals = len(points) + 1
        # Interval i >= 1 holds the scores in [points[i-1], points[i]): its lowest score
        # decides the class, the bin and the curve's piece for all of them.
        low = np.concatenate(([-np.inf], points))
        self.predicted = (low >= threshold).astype(np.intp)
        self.bins = 0 if edges is None else len(edges) + 1
        self.score_bin = (np.zeros(self.intervals, dtype=np.intp) if edges is None
                          else np.searchsorted(edges, low, side="right"))
        j = np.searchsorted(xs, low, side="right") - 1  # the curve's piece
        inner = (j >= 0) & (j < len(xs) - 1)
        jj = np.where(inner, j, 0)
        nxt = np.minimum(jj + 1, len(xs) - 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = (ys[nxt] - ys[jj]) / (xs[nxt] - xs[jj])
        self.slope = np.where(inner, slope, 0.0)
        self.x0 = np.where(inner, xs[jj], 0.0)
        self.y0 = np.where(inner, ys[jj], np.where(j < 0, ys[0], ys[-1]))
        # The grid: cell c holds [c / GRID, (c + 1) / GRID) (cell GRID: the score 1.0 alone).
        lower = np.arange(GRID + 1, dtype=np.float64) / GRID
        lut = np.searchsorted(points, lower, side="right")
        scaled = points * GRID
        cell = np.floor(scaled)
        inside = cell[(scaled != cell) & (cell >= 0) & (cell < GRID)].astype(np.intp)
        lut[inside] = -1  # a breakpoint inside: the score is searched
        self._lut = lut.astype(np.int16 if self.intervals < 2 ** 15 else np.int32)

    def codes(self, p: np.ndarray, scratch: Scratch | None = None) -> np.ndarray:
        """Interval of each raw score in ``[0, 1]`` (intp; a view into ``scratch``)."""
        scratch = scratch if scratch is not None else Scratch()
        n = len(p)
        scaled = np.multiply(p, GRID, out=scratch.get("score.scaled", (n,), np.float64))
        cell = scratch.get("score.cell", (n,), np.intp)
        np.copyto(cell, scaled, casting="unsafe")  # truncation: the cell (scores >= 0)
        found = self._lut.take(cell, out=scratch.get("score.lut", (n,), self._lut.dtype),
                               mode="clip")
        code = scratch.get("score.code", (n,), np.intp)
        np.copyto(code, found)
        pending = np.flatnonzero(found < 0)
        if pending.size:
            code[pending] = np.searchsorted(self._points, p[pending], side="right")
        return code

    def calibrated(self, p: np.ndarray, code: np.ndarray,
                   scratch: Scratch | None = None) -> np.ndarray:
        """Calibrated positive probability of raw scores ``p`` with their :meth:`codes`."""
        scratch = scratch if scratch is not None else Scratch()
        n = len(p)
        out = scratch.get("score.calibrated", (n,), np.float64)
        tmp = scratch.get("score.tmp", (n,), np.float64)
        np.subtract(p, self.x0.take(code, out=tmp, mode="clip"), out=out)
        out *= self.slope.take(code, out=tmp, mode="clip")
        out += self.y0.take(code, out=tmp, mode="clip")
        return out

    def fold(self, p: np.ndarray, segment_codes: np.ndarray | None = None,
             segments: int = 1, scratch: Scratch | None = None) -> BinarySums:
        """Sums over the raw scores ``p`` (valid, in ``[0, 1]``), per segment when
        ``segment_codes`` (``0..segments-1``, one per row) is given: arrays then have a
        leading axis of ``segments``."""
        scratch = scratch if scratch is not None else Scratch()
        code = self.codes(p, scratch)
        c = self.calibrated(p, code, scratch)
        m = self.intervals
        if segment_codes is not None:
            code += segment_codes * m
        size = m * segments
        cnt = np.bincount(code, minlength=size).astype(np.float64).reshape(segments, m)
        s1 = np.bincount(code, weights=c, minlength=size).reshape(segments, m)
        square = np.multiply(c, c, out=scratch.get("score.tmp", (len(c),), np.float64))
        s2 = np.bincount(code, weights=square, minlength=size).reshape(segments, m)
        by_class = _grouper(self.predicted, 2)
        pos = neg = None
        if self.bins:
            by_bin = _grouper(self.score_bin, self.bins)
            pos = by_bin(s1)
            neg = by_bin(cnt - s1)
        out = BinarySums(by_class(cnt), by_class(s1), by_class(s2), pos, neg)
        if segment_codes is None:
            return BinarySums(*(None if a is None else a[0] for a in out))
        return out


def _grouper(group: np.ndarray, groups: int):
    """``(segments, intervals)`` sums -> ``(segments, groups)`` sums by each interval's group."""
    def by(values: np.ndarray) -> np.ndarray:
        s = values.shape[0]
        if s == 1:
            return np.bincount(group, weights=values[0], minlength=groups)[None]
        flat = (group + (np.arange(s) * groups)[:, None]).reshape(-1)
        return np.bincount(flat, weights=values.reshape(-1),
                           minlength=s * groups).reshape(s, groups)
    return by
