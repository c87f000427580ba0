"""The vectorised pass: what a block of values adds to the statistics (:class:`Delta`).

A block is a float matrix (rows x columns of a :class:`BinPlan`): numeric values as they are,
categorical values as their category code (NaN when missing). A handful of numpy passes give
the counts per reference bin, the moments, the data-quality counts and each row's outlier flag.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from otel_ml._internal.stats.binplan import BinPlan
from otel_ml._internal.stats.ring import CHECK_INDEX, Delta
from otel_ml.contract import Check

__all__ = ["CHUNK_ROWS", "delta"]

#: Rows per chunk of the vectorised pass (keeps temporaries in cache).
CHUNK_ROWS = 8192

_MISSING, _NON_FINITE, _OUT_OF_RANGE, _UNSEEN, _MISMATCH = (
    CHECK_INDEX[c] for c in (Check.MISSING, Check.NON_FINITE, Check.OUT_OF_RANGE,
                             Check.UNSEEN_CATEGORY, Check.TYPE_MISMATCH))


def delta(plan: BinPlan, values: np.ndarray, columns: Sequence[int] | None = None, *,
          outliers: bool, mismatch: np.ndarray | None = None,
          absent: Sequence[int] = ()) -> tuple[Delta, np.ndarray | None]:
    """Statistics of the block ``values`` (rows x len(columns)).

    Args:
        plan: The bin plan.
        values: The block; never written.
        columns: The plan columns of the block's columns (``None``: the first
            ``values.shape[1]`` columns).
        outliers: Score each row as an outlier or not.
        mismatch: Values that are NaN because they were not numbers (type mismatches, not
            also "missing"), as a (rows x features) mask.
        absent: Plan columns absent from the input (schema issues, not also "missing").

    Returns:
        The delta and, with ``outliers``, a per-row outlier flag array.
    """
    with np.errstate(all="ignore"):  # huge or infinite inputs overflow sums: counted, not warned
        return _delta(plan, values, columns, outliers, mismatch, absent)


def _delta(plan: BinPlan, values: np.ndarray, columns: Sequence[int] | None, outliers: bool,
           mismatch: np.ndarray | None, absent: Sequence[int]) -> tuple[Delta, np.ndarray | None]:
    n_rows = values.shape[0]
    cols = list(range(values.shape[1])) if columns is None else list(columns)
    d = Delta(plan.n_columns, plan.n_reference)
    d.rows = n_rows
    if n_rows == 0 or not cols:
        return d, (np.zeros(n_rows, dtype=bool) if outliers else None)
    counts = np.zeros(plan.n_extended + 1, dtype=np.int64)
    tails = np.zeros(plan.n_flagged)
    flags = np.zeros(n_rows, dtype=bool) if outliers else None
    for start in range(0, n_rows, CHUNK_ROWS):
        block = values[start: start + CHUNK_ROWS]
        score = _chunk(plan, block, cols, d, counts, tails, outliers)
        if flags is not None and score is not None:
            flags[start: start + block.shape[0]] = score >= plan.outlier_k
    if mismatch is not None:
        n_bad = mismatch.sum(axis=0)
        d.issues[: n_bad.shape[0], _MISMATCH] += n_bad
        d.issues[: n_bad.shape[0], _MISSING] -= n_bad
    for c in absent:
        d.issues[c, _MISSING] -= n_rows
    if plan.n_reference:
        d.extended, d.tails = counts[: plan.n_extended], tails
        d.bins = np.bincount(plan.extended_to_reference, weights=counts[: plan.n_extended],
                             minlength=plan.n_reference).astype(np.int64)
        if plan.below_bins.size:
            np.add.at(d.issues[:, _OUT_OF_RANGE], plan.beyond_columns,
                      counts[plan.below_bins] + counts[plan.above_bins])
        if plan.unseen_bins.size:
            np.add.at(d.issues[:, _UNSEEN], plan.unseen_columns, counts[plan.unseen_bins])
    if flags is not None:
        d.outliers = int(flags.sum())
    return d, flags


def _chunk(plan: BinPlan, block: np.ndarray, cols: list[int], d: Delta, counts: np.ndarray,
           tails: np.ndarray, outliers: bool) -> np.ndarray | None:
    """Fold one chunk into ``d``, ``counts`` (extended bins) and ``tails`` (sums of the
    values in the tail bins); the rows' outlier scores."""
    rows, width = block.shape
    leading = cols == list(range(width))  # columns 0..width-1: slices, not fancy indexing
    col_idx = slice(0, width) if leading else np.asarray(cols)
    # Missing / non-finite, found cheaply: a column whose sum is finite has neither.
    ones = _ones(rows)
    sums = ones @ block
    clean = block
    bad = None  # flat (row-major) positions of the non-finite values, when any
    if not np.isfinite(sums).all():
        # A private C-ordered copy (never the caller's array) whose non-finite values are
        # replaced by their column's shift: they add nothing to the moments (x - shift = 0)
        # and the bins of their positions go to the missing bin below. Missing values are
        # rare, so they are handled by position, not with full-size masks.
        clean = np.array(block, dtype=np.float64, order="C")
        flat_values = clean.reshape(-1)
        bad = np.flatnonzero(~np.isfinite(flat_values))
        bad_col = bad % width
        n_bad = np.bincount(bad_col, minlength=width)
        n_nan = np.bincount(bad_col[np.isnan(flat_values[bad])], minlength=width)
        d.issues[col_idx, _MISSING] += n_nan
        d.issues[col_idx, _NON_FINITE] += n_bad - n_nan
        flat_values[bad] = plan.shifts[col_idx][bad_col]
        d.n[col_idx] += rows - n_bad
        sums = ones @ clean
    else:
        d.n[col_idx] += rows
    _moments(plan, clean, cols, col_idx, sums, d)
    if not plan.n_extended or not plan.binned[col_idx].any():
        return None
    flat = _extended_bins(plan, clean, cols, leading)
    if bad is not None:
        flat.reshape(-1)[bad] = plan.missing_bin  # ``flat`` is C-contiguous, as ``clean``
    counts += np.bincount(flat.ravel(), minlength=plan.n_extended + 1)
    if not plan.n_flagged:
        return None
    # The values in the tail bins (outside the central 99%: few of them), for their sums
    # (drift's resolution beyond the bins) and the rows' outlier scores.
    hits = np.flatnonzero(flat.reshape(-1) < plan.n_flagged)
    if hits.size:
        width = flat.shape[1]
        tails += np.bincount(flat.reshape(-1)[hits], weights=clean[hits // width, hits % width],
                             minlength=plan.n_flagged)
    if outliers and plan.has_outliers:
        # Outlier score of each row: the weights of its flagged values.
        return np.bincount(hits // flat.shape[1], weights=plan.weight[flat.reshape(-1)[hits]],
                           minlength=flat.shape[0])
    return None


def _moments(plan: BinPlan, clean: np.ndarray, cols: list[int], col_idx: slice | np.ndarray,
             sums: np.ndarray, d: Delta) -> None:
    """Sums of ``x - shift`` and of its square, numeric columns only."""
    rows = clean.shape[0]
    cat = plan.categorical[col_idx]
    ones = _ones(rows)
    if not cat.any() and plan.raw_moments and np.isfinite(sums).all():
        # One pass: sums of squares of the raw values, shifted algebraically (exact enough
        # when |shift| <= 1000 std: relative error of the variance ~ 1e-16 * 1e6).
        shift = plan.shifts[col_idx]
        squares = ones @ (clean * clean)  # faster than einsum's own loop on row-major blocks
        d.s1[col_idx] += sums - rows * shift
        d.s2[col_idx] += squares - 2 * shift * sums + rows * shift * shift
    elif not cat.any():
        dev = clean - plan.shifts[col_idx]
        d.s1[col_idx] += ones @ dev
        d.s2[col_idx] += ones @ (dev * dev)
    elif not cat.all():
        num = np.flatnonzero(~cat)
        numeric_cols = np.asarray(cols)[num]
        dev = clean[:, num] - plan.shifts[numeric_cols]
        d.s1[numeric_cols] += ones @ dev
        d.s2[numeric_cols] += ones @ (dev * dev)


def _extended_bins(plan: BinPlan, clean: np.ndarray, cols: list[int],
                   leading: bool) -> np.ndarray:
    """Flat extended bin of every value (not binned: the missing bin), C-ordered."""
    grid = plan.grid
    if leading and clean.shape[1] <= grid.prefix and clean.flags.c_contiguous:
        return grid.bins_tiled(clean)
    flat = np.empty(clean.shape, dtype=np.intp)
    positions = {c: j for j, c in enumerate(cols)}
    on_grid = [g for g, c in enumerate(grid.columns) if c in positions]
    if on_grid:
        js = [positions[grid.columns[g]] for g in on_grid]
        flat[:, js] = grid.bins(clean[:, js], np.asarray(on_grid))
    for c in grid.search_columns:
        j = positions.get(c)
        if j is not None:
            flat[:, j] = plan.renumber[np.searchsorted(plan.extended_edges[c], clean[:, j],
                                                       side="right")
                                       + plan.extended_offsets[c]]
    for j, c in enumerate(cols):
        if plan.categorical[c] and plan.binned[c]:
            flat[:, j] = plan.renumber[clean[:, j].astype(np.intp) + plan.extended_offsets[c]]
        elif not plan.binned[c]:
            flat[:, j] = plan.missing_bin
    return flat


_ONES: dict[int, np.ndarray] = {}


def _ones(n: int) -> np.ndarray:
    """A cached vector of ones (column sums as one matrix-vector product)."""
    v = _ONES.get(n)
    if v is None:
        if len(_ONES) > 64:
            _ONES.clear()
        v = _ONES[n] = np.ones(n)
    return v
