"""Reference profiles: what the model's inputs and predictions looked like in training.

A :class:`Reference` holds, per feature, aggregates only (no raw rows): for a numeric feature
the bin edges at reference quantiles with the share of the reference in each bin, the mean of
each bin, counts, min/max, mean/std, the missing count and the central 99% range; for a
categorical feature the top categories with their shares plus an "other" bucket. The
predictions get a profile of the same kind. It is saved as versioned JSON.

Profiles are mergeable. :class:`ReferenceBuilder` accumulates chunks (of a large file, or on
several replicas) with exact moments and category counts and a bounded uniform sample for the
quantile edges; builders merge exactly. Two finished references merge exactly when they share
bin edges (build the second with ``ReferenceBuilder(edges_from=first)``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from otel_ml._internal.data.inputs import (
    InputError,
    Table,
    default_names,
    is_categorical,
    to_categories,
    to_float,
    to_table,
)

__all__ = [
    "CategoricalProfile",
    "InvalidReferenceError",
    "NumericProfile",
    "Reference",
    "ReferenceBuilder",
]

FORMAT = "otel_ml.reference"
VERSION = 1

#: Quantiles bounding the "central 99%" range used for outlier scores.
CENTRAL = (0.005, 0.995)

_SHARE_TOLERANCE = 1e-6


class InvalidReferenceError(ValueError):
    """A reference file or dict that cannot be used; the message says what is wrong."""


@dataclass(frozen=True, eq=False)
class NumericProfile:
    """Profile of one numeric feature (or of numeric predictions).

    Attributes:
        name: Feature name.
        count: Rows seen, missing ones included.
        missing: Rows whose value was missing or not finite.
        edges: Interior bin edges, strictly increasing; bin ``i`` is ``[edges[i-1], edges[i])``
            with the outer bins open-ended, so there are ``len(edges) + 1`` bins.
        shares: Share of the non-missing reference values in each bin (sums to 1).
        centroids: Mean of the reference values in each bin (NaN for an empty bin).
        min: Smallest value. max: Largest value.
        mean: Mean. std: Population standard deviation.
        p_low: 0.5% quantile. p_high: 99.5% quantile (the central 99% range).
    """

    name: str
    count: int
    missing: int
    edges: np.ndarray
    shares: np.ndarray
    centroids: np.ndarray
    min: float
    max: float
    mean: float
    std: float
    p_low: float
    p_high: float
    kind: str = field(default="numeric", init=False)

    @property
    def valid(self) -> int:
        """Non-missing values."""
        return self.count - self.missing

    @property
    def bins(self) -> int:
        """Number of bins."""
        return len(self.shares)

    def bin_of(self, values: np.ndarray) -> np.ndarray:
        """Bin index of each value (-1 for NaN)."""
        v = np.asarray(values, dtype=np.float64)
        out = np.searchsorted(self.edges, v, side="right")
        out[np.isnan(v)] = -1
        return out

    def bin_label(self, i: int) -> str:
        """Human-readable range of bin ``i`` (for docs and reports, never a metric attribute)."""
        lo = "-inf" if i == 0 else f"{self.edges[i - 1]:.6g}"
        hi = "inf" if i == len(self.edges) else f"{self.edges[i]:.6g}"
        return f"[{lo}, {hi})"


@dataclass(frozen=True, eq=False)
class CategoricalProfile:
    """Profile of one categorical feature (or of predicted classes).

    Attributes:
        name: Feature name.
        count: Rows seen, missing ones included.
        missing: Rows whose value was missing.
        categories: The most frequent categories (at most ``max_categories``), as strings.
        shares: Share of each category, then of "other" (all the rest): ``len(categories) + 1``
            values summing to 1.
        other_categories: Distinct categories folded into "other" (0: the reference saw every
            category it lists, so any new value is an unseen category).
    """

    name: str
    count: int
    missing: int
    categories: tuple[str, ...]
    shares: np.ndarray
    other_categories: int
    kind: str = field(default="categorical", init=False)

    @property
    def valid(self) -> int:
        """Non-missing values."""
        return self.count - self.missing

    @property
    def bins(self) -> int:
        """Number of bins (categories plus "other")."""
        return len(self.shares)

    def bin_label(self, i: int) -> str:
        """The category of bin ``i`` (the last bin is "other")."""
        return self.categories[i] if i < len(self.categories) else "__other__"


Profile = NumericProfile | CategoricalProfile


# ----------------------------------------------------------------------------- the builder


class _NumericAcc:
    """Exact moments plus a bounded uniform sample (bottom-k by random key) of one column."""

    __slots__ = (
        "count",
        "fixed_counts",
        "fixed_sums",
        "keys",
        "m2",
        "max",
        "mean",
        "min",
        "missing",
        "n",
        "sample",
    )

    def __init__(self) -> None:
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

    def moments(self, n: int, mean: float, m2: float) -> None:
        if n == 0:
            return
        total = self.n + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.n * n / total
        self.n = total


class _CategoricalAcc:
    __slots__ = ("count", "counts", "missing", "untracked", "untracked_distinct")

    def __init__(self) -> None:
        self.count = 0
        self.missing = 0
        self.counts: dict[str, int] = {}
        self.untracked = 0
        self.untracked_distinct = 0


class ReferenceBuilder:
    """Accumulates a reference profile from chunks; builders merge.

    Moments, min/max, missing counts and category counts are exact. Quantile bin edges come
    from a uniform sample of at most ``sample_size`` values per feature (exact when the data
    fits); bin shares are counted on that same sample, so they are exact when the data fits
    and otherwise have a standard error of ``sqrt(p(1-p)/sample_size)`` (about 0.1 percentage
    point for 100,000). With ``edges_from``, the edges are taken from an existing reference and
    shares and bin means are counted exactly over all the data.

    Args:
        bins: Target number of numeric bins (fewer when quantiles tie).
        categorical: Feature names to treat as categorical whatever their dtype.
        max_categories: Categories kept per categorical feature (the rest are "other").
        sample_size: Values kept per numeric feature for the quantile edges.
        seed: Seed of the sampling keys.
        edges_from: A reference whose feature kinds, bin edges and categories are reused.

    Raises:
        ValueError: An argument is out of range.
    """

    def __init__(self, *, bins: int = 10, categorical: Iterable[str] | None = None,
                 max_categories: int = 50, sample_size: int = 100_000, seed: int = 0,
                 edges_from: Reference | None = None) -> None:
        if not isinstance(bins, int) or bins < 2:
            raise ValueError(f"bins must be an integer >= 2, got {bins!r}")
        if not isinstance(max_categories, int) or max_categories < 1:
            raise ValueError(f"max_categories must be a positive integer, got {max_categories!r}")
        if not isinstance(sample_size, int) or sample_size < 100:
            raise ValueError(f"sample_size must be an integer >= 100, got {sample_size!r}")
        if isinstance(categorical, str):
            categorical = [categorical]
        self.bins = bins
        self.categorical = frozenset(categorical or ())
        self.max_categories = max_categories
        self.sample_size = sample_size
        self.edges_from = edges_from
        self._rng = np.random.default_rng(seed)
        self._names: list[str] | None = None
        self._acc: dict[str, _NumericAcc | _CategoricalAcc] = {}
        self._pred: _NumericAcc | _CategoricalAcc | None = None
        self.rows = 0
        self._max_tracked = max(1000, 20 * max_categories)

    # -------------------------------------------------------------- accumulation
    def update(self, X: Any, predictions: Any = None, *,
               feature_names: Sequence[str] | None = None) -> ReferenceBuilder:
        """Add a chunk of rows (and optionally the model's predictions for them).

        Args:
            X: Features: anything :func:`otel_ml.inputs.to_table` reads.
            predictions: Predictions for the same rows (labels, scores or probabilities).
            feature_names: Names for positional input (default: ``f0``, ``f1``, ...).

        Returns:
            The builder.

        Raises:
            ValueError: The chunk cannot be read, its columns differ from the first chunk's,
                or a numeric column holds strings; the message names the column.
        """
        try:
            table = to_table(X)
        except InputError as exc:
            raise ValueError(f"cannot read the features: {exc}") from exc
        names = _names_of(table, feature_names)
        if self._names is None:
            if self.edges_from is not None:
                expected = self.edges_from.feature_names
                if list(names) != list(expected):
                    raise ValueError(f"columns {list(names)} differ from the reference's "
                                     f"features {list(expected)}")
            self._names = list(names)
            if len(set(names)) != len(names):
                dup = sorted({n for n in names if list(names).count(n) > 1})
                raise ValueError(f"duplicate feature names: {dup}")
        elif list(names) != self._names:
            missing = [n for n in self._names if n not in names]
            extra = [n for n in names if n not in self._names]
            raise ValueError(f"columns differ from the first chunk's: missing {missing}, "
                             f"unexpected {extra}")
        matrix = table.matrix
        if matrix is not None and matrix.dtype.kind in "iuf" and not self.categorical \
                and self.edges_from is None and table.rows > 1:
            # One column-major copy: contiguous columns, and the sample can keep them as is.
            columns = np.array(matrix, dtype=np.float64, order="F", copy=True)
            for i, name in enumerate(names):
                acc = self._acc.get(name)
                if acc is None:
                    acc = self._acc[name] = _NumericAcc()
                if isinstance(acc, _NumericAcc):
                    self._add_numeric(acc, columns[:, i], i, name, owned=True)
                else:
                    self._acc[name] = self._add(name, acc, columns[:, i], i)
        else:
            for i, name in enumerate(names):
                self._acc[name] = self._add(name, self._acc.get(name), table.column(i), i)
        if predictions is not None:
            column = _prediction_column(predictions, table.rows)
            self._pred = self._add("predictions", self._pred, column, -1)
        self.rows += table.rows
        return self

    def _kind_of(self, name: str, column: Any, position: int) -> str:
        if self.edges_from is not None:
            profile = (self.edges_from.prediction if position < 0
                       else self.edges_from.features[name])
            if profile is not None:
                return profile.kind
        if name in self.categorical:
            return "categorical"
        if position < 0 and getattr(column, "dtype", np.dtype(float)).kind in "iub":
            return "categorical"  # integer predictions are class labels
        return "categorical" if is_categorical(column) else "numeric"

    def _add(self, name: str, acc: Any, column: Any, position: int) -> Any:
        if acc is None:
            kind = self._kind_of(name, column, position)
            acc = _CategoricalAcc() if kind == "categorical" else _NumericAcc()
        if isinstance(acc, _NumericAcc):
            values, bad = to_float(column)
            if bad:
                raise ValueError(f"column {name!r}: {bad} value(s) are not numbers "
                                 f"(declare it categorical if it holds categories)")
            self._add_numeric(acc, values.reshape(-1), position, name)
        else:
            codes, keys = to_categories(column)
            self._add_categorical(acc, codes, keys)
        return acc

    def _add_numeric(self, acc: _NumericAcc, values: np.ndarray, position: int,
                     name: str, owned: bool = False) -> None:
        acc.count += values.shape[0]
        finite = np.isfinite(values)
        if not finite.all():
            values = values[finite]
            owned = True
        acc.missing += int(finite.shape[0] - values.shape[0])
        if values.shape[0] == 0:
            return
        mean = float(values.mean())
        dev = values - mean
        # einsum, not np.dot: a BLAS dot wakes OpenBLAS's threads between calls, which costs
        # milliseconds per column when the other cores are busy; einsum stays on this thread.
        acc.moments(values.shape[0], mean, float(np.einsum("i,i->", dev, dev)))
        acc.min = min(acc.min, float(values.min()))
        acc.max = max(acc.max, float(values.max()))
        if self.edges_from is not None:
            profile = (self.edges_from.prediction if position < 0
                       else self.edges_from.features[name])
            idx = np.searchsorted(profile.edges, values, side="right")
            counts = np.bincount(idx, minlength=profile.bins).astype(np.int64)
            sums = np.bincount(idx, weights=values, minlength=profile.bins)
            if acc.fixed_counts is None:
                acc.fixed_counts, acc.fixed_sums = counts, sums
            else:
                acc.fixed_counts += counts
                acc.fixed_sums += sums
        self._sample_add(acc, values, owned=owned)

    def _sample_add(self, acc: _NumericAcc, values: np.ndarray, keys: np.ndarray | None = None,
                    owned: bool = False) -> None:
        held = sum(a.shape[0] for a in acc.sample)
        if acc.keys is None and keys is None and held + values.shape[0] <= self.sample_size:
            # Keep a copy, never the caller's array (``owned``: already a private copy).
            acc.sample.append(values if owned else np.array(values, dtype=np.float64))
            return
        current = np.concatenate(acc.sample) if acc.sample else np.empty(0)
        if acc.keys is None:
            acc.keys = self._rng.random(current.shape[0])
        if keys is None:
            keys = self._rng.random(values.shape[0])
        all_values = np.concatenate([current, values])
        all_keys = np.concatenate([acc.keys, keys])
        if all_values.shape[0] > self.sample_size:
            keep = np.argpartition(all_keys, self.sample_size - 1)[: self.sample_size]
            all_values, all_keys = all_values[keep], all_keys[keep]
        acc.sample = [all_values]
        acc.keys = all_keys

    def _add_categorical(self, acc: _CategoricalAcc, codes: np.ndarray,
                         keys: list[str | None]) -> None:
        acc.count += codes.shape[0]
        valid = codes >= 0
        counts = np.bincount(codes[valid], minlength=len(keys))
        acc.missing += int(codes.shape[0] - valid.sum())
        for key, n in zip(keys, counts.tolist()):
            if n == 0:
                continue
            if key is None:
                acc.missing += n
                continue
            self._count_category(acc, key, n)

    def _count_category(self, acc: _CategoricalAcc, key: str, n: int) -> None:
        if key in acc.counts:
            acc.counts[key] += n
        elif len(acc.counts) < self._max_tracked:
            acc.counts[key] = n
        else:
            acc.untracked += n
            acc.untracked_distinct += 1

    # -------------------------------------------------------------- merging
    def merge(self, other: ReferenceBuilder) -> ReferenceBuilder:
        """Fold ``other`` (built from other rows with the same columns) into this builder.

        The result is the builder that would have seen both sets of rows: moments and counts
        exactly, the sample as a uniform sample of the union.

        Raises:
            ValueError: The builders have different columns or feature kinds.
        """
        if not isinstance(other, ReferenceBuilder):
            raise TypeError(f"can only merge a ReferenceBuilder, got {type(other).__name__}")
        if other._names is None:
            return self
        if self._names is None:
            self._names = list(other._names)
        elif self._names != other._names:
            raise ValueError(f"cannot merge builders with different columns: {self._names} "
                             f"and {other._names}")
        for name in other._names:
            self._acc[name] = self._merge_acc(name, self._acc.get(name), other._acc[name])
        if other._pred is not None:
            self._pred = self._merge_acc("predictions", self._pred, other._pred)
        self.rows += other.rows
        return self

    def _merge_acc(self, name: str, mine: Any, theirs: Any) -> Any:
        if mine is None:
            mine = type(theirs)()
        if type(mine) is not type(theirs):
            raise ValueError(f"column {name!r} is numeric in one builder and categorical in "
                             "the other")
        mine.count += theirs.count
        mine.missing += theirs.missing
        if isinstance(mine, _CategoricalAcc):
            for key, n in theirs.counts.items():
                self._count_category(mine, key, n)
            mine.untracked += theirs.untracked
            mine.untracked_distinct += theirs.untracked_distinct
            return mine
        mine.moments(theirs.n, theirs.mean, theirs.m2)
        mine.min, mine.max = min(mine.min, theirs.min), max(mine.max, theirs.max)
        if theirs.fixed_counts is not None:
            if mine.fixed_counts is None:
                mine.fixed_counts = theirs.fixed_counts.copy()
                mine.fixed_sums = theirs.fixed_sums.copy()
            else:
                mine.fixed_counts += theirs.fixed_counts
                mine.fixed_sums += theirs.fixed_sums
        if theirs.sample:
            values = np.concatenate(theirs.sample)
            keys = theirs.keys if theirs.keys is not None else self._rng.random(values.shape[0])
            self._sample_add(mine, values, keys)
        return mine

    # -------------------------------------------------------------- result
    def build(self, *, performance: Mapping[str, float] | None = None,
              attributions: Mapping[str, float] | None = None,
              metadata: Mapping[str, str] | None = None) -> Reference:
        """The reference profile of everything added so far.

        Args:
            performance: Validation-set performance to store with the profile.
            attributions: Mean absolute attribution per feature to store with the profile.
            metadata: Free-form string pairs (e.g. the training data set's name).

        Raises:
            ValueError: Nothing was added.
        """
        if self._names is None:
            raise ValueError("no data was added to the reference builder")
        features = {name: self._profile(name, self._acc[name], position=i)
                    for i, name in enumerate(self._names)}
        prediction = (self._profile("__prediction__", self._pred, position=-1)
                      if self._pred is not None else None)
        return Reference(features, prediction=prediction, rows=self.rows,
                         performance=performance, attributions=attributions, metadata=metadata)

    def _profile(self, name: str, acc: Any, position: int) -> Profile:
        if isinstance(acc, _CategoricalAcc):
            return self._categorical_profile(name, acc)
        fixed = None
        if self.edges_from is not None:
            fixed = (self.edges_from.prediction if position < 0
                     else self.edges_from.features[name])
        return _numeric_profile(name, acc, self.bins, fixed)

    def _categorical_profile(self, name: str, acc: _CategoricalAcc) -> CategoricalProfile:
        fixed = None
        if self.edges_from is not None:
            fixed = self.edges_from.features.get(name) if name != "__prediction__" \
                else self.edges_from.prediction
        if isinstance(fixed, CategoricalProfile):
            top = list(fixed.categories)
        else:
            ranked = sorted(acc.counts.items(), key=lambda kv: (-kv[1], kv[0]))
            top = [k for k, _ in ranked[: self.max_categories]]
        top_set = set(top)
        valid = acc.count - acc.missing
        counts = [acc.counts.get(k, 0) for k in top]
        other = valid - sum(counts)
        distinct_other = sum(1 for k in acc.counts if k not in top_set) + acc.untracked_distinct
        shares = (np.array(counts + [other], dtype=np.float64) / valid if valid
                  else np.zeros(len(top) + 1))
        return CategoricalProfile(name, acc.count, acc.missing, tuple(top), shares, distinct_other)


def _numeric_profile(name: str, acc: _NumericAcc, bins: int,
                     fixed: NumericProfile | None) -> NumericProfile:
    if len(acc.sample) == 1:
        sample = np.ascontiguousarray(acc.sample[0])
        sample.sort()  # in place: the builder owns its sample; a sorted sample is as good
    else:
        sample = np.sort(np.concatenate(acc.sample)) if acc.sample else np.empty(0)
        acc.sample = [sample]
    nan = float("nan")
    if acc.n == 0:
        return NumericProfile(name, acc.count, acc.missing, np.empty(0), np.zeros(1),
                              np.full(1, nan), nan, nan, nan, nan, nan, nan)
    p_low, p_high = (float(v) for v in _sorted_quantiles(sample, CENTRAL))
    std = math.sqrt(max(acc.m2 / acc.n, 0.0))
    if fixed is not None and acc.fixed_counts is not None:
        edges = fixed.edges
        counts = acc.fixed_counts.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            centroids = acc.fixed_sums / counts
        shares = counts / counts.sum()
    else:
        edges = _edges(sample, bins, acc.min)
        # Bin i holds [edges[i-1], edges[i]): counts and sums from positions in the sorted sample.
        pos = np.concatenate(([0], np.searchsorted(sample, edges, side="left"), [len(sample)]))
        counts = np.diff(pos).astype(np.float64)
        cumulative = np.concatenate(([0.0], np.cumsum(sample)))
        sums = np.diff(cumulative[pos])
        with np.errstate(invalid="ignore", divide="ignore"):
            centroids = sums / counts
        shares = counts / counts.sum()
    return NumericProfile(name, acc.count, acc.missing, edges, shares, centroids,
                          acc.min, acc.max, acc.mean, std, p_low, p_high)


def _sorted_quantiles(sorted_values: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """Linear-interpolated quantiles of already sorted values (numpy's default method)."""
    n = sorted_values.shape[0]
    pos = np.asarray(qs, dtype=np.float64) * (n - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    frac = pos - lo
    return sorted_values[lo] * (1 - frac) + sorted_values[hi] * frac


def _edges(sorted_sample: np.ndarray, bins: int, minimum: float) -> np.ndarray:
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


def _names_of(table: Table, feature_names: Sequence[str] | None) -> list[str]:
    if feature_names is not None:
        names = [str(n) for n in feature_names]
        if len(names) != table.width:
            raise ValueError(f"{len(names)} feature names for {table.width} columns")
        return names
    return table.names if table.names is not None else list(default_names(table.width))


def _prediction_column(predictions: Any, rows: int) -> np.ndarray:
    """One column of predictions: labels or scores as given; for 2-D probabilities the
    positive-class column when there are two classes, else the most probable class."""
    p = predictions
    module = type(p).__module__.split(".", 1)[0]
    if module in ("pandas", "polars") and hasattr(p, "to_numpy"):
        p = p.to_numpy()
    a = np.asarray(p)
    if a.ndim == 2:
        if a.shape[1] == 1:
            a = a[:, 0]
        elif a.shape[1] == 2 and a.dtype.kind == "f":
            a = a[:, 1]
        else:
            a = np.argmax(a, axis=1)
    a = a.reshape(-1)
    if a.shape[0] != rows:
        raise ValueError(f"{a.shape[0]} predictions for {rows} rows")
    return a


# ----------------------------------------------------------------------------- the reference


class Reference:
    """The reference profile of a model's inputs and predictions (see the module docs).

    Build one with :meth:`from_data` (or :meth:`from_file`, or a :class:`ReferenceBuilder`),
    save it with :meth:`save`, load it with :meth:`load`, and pass it (or its path) to
    ``ModelMonitor(..., reference=...)``.

    Attributes:
        features: Profile of each feature, in input order.
        prediction: Profile of the predictions, or ``None``.
        rows: Rows the profile was built from.
        performance: Validation performance stored with the profile (metric name -> value).
        attributions: Mean absolute attribution per feature.
        metadata: Free-form string pairs.
        created: ISO-8601 creation time (UTC).
    """

    def __init__(self, features: Mapping[str, Profile], *, prediction: Profile | None = None,
                 rows: int = 0, performance: Mapping[str, float] | None = None,
                 attributions: Mapping[str, float] | None = None,
                 metadata: Mapping[str, str] | None = None, created: str | None = None) -> None:
        self.features: dict[str, Profile] = dict(features)
        self.prediction = prediction
        self.rows = int(rows)
        self.performance = _float_dict("performance", performance)
        self.attributions = _float_dict("attributions", attributions)
        self.metadata = {str(k): str(v) for k, v in (metadata or {}).items()}
        self.created = created or datetime.now(timezone.utc).isoformat(timespec="seconds")

    def __repr__(self) -> str:
        kinds = [p.kind[0] for p in self.features.values()]
        return (f"Reference({len(self.features)} features ({kinds.count('n')} numeric, "
                f"{kinds.count('c')} categorical), rows={self.rows}, "
                f"prediction={self.prediction.kind if self.prediction else None})")

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Feature names in input order."""
        return tuple(self.features)

    # -------------------------------------------------------------- construction
    @classmethod
    def from_data(cls, X: Any, *, predictions: Any = None,
                  feature_names: Sequence[str] | None = None,
                  categorical: Iterable[str] | None = None, bins: int = 10,
                  max_categories: int = 50, performance: Mapping[str, float] | None = None,
                  attributions: Mapping[str, float] | None = None,
                  metadata: Mapping[str, str] | None = None) -> Reference:
        """Profile training (or validation) data.

        Args:
            X: The features: numpy 2-D array, pandas/polars frame, dict of columns, list of
                dicts (anything the monitor accepts).
            predictions: The model's predictions on ``X`` (labels, scores or probabilities).
            feature_names: Names for positional input (default ``f0``, ``f1``, ...).
            categorical: Features to treat as categorical whatever their dtype (strings,
                bools and pandas categoricals are categorical anyway).
            bins: Target number of equal-share numeric bins (fewer when quantiles tie).
            max_categories: Categories kept per categorical feature (the rest are "other").
            performance: Validation performance to store (e.g. ``{"accuracy": 0.91}``).
            attributions: Mean absolute attribution per feature to store.
            metadata: Free-form string pairs stored with the profile.

        Returns:
            The profile. Shares are exact for up to 10 million rows per feature (a uniform
            sample of that size sets the edges beyond).

        Raises:
            ValueError: The data is empty or cannot be read; the message names the column.
        """
        builder = ReferenceBuilder(bins=bins, categorical=categorical,
                                   max_categories=max_categories, sample_size=10_000_000)
        builder.update(X, predictions, feature_names=feature_names)
        if builder.rows == 0:
            raise ValueError("cannot build a reference from data with no rows")
        return builder.build(performance=performance, attributions=attributions,
                             metadata=metadata)

    @classmethod
    def from_file(cls, path: str | os.PathLike, *, prediction_column: str | None = None,
                  exclude: Iterable[str] = (), categorical: Iterable[str] | None = None,
                  bins: int = 10, max_categories: int = 50, chunk_rows: int = 100_000,
                  sample_size: int = 1_000_000,
                  progress: Callable[[int, int | None], None] | None = None,
                  performance: Mapping[str, float] | None = None,
                  attributions: Mapping[str, float] | None = None) -> Reference:
        """Profile a CSV, Parquet (with pyarrow) or ``.npy`` file, reading it in chunks.

        When the file has more rows than ``sample_size``, a second pass counts the bin shares
        exactly with the edges found in the first.

        Args:
            path: The data file.
            prediction_column: Column holding the model's predictions (profiled as such).
            exclude: Columns that are not features (ids, labels...).
            categorical: Features to treat as categorical.
            bins: Target number of numeric bins.
            max_categories: Categories kept per categorical feature.
            chunk_rows: Rows read at a time.
            sample_size: Values per feature kept for the quantile edges.
            progress: Called after each chunk with ``(rows_done, rows_total)``; counts both
                passes when there are two; ``rows_total`` is ``None`` when unknown (CSV).
            performance: Validation performance to store.
            attributions: Mean absolute attribution per feature to store.

        Raises:
            otel_ml.datafiles.DataFileError: The file is unreadable, empty or inconsistent;
                the message names the file (and the column, when one is at fault).
        """
        from otel_ml._internal.data.files import DataFileError, read_table, table_rows

        excluded = set(exclude)
        total = table_rows(path)
        builder = ReferenceBuilder(bins=bins, categorical=categorical,
                                   max_categories=max_categories, sample_size=sample_size)
        passes = 1

        def feed(b: ReferenceBuilder, offset: int) -> int:
            nonlocal total
            seen = 0
            for chunk in read_table(path, chunk_rows=chunk_rows):
                if prediction_column is not None and prediction_column not in chunk:
                    raise DataFileError(f"{os.fspath(path)}: no column {prediction_column!r} "
                                        f"(columns: {list(chunk)})")
                cols = {k: v for k, v in chunk.items()
                        if k not in excluded and k != prediction_column}
                preds = chunk[prediction_column] if prediction_column is not None else None
                try:
                    b.update(cols, preds)
                except ValueError as exc:
                    raise DataFileError(f"{os.fspath(path)}: rows {offset + seen}+: {exc}") \
                        from exc
                seen += count_chunk(chunk)
                if progress is not None:
                    progress(offset + seen, None if total is None else total * passes)
            return seen

        rows = feed(builder, 0)
        if rows == 0:
            raise DataFileError(f"{os.fspath(path)}: no rows")
        first = builder.build(performance=performance, attributions=attributions)
        if rows <= sample_size:
            return first
        passes, total = 2, rows
        exact = ReferenceBuilder(bins=bins, categorical=categorical,
                                 max_categories=max_categories, sample_size=sample_size,
                                 edges_from=first)
        feed(exact, rows)
        result = exact.build(performance=performance, attributions=attributions)
        # Quantiles of the central range come from the first pass's sample.
        for name, profile in result.features.items():
            if isinstance(profile, NumericProfile):
                ref = first.features[name]
                result.features[name] = _replace_central(profile, ref)
        return result

    # -------------------------------------------------------------- merging
    def merge(self, other: Reference) -> Reference:
        """A reference for the rows of both profiles (e.g. two replicas' profiles).

        Exact when the numeric features share bin edges (build the second with
        ``ReferenceBuilder(edges_from=first)``): shares, bin means, moments, min/max and
        missing counts combine exactly; the central 99% range is the count-weighted average of
        the two. Categorical shares combine exactly over the union of listed categories; the
        top ``max(len)`` are kept.

        Raises:
            ValueError: Different features, kinds or bin edges.
        """
        if self.feature_names != other.feature_names:
            raise ValueError(f"cannot merge references with different features: "
                             f"{list(self.feature_names)} and {list(other.feature_names)}")
        features = {n: _merge_profiles(self.features[n], other.features[n])
                    for n in self.features}
        prediction = None
        if self.prediction is not None and other.prediction is not None:
            prediction = _merge_profiles(self.prediction, other.prediction)
        elif self.prediction is not None or other.prediction is not None:
            raise ValueError("cannot merge a reference with predictions and one without")
        return Reference(features, prediction=prediction, rows=self.rows + other.rows,
                         performance=self.performance, attributions=self.attributions,
                         metadata={**other.metadata, **self.metadata})

    # -------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form (what :meth:`save` writes)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "created": self.created,
            "rows": self.rows,
            "features": [_profile_dict(p) for p in self.features.values()],
            "prediction": _profile_dict(self.prediction) if self.prediction else None,
            "performance": self.performance,
            "attributions": self.attributions,
            "metadata": self.metadata,
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write the profile as JSON (atomically: a temporary file renamed over ``path``)."""
        text = json.dumps(self.to_dict(), indent=1, allow_nan=False)
        target = os.fspath(path)
        tmp = f"{target}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, target)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Reference:
        """Read a profile written by :meth:`save`, checking it thoroughly.

        Raises:
            FileNotFoundError: No such file.
            InvalidReferenceError: The file is not valid JSON (e.g. truncated), not an otel_ml
                reference, of an unsupported version, or inconsistent; the message says where.
        """
        source = os.fspath(path)
        try:
            with open(source, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            raise FileNotFoundError(f"reference file {source!r} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidReferenceError(f"{source}: cannot read: {exc}") from exc
        if not text.strip():
            raise InvalidReferenceError(f"{source}: the file is empty")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            hint = " (the file looks truncated)" if exc.pos >= len(text.rstrip()) - 1 else ""
            raise InvalidReferenceError(f"{source}: not valid JSON{hint}: {exc.msg} at line "
                                        f"{exc.lineno} column {exc.colno}") from None
        return cls.from_dict(data, source=source)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "reference") -> Reference:
        """Build from the dict form, validating it (see :meth:`load`)."""
        v = _Validator(source)
        if not isinstance(data, dict):
            v.fail("", f"expected a JSON object, got {type(data).__name__}")
        fmt = data.get("format")
        if fmt != FORMAT:
            v.fail("format", f"not an otel_ml reference profile (format is {fmt!r}, "
                             f"expected {FORMAT!r})")
        version = data.get("version")
        if version != VERSION:
            newer = isinstance(version, int) and version > VERSION
            v.fail("version", f"version {version!r} is not supported (this otel_ml reads "
                              f"version {VERSION}); " + ("upgrade otel_ml" if newer else
                                                         "re-create it with `otel-ml profile`"))
        rows = v.count("rows", data.get("rows"))
        raw = data.get("features")
        if not isinstance(raw, list) or not raw:
            v.fail("features", "must be a non-empty list")
        features: dict[str, Profile] = {}
        for i, item in enumerate(raw):
            profile = _profile_from(v, f"features[{i}]", item)
            if profile.name in features:
                v.fail(f"features[{i}].name", f"duplicate feature name {profile.name!r}")
            features[profile.name] = profile
        prediction = None
        if data.get("prediction") is not None:
            prediction = _profile_from(v, "prediction", data["prediction"])
        perf = v.float_dict("performance", data.get("performance"))
        attr = v.float_dict("attributions", data.get("attributions"))
        meta = data.get("metadata") or {}
        if not isinstance(meta, dict):
            v.fail("metadata", "must be an object")
        created = data.get("created")
        return cls(features, prediction=prediction, rows=rows, performance=perf,
                   attributions=attr, metadata=meta,
                   created=created if isinstance(created, str) else None)


# ----------------------------------------------------------------------------- helpers


def count_chunk(chunk: Mapping[str, Any]) -> int:
    for column in chunk.values():
        return len(column)
    return 0


def _replace_central(profile: NumericProfile, first: NumericProfile) -> NumericProfile:
    return NumericProfile(profile.name, profile.count, profile.missing, profile.edges,
                          profile.shares, profile.centroids, profile.min, profile.max,
                          profile.mean, profile.std, first.p_low, first.p_high)


def _float_dict(label: str, value: Mapping[str, float] | None) -> dict[str, float] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"{label} must be a mapping of names to numbers")
    out = {}
    for k, x in value.items():
        try:
            f = float(x)
        except (TypeError, ValueError):
            raise ValueError(f"{label}[{k!r}] is not a number: {x!r}") from None
        if not math.isfinite(f):
            raise ValueError(f"{label}[{k!r}] is not finite: {x!r}")
        out[str(k)] = f
    return out


def _merge_profiles(a: Profile, b: Profile) -> Profile:
    if a.kind != b.kind:
        raise ValueError(f"feature {a.name!r} is {a.kind} in one reference and {b.kind} in "
                         "the other")
    count, missing = a.count + b.count, a.missing + b.missing
    na, nb = a.valid, b.valid
    if isinstance(a, CategoricalProfile):
        assert isinstance(b, CategoricalProfile)
        totals: dict[str, float] = {}
        for p in (a, b):
            for cat, share in zip(p.categories, p.shares[:-1]):
                totals[cat] = totals.get(cat, 0.0) + share * p.valid
        ranked = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
        top = [k for k, _ in ranked[: max(len(a.categories), len(b.categories))]]
        valid = na + nb
        listed = [totals[k] for k in top]
        other = max(valid - sum(listed), 0.0)
        shares = np.array(listed + [other]) / valid if valid else np.zeros(len(top) + 1)
        dropped = len(totals) - len(top)
        return CategoricalProfile(a.name, count, missing, tuple(top), shares,
                                  a.other_categories + b.other_categories + dropped)
    assert isinstance(b, NumericProfile)
    if nb == 0:
        return a
    if na == 0:
        return b
    if a.edges.shape != b.edges.shape or not np.array_equal(a.edges, b.edges):
        raise ValueError(f"feature {a.name!r} has different bin edges in the two references: "
                         "merge ReferenceBuilders instead, or build the second reference with "
                         "ReferenceBuilder(edges_from=first)")
    ca, cb = a.shares * na, b.shares * nb
    counts = ca + cb
    with np.errstate(invalid="ignore", divide="ignore"):
        centroids = (np.nan_to_num(a.centroids) * ca + np.nan_to_num(b.centroids) * cb) / counts
    n = na + nb
    mean = (a.mean * na + b.mean * nb) / n
    m2 = a.std**2 * na + b.std**2 * nb + (b.mean - a.mean) ** 2 * na * nb / n
    return NumericProfile(a.name, count, missing, a.edges, counts / n, centroids,
                          min(a.min, b.min), max(a.max, b.max), mean, math.sqrt(m2 / n),
                          (a.p_low * na + b.p_low * nb) / n, (a.p_high * na + b.p_high * nb) / n)


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _profile_dict(p: Profile) -> dict[str, Any]:
    if isinstance(p, NumericProfile):
        return {
            "name": p.name, "kind": "numeric", "count": p.count, "missing": p.missing,
            "min": _num(p.min), "max": _num(p.max), "mean": _num(p.mean), "std": _num(p.std),
            "p_low": _num(p.p_low), "p_high": _num(p.p_high),
            "edges": [float(e) for e in p.edges],
            "shares": [float(s) for s in p.shares],
            "centroids": [_num(c) for c in p.centroids],
        }
    return {
        "name": p.name, "kind": "categorical", "count": p.count, "missing": p.missing,
        "categories": list(p.categories), "shares": [float(s) for s in p.shares],
        "other_categories": p.other_categories,
    }


class _Validator:
    """Raises :class:`InvalidReferenceError` messages of the form ``source: where: what``."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, what: str) -> Any:
        prefix = f"{self.source}: {where}: " if where else f"{self.source}: "
        raise InvalidReferenceError(prefix + what)

    def count(self, where: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.fail(where, f"must be a non-negative integer, got {value!r}")
        return value

    def number(self, where: str, value: Any, *, optional: bool = False) -> float:
        if value is None and optional:
            return float("nan")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not math.isfinite(value):
            self.fail(where, f"must be a finite number, got {value!r}")
        return float(value)

    def numbers(self, where: str, value: Any, *, optional: bool = False) -> np.ndarray:
        if not isinstance(value, list):
            self.fail(where, f"must be a list of numbers, got {type(value).__name__}")
        return np.array([self.number(f"{where}[{i}]", x, optional=optional)
                         for i, x in enumerate(value)], dtype=np.float64)

    def float_dict(self, where: str, value: Any) -> dict[str, float] | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            self.fail(where, "must be an object of names to numbers")
        return {str(k): self.number(f"{where}.{k}", x) for k, x in value.items()}


def _profile_from(v: _Validator, where: str, item: Any) -> Profile:
    if not isinstance(item, dict):
        v.fail(where, "must be an object")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        v.fail(f"{where}.name", f"must be a non-empty string, got {name!r}")
    where = f"{where} ({name!r})"
    kind = item.get("kind")
    count = v.count(f"{where}.count", item.get("count"))
    missing = v.count(f"{where}.missing", item.get("missing"))
    if missing > count:
        v.fail(f"{where}.missing", f"{missing} missing values out of {count}")
    valid = count - missing
    shares = v.numbers(f"{where}.shares", item.get("shares"))
    if (shares < 0).any() or (shares > 1 + _SHARE_TOLERANCE).any():
        v.fail(f"{where}.shares", "every share must be within [0, 1]")
    total = float(shares.sum())

    def check_total() -> None:
        if valid and abs(total - 1.0) > _SHARE_TOLERANCE:
            v.fail(f"{where}.shares", f"shares sum to {total:.9g}, not 1")

    if kind == "numeric":
        edges = v.numbers(f"{where}.edges", item.get("edges"))
        if len(shares) != len(edges) + 1:
            v.fail(f"{where}.shares", f"{len(shares)} shares for {len(edges)} edges "
                                      f"(expected {len(edges) + 1}: one per bin)")
        check_total()
        if len(edges) > 1 and not (np.diff(edges) > 0).all():
            v.fail(f"{where}.edges", "edges must be strictly increasing")
        centroids = v.numbers(f"{where}.centroids", item.get("centroids"), optional=True)
        if len(centroids) != len(shares):
            v.fail(f"{where}.centroids", f"{len(centroids)} centroids for {len(shares)} bins")
        opt = valid == 0
        stats = {k: v.number(f"{where}.{k}", item.get(k), optional=opt)
                 for k in ("min", "max", "mean", "std", "p_low", "p_high")}
        if valid:
            if not stats["min"] <= stats["p_low"] <= stats["p_high"] <= stats["max"]:
                v.fail(where, "expected min <= p_low <= p_high <= max, got "
                              f"{stats['min']}, {stats['p_low']}, {stats['p_high']}, "
                              f"{stats['max']}")
            if len(edges) and (edges[0] < stats["min"] or edges[-1] > stats["max"]):
                v.fail(f"{where}.edges", "edges lie outside [min, max]")
            if stats["std"] < 0:
                v.fail(f"{where}.std", "must not be negative")
        return NumericProfile(name, count, missing, edges, shares, centroids, stats["min"],
                              stats["max"], stats["mean"], stats["std"], stats["p_low"],
                              stats["p_high"])
    if kind == "categorical":
        cats = item.get("categories")
        if not isinstance(cats, list) or not all(isinstance(c, str) for c in cats):
            v.fail(f"{where}.categories", "must be a list of strings")
        if len(set(cats)) != len(cats):
            v.fail(f"{where}.categories", "categories must be unique")
        if len(shares) != len(cats) + 1:
            v.fail(f"{where}.shares", f"{len(shares)} shares for {len(cats)} categories "
                                      f"(expected {len(cats) + 1}: one per category, then "
                                      "other)")
        check_total()
        other = v.count(f"{where}.other_categories", item.get("other_categories", 0))
        return CategoricalProfile(name, count, missing, tuple(cats), shares, other)
    return v.fail(f"{where}.kind", f"must be 'numeric' or 'categorical', got {kind!r}")
