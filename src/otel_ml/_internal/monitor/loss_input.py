"""The loss model's input columns of one call, kept for the fold (direct loss estimation).

A regressor's call keeps only what its loss model reads, in the block form
:meth:`~otel_ml._internal.reference.loss_model.LossModel.expected_block` evaluates: the
``(numeric model columns, rows)`` float block (the predictions' row included; written into a
:class:`~otel_ml._internal.monitor.loss_arena.LossArena`) and the raw values of the
categorical columns. Read from the batch's converted matrix when the feature statistics made
one (one pass over the consecutive columns, transposed), else column by column; a private
copy either way (the caller may reuse its arrays).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from otel_ml._internal.reference.loss_model import PREDICTION, LossModel, numeric_values

__all__ = ["LossColumns", "LossInput"]


class LossInput(NamedTuple):
    """One call's loss-model input.

    Attributes:
        block: ``(numeric model columns, rows)`` float64 in the order of the loss model's
            numeric columns, the prediction's row included (NaN: absent or missing): a view
            into a :class:`~otel_ml._internal.monitor.loss_arena.LossArena` or a private array.
        categorical: Per categorical model column, its raw values (``None``: absent).
        start: The call's first row in its arena (``-1``: a private array).
    """

    block: np.ndarray
    categorical: list[np.ndarray | None]
    start: int = -1


class LossColumns:
    """Reads a loss model's columns out of a call.

    Args:
        model: The loss model.
        plan_of: The feature plan (``names``, ``index``, ``categorical``, ``n_features``) of
            the batches' matrices, or ``None`` while unknown.
        batch_of: Makes a batch over an input (to read its columns when there is no batch).
    """

    def __init__(self, model: LossModel, plan_of: Callable[[], Any],
                 batch_of: Callable[[Any], Any]) -> None:
        self._model = model
        self._plan_of = plan_of
        self._batch_of = batch_of
        self._features = [n for n in model.numeric_names if n != PREDICTION]
        #: ``(plan, the features' plan columns or None)``, replaced as one (calls race); the
        #: columns are a slice when consecutive (the usual: a view, no gathered temporary).
        self._cached: tuple[Any, np.ndarray | slice | None] = (None, None)

    def read_into(self, out: np.ndarray, n: int, batch: Any, x: Any,
                  rows: slice | np.ndarray | None = None) -> list[np.ndarray | None]:
        """Write the feature columns of one call into ``out`` (``(features, n)``, rows
        contiguous); the categorical columns' values (copies). ``rows``: the call's rows
        read (``n`` of them; ``None``: all, ``n`` is the call's rows)."""
        total = n
        if rows is not None:
            if batch is None and x is not None:
                batch = self._batch_of(x)
            total = -1 if batch is None else int(batch.rows)
        matrix, index = self._matrix(batch, total)
        if matrix is not None and index is not None:
            if rows is not None:
                matrix = matrix[rows]
            np.copyto(out, matrix.T[index])  # one pass over the matrix, transposed
        else:
            if batch is None and x is not None:
                batch = self._batch_of(x)
            for r, name in enumerate(self._features):
                values = None if batch is None else batch.column(name)
                if values is not None and len(values) == total:
                    values = numeric_values(values)
                    out[r] = values if rows is None else values[rows]
                else:
                    out[r] = np.nan
        cats: list[np.ndarray | None] = []
        for name in self._model.categorical_names:
            if batch is None and x is not None:
                batch = self._batch_of(x)
            values = None if batch is None else batch.column(name)
            if values is not None and rows is not None:
                values = np.asarray(values)[rows] if len(values) == total else None
            cats.append(np.array(values, copy=True) if values is not None else None)
        return cats

    def _matrix(self, batch: Any, n: int,
                ) -> tuple[np.ndarray | None, np.ndarray | slice | None]:
        """The batch's float matrix in plan order and the features' columns in it, when every
        model feature is a numeric plan column (``(None, None)``: read column by column)."""
        plan = self._plan_of()
        if plan is None:
            return None, None
        cached = self._cached
        if cached[0] is not plan:
            cached = self._cached = (plan, self._index_in(plan))
        index = cached[1]
        if index is None or batch is None:
            return None, None
        matrix = getattr(batch, "matrix", None)
        values = None if matrix is None else matrix.values
        if values is None:
            # A single numeric row taken the short way is the plan's row itself.
            values = batch.input if batch.matrix is None and batch.rows == 1 else None
            if type(values) is not np.ndarray or values.dtype.kind not in "fiub" \
                    or values.size != plan.n_features:
                return None, None
            values = values.reshape(1, -1).astype(np.float64, copy=False)
        if values.ndim != 2 or values.shape != (n, plan.n_features):
            return None, None
        return values, index

    def _index_in(self, plan: Any) -> np.ndarray | slice | None:
        index: list[int] = []
        for name in self._features:
            c = plan.index.get(name)
            if c is None or c >= plan.n_features or plan.categorical[c]:
                return None
            index.append(c)
        if index and index == list(range(index[0], index[0] + len(index))):
            return slice(index[0], index[0] + len(index))
        return np.asarray(index, dtype=np.intp)
