"""The reference builder: accumulates a profile from chunks of rows; builders merge exactly.

Moments, min/max, missing counts and category counts are exact; the quantile bin edges come
from a bounded uniform sample per numeric feature (see :mod:`.columns`). Builders on several
replicas, or over the chunks of a large file, merge into the builder that saw every row.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
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
from otel_ml._internal.reference.columns import CategoricalColumn, NumericColumn
from otel_ml._internal.reference.profile import (
    CategoricalProfile,
    NumericProfile,
    Profile,
    Reference,
)

__all__ = ["PREDICTION", "ReferenceBuilder"]

#: Name of the predictions' profile.
PREDICTION = "__prediction__"

Column = NumericColumn | CategoricalColumn


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
        sample: Keep the sample. ``False`` (only with ``edges_from``, for an exact second pass
            over the data whose first pass gave ``edges_from``): no sample is kept, and the
            central 99% range and the fine bins are those of ``edges_from``, which the same
            sample would give again.
        expected_rows: The rows that every builder merged with this one will have seen
            together, when known up front (e.g. from Parquet metadata). Each builder then keeps
            only values whose key can be among the ``sample_size`` smallest of that many rows
            (a bound ten standard deviations above the expected one), so partial samples stay
            small and merge fast. Exact unless far fewer values come (missing values):
            :meth:`sample_complete` says whether the bound held.

    Raises:
        ValueError: An argument is out of range.
    """

    def __init__(self, *, bins: int = 10, categorical: Iterable[str] | None = None,
                 max_categories: int = 50, sample_size: int = 100_000, seed: int = 0,
                 edges_from: Reference | None = None, sample: bool = True,
                 expected_rows: int | None = None) -> None:
        if not sample and edges_from is None:
            raise ValueError("sample=False needs edges_from (the central range and fine bins "
                             "come from it)")
        if not isinstance(bins, int) or bins < 2:
            raise ValueError(f"bins must be an integer >= 2, got {bins!r}")
        if not isinstance(max_categories, int) or max_categories < 1:
            raise ValueError(f"max_categories must be a positive integer, got {max_categories!r}")
        if not isinstance(sample_size, int) or sample_size < 100:
            raise ValueError(f"sample_size must be an integer >= 100, got {sample_size!r}")
        if expected_rows is not None and (not isinstance(expected_rows, int)
                                          or expected_rows < 1):
            raise ValueError(f"expected_rows must be a positive integer, got {expected_rows!r}")
        if isinstance(categorical, str):
            categorical = [categorical]
        self.bins = bins
        self.categorical = frozenset(categorical or ())
        self.max_categories = max_categories
        self.sample_size = sample_size
        self.edges_from = edges_from
        self.sample = sample
        self.expected_rows = expected_rows
        self._bound = math.inf
        if expected_rows is not None and expected_rows > sample_size:
            # Keys below the bound among N uniform keys: Binomial(N, bound), whose mean exceeds
            # sample_size by ten standard deviations (sqrt(sample_size)) and 100.
            self._bound = min(1.0, (sample_size + 10 * math.sqrt(sample_size) + 100)
                              / expected_rows)
        self.rows = 0
        self._rng = np.random.default_rng(seed)
        self._names: list[str] | None = None
        self._columns: dict[str, Column] = {}
        self._prediction: Column | None = None
        self._max_tracked = max(1000, 20 * max_categories)

    def update(self, X: Any, predictions: Any = None, *,
               feature_names: Sequence[str] | None = None) -> ReferenceBuilder:
        """Add a chunk of rows (and optionally the model's predictions for them).

        Args:
            X: Features: anything ``data.inputs.to_table`` reads (numpy, pandas, dicts, rows).
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
        self._check_names(names)
        matrix = table.matrix
        if matrix is not None and matrix.dtype.kind in "iuf" and not self.categorical \
                and self.edges_from is None and table.rows > 1:
            # One column-major copy: contiguous columns, and the sample can keep them as is.
            columns = np.array(matrix, dtype=np.float64, order="F", copy=True)
            for i, name in enumerate(names):
                col = self._columns.get(name)
                if col is None:
                    col = self._columns[name] = NumericColumn(self._rng, self.sample_size,
                                                                 bound=self._bound)
                if isinstance(col, NumericColumn):
                    col.add(columns[:, i], owned=True)
                else:
                    self._add(name, col, columns[:, i], i)
        else:
            for i, name in enumerate(names):
                self._columns[name] = self._add(name, self._columns.get(name),
                                                table.column(i), i)
        if predictions is not None:
            column = _prediction_column(predictions, table.rows)
            self._prediction = self._add(PREDICTION, self._prediction, column, -1)
        self.rows += table.rows
        return self

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
        for i, name in enumerate(other._names):
            self._columns[name] = self._merge(name, i, self._columns.get(name),
                                              other._columns[name])
        if other._prediction is not None:
            self._prediction = self._merge(PREDICTION, -1, self._prediction, other._prediction)
        self.rows += other.rows
        return self

    def sample_complete(self) -> bool:
        """Whether every numeric column's sample is the bottom-k of its values: ``False`` only
        when ``expected_rows`` gave a bound that dropped values the sample needed (then profile
        again without it)."""
        columns = [*self._columns.values(), self._prediction]
        return all(c.sample_complete() for c in columns if isinstance(c, NumericColumn))

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
        features = {name: self._profile(name, self._columns[name]) for name in self._names}
        prediction = (self._profile(PREDICTION, self._prediction)
                      if self._prediction is not None else None)
        return Reference(features, prediction=prediction, rows=self.rows,
                         performance=performance, attributions=attributions, metadata=metadata)

    def _check_names(self, names: list[str]) -> None:
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

    def _fixed(self, name: str, position: int) -> Profile | None:
        """The ``edges_from`` profile of a column (``position`` < 0: the predictions)."""
        if self.edges_from is None:
            return None
        if position < 0:
            return self.edges_from.prediction
        return self.edges_from.features.get(name)

    def _new_column(self, kind: str, name: str, position: int) -> Column:
        fixed = self._fixed(name, position)
        if kind == "categorical":
            categories = fixed.categories if isinstance(fixed, CategoricalProfile) else None
            return CategoricalColumn(self._max_tracked, categories)
        edges = fixed.edges if isinstance(fixed, NumericProfile) else None
        return NumericColumn(self._rng, self.sample_size if self.sample else 0, edges,
                             bound=self._bound)

    def _kind_of(self, name: str, column: Any, position: int) -> str:
        fixed = self._fixed(name, position)
        if fixed is not None:
            return fixed.kind
        if name in self.categorical:
            return "categorical"
        if position < 0 and getattr(column, "dtype", np.dtype(float)).kind in "iub":
            return "categorical"  # integer predictions are class labels
        return "categorical" if is_categorical(column) else "numeric"

    def _add(self, name: str, col: Column | None, column: Any, position: int) -> Column:
        if col is None:
            col = self._new_column(self._kind_of(name, column, position), name, position)
        if isinstance(col, NumericColumn):
            try:
                values, bad = to_float(column)
            except OverflowError as exc:  # a Python int beyond the float range (10**400)
                raise ValueError(f"column {name!r}: a value is beyond the float64 range "
                                 f"({exc})") from exc
            if bad:
                raise ValueError(f"column {name!r}: {bad} value(s) are not numbers "
                                 f"(declare it categorical if it holds categories)")
            col.add(values.reshape(-1))
        else:
            codes, keys = to_categories(column)
            col.add(codes, keys)
        return col

    def _merge(self, name: str, position: int, mine: Column | None, theirs: Column) -> Column:
        if mine is None:
            kind = "numeric" if isinstance(theirs, NumericColumn) else "categorical"
            mine = self._new_column(kind, name, position)
        if isinstance(mine, NumericColumn) and isinstance(theirs, NumericColumn):
            mine.merge(theirs)
        elif isinstance(mine, CategoricalColumn) and isinstance(theirs, CategoricalColumn):
            mine.merge(theirs)
        else:
            raise ValueError(f"column {name!r} is numeric in one builder and categorical in "
                             "the other")
        return mine

    def _profile(self, name: str, col: Column) -> Profile:
        if isinstance(col, CategoricalColumn):
            return col.profile(name, self.max_categories)
        profile = col.profile(name, self.bins)
        fixed = self._fixed(name, -1 if name == PREDICTION else 0)
        if not self.sample and isinstance(fixed, NumericProfile):
            profile = dataclasses.replace(profile, p_low=fixed.p_low, p_high=fixed.p_high,
                                          fine=fixed.fine)
        return profile


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
