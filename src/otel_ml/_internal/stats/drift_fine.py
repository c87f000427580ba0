"""KS and Wasserstein at the resolution of the reference's fine bins.

The exported bins (about ten equal-share bins per numeric feature) are right for PSI and for
fleet-wide PromQL, but a KS or Wasserstein test on them cannot see a change inside a bin: a
stretched top decile stays in the top bin. The in-process tests use instead the profile's fine
bins (:class:`~otel_ml._internal.reference.profile.FineBins`, about 64 equal-share bins that
refine the exported ones) and two open cells beyond the reference's range (below its min,
above its max), with the window's sum of the values in the cells where it is known (the tails:
outside the central 99% and beyond the range), so a stretched tail moves the Wasserstein
distance by how far it moved, not by one bin. See ``docs/drift.md`` ("Resolution").

Cells of a feature: ``0`` below the min, ``1..F`` the fine bins, ``F + 1`` above the max,
padded with empty cells to the widest feature.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import special

__all__ = ["KS_ASYMPTOTIC_FROM", "FineReference", "FineScores", "fine_scores", "ks_pvalue"]

#: From this effective size on, KS p-values use Stephens' fast approximation of the
#: finite-n distribution (absolute error < 0.005 against ``scipy.stats.kstwo``); below, the
#: exact distribution (``kstwo``, about 1.5 ms per feature).
KS_ASYMPTOTIC_FROM = 1000


def ks_pvalue(d: np.ndarray, n_eff: np.ndarray) -> np.ndarray:
    """Two-sample KS p-values of statistics ``d`` at effective sizes ``n_eff``."""
    d = np.clip(d, 0.0, 1.0)
    out = np.ones_like(d)
    large = n_eff >= KS_ASYMPTOTIC_FROM
    if large.any():
        root = np.sqrt(n_eff[large])
        out[large] = special.kolmogorov((root + 0.12 + 0.11 / root) * d[large])
    small = (n_eff > 0) & ~large
    if small.any():
        from scipy import stats  # half a second to import: only when a window is that small

        out[small] = stats.kstwo.sf(d[small], n_eff[small])
    return out


class FineReference:
    """The reference side of :func:`fine_scores`: features with fine bins, padded to arrays.

    Args:
        fines: Per feature, its fine bins (``FineBins``) or ``None`` (then not scored here).
        ranges: Per feature, ``(min, max)`` of the reference.
        stds: Per feature, the reference standard deviation.

    Attributes:
        rows: Features that have fine bins (positions in ``fines``).
        sizes: Cells of each of those features (fine bins + 2).
        width: Cells per feature, padded.
        P: Reference share per cell (0 beyond the range and in padding).
        C: Reference mean per cell, raw (the min below it, the max above it and in padding).
        m: Values the shares were measured on.
        std: Reference standard deviations of the rows.
    """

    def __init__(self, fines: Sequence[Any], ranges: Sequence[tuple[float, float]],
                 stds: Sequence[float]) -> None:
        self.rows = [i for i, f in enumerate(fines) if f is not None]
        fs = [fines[i] for i in self.rows]
        self.sizes = np.array([len(f.shares) + 2 for f in fs], dtype=np.int64)
        self.width = int(self.sizes.max()) if fs else 2
        k = len(fs)
        self.P = np.zeros((k, self.width))
        self.C = np.zeros((k, self.width))
        self.m = np.array([float(f.count) for f in fs])
        self.std = np.array([float(stds[i]) for i in self.rows])
        for r, (i, f) in enumerate(zip(self.rows, fs)):
            lo, hi = ranges[i]
            n = len(f.shares)
            self.P[r, 1: n + 1] = f.shares
            self.C[r, 0] = lo
            self.C[r, 1: n + 1] = _filled(f, lo, hi)
            self.C[r, n + 1:] = hi


def _filled(f: Any, lo: float, hi: float) -> np.ndarray:
    """Fine bin means, empty bins at their midpoint (outer bins: between the min/max)."""
    c = np.array(f.centroids, dtype=np.float64)
    empty = np.isnan(c)
    if empty.any():
        a = np.concatenate(([lo], f.edges))
        b = np.concatenate((f.edges, [hi]))
        c[empty] = (a / 2 + b / 2)[empty]
    return c


class FineScores:
    """KS and Wasserstein of the features of a :class:`FineReference` on one window.

    Attributes:
        rows: Positions of the scored features (``FineReference.rows``).
        ks: KS statistic D. ks_p: Its p-value. wasserstein: Wasserstein-1 distance in
            reference standard deviations (NaN when the standard deviation is 0).
    """

    __slots__ = ("ks", "ks_p", "rows", "wasserstein")

    def __init__(self, rows: list[int], ks: np.ndarray, ks_p: np.ndarray,
                 wasserstein: np.ndarray) -> None:
        self.rows = rows
        self.ks = ks
        self.ks_p = ks_p
        self.wasserstein = wasserstein


def fine_scores(ref: FineReference, counts: np.ndarray, sums: np.ndarray,
                known: np.ndarray) -> FineScores:
    """Score window cells against the reference.

    Args:
        ref: The reference side.
        counts: Window values per cell, ``(len(ref.rows), ref.width)``.
        sums: Sum of the window values whose sum is known, per cell (same shape).
        known: How many of each cell's values ``sums`` holds (the others are placed at the
            reference mean of their cell).

    Returns:
        The scores; rows with no window value score 0 with p-value 1.
    """
    with np.errstate(all="ignore"):
        W = np.asarray(counts, dtype=np.float64)
        n = W.sum(axis=1)
        Q = W / np.maximum(n, 1)[:, None]
        P, C = ref.P, ref.C
        cdf_gap = np.cumsum(P - Q, axis=1)
        ks = np.abs(cdf_gap).max(axis=1)
        n_eff = np.round(n * ref.m / np.maximum(n + ref.m, 1))
        ks_p = ks_pvalue(ks, n_eff)
        # The window's mean per cell: known sums, the rest at the reference's cell mean.
        scaled = ref.std > 0
        unit = np.where(scaled, ref.std, 1.0)[:, None]
        c = C / unit
        mean = np.where(W > 0, (sums / unit + (W - known) * c) / np.maximum(W, 1), c)
        # Two points per cell, in order (both means lie inside the cell): the lower one
        # carries the mass of whichever distribution has it there.
        ref_first = c <= mean
        x = np.stack((np.minimum(c, mean), np.maximum(c, mean)), axis=2).reshape(len(n), -1)
        dp = np.stack((np.where(ref_first, P, 0.0), np.where(ref_first, 0.0, P)), axis=2)
        dq = np.stack((np.where(ref_first, 0.0, Q), np.where(ref_first, Q, 0.0)), axis=2)
        gap = np.cumsum((dp - dq).reshape(len(n), -1), axis=1)[:, :-1]
        wasserstein = np.where(scaled, (np.abs(gap) * np.diff(x, axis=1)).sum(axis=1), np.nan)
    empty = n == 0
    ks[empty], ks_p[empty], wasserstein[empty & scaled] = 0.0, 1.0, 0.0
    return FineScores(ref.rows, ks, ks_p, wasserstein)
