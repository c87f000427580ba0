"""Binning by lookup table: a uniform grid of cells over each numeric column's extended edges.

One cell holds at most one edge, so a value's extended bin is the cell's answer, fixed by one
comparison when the cell holds an edge. Columns whose edges are too close for the grid (or
whose extended edges span one value: a constant reference column) use ``np.searchsorted``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["CELLS_PER_EDGE", "MAX_CELLS", "MIN_CELLS", "BinGrid"]

#: Grid cells per numeric column at most.
MAX_CELLS = 8192
#: Fewer cells than this leave too many values in cells holding an edge.
MIN_CELLS = 2048
#: Cells per extended edge of the column with the most edges (up to :data:`MAX_CELLS`): with
#: the reference's fine bins (~65 edges) about 1.5% of the cells hold an edge, not 3%.
CELLS_PER_EDGE = 64
#: Rows the tiled constants are made for at least (the micro-batch of single rows).
_TILE_ROWS = 256


class _Tiles:
    """Per-column grid constants repeated over ``rows`` rows of one block width."""

    __slots__ = ("offset", "origin", "rows", "scale")

    def __init__(self, grid: BinGrid, width: int, rows: int) -> None:
        g = slice(0, width)
        self.rows = rows
        self.scale = np.tile(grid.scale[g], rows)
        self.origin = np.tile(grid.origin[g], rows)
        self.offset = np.tile(grid.offsets[g], rows)


class BinGrid:
    """Lookup tables for the numeric binned columns whose edges a uniform grid separates.

    Every grid column gets the same number of cells (so clipping uses scalars); cell ``i`` of
    column ``c`` covers ``[origin_c + i*w_c, origin_c + (i+1)*w_c)`` with ``origin_c`` one cell
    below the first extended edge. ``lut`` maps (column, cell) to the flat extended bin of the
    cell's lower bound, or to ``-1 - j`` when edge ``j`` is inside the cell (then the value is
    compared with ``edge_at[j]``: ``edge_below[j]`` below it, ``edge_above[j]`` from it on).

    Args:
        extended_edges: Per column, its extended edges (``None``: not a binned numeric column).
        extended_offsets: Per column, the start of its extended bins in the flat space.
        renumber: Flat extended bin -> its final number.

    Attributes:
        columns: Columns on the grid, in order. search_columns: Binned numeric columns that
            are not. prefix: Columns ``0..prefix-1`` are all on the grid (the common case).
    """

    def __init__(self, extended_edges: Sequence[np.ndarray | None], extended_offsets: np.ndarray,
                 renumber: np.ndarray) -> None:
        self.columns: list[int] = []
        self.search_columns: list[int] = []
        wanted: dict[int, int] = {}
        for c, ext in enumerate(extended_edges):
            if ext is None:
                continue
            cells = _cells_needed(ext)
            if cells is None:
                self.search_columns.append(c)
            else:
                wanted[c] = cells
        most = max([len(extended_edges[c]) for c in wanted], default=0)  # type: ignore[arg-type]
        self.cells = cells = max([MIN_CELLS, min(MAX_CELLS, CELLS_PER_EDGE * most),
                                  *wanted.values()])
        luts, scales, origins, offsets = [], [], [], []
        edge_below: list[int] = []
        edge_above: list[int] = []
        edge_at: list[float] = []
        for i, c in enumerate(sorted(wanted)):
            ext = extended_edges[c]
            base = int(extended_offsets[c])
            w = float(ext[-1] - ext[0]) / (cells - 2)
            origin = ext[0] - w
            lower = origin + np.arange(cells) * w
            lut = renumber[np.searchsorted(ext, lower, side="right") + base]
            # Cells with an edge inside (or within rounding of a bound) answer by comparison.
            tol = w * 1e-6
            first = np.searchsorted(lower, ext - w - tol, side="left")
            for k, e in enumerate(ext):
                for cell in range(max(int(first[k]) - 1, 0), cells):
                    if lower[cell] - tol > e:
                        break
                    if e <= lower[cell] + w + tol:
                        lut[cell] = -1 - len(edge_at)
                        edge_below.append(int(renumber[base + k]))
                        edge_above.append(int(renumber[base + k + 1]))
                        edge_at.append(float(e))
            luts.append(lut.astype(np.intp))
            scales.append(1.0 / w)
            origins.append(origin / w)
            offsets.append(i * cells)
            self.columns.append(c)
        self.lut = np.concatenate(luts) if luts else np.zeros(1, dtype=np.intp)
        self.edge_below = np.array(edge_below, dtype=np.intp)
        self.edge_above = np.array(edge_above, dtype=np.intp)
        self.edge_at = np.array(edge_at, dtype=np.float64)
        self.scale = np.array(scales)
        self.origin = np.array(origins)
        self.offsets = np.array(offsets, dtype=np.intp)
        prefix = 0
        while prefix < len(self.columns) and self.columns[prefix] == prefix:
            prefix += 1
        self.prefix = prefix
        self._tiles: dict[int, _Tiles] = {}  # by block width

    def bins_tiled(self, block: np.ndarray) -> np.ndarray:
        """Flat extended bins of a C-contiguous block of columns ``0..width-1`` (all on the
        grid), with the per-column constants tiled to the block's size (numpy broadcasting a
        short row over many rows is several times slower than an elementwise operation)."""
        rows, width = block.shape
        tiles = self._tiles.get(width)
        if tiles is None or tiles.rows < rows:
            tiles = self._tiles[width] = _Tiles(self, width, max(rows, _TILE_ROWS))
        size = rows * width
        x = block.reshape(-1)
        z = x * tiles.scale[:size]
        z -= tiles.origin[:size]
        np.clip(z, 0, self.cells - 1, out=z)
        cell = z.astype(np.intp)
        cell += tiles.offset[:size]
        return self._resolve(np.take(self.lut, cell), x).reshape(rows, width)

    def bins(self, sub: np.ndarray, grid_index: Any) -> np.ndarray:
        """Flat extended bins of ``sub`` whose columns are the grid's columns ``grid_index``
        (positions in :attr:`columns`)."""
        z = sub * self.scale[grid_index]
        z -= self.origin[grid_index]
        np.clip(z, 0, self.cells - 1, out=z)
        cell = z.astype(np.intp)
        cell += self.offsets[grid_index]
        b = np.take(self.lut, cell)
        return self._resolve(b.reshape(-1), np.ascontiguousarray(sub).reshape(-1)
                             ).reshape(sub.shape)

    def _resolve(self, b: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Settle the values that fell in a cell holding an edge (negative lookups)."""
        pending = np.flatnonzero(b < 0)
        if pending.size:
            j = -1 - b[pending]
            b[pending] = np.where(x[pending] >= self.edge_at[j], self.edge_above[j],
                                  self.edge_below[j])
        return b


def _cells_needed(ext: np.ndarray) -> int | None:
    """Cells a column's extended edges need (two cells at least between edges), or ``None``
    when the grid cannot hold them: one edge, too many cells, or a span too small for the
    values' rounding (a constant reference column, whose edges are one value apart)."""
    if len(ext) < 2:
        return None
    span = float(ext[-1] - ext[0])
    gap = float(np.diff(ext).min())
    if not (math.isfinite(span) and span > 0 and gap > 0):
        return None
    needed = 2 * span / gap + 2  # inf when the edges are one subnormal apart
    if not needed <= MAX_CELLS:
        return None
    cells = math.ceil(needed)
    # The narrowest cell any grid may give this column must stay far above the rounding of
    # the values (cell numbers are computed as x / width - origin / width).
    width = span / (MAX_CELLS - 2)
    if not width > 1e-9 * max(abs(float(ext[0])), abs(float(ext[-1]))):
        return None
    return cells
