"""The bin plan: which columns are tracked (features, then the prediction) and how each is binned.

Binned numeric columns use *extended* bins: the reference's interior edges plus its min, max
and central-99% bounds, so that one pass gives a value's reference bin, its out-of-range flag
and its outlier flag. Extended bins of every column live in one flat index space (plus one
``missing_bin`` for values that fall in no bin); reference bins (the ones stored and exported)
in another. The extended bins that weigh in the outlier score are numbered first, so "does this
value count towards the score?" is one comparison (``bin < n_flagged``).

A constant reference column is a one-bin feature: its one value is in range and in the
central interval; any other value is out of range (and so an outlier on its own).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from otel_ml._internal.core.log import log_limited
from otel_ml._internal.reference.profile import CategoricalProfile, NumericProfile
from otel_ml._internal.stats.bingrid import BinGrid
from otel_ml._internal.stats.drift import BinnedReference, binned_reference_from_profiles
from otel_ml.contract import PREDICTION_FEATURE

__all__ = ["CATEGORICAL", "NUMERIC", "BinPlan", "CategoryCodes", "RowOutlierBounds",
           "RowOutlierTest", "outlier_k"]

NUMERIC = "numeric"
CATEGORICAL = "categorical"
_less = np.less
_greater_equal = np.greater_equal
#: Weight of a value beyond the reference range or of an unseen category: an outlier alone.
_ALONE = 1000


class CategoryCodes:
    """How one categorical column's values become codes: its reference categories.

    Attributes:
        codes: Category key -> code (``0..other-1``); ``None`` without a reference.
        other: Code of every category not in ``codes`` (the "other" bin).
        complete: Whether the reference saw every category (then "other" means unseen).
    """

    __slots__ = ("codes", "complete", "other")

    def __init__(self, codes: dict[str, int] | None, other: int, complete: bool) -> None:
        self.codes = codes
        self.other = other
        self.complete = complete


class RowOutlierBounds:
    """Bounds of the binned outlier rule for one row of features, without binning it.

    Attributes:
        low, high: The central 99% ``[low, high)`` per feature (infinite when not binned).
        min, top: The reference range ``[min, top)`` per feature (infinite when not binned).
        unseen_check: Features whose "other" code means an unseen category.
        unseen_code: That code per feature.
        k: Values outside the central 99% that make a row an outlier.
    """

    __slots__ = ("high", "k", "low", "min", "top", "unseen_check", "unseen_code")

    def __init__(self, n_features: int, k: int) -> None:
        self.low = np.full(n_features, -np.inf)
        self.high = np.full(n_features, np.inf)
        self.min = np.full(n_features, -np.inf)
        self.top = np.full(n_features, np.inf)
        self.unseen_check = np.zeros(n_features, dtype=bool)
        self.unseen_code = np.zeros(n_features)
        self.k = k

    def is_outlier(self, v: np.ndarray) -> bool:
        """The rule for one row ``v`` (features in plan order): at least ``k`` finite values
        outside the central 99%, or one beyond the reference range, or an unseen category.
        Non-finite values are data-quality issues, not outliers (as in the binned score)."""
        finite = np.isfinite(v)
        outside = ((v < self.low) | (v >= self.high)) & finite
        if np.count_nonzero(outside) >= self.k:
            return True
        if (outside & ((v < self.min) | (v >= self.top))).any():
            return True
        return bool((self.unseen_check & (v == self.unseen_code)).any())


class RowOutlierTest:
    """The outlier rule of one row, the short way: a row with no value outside the central
    99% (two comparisons into scratch arrays; most rows) is no outlier; the others take two
    more comparisons, or the full rule. No per-feature Python loop.

    The scratch arrays make :meth:`count_outside` unsafe to call from two threads at once:
    each owner holds its own test and calls it under its own lock.
    """

    __slots__ = ("_above", "_below", "_high", "_hits", "_low", "bounds")

    def __init__(self, bounds: RowOutlierBounds) -> None:
        self.bounds = bounds
        self._low = bounds.low
        self._high = bounds.high
        self._hits = np.empty((2, bounds.low.shape[0]), dtype=bool)
        self._below = self._hits[0]
        self._above = self._hits[1]

    def count_outside(self, v: np.ndarray) -> int:
        """Values of row ``v`` outside the central 99% (+-inf among them; not NaN)."""
        _less(v, self._low, out=self._below)
        _greater_equal(v, self._high, out=self._above)
        return self._hits.tobytes().count(1)  # a bool is one byte, 0 or 1

    def rate(self, v: np.ndarray, outside: int) -> float:
        """Outlier rate (0.0 or 1.0) of the float row ``v`` with ``outside`` values outside
        the central 99%: no value beyond the range and fewer than k outside is the common
        case; the rest (beyond, or non-finite values) takes the full rule."""
        b = self.bounds
        if outside < b.k and not (np.count_nonzero(v < b.min) or np.count_nonzero(v >= b.top)):
            return 0.0
        return 1.0 if b.is_outlier(v) else 0.0


class BinPlan:
    """The columns tracked and their bins, fixed at creation (from a reference, or from the
    first batch when there is none: then nothing is binned).

    Args:
        names: Feature names, in order.
        kinds: ``"numeric"``/``"categorical"`` per feature.
        profiles: Reference profile per feature (``None``: not binned).
        prediction_kind: Kind of the prediction column (``None``: predictions not tracked).
        prediction_profile: Its reference profile (``None``: not binned).
        max_categories: Categories tracked per categorical column (the rest are "other").
        shifts: Per column (features, then the prediction), the value moments are taken
            around (the reference mean: sums of ``x - shift`` keep their precision).
        model: Model name (for log lines).

    Attributes:
        names: Feature names. labels: Column names (features, then ``PREDICTION_FEATURE``).
        n_features: Features. n_columns: Columns (features, plus one for the prediction).
        categorical: Per column, whether it is categorical. binned: Per column, whether binned.
        categories: Per column, its :class:`CategoryCodes` (``None`` for numeric columns).
        shifts: Per column, the shift of the moments.
        reference_sizes, reference_offsets, n_reference: Reference bins per column, their start
            in the flat reference space, and its size.
        shares: Per column, the reference share of each reference bin.
        bin_labels: Per column, the label of each reference bin (the ``ml.bin`` attribute).
        drift_reference: The reference side of drift evaluation (``None``: nothing binned).
        binned_columns: The binned columns, in order (rows of ``drift_reference``).
        row_bounds: The outlier rule of one row (:class:`RowOutlierBounds`).
        has_outliers: Whether rows are scored as outliers (some feature is binned).
        raw_moments: Whether sums of squares of raw values are precise enough (see the kernel).
        grid: The lookup grid of the numeric binned columns (:class:`BinGrid`).
        fine_rows, fine_width: Shape of drift's fine cells (see :meth:`fine_cells`).
    """

    def __init__(self, names: Sequence[str], kinds: Sequence[str], profiles: Sequence[Any],
                 prediction_kind: str | None, prediction_profile: Any, max_categories: int,
                 shifts: np.ndarray, model: str) -> None:
        self.names = list(names)
        self.n_features = len(self.names)
        self.index = {n: i for i, n in enumerate(self.names)}
        self.prediction_kind = prediction_kind
        all_kinds = list(kinds) + ([prediction_kind] if prediction_kind else [])
        self.profiles = list(profiles) + ([prediction_profile] if prediction_kind else [])
        self.n_columns = len(all_kinds)
        self.labels = self.names + ([PREDICTION_FEATURE] if prediction_kind else [])
        self.kinds = all_kinds
        self.categorical = np.array([k == CATEGORICAL for k in all_kinds], dtype=bool)
        self.binned = np.array([p is not None for p in self.profiles], dtype=bool)
        self.shifts = np.asarray(shifts, dtype=np.float64)
        self.all_numeric = not self.categorical[: self.n_features].any()
        self.categories = [_category_codes(p, max_categories, model) if k == CATEGORICAL
                           else None for k, p in zip(all_kinds, self.profiles)]
        # References at the float limits (1e308, subnormals) overflow or underflow the edges'
        # neighbours and spans: handled by design, never a warning into the host.
        with np.errstate(all="ignore"):
            self._build_bins()
            self.grid = BinGrid(self.extended_edges, self.extended_offsets, self.renumber)
            # Sums of squares of raw values are precise enough when every |shift| <= 1000 std.
            f = self.n_features
            stds = np.array([p.std if isinstance(p, NumericProfile) else 0.0
                             for p in self.profiles[:f]])
            self.raw_moments = bool(f) and self.all_numeric and bool(
                np.all(np.isfinite(stds)) and np.all(np.abs(self.shifts[:f]) <= 1000 * stds))
        self.bin_labels = [[str(j) for j in range(int(n))] for n in self.reference_sizes]
        self.binned_columns = [c for c in range(self.n_columns) if self.binned[c]]
        self.drift_reference: BinnedReference | None = None
        if self.binned_columns:
            self.drift_reference = binned_reference_from_profiles(
                [_folded(self.profiles[c], self.categories[c]) for c in self.binned_columns])
        with np.errstate(all="ignore"):
            self.row_bounds = self._row_bounds()
        self._fine_map()

    # ------------------------------------------------------------------ building
    def _build_bins(self) -> None:
        """Extended and reference bins of every column, flat, and the outlier weights."""
        ext_sizes, ref_sizes, ext2ref, weights = [], [], [], []
        self.shares: list[np.ndarray] = []
        self.extended_edges: list[np.ndarray | None] = []
        self.reference_edges: list[np.ndarray | None] = []
        beyond: list[tuple[int, int]] = []  # (column, extended bin) below/above the range
        unseen: list[tuple[int, int]] = []
        for c, p in enumerate(self.profiles):
            edges = None
            if p is None:
                ext_sizes.append(0)
                ref_sizes.append(0)
                self.shares.append(np.zeros(0))
            elif isinstance(p, NumericProfile):
                edges, e2r, w = _numeric_bins(p, c < self.n_features)
                ext_sizes.append(len(edges) + 1)
                ref_sizes.append(p.bins)
                self.shares.append(np.asarray(p.shares))
                beyond += [(c, 0), (c, len(edges))]
                ext2ref.append(e2r)
                weights.append(w)
            else:
                codes = self.categories[c]
                k = codes.other
                folded = np.concatenate((p.shares[:k], [1.0 - p.shares[:k].sum()]))
                ext_sizes.append(k + 1)
                ref_sizes.append(k + 1)
                self.shares.append(np.clip(folded, 0.0, 1.0))
                ext2ref.append(np.arange(k + 1))
                w = np.zeros(k + 1, dtype=np.int16)
                if codes.complete:
                    w[k] = _ALONE
                    unseen.append((c, k))
                weights.append(w)
            self.extended_edges.append(edges)
            self.reference_edges.append(p.edges if isinstance(p, NumericProfile) else None)
        self.extended_sizes = np.array(ext_sizes, dtype=np.int64)
        self.extended_offsets = _offsets(self.extended_sizes)
        self.n_extended = int(self.extended_sizes.sum())
        self.missing_bin = self.n_extended  # where values that fall in no bin go
        self.reference_sizes = np.array(ref_sizes, dtype=np.int64)
        self.reference_offsets = _offsets(self.reference_sizes)
        self.n_reference = int(self.reference_sizes.sum())
        binned = [c for c in range(self.n_columns) if self.binned[c]]
        flat_e2r = np.concatenate([e2r + self.reference_offsets[c]
                                   for e2r, c in zip(ext2ref, binned)]).astype(np.int64) \
            if binned else np.zeros(0, dtype=np.int64)
        weight = np.concatenate([*weights, np.zeros(1, dtype=np.int16)])
        # Outlier rule: k features outside the central 99% (k such that a reference row is an
        # outlier with probability <= 1% when features are independent), or any value beyond
        # the reference range, or any unseen category.
        n_numeric = sum(1 for c in range(self.n_features)
                        if self.binned[c] and not self.categorical[c])
        self.outlier_k = outlier_k(n_numeric)
        weight = np.minimum(weight, self.outlier_k).astype(np.int16)
        weight[self.missing_bin] = 0
        # Renumber: the bins that weigh in the outlier score first.
        n = self.n_extended
        flagged = np.flatnonzero(weight[:n] > 0)
        order = np.concatenate((flagged, np.flatnonzero(weight[:n] == 0), [n])).astype(np.intp)
        self.renumber = np.empty(n + 1, dtype=np.intp)  # extended bin -> its flat number
        self.renumber[order] = np.arange(n + 1)
        self.n_flagged = int(flagged.size)
        self.weight = weight[order]
        self.extended_to_reference = np.empty(n, dtype=np.int64)
        self.extended_to_reference[self.renumber[:n]] = flat_e2r
        self.below_bins = self._flat(beyond[0::2])
        self.above_bins = self._flat(beyond[1::2])
        self.beyond_columns = np.array([c for c, _ in beyond[0::2]], dtype=np.int64)
        self.unseen_bins = self._flat(unseen)
        self.unseen_columns = np.array([c for c, _ in unseen], dtype=np.int64)
        self.has_outliers = bool(self.binned[: self.n_features].any())

    def _flat(self, pairs: list[tuple[int, int]]) -> np.ndarray:
        return np.array([self.renumber[self.extended_offsets[c] + b] for c, b in pairs],
                        dtype=np.intp)

    def _row_bounds(self) -> RowOutlierBounds:
        bounds = RowOutlierBounds(self.n_features, self.outlier_k)
        for c in range(self.n_features):
            p = self.profiles[c]
            if isinstance(p, NumericProfile) and math.isfinite(p.p_low):
                bounds.low[c], bounds.high[c] = p.p_low, _central_top(p)
                bounds.min[c], bounds.top[c] = p.min, np.nextafter(p.max, np.inf)
            codes = self.categories[c]
            if codes is not None and self.binned[c] and codes.complete:
                bounds.unseen_check[c] = True
                bounds.unseen_code[c] = codes.other
        return bounds

    def _fine_map(self) -> None:
        """Which extended bin feeds which cell of drift's fine resolution (``drift_fine``):
        below the min, each fine bin, above the max; flat over the rows that have fine bins."""
        ref = self.drift_reference
        rows = ref.fine.rows if ref is not None else []
        self.fine_width = ref.fine.width if ref is not None else 0
        extended, cells = [np.zeros(0, dtype=np.intp)], [np.zeros(0, dtype=np.intp)]
        for r, i in enumerate(rows):
            c = self.binned_columns[i]
            p, edges = self.profiles[c], self.extended_edges[c]
            assert edges is not None
            lower = np.concatenate(([-np.inf], edges))
            inner = np.searchsorted(p.fine.edges, lower, side="right") + 1
            cell = np.where(lower < p.min, 0, np.where(lower > p.max, len(p.fine.shares) + 1,
                                                       inner))
            extended.append(self.renumber[self.extended_offsets[c] + np.arange(len(lower))])
            cells.append((r * self.fine_width + cell).astype(np.intp))
        self.fine_rows = len(rows)
        self.fine_extended = np.concatenate(extended)
        self.fine_cell = np.concatenate(cells)
        self.fine_tail = self.fine_extended < self.n_flagged  # bins whose sums are counted

    # ------------------------------------------------------------------ reading
    def fine_cells(self, extended: np.ndarray, tails: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A window's counts, tail sums and counts of values in tail bins per fine cell
        (rows of ``drift_reference.fine``), from its counts per extended bin and its sums per
        tail bin."""
        shape = (self.fine_rows, self.fine_width)
        size = shape[0] * shape[1]
        w = extended[self.fine_extended].astype(np.float64)
        t = self.fine_tail
        counts = np.bincount(self.fine_cell, weights=w, minlength=size).reshape(shape)
        sums = np.bincount(self.fine_cell[t], weights=tails[self.fine_extended[t]],
                           minlength=size).reshape(shape)
        known = np.bincount(self.fine_cell[t], weights=w[t], minlength=size).reshape(shape)
        return counts, sums, known

    def bins_of(self, values: np.ndarray) -> np.ndarray:
        """Reference bin of each value of the feature columns of ``values`` (rows x features,
        plan order; -1: missing or not binned)."""
        out = np.full(values.shape, -1, dtype=np.int64)
        for c in range(min(self.n_features, values.shape[1])):
            if not self.binned[c]:
                continue
            col = values[:, c]
            if self.categorical[c]:
                ok = ~np.isnan(col)
                out[ok, c] = col[ok].astype(np.int64)
            else:
                ok = np.isfinite(col)
                out[ok, c] = np.searchsorted(self.reference_edges[c], col[ok], side="right")
        return out


