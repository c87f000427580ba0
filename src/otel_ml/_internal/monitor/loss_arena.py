"""Where a regressor's pending calls keep their loss-model rows: one reused float block.

Direct loss estimation keeps each call's predictions and the loss model's numeric input
columns until the fold (:mod:`~otel_ml._internal.monitor.estimation_fold`). Kept as a new
array per call, every call allocated (and page-faulted) its rows and the fold copied them
together again. A :class:`LossArena` is one ``(model columns, capacity)`` float block in the
loss model's column order, the predictions' row included: calls write their rows side by side
into it, and the fold evaluates consecutive calls' rows where they lie (a view, no copy). The
monitor keeps two that take turns: calls fill one while the fold reads the other.

The block grows by doubling up to :data:`MAX_ROWS` rows (memory stays bounded) and is kept
from fold to fold; a call that does not fit any more (or a model whose prediction is not its
first numeric column) gets a private block, which the fold copies in as before.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from otel_ml._internal.monitor.loss_input import LossColumns, LossInput
from otel_ml._internal.reference.loss_model import PREDICTION, LossModel

__all__ = ["MAX_ROWS", "LossArena"]

#: Rows an arena holds at most (8 model columns: 2 MiB; 30 calls of 1,000 rows).
MAX_ROWS = 32768
#: Rows of a new arena (grown by doubling).
START_ROWS = 1024


class LossArena:
    """Pending rows of a regressor's calls (see the module docs). Not thread-safe: the
    monitor writes under its pending lock and folds an arena no call writes any more.

    Args:
        model: The loss model.
        columns: Reads the model's feature columns out of a call.

    Attributes:
        block: ``(model numeric columns, capacity)`` float64; rows ``[0, used)`` are taken.
        used: Rows taken since the last :meth:`clear`.
    """

    def __init__(self, model: LossModel, columns: LossColumns) -> None:
        names = model.numeric_names
        self._pred_row = names.index(PREDICTION) if PREDICTION in names else -1
        self._width = len(names)
        self._columns = columns
        self.block = np.empty((self._width, 0))
        self.used = 0

    def keep(self, predictions: np.ndarray, batch: Any, x: Any,
             rows: slice | np.ndarray | None = None) -> tuple[np.ndarray, LossInput]:
        """Write one call's rows: ``predictions`` (1-d numbers, the caller's array: copied)
        and the model's columns of ``batch`` (or ``x``); ``rows``: the call's rows these
        predictions are (a sample; ``None``: all of them).

        Returns:
            The kept predictions (float64) and the call's :class:`LossInput`.
        """
        n = len(predictions)
        start = self._reserve(n) if self._pred_row == 0 else -1
        block = self.block[:, start:start + n] if start >= 0 else np.empty((self._width, n))
        if self._pred_row == 0:  # the usual: the features' rows are the rest
            np.copyto(block[0], predictions, casting="unsafe")
            cats = self._columns.read_into(block[1:], n, batch, x, rows)
            return block[0], LossInput(block, cats, start)
        rows = [r for r in range(self._width) if r != self._pred_row]
        features = np.empty((len(rows), n))
        cats = self._columns.read_into(features, n, batch, x, rows)
        block[rows] = features
        kept = np.array(predictions, dtype=np.float64)
        if self._pred_row > 0:
            block[self._pred_row] = kept
        return kept, LossInput(block, cats, -1)

    def _reserve(self, n: int) -> int:
        """Start of ``n`` new rows (``-1``: they do not fit within :data:`MAX_ROWS`)."""
        end = self.used + n
        capacity = self.block.shape[1]
        if end > capacity:
            if end > MAX_ROWS:
                return -1
            capacity = max(capacity, START_ROWS)
            while capacity < end:
                capacity *= 2
            grown = np.empty((self._width, min(capacity, MAX_ROWS)))
            grown[:, :self.used] = self.block[:, :self.used]
            self.block = grown
        start, self.used = self.used, end
        return start

    def rows(self, group: list[tuple[Any, int, int]]) -> np.ndarray | None:
        """The rows of a fold's chunk in place: ``group`` holds ``(input, start, stop)``
        pieces of calls' rows in order; ``None`` unless they lie side by side here."""
        lo = hi = -1
        for inputs, a, b in group:
            if inputs.start < 0 or (hi >= 0 and inputs.start + a != hi):
                return None
            if lo < 0:
                lo = inputs.start + a
            hi = inputs.start + b
        return None if lo < 0 else self.block[:, lo:hi]

    def clear(self) -> None:
        """Forget every row (after the fold; the block is kept)."""
        self.used = 0
