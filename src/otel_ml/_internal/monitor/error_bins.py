"""Error analysis by reference bin: the mean error of labelled rows per bin of each feature.

The rows' reference bins come from the feature side (:meth:`BinSource.bin_rows`, read when
the label arrives from the input held with the prediction); each slot of the outcome window
holds ``(features, bins)`` grids of row counts and summed errors.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from otel_ml._internal.core.log import internal_error
from otel_ml._internal.monitor.batch import RowBins
from otel_ml._internal.monitor.outcome_window import SlotData, grow_grid
from otel_ml.contract import Attr

__all__ = ["BinSource", "ErrorBins"]


class BinSource(Protocol):
    """What error analysis needs of the feature side."""

    def bin_rows(self, batch: Any) -> RowBins | None:
        """The reference bins of the batch's input rows, or ``None``."""

    def bin_label(self, feature: str, index: int) -> str:
        """Label of reference bin ``index`` of ``feature`` (``ml.feature.bin``)."""


class ErrorBins:
    """Per-bin errors of up to ``max_features`` features (not thread-safe: the window's lock).

    Args:
        max_features: Features given a row of the grids.
        source: Reads the rows' reference bins and names the bins.
    """

    def __init__(self, max_features: int, source: BinSource) -> None:
        self._cap = max_features
        self._source = source
        self._rows: dict[str, int] = {}  # feature -> row of the grids
        self._labels: dict[tuple[str, int], str] = {}

    def bins_of(self, batch: Any, n: int) -> RowBins | None:
        """The ``RowBins`` of a held input of ``n`` rows, or ``None`` (never raises)."""
        try:
            got = self._source.bin_rows(batch)
        except Exception as exc:
            internal_error("outcomes.bins", exc)
            return None
        if got is None or got.bins.ndim != 2 or got.bins.shape != (n, len(got.features)):
            return None
        return got

    def add(self, slot: SlotData, row_bins: RowBins, keep: np.ndarray, errors: np.ndarray) -> None:
        """Add the errors of the rows ``keep`` selects (``errors``: one per kept row)."""
        names = row_bins.features
        rows = []
        for name in names:
            row = self._rows.get(name)
            if row is None and len(self._rows) < self._cap:
                row = self._rows[name] = len(self._rows)
            rows.append(-1 if row is None else row)
        rows_arr = np.asarray(rows, dtype=np.int64)
        bins = np.asarray(row_bins.bins[keep], dtype=np.int64).reshape(len(errors), len(names))
        ok = (bins >= 0) & (rows_arr >= 0)[None, :]
        if not ok.any():
            return
        n_bins = int(bins[ok].max()) + 1
        slot.bin_n = grow_grid(slot.bin_n, len(self._rows), n_bins)
        slot.bin_err = grow_grid(slot.bin_err, len(self._rows), n_bins)
        feat_idx = np.broadcast_to(rows_arr[None, :], bins.shape)[ok]
        err = np.broadcast_to(errors[:, None], bins.shape)[ok]
        np.add.at(slot.bin_n, (feat_idx, bins[ok]), 1.0)
        np.add.at(slot.bin_err, (feat_idx, bins[ok]), err)

    def report(self, window: SlotData) -> dict[str, dict[str, dict[str, float]]]:
        """``{feature: {bin label: {"count": n, "error": mean error}}}`` over the window."""
        out: dict[str, dict[str, dict[str, float]]] = {}
        if window.bin_n is None or window.bin_err is None:
            return out
        for feature, row in list(self._rows.items()):
            if row >= window.bin_n.shape[0]:
                continue
            cells = {}
            for b in np.nonzero(window.bin_n[row])[0].tolist():
                n = float(window.bin_n[row, b])
                cells[self._label(feature, b)] = {"count": n,
                                                  "error": float(window.bin_err[row, b]) / n}
            if cells:
                out[feature] = cells
        return out

    def points(self, window: SlotData) -> list[tuple[float, dict[str, str]]]:
        """Observations of ``ml.model.error_rate.by_bin``."""
        return [(cell["error"], {Attr.FEATURE: f, Attr.BIN: b})
                for f, cells in self.report(window).items() for b, cell in cells.items()]

    def _label(self, feature: str, index: int) -> str:
        label = self._labels.get((feature, index))
        if label is None:
            try:
                label = str(self._source.bin_label(feature, index))
            except Exception as exc:
                internal_error("outcomes.bin_label", exc)
                label = str(index)
            self._labels[(feature, index)] = label
        return label