def _offsets(sizes: np.ndarray) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)


def _central_top(p: NumericProfile) -> float:
    """Top of the central 99% interval, never empty: ``[p_low, p_high)``, or the one value
    ``p_low`` when the two coincide (a constant, or nearly constant, reference column)."""
    return p.p_high if p.p_high > p.p_low else float(np.nextafter(p.p_low, np.inf))


def _numeric_bins(p: NumericProfile, feature: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Extended edges of a numeric column, the reference bin of each extended bin and the
    outlier weight of each (zero for the prediction: not part of the outlier score)."""
    top = np.nextafter(p.max, np.inf) if math.isfinite(p.max) else np.inf
    central_top = _central_top(p)
    fine = p.fine.edges.tolist() if p.fine is not None and p.bins > 1 else []
    points = [p.min, p.p_low, *p.edges.tolist(), *fine, central_top, top]
    edges = np.unique(np.array([x for x in points if math.isfinite(x)], dtype=np.float64))
    lower = np.concatenate(([-np.inf], edges))  # lower bound of each extended bin
    e2r = np.searchsorted(p.edges, lower, side="right")
    w = np.zeros(len(edges) + 1, dtype=np.int16)
    if feature:
        w[lower < p.p_low] = 1
        w[lower >= central_top] = 1
        w[0] = w[-1] = _ALONE  # beyond the reference range: an outlier on its own
    return edges, e2r, w


def _category_codes(p: Any, max_categories: int, model: str) -> CategoryCodes:
    if not isinstance(p, CategoricalProfile):
        return CategoryCodes(None, 0, False)
    cats = p.categories[:max_categories]
    if len(p.categories) > max_categories:
        log_limited(f"cap:categories:{model}",
                    "otel_ml: %s feature %r has %d reference categories; the first %d are "
                    "tracked, the rest count as other (max_categories)",
                    model, p.name, len(p.categories), max_categories)
    return CategoryCodes({k: i for i, k in enumerate(cats)}, len(cats),
                         p.other_categories == 0 and len(p.categories) <= max_categories)


def _folded(p: Any, codes: CategoryCodes | None) -> Any:
    """A categorical profile cut to its tracked categories (the rest in "other")."""
    if codes is None or not isinstance(p, CategoricalProfile) or len(p.categories) <= codes.other:
        return p
    k = codes.other
    shares = np.concatenate((p.shares[:k], [max(0.0, 1.0 - float(p.shares[:k].sum()))]))
    return CategoricalProfile(p.name, p.count, p.missing, p.categories[:k], shares,
                              p.other_categories + len(p.categories) - k)


def outlier_k(n: int, p: float = 0.01, level: float = 0.01) -> int:
    """Smallest k with P(Binomial(n, p) >= k) <= level (at least 1)."""
    if n <= 0:
        return 1
    from scipy import stats

    for k in range(1, n + 1):
        if stats.binom.sf(k - 1, n, p) <= level:
            return k
    return n
