"""Direct loss estimation for regression: a model of the expected absolute and squared error
given the prediction and the inputs, fitted on labelled validation data and stored as plain
data in the reference profile.

The model is a piecewise-constant generalised additive model with pairwise interactions
(a GA2M) and a log link: the reference's mean error times one factor per bin of the
prediction and of each feature, and one per pair of bins of every two of them (numeric:
``BINS`` reference-quantile bins; categorical: the reference's most frequent categories),
stored as log factors (pairs only from ``MIN_ROWS_FOR_PAIRS`` labelled rows). Fitted by Poisson-style backfitting (``ROUNDS`` sweeps; each cell's
factor is its rows' observed over fitted error, both with ``SHRINK`` pseudo-rows at the mean,
so sparse cells stay near 1); evaluated vectorised per batch by
:class:`~otel_ml._internal.reference.loss_tables.LossTables`: one comparison per edge over all
numeric columns at once and one lookup per pair of column groups, every term folded into those
tables. A missing value or an unseen category contributes a factor of 1.
Only numpy; NannyML's DLE uses a gradient-boosted model instead, and
``benchmarks/estimation_accuracy.py`` compares the two (the settings below were chosen there,
on NannyML's car-price data: a handful of bin counts, shrinkages and sweeps).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from otel_ml._internal.core.scratch import Scratch
from otel_ml._internal.reference.loss_tables import LossTables

__all__ = ["PREDICTION", "Binning", "LossModel", "LossTerm", "numeric_values"]

#: Column name of the prediction in the model.
PREDICTION = "__prediction__"
BINS = 8
MAX_CATEGORIES = 20
MAX_COLUMNS = 8  # the prediction and the first 7 features: pairs grow quadratically
SHRINK = 5.0
ROUNDS = 60
#: Rows evaluated at once (the temporaries of a chunk stay in cache).
CHUNK_ROWS = 8192
#: Labelled rows below which pairs are left out (too few rows per cell: main effects only).
MIN_ROWS_FOR_PAIRS = 5000


class Binning:
    """How one column is binned.

    Attributes:
        name: Column (a feature, or :data:`PREDICTION`).
        edges: Numeric: interior bin edges (increasing); ``None`` for categorical.
        categories: Categorical: the category keys; ``None`` for numeric.
    """

    def __init__(self, name: str, edges: Any = None, categories: Any = None) -> None:
        self.name = str(name)
        self.edges = None if edges is None else np.asarray(edges, dtype=np.float64)
        self.categories = None if categories is None else [str(c) for c in categories]
        self._index = None if categories is None else {c: i for i, c in enumerate(self.categories)}
        if self.edges is None and self.categories is None:
            raise ValueError(f"binning of {self.name!r} has neither edges nor categories")

    @property
    def bins(self) -> int:
        """Number of bins."""
        return len(self.categories) if self.categories is not None else len(self.edges) + 1

    def bin_of(self, column: np.ndarray) -> np.ndarray:
        """Bin of each value (``-1``: missing or unseen)."""
        if self.categories is None:
            values = np.asarray(column, dtype=np.float64)
            out = np.searchsorted(self.edges, values, side="right")
            out[~np.isfinite(values)] = -1
            return out
        index = self._index
        return np.fromiter((index.get(str(v), -1) for v in column), dtype=np.int64,
                           count=len(column))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"name": self.name, "edges": None if self.edges is None else self.edges.tolist(),
                "categories": self.categories}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Binning:
        """Read the JSON form."""
        return cls(data["name"], data.get("edges"), data.get("categories"))


class LossTerm:
    """One term: a column, or a pair of columns, and its log factors per (pair of) bin(s).

    Attributes:
        columns: Indexes into the model's binnings (one or two).
        abs_values: Log factors of the expected absolute error, per cell.
        sq_values: Log factors of the expected squared error, per cell.
    """

    def __init__(self, columns: Any, abs_values: Any, sq_values: Any) -> None:
        self.columns = tuple(int(c) for c in columns)
        self.abs_values = np.asarray(abs_values, dtype=np.float64)
        self.sq_values = np.asarray(sq_values, dtype=np.float64)

    def cells(self, bins: list[np.ndarray], sizes: list[int]) -> np.ndarray:
        """Cell of each row (``-1`` where a column's bin is unknown)."""
        if len(self.columns) == 1:
            return bins[self.columns[0]]
        a, b = self.columns
        out = bins[a] * sizes[b] + bins[b]
        out[(bins[a] < 0) | (bins[b] < 0)] = -1
        return out

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"columns": list(self.columns), "abs": self.abs_values.tolist(),
                "sq": self.sq_values.tolist()}


