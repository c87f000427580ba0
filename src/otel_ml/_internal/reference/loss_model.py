"""Direct loss estimation for regression: a model of the expected absolute and squared error
given the prediction and the inputs, fitted on labelled validation data and stored as plain
data in the reference profile.

The model is a piecewise-constant generalised additive model with a log link: the
reference's mean error times, for the prediction and each feature, one factor per bin
(numeric: reference quantile bins; categorical: the reference's categories), stored as log
factors. It is fitted by Poisson-style backfitting with shrinkage towards a factor of 1 (each
bin's factor is its rows' observed over fitted error, both with ``SHRINK`` pseudo-rows at the
mean), and evaluated vectorised per batch: one ``searchsorted`` per column. A missing value
or an unseen category contributes a factor of 1. Only numpy; NannyML's DLE uses a
gradient-boosted model instead, and ``benchmarks/estimation_accuracy.py`` compares the two.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = ["PREDICTION", "LossModel", "LossTerm"]

#: Column name of the prediction in the model.
PREDICTION = "__prediction__"
PREDICTION_BINS = 20
FEATURE_BINS = 20
MAX_CATEGORIES = 50
SHRINK = 20.0
ROUNDS = 8


class LossTerm:
    """One column's piecewise-constant contribution.

    Attributes:
        name: Column (a feature, or :data:`PREDICTION`).
        edges: Numeric: interior bin edges (increasing); ``None`` for categorical.
        categories: Categorical: the category keys; ``None`` for numeric.
        abs_values: Log factor of the expected absolute error, per bin.
        sq_values: Log factor of the expected squared error, per bin.
    """

    def __init__(self, name: str, edges: Any = None, categories: Any = None,
                 abs_values: Any = (), sq_values: Any = ()) -> None:
        self.name = str(name)
        self.edges = None if edges is None else np.asarray(edges, dtype=np.float64)
        self.categories = None if categories is None else [str(c) for c in categories]
        self._index = None if categories is None else {c: i for i, c in enumerate(self.categories)}
        self.abs_values = np.asarray(abs_values, dtype=np.float64)
        self.sq_values = np.asarray(sq_values, dtype=np.float64)

    @property
    def bins(self) -> int:
        """Number of bins."""
        return len(self.categories) if self.categories is not None else len(self.edges) + 1

    def bin_of(self, column: np.ndarray) -> np.ndarray:
        """Bin of each value (``-1``: missing or unseen: no contribution)."""
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
        return {"name": self.name,
                "edges": None if self.edges is None else self.edges.tolist(),
                "categories": self.categories,
                "abs": self.abs_values.tolist(), "sq": self.sq_values.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LossTerm:
        """Read the JSON form (raises ``ValueError``/``KeyError`` when malformed)."""
        term = cls(data["name"], data.get("edges"), data.get("categories"), data["abs"],
                   data["sq"])
        if term.edges is None and term.categories is None:
            raise ValueError(f"loss term {term.name!r} has neither edges nor categories")
        if len(term.abs_values) != term.bins or len(term.sq_values) != term.bins:
            raise ValueError(f"loss term {term.name!r} needs one value per bin")
        return term


class LossModel:
    """Expected absolute and squared error of a regression prediction.

    Attributes:
        abs_intercept: Mean absolute error on the reference.
        sq_intercept: Mean squared error on the reference.
        terms: The columns' contributions.
    """

    def __init__(self, abs_intercept: float, sq_intercept: float, terms: list[LossTerm]) -> None:
        self.abs_intercept = float(abs_intercept)
        self.sq_intercept = float(sq_intercept)
        self.terms = terms

    def expected(self, predictions: np.ndarray,
                 column: Callable[[str], np.ndarray | None]) -> tuple[np.ndarray, np.ndarray]:
        """Expected absolute and squared error per row.

        Args:
            predictions: The predictions (float, finite).
            column: Feature name -> its values for these rows (``None``: absent, adds
                nothing).
        """
        n = len(predictions)
        a = np.zeros(n)  # log factors
        s = np.zeros(n)
        for term in self.terms:
            values = predictions if term.name == PREDICTION else column(term.name)
            if values is None or len(values) != n:
                continue
            b = term.bin_of(values)
            ok = b >= 0
            if ok.all():
                a += term.abs_values[b]
                s += term.sq_values[b]
            else:
                a[ok] += term.abs_values[b[ok]]
                s[ok] += term.sq_values[b[ok]]
        a = self.abs_intercept * np.exp(a)
        s = self.sq_intercept * np.exp(s)
        np.maximum(s, a * a, out=s)  # E[e^2] >= E[|e|]^2
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
        terms = [_term(PREDICTION, predictions, False, PREDICTION_BINS)]
        bins = [terms[0].bin_of(predictions)]
        for name, (values, categorical) in columns.items():
            term = _term(name, values, categorical, FEATURE_BINS)
            if term is not None:
                terms.append(term)
                bins.append(term.bin_of(values))
        absolute, squared = np.abs(errors), errors * errors
        a0, s0 = float(absolute.mean()), float(squared.mean())
        for target, base, attr in ((absolute, a0, "abs_values"), (squared, s0, "sq_values")):
            # Multiplicative (log link, Poisson-style backfitting): errors scale with the
            # prediction and the inputs rather than add up. Stored as log factors.
            logf = [np.zeros(t.bins) for t in terms]
            fitted = np.full(len(target), base)
            for _ in range(ROUNDS):
                for t, b, f in zip(terms, bins, logf):
                    ok = b >= 0
                    fitted[ok] /= np.exp(f[b[ok]])  # take this term out
                    ys = np.bincount(b[ok], weights=target[ok], minlength=t.bins)
                    ms = np.bincount(b[ok], weights=fitted[ok], minlength=t.bins)
                    f[:] = np.log((ys + SHRINK * base) / (ms + SHRINK * base))
                    fitted[ok] *= np.exp(f[b[ok]])
            for t, f in zip(terms, logf):
                setattr(t, attr, f)
        return cls(a0, s0, terms)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"method": "additive_bins", "abs_intercept": self.abs_intercept,
                "sq_intercept": self.sq_intercept, "terms": [t.to_dict() for t in self.terms]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LossModel:
        """Read the JSON form (raises ``ValueError``/``KeyError`` when malformed)."""
        if data.get("method") != "additive_bins":
            raise ValueError(f"unknown loss model {data.get('method')!r}")
        return cls(float(data["abs_intercept"]), float(data["sq_intercept"]),
                   [LossTerm.from_dict(t) for t in data["terms"]])


def _term(name: str, values: np.ndarray, categorical: bool, bins: int) -> LossTerm | None:
    if categorical:
        keys, counts = np.unique(np.asarray([str(v) for v in values]), return_counts=True)
        top = keys[np.argsort(-counts, kind="stable")[:MAX_CATEGORIES]]
        if len(top) < 2:
            return None
        return LossTerm(name, categories=top.tolist(), abs_values=np.zeros(len(top)),
                        sq_values=np.zeros(len(top)))
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return None
    edges = np.unique(np.quantile(v, np.linspace(0, 1, bins + 1)[1:-1]))
    if len(edges) == 0:
        return None
    return LossTerm(name, edges=edges, abs_values=np.zeros(len(edges) + 1),
                    sq_values=np.zeros(len(edges) + 1))
