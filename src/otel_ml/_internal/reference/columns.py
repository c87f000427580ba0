"""Per-column accumulators of the reference builder; each merges exactly with its own kind.

A :class:`NumericColumn` keeps exact moments (parallel variance), min/max and counts, plus a
bounded uniform sample of the values for the quantile bin edges: the values with the
``sample_size`` smallest random keys (bottom-k), so that two samples merge into a uniform sample
of the union. With fixed edges (``ReferenceBuilder(edges_from=...)``) it also counts the bin
shares and means exactly. A :class:`CategoricalColumn` counts categories exactly (up to a bound
on the distinct categories tracked).

Degenerate columns need no case of their own: every finite float64 is a valid value. Sums of
squares are taken on values scaled by a power of two (:func:`magnitude_exponent`) when their
magnitude would overflow (``1e307``) or underflow (``1e-300``) a square, and every mean,
quantile and bin mean is kept inside the range of the values it summarises, so a constant
column has exactly its value as mean, quantiles and bin mean, and a standard deviation of 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from otel_ml._internal.reference.profile import CategoricalProfile, FineBins, NumericProfile

__all__ = ["CENTRAL", "FINE_BINS", "CategoricalColumn", "NumericColumn", "fine_bins",
           "magnitude_exponent", "quantile_edges", "sorted_quantiles"]

#: Equal-share fine bins of a numeric profile (before the bin edges and the central 99%
#: bounds are added to them): the resolution of the in-process KS and Wasserstein.
FINE_BINS = 64

#: Quantiles bounding the "central 99%" range used for outlier scores.
CENTRAL = (0.005, 0.995)

#: Magnitudes whose squares (summed over up to 2**64 values) stay normal floats: no scaling.
_SAFE = (2.0**-450, 2.0**450)
#: Below a standard deviation of this share of the mean, the mean's rounding matters.
_ROUNDING = 2.0**-26


class NumericColumn:
    """Moments, counts and a bottom-k sample of one numeric column.

    Args:
        rng: Source of the sampling keys (shared by the builder's columns).
        sample_size: Values kept for the quantile edges (0: none; then the profile's central
            range is NaN and it has no fine bins).
        edges: Fixed interior bin edges: count shares and bin sums exactly over all values.
        bound: Keys at or above it are dropped at once (keys are then drawn for every value):
            a bound on the bottom-k key of all the rows merged together, which keeps partial
            samples small. :meth:`sample_complete` says whether it held.
    """

    __slots__ = ("count", "edges", "fixed_counts", "fixed_means", "keys", "m2", "max", "mean",
                 "min", "missing", "n", "rng", "sample", "sample_size", "exp", "tau", "bound")

    def __init__(self, rng: np.random.Generator, sample_size: int,
                 edges: np.ndarray | None = None, bound: float = math.inf) -> None:
        self.rng = rng
        self.sample_size = sample_size
        self.edges = edges
        self.count = 0
        self.missing = 0
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0  # sum of squared deviations from the mean, times 2**(-2 * exp)
        self.exp = 0
        self.min = math.inf
        self.max = -math.inf
        # Parts of the sample; once it overflowed, ``keys`` holds their keys part by part and
        # the parts may hold up to a quarter more than ``sample_size`` (see :meth:`_settle`).
        self.sample: list[np.ndarray] = []
        self.keys: list[np.ndarray] | None = None  # assigned at the first overflow
        self.tau = bound  # keys at or above it can no longer enter the sample
        self.bound = bound
        if bound < math.inf:
            self.keys = []
        self.fixed_counts: np.ndarray | None = None
        self.fixed_means: np.ndarray | None = None

    def add(self, values: np.ndarray, *, owned: bool = False) -> None:
        """Add a chunk of float values (non-finite ones count as missing).

        Args:
            values: 1-D float64 values.
            owned: ``values`` is a private copy the sample may keep as is.
        """
        self.count += values.shape[0]
        finite = np.isfinite(values)
        if not finite.all():
            values = values[finite]
            owned = True
        self.missing += int(finite.shape[0] - values.shape[0])
        if values.shape[0] == 0:
            return
        lo, hi = float(values.min()), float(values.max())
        exp = magnitude_exponent(lo, hi)
        scaled = values if exp == 0 else np.ldexp(values, -exp)  # exact: a power of two
        n = values.shape[0]
        mean = float(scaled.mean())
        dev = scaled - mean
        # einsum, not np.dot: a BLAS dot wakes OpenBLAS's threads between calls, which costs
        # milliseconds per column when the other cores are busy; einsum stays on this thread.
        m2 = float(np.einsum("i,i->", dev, dev))
        if m2 < n * (mean * _ROUNDING) ** 2:
            # The spread is within a few roundings of the mean (2**53 + 2 and 2**53 + 4): the
            # corrected two-pass algorithm, the deviations' own sum correcting the rounded mean
            # (a standard deviation of 1, not 1.41). Elsewhere the correction is below 1e-14.
            drift = float(dev.sum())
            m2 = max(m2 - drift * drift / n, 0.0)
            mean += drift / n
        # The mean of values lies within their range (rounding may say otherwise).
        mean = min(max(mean, math.ldexp(lo, -exp)), math.ldexp(hi, -exp))
        self._moments(n, _within(_unscaled(mean, exp), lo, hi), m2, exp)
        self.min = min(self.min, lo)
        self.max = max(self.max, hi)
        if self.edges is not None:
            idx = np.searchsorted(self.edges, values, side="right")
            counts = np.bincount(idx, minlength=len(self.edges) + 1).astype(np.int64)
            sums = np.bincount(idx, weights=scaled, minlength=len(self.edges) + 1)
            with np.errstate(all="ignore"):  # 0/0: NaN for empty bins
                means = np.clip(np.ldexp(sums / counts, exp), lo, hi)
            self._add_fixed(counts, means)
        self._sample_add(values, owned=owned)

    def merge(self, other: NumericColumn) -> None:
        """Fold in ``other`` (the same column over other rows)."""
        self.count += other.count
        self.missing += other.missing
        self.min, self.max = min(self.min, other.min), max(self.max, other.max)
        self._moments(other.n, other.mean, other.m2, other.exp)
        if other.fixed_counts is not None and other.fixed_means is not None:
            self._add_fixed(other.fixed_counts.copy(), other.fixed_means.copy())
        self.bound = min(self.bound, other.bound)
        if other.sample:
            values = np.concatenate(other.sample)
            keys = (np.concatenate(other.keys) if other.keys is not None
                    else self.rng.random(values.shape[0]))
            self._sample_add(values, keys, owned=True)

    def profile(self, name: str, bins: int) -> NumericProfile:
        """The profile of everything added, with about ``bins`` bins (or the fixed edges)."""
        self._settle()
        if len(self.sample) == 1:
            sample = np.ascontiguousarray(self.sample[0])
            sample.sort()  # in place: the column owns its sample; a sorted sample is as good
        else:
            sample = np.sort(np.concatenate(self.sample)) if self.sample else np.empty(0)
        self.sample = [sample]
        nan = float("nan")
        if self.n == 0:
            return NumericProfile(name, self.count, self.missing, np.empty(0), np.zeros(1),
                                  np.full(1, nan), nan, nan, nan, nan, nan, nan)
        if sample.shape[0]:
            p_low, p_high = (float(v) for v in sorted_quantiles(sample, CENTRAL))
        else:  # no sample kept (sample_size 0)
            p_low = p_high = nan
        # A population standard deviation is at most half the range.
        std = min(_unscaled(math.sqrt(max(self.m2 / self.n, 0.0)), self.exp),
                  self.max / 2 - self.min / 2)
        if self.edges is not None and self.fixed_counts is not None:
            edges = self.edges
            counts = self.fixed_counts.astype(np.float64)
            centroids = self.fixed_means
        else:
            edges = quantile_edges(sample, bins, self.min)
            centroids, counts = _bin_means(sample, edges,
                                           magnitude_exponent(self.min, self.max))
        shares = counts / counts.sum()
        fine = fine_bins(sample, edges, (p_low, p_high), self.min, self.max)
        return NumericProfile(name, self.count, self.missing, edges, shares, centroids,
                              self.min, self.max, self.mean, std, p_low, p_high, fine)

    def _moments(self, n: int, mean: float, m2: float, exp: int) -> None:
        """Fold in the moments of ``n`` values (``m2`` times ``2**(-2 * exp)``); call after
        updating min and max."""
        if n == 0:
            return
        if self.n == 0:
            self.n, self.mean, self.m2, self.exp = n, mean, m2, exp
            return
        # The scale of the union's range: powers of two, so rescaling is exact (a variance
        # negligible at the union's scale may underflow to 0).
        top = magnitude_exponent(self.min, self.max)
        total = self.n + n
        delta = math.ldexp(mean, -top) - math.ldexp(self.mean, -top)
        self.m2 = (_unscaled(self.m2, 2 * (self.exp - top)) + _unscaled(m2, 2 * (exp - top))
                   + delta * delta * (self.n * n / total))
        # Weighted, not ``mean + delta * n / total``: no term exceeds the larger mean.
        self.mean = min(max(self.mean * (self.n / total) + mean * (n / total), self.min),
                        self.max)
        self.n, self.exp = total, top

    def _add_fixed(self, counts: np.ndarray, means: np.ndarray) -> None:
        """Fold in bin counts and bin means over fixed edges; call after updating min/max."""
        if self.fixed_counts is None or self.fixed_means is None:
            self.fixed_counts, self.fixed_means = counts, means
            return
        total = self.fixed_counts + counts
        with np.errstate(all="ignore"):  # 0/0 for bins empty in both; MAX/2 + MAX/2 may round up
            mine, theirs = self.fixed_counts / total, counts / total
            merged = np.clip(self.fixed_means * mine + means * theirs, self.min, self.max)
        self.fixed_means = np.where(counts == 0, self.fixed_means,
                                    np.where(self.fixed_counts == 0, means, merged))
        self.fixed_counts = total

    def sample_complete(self) -> bool:
        """Whether the sample is the bottom-k of every value added: ``False`` only when a
        ``bound`` dropped values the bottom-k needed (fewer than ``sample_size`` keys below it,
        and values left out)."""
        if self.bound == math.inf or self.sample_size == 0:
            return True
        held = sum(a.shape[0] for a in self.sample)
        return held >= self.sample_size or held == self.n

    def __getstate__(self) -> dict[str, object]:
        self._settle()  # a pickled column ships at most ``sample_size`` values
        return {name: getattr(self, name) for name in self.__slots__}

    def __setstate__(self, state: dict[str, object]) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    def _sample_add(self, values: np.ndarray, keys: np.ndarray | None = None,
                    owned: bool = False) -> None:
        """Fold ``values`` (with their keys, or keys drawn now) into the bottom-k sample.

        Once the sample has overflowed, only values whose key is below ``tau`` (the largest
        key kept at the last settle) can belong to the bottom-k of everything seen: the others
        are dropped with one comparison, and the survivors are appended until the parts hold a
        quarter more than ``sample_size``, when :meth:`_settle` keeps the smallest keys. Cost:
        O(values) per call, not O(sample_size); the kept set is the bottom-k exactly as if it
        were recomputed on every call.
        """
        if self.sample_size == 0:
            return
        held = sum(a.shape[0] for a in self.sample)
        if self.keys is None and keys is None and held + values.shape[0] <= self.sample_size:
            # Keep a copy, never the caller's array (``owned``: already a private copy).
            self.sample.append(values if owned else np.array(values, dtype=np.float64))
            return
        if self.keys is None:
            # The first overflow: the values held so far get their keys (one draw, in order).
            if len(self.sample) > 1:
                self.sample = [np.concatenate(self.sample)]
            self.keys = [self.rng.random(held)] if held else []
        if keys is None:
            keys = self.rng.random(values.shape[0])
        if self.tau < math.inf:
            below = keys < self.tau
            if not below.all():
                values, keys, owned = values[below], keys[below], True
        if values.shape[0]:
            self.sample.append(values if owned else np.array(values, dtype=np.float64))
            self.keys.append(keys)
        if held + values.shape[0] > self.sample_size + max(self.sample_size // 4, 1):
            self._settle()

    def _settle(self) -> None:
        """Keep exactly the ``sample_size`` values of smallest key (one part)."""
        if self.keys is None:
            return
        held = sum(a.shape[0] for a in self.sample)
        if held <= self.sample_size and len(self.sample) <= 1:
            return
        values = np.concatenate(self.sample) if len(self.sample) > 1 else self.sample[0]
        keys = np.concatenate(self.keys) if len(self.keys) > 1 else self.keys[0]
        if held > self.sample_size:
            keep = np.argpartition(keys, self.sample_size - 1)[: self.sample_size]
            values, keys = values[keep], keys[keep]
            self.tau = float(keys.max())
        self.sample, self.keys = [values], [keys]


class CategoricalColumn:
    """Exact category counts of one categorical column.

    Args:
        max_tracked: Distinct categories counted one by one; later new ones are only counted
            together (as "other").
        categories: Fixed categories to report (``edges_from``), instead of the most frequent.
    """

    __slots__ = ("categories", "count", "counts", "max_tracked", "missing", "untracked",
                 "untracked_distinct")

    def __init__(self, max_tracked: int, categories: Sequence[str] | None = None) -> None:
        self.max_tracked = max_tracked
        self.categories = None if categories is None else list(categories)
        self.count = 0
        self.missing = 0
        self.counts: dict[str, int] = {}
        self.untracked = 0
        self.untracked_distinct = 0

    def add(self, codes: np.ndarray, keys: list[str | None]) -> None:
        """Add a chunk encoded as codes into ``keys`` (code -1 or key ``None``: missing)."""
        self.count += codes.shape[0]
        valid = codes >= 0
        counts = np.bincount(codes[valid], minlength=len(keys))
        self.missing += int(codes.shape[0] - valid.sum())
        for key, n in zip(keys, counts.tolist()):
            if n == 0:
                continue
            if key is None:
                self.missing += n
                continue
            self._count(key, n)

    def merge(self, other: CategoricalColumn) -> None:
        """Fold in ``other`` (the same column over other rows)."""
        self.count += other.count
        self.missing += other.missing
        for key, n in other.counts.items():
            self._count(key, n)
        self.untracked += other.untracked
        self.untracked_distinct += other.untracked_distinct

    def profile(self, name: str, max_categories: int) -> CategoricalProfile:
        """The profile: the ``max_categories`` most frequent categories (or the fixed ones)."""
        if self.categories is not None:
            top = list(self.categories)
        else:
            ranked = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
            top = [k for k, _ in ranked[:max_categories]]
        top_set = set(top)
        valid = self.count - self.missing
        counts = [self.counts.get(k, 0) for k in top]
        other = valid - sum(counts)
        distinct_other = (sum(1 for k in self.counts if k not in top_set)
                          + self.untracked_distinct)
        shares = (np.array(counts + [other], dtype=np.float64) / valid if valid
                  else np.zeros(len(top) + 1))
        return CategoricalProfile(name, self.count, self.missing, tuple(top), shares,
                                  distinct_other)

    def _count(self, key: str, n: int) -> None:
        if key in self.counts:
            self.counts[key] += n
        elif len(self.counts) < self.max_tracked:
            self.counts[key] = n
        else:
            self.untracked += n
            self.untracked_distinct += 1


def _unscaled(x: float, exp: int) -> float:
    """``x * 2**exp``, infinite when that overflows (then clipped by the caller)."""
    try:
        return math.ldexp(x, exp)
    except OverflowError:
        return math.copysign(math.inf, x)


def _within(x: float, lo: float, hi: float) -> float:
    return min(max(x, lo), hi)


def magnitude_exponent(lo: float, hi: float) -> int:
    """``e`` such that values within ``[lo, hi]`` times ``2**-e`` can be squared: 0 when their
    squares neither overflow nor underflow, else the exponent of their largest magnitude."""
    top = max(abs(lo), abs(hi))
    if top == 0.0 or _SAFE[0] <= top <= _SAFE[1] or not math.isfinite(top):
        return 0
    return math.frexp(top)[1] - 1


def sorted_quantiles(sorted_values: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """Linear-interpolated quantiles of already sorted values (numpy's default method), each
    within the two values it lies between (so tied values give exactly that value)."""
    n = sorted_values.shape[0]
    pos = np.asarray(qs, dtype=np.float64) * (n - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    frac = pos - lo
    below, above = sorted_values[lo], sorted_values[hi]
    with np.errstate(over="ignore", invalid="ignore"):
        mixed = below * (1 - frac) + above * frac
    return np.clip(mixed, below, above)


def quantile_edges(sorted_sample: np.ndarray, bins: int, minimum: float) -> np.ndarray:
    """Interior edges at the quantiles ``i/bins``, ties removed, none at or below the min
    (a bin below the smallest reference value would be empty).

    Edges are sample values (the order statistic just above each quantile position), so
    discrete data gets one bin per distinct value instead of empty bins between values. A
    value that holds two quantiles or more (an atom: the zeros of a sparse column) gets a bin
    of its own: the next value above it is an edge too. So a column gets one bin only when it
    holds a single value.
    """
    qs = np.arange(1, bins) / bins
    n = sorted_sample.shape[0]
    positions = np.minimum(np.ceil(qs * (n - 1) - 1e-9).astype(np.int64), n - 1)
    candidates, repeats = np.unique(sorted_sample[positions], return_counts=True)
    after = np.searchsorted(sorted_sample, candidates[repeats > 1], side="right")
    edges = np.union1d(candidates, sorted_sample[after[after < n]])
    return edges[edges > minimum]


def fine_bins(sorted_sample: np.ndarray, edges: np.ndarray, central: Sequence[float],
              minimum: float, maximum: float, bins: int = FINE_BINS) -> FineBins | None:
    """The fine bins of a sorted sample: each bin of ``edges`` split into equal-share parts
    (about ``bins`` in all), plus the ``central`` bounds, so they refine both (``None`` for one
    bin). A split sits midway between the two sample values it separates (no sample value is
    written to the file) and never inside a run of equal values; a split at the position of
    a central bound is left out (it would add a gap narrower than the values' spacing, which
    the runtime's lookup grid cannot hold, and no resolution)."""
    n = sorted_sample.shape[0]
    if not len(edges) or n == 0:
        return None
    extra = np.array([x for x in central if minimum < x <= maximum], dtype=np.float64)
    required = np.union1d(edges, extra)
    bounds = np.concatenate(([0], np.searchsorted(sorted_sample, edges, side="left"), [n]))
    parts = [lo + np.round(np.arange(1, k) * (hi - lo) / k).astype(np.int64)
             for lo, hi in zip(bounds[:-1], bounds[1:])
             if (k := max(1, round(bins * (hi - lo) / n))) > 1]
    pos = np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)
    pos = pos[(pos > 0) & (pos < n)]
    below, upper = sorted_sample[pos - 1], sorted_sample[pos]
    pos, below, upper = pos[below < upper], below[below < upper], upper[below < upper]
    with np.errstate(all="ignore"):
        mid = below / 2 + upper / 2
    split = np.where((mid > below) & (mid <= upper), mid, upper)
    split = split[~np.isin(pos, np.searchsorted(sorted_sample, required, side="left"))]
    fine = np.union1d(split, required)
    fine = fine[(fine > minimum) & (fine <= maximum)]
    centroids, counts = _bin_means(sorted_sample, fine, magnitude_exponent(minimum, maximum))
    return FineBins(fine, counts / counts.sum(), centroids, int(n))


def _bin_means(sorted_sample: np.ndarray, edges: np.ndarray, exp: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and count of the sample values in each bin (bin ``i`` is ``[edges[i-1],
    edges[i])``), from positions in the sorted sample; a mean stays within its bin's values."""
    pos = np.concatenate(([0], np.searchsorted(sorted_sample, edges, side="left"),
                          [sorted_sample.shape[0]]))
    counts = np.diff(pos).astype(np.float64)
    scaled = sorted_sample if exp == 0 else np.ldexp(sorted_sample, -exp)
    cumulative = np.concatenate(([0.0], np.cumsum(scaled)))
    first = sorted_sample[np.minimum(pos[:-1], sorted_sample.shape[0] - 1)]
    last = sorted_sample[np.maximum(pos[1:] - 1, 0)]
    with np.errstate(all="ignore"):  # a mean of values near the float limit may round past it
        means = np.clip(np.ldexp(np.diff(cumulative[pos]) / counts, exp), first, last)
    return np.where(counts > 0, means, np.nan), counts
