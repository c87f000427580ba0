"""Per-column accumulators of the reference builder; each merges exactly with its own kind.

A :class:`NumericColumn` keeps exact moments (parallel variance), min/max and counts, plus a
bounded uniform sample of the values for the quantile bin edges: the values with the
``sample_size`` smallest random keys (bottom-k), so that two samples merge into a uniform sample
of the union. With fixed edges (``ReferenceBuilder(edges_from=...)``) it also counts the bin
shares and sums exactly. A :class:`CategoricalColumn` counts categories exactly (up to a bound
on the distinct categories tracked).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from otel_ml._internal.reference.profile import CategoricalProfile, NumericProfile

__all__ = ["CENTRAL", "CategoricalColumn", "NumericColumn", "quantile_edges", "sorted_quantiles"]

#: Quantiles bounding the "central 99%" range used for outlier scores.
CENTRAL = (0.005, 0.995)


class NumericColumn:
    """Moments, counts and a bottom-k sample of one numeric column.

    Args:
        rng: Source of the sampling keys (shared by the builder's columns).
        sample_size: Values kept for the quantile edges.
        edges: Fixed interior bin edges: count shares and bin sums exactly over all values.
    """

    __slots__ = ("count", "edges", "fixed_counts", "fixed_sums", "keys", "m2", "max", "mean",
                 "min", "missing", "n", "rng", "sample", "sample_size")

    def __init__(self, rng: np.random.Generator, sample_size: int,
                 edges: np.ndarray | None = None) -> None:
        self.rng = rng
        self.sample_size = sample_size
        self.edges = edges
        self.count = 0
        self.missing = 0
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.sample: list[np.ndarray] = []
        self.keys: np.ndarray | None = None  # assigned at the first overflow
        self.fixed_counts: np.ndarray | None = None
        self.fixed_sums: np.ndarray | None = None

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
        mean = float(values.mean())
        dev = values - mean
        # einsum, not np.dot: a BLAS dot wakes OpenBLAS's threads between calls, which costs
        # milliseconds per column when the other cores are busy; einsum stays on this thread.
        self._moments(values.shape[0], mean, float(np.einsum("i,i->", dev, dev)))
        self.min = min(self.min, float(values.min()))
        self.max = max(self.max, float(values.max()))
        if self.edges is not None:
            idx = np.searchsorted(self.edges, values, side="right")
            counts = np.bincount(idx, minlength=len(self.edges) + 1).astype(np.int64)
            sums = np.bincount(idx, weights=values, minlength=len(self.edges) + 1)
            self._add_fixed(counts, sums)
        self._sample_add(values, owned=owned)

    def merge(self, other: NumericColumn) -> None:
        """Fold in ``other`` (the same column over other rows)."""
        self.count += other.count
        self.missing += other.missing
        self._moments(other.n, other.mean, other.m2)
        self.min, self.max = min(self.min, other.min), max(self.max, other.max)
        if other.fixed_counts is not None and other.fixed_sums is not None:
            self._add_fixed(other.fixed_counts.copy(), other.fixed_sums.copy())
        if other.sample:
            values = np.concatenate(other.sample)
            keys = other.keys if other.keys is not None else self.rng.random(values.shape[0])
            self._sample_add(values, keys)

    def profile(self, name: str, bins: int) -> NumericProfile:
        """The profile of everything added, with about ``bins`` bins (or the fixed edges)."""
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
        p_low, p_high = (float(v) for v in sorted_quantiles(sample, CENTRAL))
        std = math.sqrt(max(self.m2 / self.n, 0.0))
        if self.edges is not None and self.fixed_counts is not None:
            edges = self.edges
            counts = self.fixed_counts.astype(np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                centroids = self.fixed_sums / counts
        else:
            edges = quantile_edges(sample, bins, self.min)
            # Bin i holds [edges[i-1], edges[i]): counts and sums from positions in the sample.
            pos = np.concatenate(([0], np.searchsorted(sample, edges, side="left"),
                                  [len(sample)]))
            counts = np.diff(pos).astype(np.float64)
            cumulative = np.concatenate(([0.0], np.cumsum(sample)))
            sums = np.diff(cumulative[pos])
            with np.errstate(invalid="ignore", divide="ignore"):
                centroids = sums / counts
        shares = counts / counts.sum()
        return NumericProfile(name, self.count, self.missing, edges, shares, centroids,
                              self.min, self.max, self.mean, std, p_low, p_high)

    def _moments(self, n: int, mean: float, m2: float) -> None:
        if n == 0:
            return
        total = self.n + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.n * n / total
        self.n = total

    def _add_fixed(self, counts: np.ndarray, sums: np.ndarray) -> None:
        if self.fixed_counts is None or self.fixed_sums is None:
            self.fixed_counts, self.fixed_sums = counts, sums
        else:
            self.fixed_counts += counts
            self.fixed_sums += sums

    def _sample_add(self, values: np.ndarray, keys: np.ndarray | None = None,
                    owned: bool = False) -> None:
        held = sum(a.shape[0] for a in self.sample)
        if self.keys is None and keys is None and held + values.shape[0] <= self.sample_size:
            # Keep a copy, never the caller's array (``owned``: already a private copy).
            self.sample.append(values if owned else np.array(values, dtype=np.float64))
            return
        current = np.concatenate(self.sample) if self.sample else np.empty(0)
        if self.keys is None:
            self.keys = self.rng.random(current.shape[0])
        if keys is None:
            keys = self.rng.random(values.shape[0])
        all_values = np.concatenate([current, values])
        all_keys = np.concatenate([self.keys, keys])
        if all_values.shape[0] > self.sample_size:
            keep = np.argpartition(all_keys, self.sample_size - 1)[: self.sample_size]
            all_values, all_keys = all_values[keep], all_keys[keep]
        self.sample = [all_values]
        self.keys = all_keys


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


def sorted_quantiles(sorted_values: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """Linear-interpolated quantiles of already sorted values (numpy's default method)."""
    n = sorted_values.shape[0]
    pos = np.asarray(qs, dtype=np.float64) * (n - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    frac = pos - lo
    return sorted_values[lo] * (1 - frac) + sorted_values[hi] * frac


def quantile_edges(sorted_sample: np.ndarray, bins: int, minimum: float) -> np.ndarray:
    """Interior edges at the quantiles ``i/bins``, ties removed, none at or below the min
    (a bin below the smallest reference value would be empty).

    Edges are sample values (the order statistic just above each quantile position), so
    discrete data gets one bin per distinct value instead of empty bins between values.
    """
    qs = np.arange(1, bins) / bins
    n = sorted_sample.shape[0]
    positions = np.minimum(np.ceil(qs * (n - 1) - 1e-9).astype(np.int64), n - 1)
    edges = np.unique(sorted_sample[positions])
    return edges[edges > minimum]
