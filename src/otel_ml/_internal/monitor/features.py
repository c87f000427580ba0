"""Streaming statistics of inputs and predictions: bins, moments, data quality, outliers, drift.

Every call's features (and predictions) become one float matrix: numeric values as they are,
categorical values as the index of their category in the reference (NaN when missing). Batches
are processed with a handful of vectorised numpy passes; single rows are copied into a
preallocated micro-batch buffer that is processed every :data:`BUFFER_ROWS` rows and at every
collection. Results accumulate, per segment, into a ring of time slots (the drift window) and
into cumulative counters. Observable instruments read them at collection time.

Without a reference profile the first batch fixes the schema (names and kinds); moments and
data quality (missing, non-finite, type and schema mismatches) are still counted, but bins,
drift, out-of-range, unseen categories and outliers need a reference.
"""

from __future__ import annotations

import functools
import json
import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from otel_ml._internal.core.log import internal_error, log_limited
from otel_ml._internal.stats.ring import CHECK_INDEX, Delta, SegmentStats
from otel_ml.contract import (
    ALL_SEGMENTS,
    INPUT_FEATURE,
    NO_SEGMENT,
    OTHER,
    PREDICTION_FEATURE,
    Attr,
    Check,
)
from otel_ml._internal.stats.drift import (
    BinnedReference,
    DriftConfig,
    DriftReport,
    binned_reference_from_profiles,
    evaluate,
)
from otel_ml._internal.data.inputs import (
    InputError,
    Table,
    default_names,
    is_categorical,
    to_categories,
    to_float,
    to_float_masked,
    to_table,
)
from otel_ml._internal.reference.profile import CategoricalProfile, NumericProfile, Reference

__all__ = ["BUFFER_ROWS", "Batch", "FeatureMonitor"]

#: Single rows are buffered and processed this many at a time.
BUFFER_ROWS = 256
#: Rows at or below this go through the buffer; larger batches are processed directly.
_SMALL_BATCH = 16
#: Rows per chunk of the vectorised pass (keeps temporaries in cache).
_CHUNK_ROWS = 8192
#: A collection reuses one snapshot of the statistics for at most this long.
_SNAPSHOT_TTL_S = 1.0
#: Grid cells per numeric column for the lookup-table binning (see ``_Layout``).
_MAX_GRID = 8192
#: Fewer cells than this leave too many values in cells holding an edge.
_MIN_GRID = 2048
#: Largest payload attribute, characters; rows captured per call.
_PAYLOAD_CHARS = 4096
_PAYLOAD_ROWS = 10

_NUMERIC_SCALARS = (float, int, np.floating, np.integer)
_CHECKS = Check.ALL
_MISSING, _NON_FINITE, _OUT_OF_RANGE, _UNSEEN, _MISMATCH = (
    CHECK_INDEX[c] for c in (Check.MISSING, Check.NON_FINITE, Check.OUT_OF_RANGE,
                             Check.UNSEEN_CATEGORY, Check.TYPE_MISMATCH))


# ================================================================================ layout



def _quiet(func: Any) -> Any:
    """Run ``func`` with numpy's floating-point warnings off (per batch, not per row).

    Huge or infinite inputs overflow sums: that is the data's problem, counted as data quality,
    never a RuntimeWarning in the host's logs (or an exception under ``-W error``).
    """

    @functools.wraps(func)
    def quiet(*args: Any, **kwargs: Any) -> Any:
        with np.errstate(all="ignore"):
            return func(*args, **kwargs)

    return quiet