class LossModel:
    """Expected absolute and squared error of a regression prediction.

    Attributes:
        abs_intercept: Mean absolute error on the reference.
        sq_intercept: Mean squared error on the reference.
        binnings: How each column is binned (the prediction first).
        terms: The model's terms.
    """

    def __init__(self, abs_intercept: float, sq_intercept: float, binnings: list[Binning],
                 terms: list[LossTerm]) -> None:
        self.abs_intercept = float(abs_intercept)
        self.sq_intercept = float(sq_intercept)
        self.binnings = binnings
        self.terms = terms
        self._sizes = [b.bins for b in binnings]
        for t in terms:
            cells = int(np.prod([self._sizes[c] for c in t.columns]))
            if len(t.abs_values) != cells or len(t.sq_values) != cells:
                raise ValueError(f"loss term {t.columns} needs {cells} values")
        self.tables = LossTables(binnings, terms, self.abs_intercept, self.sq_intercept)
        #: Model column names of the numeric block rows (:meth:`expected_block`).
        self.numeric_names = [binnings[i].name for i in self.tables.numeric]
        #: Model column names of the categorical columns (:meth:`expected_block`).
        self.categorical_names = [binnings[i].name for i in self.tables.categorical]

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (a reference sent to Spark or Dask workers) as its data: the lookup
        tables, ten times larger, are rebuilt on arrival."""
        return {"abs_intercept": self.abs_intercept, "sq_intercept": self.sq_intercept,
                "binnings": self.binnings, "terms": self.terms}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["abs_intercept"], state["sq_intercept"],  # type: ignore[misc]
                      state["binnings"], state["terms"])

    def expected_block(self, block: np.ndarray, categorical: list[np.ndarray | None],
                       scratch: Scratch | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Expected absolute and squared error per row, of inputs already in block form.

        Args:
            block: ``(len(numeric_names), rows)`` float values, rows contiguous (the prediction's
                row holds the predictions; NaN: absent or missing).
            categorical: Per :attr:`categorical_names` column, its raw values (``None``:
                absent).
            scratch: Reused temporaries (the results are views into it), or ``None``.
        """
        return self.tables.expected(block, categorical, scratch)

    def expected(self, predictions: np.ndarray,
                 column: Callable[[str], np.ndarray | None]) -> tuple[np.ndarray, np.ndarray]:
        """Expected absolute and squared error per row.

        Args:
            predictions: The predictions (float).
            column: Feature name -> its values for these rows (``None``: absent, factor 1).
        """
        n = len(predictions)
        block = np.full((len(self.numeric_names), n), np.nan)
        for r, name in enumerate(self.numeric_names):
            values = predictions if name == PREDICTION else column(name)
            if values is not None and len(values) == n:
                block[r] = numeric_values(values)
        cats = []
        for name in self.categorical_names:
            values = column(name)
            cats.append(values if values is not None and len(values) == n else None)
        a, s = np.empty(n), np.empty(n)
        scratch = Scratch()
        for start in range(0, n, CHUNK_ROWS):  # temporaries of one chunk stay in cache
            part = slice(start, start + CHUNK_ROWS)
            a[part], s[part] = self.expected_block(
                np.ascontiguousarray(block[:, part]),
                [None if c is None else c[part] for c in cats], scratch)
        return a, s

    @classmethod
    def fit(cls, predictions: np.ndarray, errors: np.ndarray,
            columns: Mapping[str, tuple[np.ndarray, bool]]) -> LossModel:
        """Fit on validation predictions, their errors and the feature columns.

        Args:
            predictions: Finite predictions.
            errors: ``label - prediction`` for the same rows.
            columns: Feature name -> ``(values, categorical)``.
        """
        binnings = [_binning(PREDICTION, predictions, False)]
        values = [predictions]
        for name, (col, categorical) in columns.items():
            if len(binnings) >= MAX_COLUMNS:
                break
            b = _binning(name, col, categorical)
            if b is not None:
                binnings.append(b)
                values.append(col)
        bins = [b.bin_of(v) for b, v in zip(binnings, values)]
        sizes = [b.bins for b in binnings]
        shapes = [(i,) for i in range(len(binnings))]
        if len(predictions) >= MIN_ROWS_FOR_PAIRS:
            shapes += list(itertools.combinations(range(len(binnings)), 2))
        terms = [LossTerm(c, np.zeros(int(np.prod([sizes[i] for i in c]))),
                          np.zeros(int(np.prod([sizes[i] for i in c])))) for c in shapes]
        cells = [t.cells(bins, sizes) for t in terms]
        absolute, squared = np.abs(errors), errors * errors
        a0, s0 = float(absolute.mean()), float(squared.mean())
        for target, base, attr in ((absolute, a0, "abs_values"), (squared, s0, "sq_values")):
            if base <= 0:
                continue
            fitted = np.full(len(target), base)
            for _ in range(ROUNDS):
                for t, cell in zip(terms, cells):
                    f = getattr(t, attr)
                    ok = cell >= 0
                    c = cell[ok]
                    fitted[ok] /= np.exp(f[c])  # take this term out
                    ys = np.bincount(c, weights=target[ok], minlength=len(f))
                    ms = np.bincount(c, weights=fitted[ok], minlength=len(f))
                    f[:] = np.log((ys + SHRINK * base) / (ms + SHRINK * base))
                    fitted[ok] *= np.exp(f[c])
        return cls(a0, s0, binnings, terms)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"method": "ga2m_log_bins", "abs_intercept": self.abs_intercept,
                "sq_intercept": self.sq_intercept,
                "binnings": [b.to_dict() for b in self.binnings],
                "terms": [t.to_dict() for t in self.terms]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LossModel:
        """Read the JSON form (raises ``ValueError``/``KeyError`` when malformed)."""
        if data.get("method") != "ga2m_log_bins":
            raise ValueError(f"unknown loss model {data.get('method')!r}")
        binnings = [Binning.from_dict(b) for b in data["binnings"]]
        terms = []
        for t in data["terms"]:
            cols = [int(c) for c in t["columns"]]
            if not 1 <= len(cols) <= 2 or any(not 0 <= c < len(binnings) for c in cols):
                raise ValueError(f"loss term columns {cols} out of range")
            terms.append(LossTerm(cols, t["abs"], t["sq"]))
        return cls(float(data["abs_intercept"]), float(data["sq_intercept"]), binnings, terms)


def _binning(name: str, values: np.ndarray, categorical: bool) -> Binning | None:
    if categorical:
        keys, counts = np.unique(np.asarray([str(v) for v in values]), return_counts=True)
        top = keys[np.argsort(-counts, kind="stable")[:MAX_CATEGORIES]]
        return Binning(name, categories=top.tolist()) if len(top) >= 2 else None
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return None
    edges = np.unique(np.quantile(v, np.linspace(0, 1, BINS + 1)[1:-1]))
    return Binning(name, edges=edges) if len(edges) else None


def numeric_values(values: Any) -> np.ndarray:
    """A column as floats (NaN where a value is not a number: its bin is unknown)."""
    try:
        return np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        out = np.full(len(values), np.nan)
        for i, v in enumerate(values):
            try:
                out[i] = float(v)
            except (TypeError, ValueError):
                continue
        return out
