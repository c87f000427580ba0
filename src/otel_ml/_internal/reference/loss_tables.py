"""The loss model compiled for evaluation: few lookups per row instead of one per term.

A :class:`~otel_ml._internal.reference.loss_model.LossModel` sums, per row, the log factors of
its terms (one per column and per pair of columns: 36 for 8 columns). Here the columns are
grouped (consecutive columns while a group has at most :data:`GROUP_CELLS` bin combinations,
an unknown bin included: two numeric columns of 8 bins) and every term is added, once, into
a table over the bin combinations of two groups: 8 columns make 4 groups, 6 tables (of
81 x 81 cells), 6 lookups per row. The absolute and squared error's log factors are one
complex number per cell (real and imaginary part), so one lookup reads both; the sum of the
lookups is exponentiated once per row.

Numeric columns are binned together, as one float block ``(columns, rows)``: each edge is one
comparison over the block (:data:`LossTables.edges` padded with ``+inf``), no per-column
search. A non-finite value, an absent column and (categorical columns) an unseen category
fall in the column's unknown bin, whose factor is 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from otel_ml._internal.core.scratch import Scratch

__all__ = ["GROUP_CELLS", "LossTables"]

#: Bin combinations (the unknown bin included) of one group of columns at most.
GROUP_CELLS = 128


class LossTables:
    """Lookup tables of a loss model (see the module docs).

    Args:
        binnings: The model's binnings (``edges`` or ``categories``, ``bins``).
        terms: The model's terms (``columns``, ``abs_values``, ``sq_values``).
        abs_intercept: Mean absolute error on the reference.
        sq_intercept: Mean squared error on the reference.

    Attributes:
        numeric: Model columns binned by edges, in block order.
        categorical: Model columns binned by category.
        edges: ``(len(numeric), most edges)`` edge table, padded with ``+inf``.
    """

    def __init__(self, binnings: Sequence[Any], terms: Sequence[Any], abs_intercept: float,
                 sq_intercept: float) -> None:
        self._binnings = list(binnings)
        self._abs0 = float(abs_intercept)
        self._sq0 = float(sq_intercept)
        self.numeric = [i for i, b in enumerate(binnings) if b.categories is None]
        self.categorical = [i for i, b in enumerate(binnings) if b.categories is not None]
        most = max([len(binnings[i].edges) for i in self.numeric], default=0)
        self.edges = np.full((len(self.numeric), most), np.inf)
        for r, i in enumerate(self.numeric):
            self.edges[r, : len(binnings[i].edges)] = binnings[i].edges
        self._edges3 = self.edges[:, :, None]
        self._unknown = np.array([b.bins for b in binnings], dtype=np.intp)
        #: Bins fit int8 (the usual: up to 127 a column), else int16.
        self._dtype = np.int8 if int(self._unknown.max(initial=0)) < 127 else np.int16
        self._unknown8 = self._unknown.astype(self._dtype)
        sizes = [b.bins + 1 for b in binnings]  # the unknown bin last
        self._groups = _groups(sizes)
        radix = np.ones(len(sizes), dtype=np.intp)
        for g in self._groups:
            step = 1
            for c in reversed(g):
                radix[c] = step
                step *= sizes[c]
        self._radix = radix
        self._sizes = sizes
        #: Leading groups that are the column pairs (0, 1), (2, 3)...: their codes are
        #: computed together (the rest group by group).
        self._pairs = 0
        while (self._pairs < len(self._groups)
               and self._groups[self._pairs] == [2 * self._pairs, 2 * self._pairs + 1]):
            self._pairs += 1
        self._second_sizes = np.array([sizes[2 * i + 1] for i in range(self._pairs)],
                                      dtype=np.int8)[:, None]
        cells = [int(np.prod([sizes[c] for c in g])) for g in self._groups]
        n = len(self._groups)
        pairs = [(g, h) for g in range(n) for h in range(g + 1, n)] or ([(0, -1)] if n else [])
        tables = {pair: np.zeros(cells[pair[0]] * (cells[pair[1]] if pair[1] >= 0 else 1),
                                 dtype=np.complex128) for pair in pairs}
        group_of = {c: g for g, cols in enumerate(self._groups) for c in cols}
        for term in terms:
            gs = sorted({group_of[c] for c in term.columns})
            if len(gs) == 2:
                pair = (gs[0], gs[1])
            elif n == 1:
                pair = (0, -1)
            else:
                pair = (gs[0], gs[0] + 1) if gs[0] + 1 < n else (gs[0] - 1, gs[0])
            self._add_term(tables[pair], pair, term, sizes, cells)
        # Table (g, h)'s cell of group codes (cg, ch) is at cg * width + ch.
        self._lookups = [(g, h, int(cells[h]) if h >= 0 else 1, tables[(g, h)])
                         for g, h in pairs]

    def _add_term(self, table: np.ndarray, pair: tuple[int, int], term: Any,
                  sizes: list[int], cells: list[int]) -> None:
        """Add a term's log factors to every cell of ``table`` (unknown bins: nothing)."""
        g, h = pair
        flat = np.arange(len(table))
        code = {g: flat // (cells[h] if h >= 0 else 1)}
        if h >= 0:
            code[h] = flat % cells[h]
        group_of = {c: x for x in (g, h) if x >= 0 for c in self._groups[x]}

        def bin_of(c: int) -> np.ndarray:
            return (code[group_of[c]] // self._radix[c]) % sizes[c]

        bins = [bin_of(c) for c in term.columns]
        known = np.ones(len(table), dtype=bool)
        for c, b in zip(term.columns, bins):
            known &= b < self._unknown[c]
        cell = bins[0] if len(bins) == 1 else bins[0] * self._unknown[term.columns[1]] + bins[1]
        values = term.abs_values + 1j * term.sq_values
        table[known] += values[cell[known]]

    def expected(self, block: np.ndarray, categorical: Sequence[np.ndarray | None],
                 scratch: Scratch | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Expected absolute and squared error per row (``E[e^2] >= E[|e|]^2``).

        Args:
            block: ``(len(numeric), rows)`` float values of the numeric columns (NaN: absent),
                each row contiguous (a view into a wider block will do).
            categorical: Per categorical column, its raw values (``None``: absent).
            scratch: Where the temporaries and the results live (reused from call to call:
                the results are views, valid until the next call with the same scratch).
        """
        scratch = scratch if scratch is not None else Scratch()
        bins = self.bins(block, categorical, scratch)
        rows = bins.shape[1]
        logs = self.log_factors(bins, scratch)
        both = logs.view(np.float64)  # real, imaginary interleaved
        np.exp(both, out=both)
        a = np.multiply(both[0::2], self._abs0, out=scratch.get("loss.a", (rows,), np.float64))
        s = np.multiply(both[1::2], self._sq0, out=scratch.get("loss.s", (rows,), np.float64))
        square = np.multiply(a, a, out=scratch.get("loss.a2", (rows,), np.float64))
        np.maximum(s, square, out=s)
        return a, s

    def bins(self, block: np.ndarray, categorical: Sequence[np.ndarray | None],
             scratch: Scratch) -> np.ndarray:
        """Bin of every model column of every row: ``(columns, rows)`` int8 or int16 (see
        :meth:`expected` for the arguments)."""
        rows = block.shape[1]
        m = len(self._binnings)
        out = scratch.get("loss.bins", (m, rows), self._dtype)
        if self.numeric:
            counted = out if not self.categorical else scratch.get(
                "loss.counted", block.shape, self._dtype)
            edges = self.edges.shape[1]
            if counted.dtype == np.int8:  # every edge compared at once, counted per value
                above3 = scratch.get("loss.above3", (block.shape[0], edges, rows), np.bool_)
                np.greater_equal(block[:, None, :], self._edges3, out=above3)
                np.add.reduce(above3.view(np.int8), axis=1, out=counted)
            else:
                counted.fill(0)
                above1 = scratch.get("loss.above1", block.shape, np.bool_)
                for k in range(edges):
                    np.greater_equal(block, self.edges[:, k:k + 1], out=above1)
                    np.add(counted, above1.view(np.int8), out=counted)
            with np.errstate(invalid="ignore", over="ignore"):
                # NaN and inf propagate to the sum (not a BLAS call: its threads would spin
                # on a loaded machine).
                finite = np.isfinite(block.sum())
            if not finite:  # non-finite values (NaN: absent or missing) to the unknown bin
                above = scratch.get("loss.above", block.shape, np.bool_)
                np.isfinite(block, out=above)
                np.logical_not(above, out=above)
                np.copyto(counted, self._unknown8[self.numeric][:, None], where=above)
            if self.categorical:
                out[self.numeric] = counted
        for c, values in zip(self.categorical, categorical):
            if values is None or len(values) != rows:
                out[c] = self._unknown8[c]
                continue
            b = self._binnings[c].bin_of(values)
            b[b < 0] = self._unknown[c]
            out[c] = b
        return out

    def log_factors(self, bins: np.ndarray, scratch: Scratch) -> np.ndarray:
        """Sum of every term's (absolute + 1j * squared) log factor per row (complex)."""
        rows = bins.shape[1]
        codes = scratch.get("loss.codes", (len(self._groups), rows), np.intp)
        pairs = self._pairs
        if pairs and bins.dtype == np.int8:  # the usual: columns paired, codes fit int8
            small = scratch.get("loss.codes8", (pairs, rows), np.int8)
            np.multiply(bins[0:2 * pairs:2], self._second_sizes, out=small)
            np.add(small, bins[1:2 * pairs:2], out=small)
            np.copyto(codes[:pairs], small)
        for code, g in zip(codes[pairs:], self._groups[pairs:]):
            np.copyto(code, bins[g[0]])
            for c in g[1:]:  # mixed radix: code * size + bin
                code *= self._sizes[c]
                code += bins[c]
        total = scratch.get("loss.total", (rows,), np.complex128)
        if not self._lookups:
            total.fill(0)
            return total
        part = scratch.get("loss.part", (rows,), np.complex128)
        idx = scratch.get("loss.idx", (rows,), np.intp)
        scaled: dict[tuple[int, int], np.ndarray] = {}
        for i, (g, h, width, table) in enumerate(self._lookups):
            if h >= 0:
                base = scaled.get((g, width))
                if base is None:  # group g's code times the width, once per width
                    base = scratch.get(f"loss.scaled{len(scaled)}", (rows,), np.intp)
                    np.multiply(codes[g], width, out=base)
                    scaled[(g, width)] = base
                np.add(base, codes[h], out=idx)
                index = idx
            else:
                index = codes[g]
            if i == 0:
                table.take(index, out=total, mode="clip")
            else:
                table.take(index, out=part, mode="clip")
                total += part
        return total


def _groups(sizes: list[int]) -> list[list[int]]:
    """Consecutive columns while their bin combinations stay within :data:`GROUP_CELLS`."""
    groups: list[list[int]] = []
    cells = 0
    for c, size in enumerate(sizes):
        if groups and cells * size <= GROUP_CELLS:
            groups[-1].append(c)
            cells *= size
        else:
            groups.append([c])
            cells = size
    return groups