class _Layout:
    """The columns tracked (features, then the prediction) and how each is binned.

    Binned numeric columns use *extended* bins: the reference's interior edges plus its min,
    max and central-99% bounds, so one pass gives the reference bin, the out-of-range flag and
    the outlier flag of every value. The extended bin of a value is found with a lookup table
    over a uniform grid of cells (one cell holds at most one edge; one comparison fixes the
    cell's answer); columns whose edges are too close for the grid use ``np.searchsorted``.
    """

    def __init__(self, names: list[str], kinds: list[str], profiles: list[Any],
                 pred_kind: str | None, pred_profile: Any, max_categories: int,
                 shifts: np.ndarray, model: str) -> None:
        self.names = names
        self.F = len(names)
        self.index = {n: i for i, n in enumerate(names)}
        self.pred_kind = pred_kind
        all_kinds = kinds + ([pred_kind] if pred_kind else [])
        all_profiles = profiles + ([pred_profile] if pred_kind else [])
        self.C = len(all_kinds)
        self.labels = names + ([PREDICTION_FEATURE] if pred_kind else [])
        self.kinds = all_kinds
        self.is_cat = np.array([k == "categorical" for k in all_kinds], dtype=bool)
        self.profiles = all_profiles
        self.binned = np.array([p is not None for p in all_profiles], dtype=bool)
        self.shift = np.asarray(shifts, dtype=np.float64)
        self.all_numeric = not self.is_cat[: self.F].any()

        # Categories: key -> code; unknown -> K ("other"), missing -> NaN.
        self.cat_maps: list[dict[str, int] | None] = []
        self.cat_other: list[int] = []
        self.cat_complete: list[bool] = []
        for c, p in enumerate(all_profiles):
            if isinstance(p, CategoricalProfile):
                cats = p.categories[:max_categories]
                if len(p.categories) > max_categories:
                    log_limited(f"cap:categories:{model}",
                                "otel_ml: %s feature %r has %d reference categories; the first "
                                "%d are tracked, the rest count as other (max_categories)",
                                model, p.name, len(p.categories), max_categories)
                self.cat_maps.append({k: i for i, k in enumerate(cats)})
                self.cat_other.append(len(cats))
                self.cat_complete.append(p.other_categories == 0
                                         and len(p.categories) <= max_categories)
            else:
                self.cat_maps.append(None)
                self.cat_other.append(0)
                self.cat_complete.append(False)

        # Flat spaces: extended bins (per batch) and reference bins (stored, exported).
        ext_sizes, ref_sizes, shares = [], [], []
        self.ext_edges: list[np.ndarray | None] = []
        self.ref_edges: list[np.ndarray | None] = []
        ext2ref: list[np.ndarray] = []
        weights: list[np.ndarray] = []
        low_bins, high_bins, unseen_bins = [], [], []
        for c, p in enumerate(all_profiles):
            if p is None:
                ext_sizes.append(0)
                ref_sizes.append(0)
                self.ext_edges.append(None)
                self.ref_edges.append(None)
                shares.append(np.zeros(0))
                continue
            if isinstance(p, NumericProfile):
                top = np.nextafter(p.max, np.inf) if math.isfinite(p.max) else np.inf
                points = [p.min, p.p_low, *p.edges.tolist(), p.p_high, top]
                ext = np.unique(np.array([x for x in points if math.isfinite(x)]))
                lower = np.concatenate(([-np.inf], ext))
                e2r = np.searchsorted(p.edges, lower, side="right")
                w = np.zeros(len(ext) + 1, dtype=np.int16)
                w[lower < p.p_low] = 1
                w[lower >= p.p_high] = 1
                w[0] = w[-1] = 1000  # beyond the reference range: an outlier on its own
                if c >= self.F:
                    w[:] = 0  # the prediction is not part of the outlier score
                ext_sizes.append(len(ext) + 1)
                low_bins.append((c, 0))
                high_bins.append((c, len(ext)))
                self.ext_edges.append(ext)
                self.ref_edges.append(p.edges)
                ref_sizes.append(p.bins)
                shares.append(np.asarray(p.shares))
                ext2ref.append(e2r)
                weights.append(w)
            else:
                k = self.cat_other[c]
                folded = np.concatenate((p.shares[:k], [1.0 - p.shares[:k].sum()]))
                ext_sizes.append(k + 1)
                ref_sizes.append(k + 1)
                self.ext_edges.append(None)
                self.ref_edges.append(None)
                shares.append(np.clip(folded, 0.0, 1.0))
                ext2ref.append(np.arange(k + 1))
                w = np.zeros(k + 1, dtype=np.int16)
                if self.cat_complete[c]:
                    w[k] = 1000
                    unseen_bins.append((c, k))
                weights.append(w)
        self.ext_sizes = np.array(ext_sizes, dtype=np.int64)
        self.ext_offsets = np.concatenate(([0], np.cumsum(self.ext_sizes)[:-1])).astype(np.int64)
        self.total_ext = int(self.ext_sizes.sum())
        self.dump = self.total_ext  # index for values that fall in no bin (missing)
        self.ref_sizes = np.array(ref_sizes, dtype=np.int64)
        self.ref_offsets = np.concatenate(([0], np.cumsum(self.ref_sizes)[:-1])).astype(np.int64)
        self.total_ref = int(self.ref_sizes.sum())
        self.shares = shares
        binned_cols = [c for c in range(self.C) if self.binned[c]]
        self.ext2ref = np.concatenate(
            [ext2ref[i] + self.ref_offsets[c] for i, c in enumerate(binned_cols)]
        ).astype(np.int64) if binned_cols else np.zeros(0, dtype=np.int64)
        weight = np.concatenate(weights + [np.zeros(1, dtype=np.int16)]) if weights \
            else np.zeros(1, dtype=np.int16)
        self.low_idx = np.array([self.ext_offsets[c] + b for c, b in low_bins], dtype=np.int64)
        self.low_col = np.array([c for c, _ in low_bins], dtype=np.int64)
        self.high_idx = np.array([self.ext_offsets[c] + b for c, b in high_bins], dtype=np.int64)
        self.unseen_idx = np.array([self.ext_offsets[c] + b for c, b in unseen_bins],
                                   dtype=np.int64)
        self.unseen_col = np.array([c for c, _ in unseen_bins], dtype=np.int64)
        # Outlier rule: k features outside the central 99% (k such that a reference row is an
        # outlier with probability <= 1% when features are independent), or any value beyond
        # the reference range, or any unseen category.
        n_num = int(sum(1 for c in range(self.F) if self.binned[c] and not self.is_cat[c]))
        self.outlier_k = _outlier_k(n_num)
        weight = np.minimum(weight, self.outlier_k).astype(np.int16)
        weight[self.dump] = 0
        # Renumber the extended bins so that the bins that weigh in the outlier score come
        # first: "is this value flagged?" is then one comparison (b < n_flagged).
        flagged = np.flatnonzero(weight[: self.total_ext] > 0)
        others = np.flatnonzero(weight[: self.total_ext] == 0)
        order = np.concatenate((flagged, others, [self.dump])).astype(np.intp)
        self.remap = np.empty(self.total_ext + 1, dtype=np.intp)  # old flat index -> new
        self.remap[order] = np.arange(self.total_ext + 1)
        self.n_flagged = int(flagged.size)
        self.weight = weight[order]
        if self.total_ext:
            e2r = np.empty(self.total_ext, dtype=np.int64)
            e2r[self.remap[: self.total_ext]] = self.ext2ref
            self.ext2ref = e2r
        self.low_idx = self.remap[self.low_idx]
        self.high_idx = self.remap[self.high_idx]
        self.unseen_idx = self.remap[self.unseen_idx]
        self.has_outliers = bool(binned_cols) and any(self.binned[: self.F])
        self._build_grid()
        # Sums of squares of raw values are precise enough when every |shift| <= 1000 std.
        stds = np.array([p.std if isinstance(p, NumericProfile) else 0.0
                         for p in all_profiles[: self.F]])
        self.raw_moments = bool(self.F) and not self.is_cat[: self.F].any() and bool(
            np.all(np.isfinite(stds)) and np.all(np.abs(self.shift[: self.F]) <= 1000 * stds))
        self.bin_labels = [[str(j) for j in range(int(n))] for n in self.ref_sizes]
        self.drift_ref: BinnedReference | None = None
        if binned_cols:
            self.drift_ref = binned_reference_from_profiles(
                [_folded(p, self.cat_other[c]) for c in binned_cols for p in [self.profiles[c]]])
        self.binned_cols = binned_cols
        # Bounds for the outlier rule of one row without binning it (``row_outlier``): the
        # central 99% [row_lo, row_hi) and the reference range [row_min, row_top) of the
        # binned numeric features (infinite elsewhere), and the unseen-category codes.
        self.row_lo = np.full(self.F, -np.inf)
        self.row_hi = np.full(self.F, np.inf)
        self.row_min = np.full(self.F, -np.inf)
        self.row_top = np.full(self.F, np.inf)
        for c in range(self.F):
            p = self.profiles[c]
            if isinstance(p, NumericProfile) and math.isfinite(p.p_low):
                self.row_lo[c], self.row_hi[c] = p.p_low, p.p_high
                self.row_min[c], self.row_top[c] = p.min, np.nextafter(p.max, np.inf)
        self.unseen_check = np.array([self.is_cat[c] and self.cat_complete[c]
                                      for c in range(self.F)], dtype=bool)
        self.unseen_code = np.array(self.cat_other[: self.F], dtype=np.float64)

    def row_outlier(self, v: np.ndarray) -> bool:
        """The binned outlier rule for one row ``v`` (F floats, layout order), without
        binning: at least ``outlier_k`` finite values outside the central 99% (below p_low,
        at or above p_high), or one beyond the reference range, or an unseen category.
        Non-finite values are data-quality issues, not outliers (as in the binned score)."""
        finite = np.isfinite(v)
        outside = ((v < self.row_lo) | (v >= self.row_hi)) & finite
        if np.count_nonzero(outside) >= self.outlier_k:
            return True
        if (outside & ((v < self.row_min) | (v >= self.row_top))).any():
            return True
        return bool((self.unseen_check & (v == self.unseen_code)).any())

    def _build_grid(self) -> None:
        """Lookup tables for numeric binned columns whose edges a uniform grid separates.

        Every grid column gets the same number of cells ``G`` (so clipping uses scalars);
        cell ``i`` of column ``c`` covers ``[origin_c + i*w_c, origin_c + (i+1)*w_c)`` with
        ``origin_c`` one cell below the first extended edge. ``lut`` maps a (column, cell) to
        the flat extended bin of the cell's lower bound; an edge inside the cell (at most one,
        as edges are at least two cells apart) is fixed by one comparison with ``next_edge``.
        """
        self.grid_cols: list[int] = []
        self.search_cols: list[int] = []
        wanted: dict[int, int] = {}
        for c in range(self.C):
            ext = self.ext_edges[c]
            if ext is None:
                continue
            if len(ext) < 2:
                self.search_cols.append(c)
                continue
            span = float(ext[-1] - ext[0])
            gap = float(np.diff(ext).min())
            cells = math.ceil(2 * span / gap) + 2 if gap > 0 else _MAX_GRID + 1
            if not math.isfinite(span) or span <= 0 or cells > _MAX_GRID:
                self.search_cols.append(c)
                continue
            wanted[c] = cells
        cells = max([_MIN_GRID, *wanted.values()])
        self.grid_n = cells
        luts, scales, origins, offsets = [], [], [], []
        edge_lo: list[int] = []
        edge_hi: list[int] = []
        edge_at: list[float] = []
        for i, (c, _) in enumerate(sorted(wanted.items())):
            ext = self.ext_edges[c]
            base = self.ext_offsets[c]
            w = float(ext[-1] - ext[0]) / (cells - 2)
            origin = ext[0] - w
            lower = origin + np.arange(cells) * w
            lut = self.remap[np.searchsorted(ext, lower, side="right") + base]
            # Cells with an edge inside (or within rounding of a bound) answer by comparison.
            tol = w * 1e-6
            first = np.searchsorted(lower, ext - w - tol, side="left")
            for k, e in enumerate(ext):
                for cell in range(max(int(first[k]) - 1, 0), cells):
                    lo_b, hi_b = lower[cell] - tol, lower[cell] + w + tol
                    if lo_b > e:
                        break
                    if e <= hi_b:
                        lut[cell] = -1 - len(edge_at)
                        edge_lo.append(int(self.remap[base + k]))
                        edge_hi.append(int(self.remap[base + k + 1]))
                        edge_at.append(float(e))
            luts.append(lut.astype(np.intp))
            scales.append(1.0 / w)
            origins.append(origin / w)
            offsets.append(i * cells)
            self.grid_cols.append(c)
        self.lut = np.concatenate(luts) if luts else np.zeros(1, dtype=np.intp)
        self.edge_lo = np.array(edge_lo, dtype=np.intp)
        self.edge_hi = np.array(edge_hi, dtype=np.intp)
        self.edge_at = np.array(edge_at, dtype=np.float64)
        self.grid_scale = np.array(scales)
        self.grid_origin = np.array(origins)
        self.grid_offsets = np.array(offsets, dtype=np.intp)
        # The common case: every feature column on the grid, in order.
        prefix = 0
        while prefix < len(self.grid_cols) and self.grid_cols[prefix] == prefix:
            prefix += 1
        self.grid_prefix = prefix  # columns 0..prefix-1 are all on the grid
        self._tiles: dict[int, tuple] = {}  # per-column constants tiled, by block width

    # ------------------------------------------------------------------ kernel
    def delta(self, V: np.ndarray, cols: list[int] | None, outliers: bool,
              flagged: tuple | None = None) -> tuple[Delta, np.ndarray | None]:
        """Statistics of the block ``V`` (rows x len(cols)) whose columns are ``cols``
        (``None``: the first ``V.shape[1]`` columns of the layout).

        Returns:
            The delta and, with ``outliers``, a per-row outlier flag array.
        """
        n_rows = V.shape[0]
        cols = list(range(V.shape[1])) if cols is None else cols
        d = Delta(self.C, self.total_ref)
        d.rows = n_rows
        if n_rows == 0 or not cols:
            return d, (np.zeros(n_rows, dtype=bool) if outliers else None)
        ext = np.zeros(self.total_ext + 1, dtype=np.int64)
        flags = np.zeros(n_rows, dtype=bool) if outliers else None
        for start in range(0, n_rows, _CHUNK_ROWS):
            block = V[start: start + _CHUNK_ROWS]
            score = self._chunk(block, cols, d, ext, outliers)
            if outliers and score is not None:
                flags[start: start + block.shape[0]] = score >= self.outlier_k
        if flagged is not None:
            # Values that are NaN because they were not numbers, or because their column was
            # absent: type mismatches / schema issues, not also "missing".
            bad, absent = flagged
            if bad is not None:
                n_bad = bad.sum(axis=0)
                d.issues[: n_bad.shape[0], _MISMATCH] += n_bad
                d.issues[: n_bad.shape[0], _MISSING] -= n_bad
            for c in absent:
                d.issues[c, _MISSING] -= n_rows
        if self.total_ref:
            d.bins = np.bincount(self.ext2ref, weights=ext[: self.total_ext],
                                 minlength=self.total_ref).astype(np.int64)
            if self.low_idx.size:
                np.add.at(d.issues[:, _OUT_OF_RANGE], self.low_col,
                          ext[self.low_idx] + ext[self.high_idx])
            if self.unseen_idx.size:
                np.add.at(d.issues[:, _UNSEEN], self.unseen_col, ext[self.unseen_idx])
        if flags is not None:
            d.outliers = int(flags.sum())
        return d, flags

    def _chunk(self, block: np.ndarray, cols: list[int], d: Delta, ext: np.ndarray,
               outliers: bool) -> np.ndarray | None:
        rows = block.shape[0]
        width = block.shape[1]
        leading = cols == list(range(width))  # columns 0..width-1: slices, not fancy indexing
        col_idx = slice(0, width) if leading else np.asarray(cols)
        # Missing / non-finite, found cheaply: a column whose sum is finite has neither.
        ones = _ones(rows)
        with np.errstate(all="ignore"):  # inf - inf in a sum: no RuntimeWarning for the host
            sums = ones @ block
        clean = block
        bad = None  # flat (row-major) positions of the non-finite values, when any
        if not np.isfinite(sums).all():
            # A private C-ordered copy (never the caller's array) whose non-finite values are
            # replaced by their column's shift: they add nothing to the moments (x - shift = 0)
            # and the bins of their positions are sent to the dump below. Missing values are
            # rare, so they are handled by position, not with full-size masks.
            clean = np.array(block, dtype=np.float64, order="C")
            values = clean.reshape(-1)
            bad = np.flatnonzero(~np.isfinite(values))
            bad_col = bad % width
            n_bad = np.bincount(bad_col, minlength=width)
            n_nan = np.bincount(bad_col[np.isnan(values[bad])], minlength=width)
            d.issues[col_idx, _MISSING] += n_nan
            d.issues[col_idx, _NON_FINITE] += n_bad - n_nan
            values[bad] = self.shift[col_idx][bad_col]
            d.n[col_idx] += rows - n_bad
            sums = ones @ clean
        else:
            d.n[col_idx] += rows
        cat = self.is_cat[col_idx]
        # Moments of numeric columns, as sums of x - shift (categorical ones are ignored).
        if not cat.any() and self.raw_moments and np.isfinite(sums).all():
            # One pass: sums of squares of the raw values, shifted algebraically (exact enough
            # when |shift| <= 1000 std: relative error of the variance ~ 1e-16 * 1e6).
            shift = self.shift[col_idx]
            squares = np.einsum("ij,ij->j", clean, clean)
            d.s1[col_idx] += sums - rows * shift
            d.s2[col_idx] += squares - 2 * shift * sums + rows * shift * shift
        elif not cat.any():
            dev = clean - self.shift[col_idx]
            d.s1[col_idx] += ones @ dev
            d.s2[col_idx] += np.einsum("ij,ij->j", dev, dev)
        elif not cat.all():
            num = np.flatnonzero(~cat)
            dev = clean[:, num] - self.shift[np.asarray(cols)[num]]
            d.s1[np.asarray(cols)[num]] += ones @ dev
            d.s2[np.asarray(cols)[num]] += np.einsum("ij,ij->j", dev, dev)
        if not self.total_ext or not self.binned[col_idx].any():
            return None
        # Extended bin of every value, as a flat index (missing -> dump).
        if leading and width <= self.grid_prefix and clean.flags.c_contiguous:
            flat = self._grid_bins_tiled(clean)
        else:
            flat = np.empty(clean.shape, dtype=np.intp)
            positions = {c: j for j, c in enumerate(cols)}
            grid = [g for g, c in enumerate(self.grid_cols) if c in positions]
            if grid:
                js = [positions[self.grid_cols[g]] for g in grid]
                flat[:, js] = self._grid_bins(clean[:, js], np.asarray(grid))
            for c in self.search_cols:
                j = positions.get(c)
                if j is not None:
                    flat[:, j] = self.remap[np.searchsorted(self.ext_edges[c], clean[:, j],
                                                            side="right") + self.ext_offsets[c]]
            for j, c in enumerate(cols):
                if self.is_cat[c] and self.binned[c]:
                    flat[:, j] = self.remap[clean[:, j].astype(np.intp) + self.ext_offsets[c]]
                elif not self.binned[c]:
                    flat[:, j] = self.dump
        if bad is not None:
            flat.reshape(-1)[bad] = self.dump  # ``flat`` is C-contiguous, as ``clean``
        ext += np.bincount(flat.ravel(), minlength=self.total_ext + 1)
        if outliers and self.has_outliers:
            # Outlier score of each row: the weights of its flagged values (few of them).
            hits = np.flatnonzero(flat.reshape(-1) < self.n_flagged)
            return np.bincount(hits // flat.shape[1], weights=self.weight[flat.reshape(-1)[hits]],
                               minlength=flat.shape[0])
        return None

    def _grid_bins_tiled(self, block: np.ndarray) -> np.ndarray:
        """:meth:`_grid_bins` for a C-contiguous block of all the features, with per-column
        constants tiled to the block's size (numpy broadcasting a short row over many rows is
        several times slower than an elementwise operation)."""
        rows, width = block.shape
        tiles = self._tiles.get(width)
        if tiles is None or tiles[0] < rows:
            n = max(rows, BUFFER_ROWS)
            g = slice(0, width)
            tiles = self._tiles[width] = (n, np.tile(self.grid_scale[g], n),
                                          np.tile(self.grid_origin[g], n),
                                          np.tile(self.grid_offsets[g], n))
        size = rows * width
        x = block.reshape(-1)
        z = x * tiles[1][:size]
        z -= tiles[2][:size]
        np.clip(z, 0, self.grid_n - 1, out=z)
        cell = z.astype(np.intp)
        cell += tiles[3][:size]
        return self._resolve(np.take(self.lut, cell), x).reshape(rows, width)

    def _resolve(self, b: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Settle the values that fell in a cell holding an edge (negative lookups)."""
        pending = np.flatnonzero(b < 0)
        if pending.size:
            j = -1 - b[pending]
            b[pending] = np.where(x[pending] >= self.edge_at[j], self.edge_hi[j],
                                  self.edge_lo[j])
        return b

    def _grid_bins(self, sub: np.ndarray, g: Any) -> np.ndarray:
        """Flat extended bins of ``sub`` whose columns are grid columns ``g``."""
        z = sub * self.grid_scale[g]
        z -= self.grid_origin[g]
        np.clip(z, 0, self.grid_n - 1, out=z)
        cell = z.astype(np.intp)
        cell += self.grid_offsets[g]
        b = np.take(self.lut, cell)
        return self._resolve(b.reshape(-1), np.ascontiguousarray(sub).reshape(-1)
                             ).reshape(sub.shape)

    # ------------------------------------------------------------------ per-row bins
    def bins_of(self, V: np.ndarray) -> np.ndarray:
        """Reference bin of each value of the feature columns (-1: missing or unbinned)."""
        out = np.full(V.shape, -1, dtype=np.int64)
        for c in range(min(self.F, V.shape[1])):
            if not self.binned[c]:
                continue
            col = V[:, c]
            ok = np.isfinite(col) if not self.is_cat[c] else ~np.isnan(col)
            if self.is_cat[c]:
                out[ok, c] = col[ok].astype(np.int64)
            else:
                out[ok, c] = np.searchsorted(self.ref_edges[c], col[ok], side="right")
        return out


_ONES: dict[int, np.ndarray] = {}


def _ones(n: int) -> np.ndarray:
    """A cached vector of ones (column sums as one matrix-vector product)."""
    v = _ONES.get(n)
    if v is None:
        if len(_ONES) > 64:
            _ONES.clear()
        v = _ONES[n] = np.ones(n)
    return v


def _ones32(n: int) -> np.ndarray:
    v = _ONES.get(-n)
    if v is None:
        v = _ONES[-n] = np.ones(n, dtype=np.float32)
    return v


def _folded(p: Any, k: int) -> Any:
    """A categorical profile cut to its first ``k`` categories (the rest in "other")."""
    if not isinstance(p, CategoricalProfile) or len(p.categories) <= k:
        return p
    shares = np.concatenate((p.shares[:k], [max(0.0, 1.0 - float(p.shares[:k].sum()))]))
    return CategoricalProfile(p.name, p.count, p.missing, p.categories[:k], shares,
                              p.other_categories + len(p.categories) - k)


def _outlier_k(n: int, p: float = 0.01, level: float = 0.01) -> int:
    """Smallest k with P(Binomial(n, p) >= k) <= level (at least 1)."""
    if n <= 0:
        return 1
    from scipy import stats

    for k in range(1, n + 1):
        if stats.binom.sf(k - 1, n, p) <= level:
            return k
    return n


# ================================================================================ batch


class Batch:
    """What one call fed into the statistics, for the components that need it later.

    Attributes:
        rows: Rows in the call.
        segment: The call's segment (``None`` when it has none).
        segments: Per-row segments (when ``segment_by`` names a column), else ``None``.
    """

    __slots__ = ("_fm", "_rate", "_x", "rows", "segment", "segments")

    def __init__(self, rows: int, x: Any, fm: FeatureMonitor, segment: str | None,
                 segments: np.ndarray | None = None, rate: float | None = None) -> None:
        self.rows = rows
        self.segment = segment
        self.segments = segments
        self._x = x
        self._fm = fm
        self._rate = rate

    @property
    def outlier_rate(self) -> float | None:
        """Share of the rows scored as outliers (``None`` without a reference)."""
        if self._rate is None and self.rows == 1:
            self._rate = self._fm._row_outlier_rate(self._x)
        return self._rate

    @outlier_rate.setter
    def outlier_rate(self, value: float | None) -> None:
        self._rate = value

    def column(self, name: str) -> np.ndarray | None:
        """Raw values of one input column (``None`` when absent). Never raises."""
        try:
            return self._fm._column(self._x, name)
        except Exception as exc:
            internal_error("column", exc)
            return None


# ================================================================================ monitor


class _Snapshot:
    __slots__ = ("at", "reports", "served", "slot", "stats", "windows")

    def __init__(self, at: float) -> None:
        self.at = at
        self.served: set[str] = set()
        self.slot = 0
        self.stats: dict[str, tuple] = {}
        self.windows: dict[str, tuple] = {}
        self.reports: dict[str, DriftReport] | None = None


class FeatureMonitor:
    """Statistics of one model's inputs and predictions (built by :class:`ModelMonitor`).

    Reads its configuration from the monitor: ``reference``, ``feature_names``,
    ``segment_by``, ``segment_values``, ``sensitive_attribute``, ``max_features``,
    ``max_categories``, ``slot_s``, ``drift_window_s``, ``redact`` and, when present,
    ``drift_config`` (a :class:`otel_ml.drift.DriftConfig`).
    """

    def __init__(self, monitor: Any) -> None:
        self.monitor = monitor
        self.reference: Reference | None = getattr(monitor, "reference", None)
        self.drift_config: DriftConfig = getattr(monitor, "drift_config", None) or DriftConfig()
        self.clock: Callable[[], float] = time.monotonic
        self._slot_s = float(getattr(monitor, "slot_s", 60.0))
        window = float(getattr(monitor, "drift_window_s", 3600.0))
        self._slots = max(1, math.ceil(window / self._slot_s - 1e-9))
        self._window_s = window
        self._task: str | None = None
        self._reset()
        if self.reference is not None:
            self._layout = self._layout_from_reference(self.reference)
            self._allocate()

    # ------------------------------------------------------------------ state
    def _reset(self) -> None:
        self._fast = False
        self._lock = threading.Lock()
        self._snap_lock = threading.Lock()
        self._layout: _Layout | None = getattr(self, "_layout", None)
        self._stats: dict[str, SegmentStats] = {}
        self._schema_issues: dict[tuple[str, str, str], int] = {}
        self._extra_names: set[str] = set()
        self._snapshot: _Snapshot | None = None
        self._buf_n = 0
        if self._layout is not None:
            self._allocate()

    def _allocate(self) -> None:
        lay = self._layout
        assert lay is not None
        self._buf = np.zeros((BUFFER_ROWS, lay.F))
        self._buf_pred = np.zeros(BUFFER_ROWS)  # +inf: no prediction for the row
        self._buf_seg: list[str] = [NO_SEGMENT] * BUFFER_ROWS
        self._buf_n = 0
        self._fast_width = lay.F
        self._row_shape = (lay.F,)
        self._row_shape2 = (1, lay.F)
        self._fast_pred = lay.pred_kind
        # Single-row outlier pre-check (see ``observe``): scratch, used under the lock.
        self._rate_fast = lay.has_outliers
        self._row_lo = lay.row_lo
        self._row_hi = lay.row_hi
        self._outlier_k = lay.outlier_k
        self._hits = np.empty((2, lay.F), dtype=bool)
        self._hits_lo = self._hits[0]
        self._hits_hi = self._hits[1]
        self._fast = lay.F > 0 and lay.all_numeric and not isinstance(
            getattr(self.monitor, "segment_by", None), str)

    def after_fork(self) -> None:
        """In a forked child: drop what the parent counted; fresh locks."""
        self._reset()

    # ------------------------------------------------------------------ layouts
    def _layout_from_reference(self, ref: Reference) -> _Layout:
        m = self.monitor
        names = list(ref.feature_names)
        cap = int(getattr(m, "max_features", 200))
        if len(names) > cap:
            log_limited(f"cap:features:{m.name}", "otel_ml: %s has %d features; the first %d "
                        "are tracked (max_features)", m.name, len(names), cap)
            names = names[:cap]
        profiles = [ref.features[n] for n in names]
        kinds = [p.kind for p in profiles]
        shifts = [p.mean if isinstance(p, NumericProfile) and math.isfinite(p.mean) else 0.0
                  for p in profiles]
        pred = ref.prediction
        if pred is not None:
            shifts.append(pred.mean if isinstance(pred, NumericProfile)
                          and math.isfinite(pred.mean) else 0.0)
            if pred.kind == "categorical":
                self._task = "classification"
        return _Layout(names, kinds, profiles, pred.kind if pred else None, pred,
                       int(getattr(m, "max_categories", 50)), np.array(shifts), m.name)

    def _layout_from_first(self, table: Table | None, x_row: np.ndarray | None,
                           pred_kind: str | None) -> _Layout:
        m = self.monitor
        if table is not None:
            names = table.names or list(m.feature_names or default_names(table.width))
            if table.names is None and len(names) != table.width:
                names = list(default_names(table.width))
            kinds, shifts = [], []
            for i in range(table.width):
                col = table.column(i)
                cat = is_categorical(col)
                kinds.append("categorical" if cat else "numeric")
                shift = 0.0
                if not cat:
                    values, _ = to_float(col)
                    finite = values[np.isfinite(values)]
                    shift = float(finite[0]) if finite.size else 0.0
                shifts.append(shift)
        else:
            assert x_row is not None
            width = x_row.shape[0]
            names = list(m.feature_names or default_names(width))
            if len(names) != width:
                names = list(default_names(width))
            kinds = ["numeric"] * width
            shifts = [float(v) if math.isfinite(v) else 0.0 for v in x_row]
        cap = int(getattr(m, "max_features", 200))
        if len(names) > cap:
            log_limited(f"cap:features:{m.name}", "otel_ml: %s has %d features; the first %d "
                        "are tracked (max_features)", m.name, len(names), cap)
            names, kinds, shifts = names[:cap], kinds[:cap], shifts[:cap]
        shifts.append(0.0)
        return _Layout(list(names), kinds, [None] * len(names), pred_kind, None,
                       int(getattr(m, "max_categories", 50)),
                       np.array(shifts[: len(names) + (1 if pred_kind else 0)]), m.name)

    # ------------------------------------------------------------------ hot path
    def row_outlier_rate(self, x: Any) -> float | None:
        """Outlier rate of one numeric numpy row ((F,) or (1, F)), read before the call so
        that it goes into the span's start attributes; ``None`` for anything else (then
        :meth:`observe` works it out). Never raises.

        A row with no value outside the central 99% (two comparisons; ~82% of reference-like
        rows at 20 features) is no outlier; the others take two more, or the full rule
        (``_row_rate``). No per-feature Python loop.
        """
        if not (self._fast and self._rate_fast) or type(x) is not np.ndarray:
            return None
        shape = x.shape
        if not ((shape == self._row_shape or shape == self._row_shape2)
                and x.dtype.kind in "fiub"):
            return None
        try:
            v = x if len(shape) == 1 else x[0]
            with self._lock:
                _less(v, self._row_lo, out=self._hits_lo)
                _greater_equal(v, self._row_hi, out=self._hits_hi)
                hits = _count_nonzero(self._hits)
            if not hits:
                return 0.0
            return self._row_rate(v if v.dtype.kind == "f" else v.astype(np.float64), hits)
        except Exception as exc:
            internal_error("outlier_rate", exc)
            return None

    def observe(self, x: Any, predictions: Any, *, segment: str | None, output: str,
                rate: float | None = None) -> Batch | None:
        """Feed one call's inputs (``x``, may be ``None``) and predictions. Never raises.

        ``rate``: the single row's outlier rate when :meth:`row_outlier_rate` gave it already.
        """
        # Fast path: one numeric row (numpy (F,) or (1, F), or a list/tuple of floats) into
        # the buffer, with its outlier flag (as in ``row_outlier_rate``) unless it is known.
        if self._fast and (predictions is None or self._task is not None):
            t = type(x)
            F = self._fast_width
            if t is np.ndarray:
                shape = x.shape
                ok = (shape == self._row_shape or shape == self._row_shape2) \
                    and x.dtype.kind in "fiub"
            elif t is list or t is tuple:
                ok = len(x) == F and _ROW_TYPES.issuperset(map(type, x))
            else:
                ok = False
            if ok:
                p = _scalar_prediction(predictions, self._fast_pred)
                if p is not _NO_FAST:
                    full = None
                    hits = -1
                    with self._lock:
                        i = self._buf_n
                        row = self._buf[i]
                        row[:] = x
                        if self._rate_fast and rate is None:
                            # Values outside the central 99% (+-inf among them; not NaN).
                            _less(row, self._row_lo, out=self._hits_lo)
                            _greater_equal(row, self._row_hi, out=self._hits_hi)
                            hits = _count_nonzero(self._hits)
                            if hits:
                                row = row.copy()
                        self._buf_pred[i] = p
                        self._buf_seg[i] = NO_SEGMENT if segment is None else segment
                        self._buf_n = i + 1
                        if i + 1 == BUFFER_ROWS:
                            full = self._take_buffer()
                    if full is not None:
                        self._process_buffer(full)
                    if hits > 0:
                        rate = self._row_rate(row, hits)
                    elif hits == 0:
                        rate = 0.0
                    return Batch(1, x, self, segment, rate=rate)
        seg = NO_SEGMENT if segment is None else segment
        return self._observe_general(x, predictions, segment, seg, output)

    def _row_ok(self, x: Any, lay: _Layout) -> bool:
        t = type(x)
        if t is np.ndarray:
            return (x.shape == (lay.F,) or x.shape == (1, lay.F)) and x.dtype.kind in "fiub"
        if t is list or t is tuple:
            return len(x) == lay.F and _ROW_TYPES.issuperset(map(type, x))
        return False

    def _take_buffer(self) -> tuple:
        n = self._buf_n
        out = (self._buf[:n].copy(), self._buf_pred[:n].copy(), self._buf_seg[:n])
        self._buf_seg = [NO_SEGMENT] * BUFFER_ROWS
        self._buf_n = 0
        return out

    @_quiet
    def _process_buffer(self, taken: tuple) -> None:
        V, P, segs = taken
        lay = self._layout
        assert lay is not None
        keys = set(segs)
        groups = [(k, None) for k in keys] if len(keys) == 1 else \
            [(k, np.array([s == k for s in segs])) for k in keys]
        for key, mask in groups:
            rows_v = V if mask is None else V[mask]
            pv = P if mask is None else P[mask]
            has_pred = ~np.isinf(pv)  # +inf marks "no prediction for this row"
            if lay.pred_kind is not None and has_pred.all():
                # Features and predictions as one block: one pass over both.
                d, _ = lay.delta(np.column_stack((rows_v, pv)), None, outliers=True)
            else:
                d, _ = lay.delta(rows_v, None, outliers=True)
                if lay.pred_kind is not None and has_pred.any():
                    pd_, _ = lay.delta(pv[has_pred].reshape(-1, 1), [lay.F], outliers=False)
                    _combine(d, pd_)
            self._merge(key, d)

    def _merge(self, key: str, d: Delta, schema: Iterable[tuple[str, str, int]] = ()) -> None:
        lay = self._layout
        assert lay is not None
        slot = int(self.clock() // self._slot_s)
        with self._lock:
            stats = self._stats.get(key)
            if stats is None:
                stats = self._stats[key] = SegmentStats(self._slots, lay.C, lay.total_ref)
            stats.add(d, slot)
            for feature, check, n in schema:
                k = (key, feature, check)
                self._schema_issues[k] = self._schema_issues.get(k, 0) + n

    def _observe_general(self, x: Any, predictions: Any, segment: str | None, seg: str,
                         output: str) -> Batch | None:
        schema: list[tuple[str, str, int]] = []
        table = None
        rows = 0
        if x is not None:
            try:
                table = to_table(x)
                rows = table.rows
            except InputError as exc:
                log_limited(f"input:{self.monitor.name}", "otel_ml: %s: input not readable "
                            "as features (%s); counted as a type mismatch", self.monitor.name,
                            exc)
                rows = 1
                self._ensure_stats_only(seg, [(INPUT_FEATURE, Check.TYPE_MISMATCH, 1)])
                return Batch(rows, x, self, segment, rate=None)
        pcol = None
        pred_kind = None
        if predictions is not None:
            pcol, pred_kind = _prediction_values(predictions, output)
            if self._task is None and pred_kind is not None:
                self._task = _task_of(pred_kind, predictions, output)
            if table is None:
                rows = 0 if pcol is None else pcol.shape[0]
            elif pcol is not None and pcol.shape[0] != rows:
                log_limited(f"pred-rows:{self.monitor.name}", "otel_ml: %s: %d predictions "
                            "for %d rows; predictions not profiled", self.monitor.name,
                            pcol.shape[0], rows)
                pcol = None
        lay = self._layout
        if lay is None:
            if table is None or table.width == 0:
                return Batch(rows, x, self, segment)
            with self._lock:
                if self._layout is None:
                    self._layout = self._layout_from_first(table, None, pred_kind)
                    self._allocate()
            lay = self._layout
        segs = None
        flagged = None
        if table is not None:
            V, flagged, issues = self._matrix(table, lay)
            schema.extend(issues)
        else:
            V = np.empty((rows, lay.F))
        if isinstance(self.monitor.segment_by, str) and table is not None:
            segs = self._row_segments(table, rows)
        P = None
        if pcol is not None and lay.pred_kind is not None:
            P = self._prediction_matrix(pcol, lay)
        if rows <= _SMALL_BATCH and table is not None and segs is None and flagged is None:
            self._buffer_rows(V, P, seg, schema)
            return Batch(rows, x, self, segment)
        rate = self._ingest(V if table is not None else None, P, seg, segs, flagged, schema)
        return Batch(rows, x, self, segment, segments=segs, rate=rate)

    def _ensure_stats_only(self, seg: str, schema: list[tuple[str, str, int]]) -> None:
        with self._lock:
            for feature, check, n in schema:
                k = (seg, feature, check)
                self._schema_issues[k] = self._schema_issues.get(k, 0) + n

    def _buffer_rows(self, V: np.ndarray, P: np.ndarray | None, seg: str,
                     schema: list) -> None:
        lay = self._layout
        assert lay is not None
        if schema:
            self._merge(seg, Delta(lay.C, lay.total_ref), schema)
        for r in range(V.shape[0]):
            full = None
            with self._lock:
                i = self._buf_n
                self._buf[i] = V[r]
                self._buf_pred[i] = P[r] if P is not None and P[r] != np.inf else \
                    (np.inf if P is None else np.finfo(np.float64).max)
                self._buf_seg[i] = seg
                self._buf_n = i + 1
                if i + 1 == BUFFER_ROWS:
                    full = self._take_buffer()
            if full is not None:
                self._process_buffer(full)

    @_quiet
    def _ingest(self, V: np.ndarray | None, P: np.ndarray | None, seg: str,
                segs: np.ndarray | None, flagged: tuple | None,
                schema: list) -> float | None:
        lay = self._layout
        assert lay is not None
        if segs is None:
            groups: list[tuple[str, Any]] = [(seg, None)]
        else:
            keys, inverse = np.unique(segs, return_inverse=True)
            groups = [(str(k), inverse == i) for i, k in enumerate(keys)]
        outliers = 0
        rows = 0
        first = True
        for key, mask in groups:
            if V is not None:
                block = V if mask is None else V[mask]
                part = flagged
                if flagged is not None and mask is not None:
                    part = (None if flagged[0] is None else flagged[0][mask], flagged[1])
                d, flags = lay.delta(block, None, outliers=True, flagged=part)
                if flags is not None:
                    outliers += int(flags.sum())
                rows += block.shape[0]
            else:
                d = Delta(lay.C, lay.total_ref)
                d.rows = int(mask.sum()) if mask is not None else (P.shape[0] if P is not None
                                                                   else 0)
            if P is not None:
                pblock = P if mask is None else P[mask]
                pd_, _ = lay.delta(pblock.reshape(-1, 1), [lay.F], outliers=False)
                _combine(d, pd_)
            self._merge(key, d, schema if first else ())
            first = False
        if V is None or not lay.has_outliers or rows == 0:
            return None
        return outliers / rows

    # ------------------------------------------------------------------ conversion
    def _matrix(self, table: Table, lay: _Layout) -> tuple[np.ndarray, tuple | None, list]:
        """The input as an (rows x F) float matrix in layout order, the values that are NaN
        for another reason than being missing (``(type-mismatch mask or None, absent
        columns)``, ``None`` when there are none) and the schema issues."""
        rows = table.rows
        issues: list[tuple[str, str, int]] = []
        bad: np.ndarray | None = None
        absent: list[int] = []
        matrix = table.matrix
        V = None
        if table.names is None:
            width = table.width
            if width != lay.F:
                issues.append((INPUT_FEATURE, Check.SCHEMA_FEATURE_COUNT, rows))
                absent = list(range(width, lay.F))
            if matrix is not None and lay.all_numeric and matrix.dtype.kind in "fiub" \
                    and width == lay.F:
                V = matrix if matrix.dtype == np.float64 else matrix.astype(np.float64)
                return V, None, issues
            V = np.full((rows, lay.F), np.nan)
            pairs = [(c, c) for c in range(min(width, lay.F))]
        else:
            V = np.full((rows, lay.F), np.nan)
            present = {n: i for i, n in enumerate(table.names)}
            pairs = []
            for c, name in enumerate(lay.names):
                i = present.get(name)
                if i is None:
                    issues.append((name, Check.SCHEMA_MISSING_COLUMN, rows))
                    absent.append(c)
                else:
                    pairs.append((c, i))
            ignored = {self.monitor.segment_by,
                       getattr(self.monitor, "sensitive_attribute", None)}
            for name in table.names:
                if name not in lay.index and name not in ignored:
                    issues.append((self._extra_name(name), Check.SCHEMA_EXTRA_COLUMN, rows))
        for c, i in pairs:
            mask = self._fill(V, c, table.column(i), lay)
            if mask is not None:
                if bad is None:
                    bad = np.zeros((rows, lay.F), dtype=bool)
                bad[:, c] = mask[:rows]
        flagged = (bad, absent) if bad is not None or absent else None
        return V, flagged, issues

    def _extra_name(self, name: str) -> str:
        if name in self._extra_names:
            return name
        if len(self._extra_names) >= 20:
            return OTHER
        self._extra_names.add(name)
        return name

    def _fill(self, V: np.ndarray, c: int, col: Any, lay: _Layout) -> np.ndarray | None:
        if lay.is_cat[c]:
            mapping = lay.cat_maps[c]
            codes, keys = to_categories(col)
            if mapping is None:  # no reference: present or missing
                lookup = np.array([0.0 if k is not None else np.nan for k in keys] + [np.nan])
            else:
                other = lay.cat_other[c]
                lookup = np.array([float(mapping.get(k, other)) if k is not None else np.nan
                                   for k in keys] + [np.nan])
            V[:, c] = lookup[codes]
            return None
        values, bad = to_float_masked(col)
        V[:, c] = values.reshape(-1)[: V.shape[0]]
        return bad

    def _prediction_matrix(self, pcol: np.ndarray, lay: _Layout) -> np.ndarray:
        if lay.pred_kind == "categorical":
            mapping = lay.cat_maps[lay.F]
            codes, keys = to_categories(pcol)
            if mapping is None:
                lookup = np.array([0.0 if k is not None else np.nan for k in keys] + [np.nan])
            else:
                other = lay.cat_other[lay.F]
                lookup = np.array([float(mapping.get(k, other)) if k is not None else np.nan
                                   for k in keys] + [np.nan])
            return lookup[codes]
        values, _ = to_float(pcol)
        return values

    def _row_segments(self, table: Table, rows: int) -> np.ndarray | None:
        col = table.column_named(self.monitor.segment_by) if table.names is not None else None
        if col is None:
            return None
        codes, keys = to_categories(col)
        cap = self.monitor.segment_values
        mapped = np.array([cap(k) if k is not None else NO_SEGMENT for k in keys] + [NO_SEGMENT],
                          dtype=object)
        return mapped[codes]

    # ------------------------------------------------------------------ batch helpers
    def _row_outlier_rate(self, x: Any) -> float | None:
        lay = self._layout
        if lay is None or not lay.has_outliers:
            return None
        try:
            if self._row_ok(x, lay):
                v = np.asarray(x, dtype=np.float64).reshape(-1)
            else:
                V, _, _ = self._matrix(to_table(x), lay)
                v = V[0]
            return 1.0 if lay.row_outlier(v) else 0.0
        except Exception:
            return None

    def _row_rate(self, v: np.ndarray, hits: int) -> float | None:
        """Outlier rate of the buffered row ``v`` with ``hits`` values outside the central
        99%: no value beyond the range and fewer than k hits is the common case (two more
        comparisons); the rest (beyond, or non-finite values) takes the full rule."""
        lay = self._layout
        try:
            assert lay is not None
            if hits < self._outlier_k and not (_count_nonzero(_less(v, lay.row_min))
                                               or _count_nonzero(_greater_equal(v, lay.row_top))):
                return 0.0
            return 1.0 if lay.row_outlier(v) else 0.0
        except Exception as exc:
            internal_error("outlier_rate", exc)
            return None

    def _column(self, x: Any, name: str) -> np.ndarray | None:
        if x is None:
            return None
        table = to_table(x)
        col = table.column_named(name)
        if col is None and table.names is None:
            lay = self._layout
            names = lay.names if lay is not None else (self.monitor.feature_names or ())
            names = list(names)
            if name in names and names.index(name) < table.width:
                col = table.column(names.index(name))
        if col is None:
            return None
        if hasattr(col, "to_numpy"):
            col = col.to_numpy()
        return np.asarray(col).reshape(-1)

    def bin_rows(self, batch: Batch) -> np.ndarray | None:
        """Reference bin of each row's value of each feature, shape ``(rows, features)``
        (-1: missing or not binned); ``None`` without a reference. Never raises."""
        lay = self._layout
        if lay is None or not lay.binned[: lay.F].any() or batch is None or batch._x is None:
            return None
        try:
            V, _, _ = self._matrix(to_table(batch._x), lay)
            return lay.bins_of(V)
        except Exception as exc:
            internal_error("bin_rows", exc)
            return None

    def inferred_task(self) -> str | None:
        """``"classification"``/``"regression"`` from the predictions seen, else ``None``."""
        return self._task

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The features tracked (empty until known)."""
        return tuple(self._layout.names) if self._layout is not None else ()

    # ------------------------------------------------------------------ flush and read
    def flush(self) -> None:
        """Process the buffered single rows now."""
        with self._lock:
            taken = self._take_buffer() if self._buf_n else None
        if taken is not None:
            self._process_buffer(taken)

    def _read(self, at: float) -> _Snapshot:
        self.flush()
        snap = _Snapshot(at)
        lay = self._layout
        slot = int(self.clock() // self._slot_s)
        snap.slot = slot
        with self._lock:
            items = list(self._stats.items())
            for key, st in items:
                snap.stats[key] = (st.rows, st.bins.copy(), st.issues.copy(), st.outliers)
                snap.windows[key] = st.window(slot)
            schema = dict(self._schema_issues)
        snap.stats["__schema__"] = (schema,)
        if lay is not None and snap.windows:
            total = None
            for w in snap.windows.values():
                total = list(w) if total is None else [a + b for a, b in zip(total, w)]
            snap.windows[ALL_SEGMENTS] = tuple(total)
        return snap

    def _snap(self, metric: str) -> _Snapshot:
        with self._snap_lock:
            now = time.monotonic()
            snap = self._snapshot
            if snap is None or metric in snap.served or now - snap.at > _SNAPSHOT_TTL_S:
                snap = self._snapshot = self._read(now)
            snap.served.add(metric)
            return snap

    def _segment_keys(self, snap: _Snapshot) -> list[str]:
        """Keys whose windowed gauges are exported: all traffic, plus each segment when any."""
        keys = [k for k in snap.windows if k != ALL_SEGMENTS]
        if keys == [NO_SEGMENT] or not keys:
            return [ALL_SEGMENTS] if snap.windows else []
        return [ALL_SEGMENTS] + sorted(keys)

    def _reports(self, snap: _Snapshot) -> dict[str, DriftReport]:
        if snap.reports is None:
            snap.reports = {k: self._evaluate(snap.windows[k], k)
                            for k in self._segment_keys(snap)}
        return snap.reports

    @_quiet
    def _evaluate(self, window: tuple, key: str) -> DriftReport:
        lay = self._layout
        rows = int(window[0])
        if lay is None or lay.drift_ref is None:
            return DriftReport(None if key == ALL_SEGMENTS else key, rows, self._window_s, {},
                               None, self.drift_config, self.drift_config.alpha, time.time(),
                               reason="no reference profile: drift needs one")
        ref = lay.drift_ref
        counts = window[1]
        W = np.zeros((len(lay.binned_cols), ref.width))
        for i, c in enumerate(lay.binned_cols):
            start = lay.ref_offsets[c]
            W[i, : lay.ref_sizes[c]] = counts[start: start + lay.ref_sizes[c]]
        pred_index = lay.binned_cols.index(lay.F) if lay.pred_kind and lay.binned[lay.F] \
            else None
        return evaluate(ref, W, self.drift_config, segment=None if key == ALL_SEGMENTS else key,
                        rows=rows, window_s=self._window_s, prediction_index=pred_index)

    def drift_report(self) -> DriftReport:
        """Drift over the current window, evaluated now (all traffic; ``.segments`` per
        segment)."""
        snap = self._read(time.monotonic())
        keys = self._segment_keys(snap)
        if ALL_SEGMENTS not in keys:
            lay = self._layout
            empty = np.zeros(lay.total_ref if lay is not None else 0, dtype=np.int64)
            return self._evaluate((0, empty, None, None, None), ALL_SEGMENTS)
        reports = {k: self._evaluate(snap.windows[k], k) for k in keys}
        main = reports.pop(ALL_SEGMENTS)
        return DriftReport(main.segment, main.rows, main.window_s, main.features,
                           main.prediction, main.config, main.alpha_per_test, main.evaluated_at,
                           segments=reports, reason=main.reason)

    # ------------------------------------------------------------------ collectors
    def collectors(self) -> dict[str, Callable[[], Iterable[tuple[float, dict[str, str]]]]]:
        """Callables giving each metric's points (model attributes are added by the monitor)."""
        def guard(name: str, fn: Callable[[_Snapshot], list]) -> Callable[[], list]:
            def collect() -> list:
                try:
                    return fn(self._snap(name))
                except Exception as exc:
                    internal_error(f"collect:{name}", exc)
                    return []
            return collect

        return {
            "ml.feature.observations": guard("ml.feature.observations", self._observations),
            "ml.reference.bin.share": guard("ml.reference.bin.share", self._shares),
            "ml.feature.mean": guard("ml.feature.mean", lambda s: self._moment(s, "mean")),
            "ml.feature.stddev": guard("ml.feature.stddev", lambda s: self._moment(s, "std")),
            "ml.feature.drift.score": guard("ml.feature.drift.score", self._scores),
            "ml.feature.drift.pvalue": guard("ml.feature.drift.pvalue", self._pvalues),
            "ml.feature.drifted": guard("ml.feature.drifted", self._drifted),
            "ml.drift.window.rows": guard("ml.drift.window.rows", self._window_rows),
            "ml.data_quality.issues": guard("ml.data_quality.issues", self._issues),
            "ml.model.outliers": guard("ml.model.outliers", self._outliers),
        }

    def _observations(self, snap: _Snapshot) -> list:
        lay = self._layout
        out: list = []
        if lay is None or not lay.total_ref:
            return out
        for key, (_, bins, _, _) in ((k, v) for k, v in snap.stats.items() if k != "__schema__"):
            for c in lay.binned_cols:
                start = int(lay.ref_offsets[c])
                name = lay.labels[c]
                for j, label in enumerate(lay.bin_labels[c]):
                    out.append((int(bins[start + j]),
                                {Attr.FEATURE: name, Attr.SEGMENT: key, Attr.BIN: label}))
        return out

    def _shares(self, snap: _Snapshot) -> list:
        lay = self._layout
        if lay is None:
            return []
        return [(float(share), {Attr.FEATURE: lay.labels[c], Attr.BIN: lay.bin_labels[c][j]})
                for c in lay.binned_cols for j, share in enumerate(lay.shares[c])]

    def _moment(self, snap: _Snapshot, which: str) -> list:
        lay = self._layout
        out: list = []
        if lay is None:
            return out
        for key in self._segment_keys(snap):
            _, _, n, s1, s2 = snap.windows[key]
            for c in range(lay.C):
                if lay.is_cat[c] or n[c] == 0:
                    continue
                with np.errstate(all="ignore"):
                    mean_dev = s1[c] / n[c]
                    if which == "mean":
                        value = lay.shift[c] + mean_dev
                    else:
                        value = math.sqrt(max(s2[c] / n[c] - mean_dev * mean_dev, 0.0))
                if not math.isfinite(value):  # sums overflowed (values near 1e308)
                    continue
                out.append((float(value), {Attr.FEATURE: lay.labels[c], Attr.SEGMENT: key}))
        return out

    def _feature_items(self, report: DriftReport) -> list:
        items = list(report.features.values())
        if report.prediction is not None:
            items.append(report.prediction)
        return items

    def _scores(self, snap: _Snapshot) -> list:
        out: list = []
        for key, report in self._reports(snap).items():
            for f in self._feature_items(report):
                for method, score in f.scores.items():
                    if math.isfinite(score):
                        out.append((score, {Attr.FEATURE: f.feature, Attr.SEGMENT: key,
                                            Attr.METHOD: method}))
        return out

    def _pvalues(self, snap: _Snapshot) -> list:
        out: list = []
        for key, report in self._reports(snap).items():
            for f in self._feature_items(report):
                for method, p in f.pvalues.items():
                    if math.isfinite(p):
                        out.append((p, {Attr.FEATURE: f.feature, Attr.SEGMENT: key,
                                        Attr.METHOD: method}))
        return out

    def _drifted(self, snap: _Snapshot) -> list:
        return [(1 if f.drifted else 0, {Attr.FEATURE: f.feature, Attr.SEGMENT: key})
                for key, report in self._reports(snap).items()
                for f in self._feature_items(report)]

    def _window_rows(self, snap: _Snapshot) -> list:
        return [(int(snap.windows[k][0]), {Attr.SEGMENT: k}) for k in self._segment_keys(snap)]

    def _issues(self, snap: _Snapshot) -> list:
        lay = self._layout
        out: list = []
        for key, value in snap.stats.items():
            if key == "__schema__":
                for (seg, feature, check), n in value[0].items():
                    out.append((n, {Attr.FEATURE: feature, Attr.SEGMENT: seg, Attr.CHECK: check}))
                continue
            issues = value[2]
            if lay is None:
                continue
            cs, ks = np.nonzero(issues)
            for c, k in zip(cs.tolist(), ks.tolist()):
                out.append((int(issues[c, k]), {Attr.FEATURE: lay.labels[c], Attr.SEGMENT: key,
                                                Attr.CHECK: _CHECKS[k]}))
        return out

    def _outliers(self, snap: _Snapshot) -> list:
        lay = self._layout
        if lay is None or not lay.has_outliers:
            return []
        return [(int(v[3]), {Attr.SEGMENT: k}) for k, v in snap.stats.items() if k != "__schema__"]

    # ------------------------------------------------------------------ payloads
    def capture_payload(self, span: Any, x: Any, predictions: Any) -> None:
        """Attach (opt-in, already sampled) inputs and predictions to ``span`` as JSON, without
        the ``redact`` fields, cut to a few rows and characters. Never raises."""
        try:
            redact = self.monitor.redact
            truncated = False
            if x is not None:
                table = to_table(x)
                names = table.names or list(self.feature_names or default_names(table.width))
                if len(names) != table.width:
                    names = list(default_names(table.width))
                keep = [i for i, n in enumerate(names) if n not in redact]
                n_rows = min(table.rows, _PAYLOAD_ROWS)
                truncated = table.rows > n_rows
                cols = {names[i]: _jsonable(_head(table.column(i), n_rows)) for i in keep}
                rows = [{k: v[r] for k, v in cols.items()} for r in range(n_rows)]
                text, cut = _bounded_json(rows)
                truncated = truncated or cut
                span.set_attribute(Attr.PAYLOAD_INPUTS, text)
            if predictions is not None:
                values = _jsonable(_head(predictions, _PAYLOAD_ROWS))
                text, cut = _bounded_json(values)
                truncated = truncated or cut
                span.set_attribute(Attr.PAYLOAD_PREDICTIONS, text)
            if truncated:
                span.set_attribute(Attr.PAYLOAD_TRUNCATED, True)
        except Exception as exc:
            internal_error("payload", exc)


# ================================================================================ helpers

_NO_FAST = object()
#: Element types of a list/tuple row on the fast path (bool, str, None... take the general one).
_ROW_TYPES = frozenset((float, int))
_less = np.less
_greater_equal = np.greater_equal
try:  # the C function under np.count_nonzero, without its dispatch layer (~3x faster)
    from numpy._core._multiarray_umath import count_nonzero as _count_nonzero
except ImportError:  # pragma: no cover - other numpy layouts
    _count_nonzero = np.count_nonzero


def _scalar_prediction(p: Any, kind: str | None) -> Any:
    """The single-row prediction as a float for the buffer (+inf: none, or not profiled);
    :data:`_NO_FAST` when it needs the general path."""
    if p is None or kind is None:
        return np.inf
    if kind == "numeric":
        t = type(p)
        if t is float or t is np.float64 or t is np.float32:
            return p if p != np.inf else _HUGE
        if t is np.ndarray and p.dtype.kind == "f":
            if p.shape == (1,) or p.shape == ():
                v = p.item()
            elif p.shape == (1, 2):
                v = float(p[0, 1])
            else:
                return _NO_FAST
            return v if v != np.inf else _HUGE
    return _NO_FAST


#: A +inf prediction is stored as the largest float (+inf marks "no prediction" in the buffer);
#: both count as out of range of any reference.
_HUGE = float(np.finfo(np.float64).max)


def _combine(d: Delta, other: Delta) -> None:
    d.bins += other.bins
    d.n += other.n
    d.s1 += other.s1
    d.s2 += other.s2
    d.issues += other.issues


def _prediction_values(predictions: Any, output: str) -> tuple[np.ndarray | None, str | None]:
    """Predictions as one column and its kind (numeric scores or categorical classes)."""
    p = predictions
    if type(p).__module__.split(".", 1)[0] in ("pandas", "polars") and hasattr(p, "to_numpy"):
        p = p.to_numpy()
    try:
        a = np.asarray(p)
    except Exception:
        return None, None
    if a.ndim == 0:
        a = a.reshape(1)
    if a.ndim == 2:
        if a.shape[1] == 0:  # no columns: nothing to profile
            return None, None
        if a.shape[1] == 1:
            a = a[:, 0]
        elif a.shape[1] == 2 and a.dtype.kind == "f" and output != "label":
            a = a[:, 1]
        else:
            a = np.argmax(a, axis=1) if a.dtype.kind in "fiu" else a[:, 0]
            return a, "categorical"
    elif a.ndim > 2:
        return None, None
    if output == "label":
        return a, "categorical"
    if a.dtype.kind == "f":
        return a, "numeric"
    if a.dtype.kind in "iubUSO":
        if a.dtype.kind == "O" and not is_categorical(a):
            return a, "numeric"
        return a, "categorical"
    return None, None


def _task_of(kind: str, predictions: Any, output: str) -> str:
    """Labels, probabilities (2-D, one column per class) and ``proba`` outputs are
    classification; other numeric predictions are regression."""
    shape = getattr(predictions, "shape", None)
    if kind == "categorical" or output in ("proba", "label") or (
            shape is not None and len(shape) == 2 and shape[1] >= 2):
        return "classification"
    return "regression"


def _head(values: Any, n: int) -> Any:
    if hasattr(values, "to_numpy"):
        values = values.to_numpy()
    a = np.asarray(values)
    return a[:n] if a.ndim else a


def _jsonable(a: Any) -> Any:
    if isinstance(a, np.ndarray):
        return [_jsonable(v) for v in a.tolist()] if a.dtype == object else \
            _clean(a.tolist())
    return _clean(a)


def _clean(v: Any) -> Any:
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, list):
        return [_clean(x) for x in v]
    if v is None or isinstance(v, (int, str, bool)):
        return v
    return str(v)


def _bounded_json(value: Any) -> tuple[str, bool]:
    text = json.dumps(value, separators=(",", ":"), default=str)
    if len(text) <= _PAYLOAD_CHARS:
        return text, False
    return text[: _PAYLOAD_CHARS - 3] + "...", True
