"""Fitting the estimation part of a reference from a data file (``otel-ml profile --labels``):
the labels, the prediction columns and the features read again in chunks, up to
:data:`MAX_ROWS` rows (a uniform stride beyond), then
:func:`~otel_ml._internal.reference.estimation_fit.fit_estimation`."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from otel_ml._internal.data.files import DataFileError, read_table
from otel_ml._internal.reference.estimation_fit import Estimation, fit_estimation

__all__ = ["MAX_ROWS", "estimation_from_file"]

#: Labelled rows the calibration or loss model is fitted on at most.
MAX_ROWS = 2_000_000


def estimation_from_file(path: str | os.PathLike, *, labels: str, predictions: Sequence[str],
                         features: Sequence[str], chunk_rows: int = 100_000,
                         rows: int | None = None) -> tuple[Estimation | None, dict[str, float]]:
    """Read ``labels``, ``predictions`` (one column, or one per class in column order) and
    ``features`` from the file and fit the estimation models.

    Args:
        path: The data file.
        labels: Column of the true labels.
        predictions: Prediction column(s): a probability per class, the positive-class
            probability, or the predicted value (regression).
        features: Feature columns (the regression loss model reads them).
        chunk_rows: Rows read at a time.
        rows: Rows in the file when known (to thin evenly beyond :data:`MAX_ROWS`).

    Raises:
        DataFileError: A named column is absent; ValueError: see ``fit_estimation``.
    """
    wanted = [labels, *predictions, *features]
    step = max(1, -(-rows // MAX_ROWS)) if rows else 1
    parts: dict[str, list[np.ndarray]] = {c: [] for c in wanted}
    for chunk in read_table(path, chunk_rows=chunk_rows, columns=list(dict.fromkeys(wanted))):
        missing = [c for c in (labels, *predictions) if c not in chunk]
        if missing:
            raise DataFileError(f"{os.fspath(path)}: no column {missing[0]!r}")
        for c in wanted:
            if c in chunk:
                parts[c].append(np.asarray(chunk[c])[::step])
    columns = {c: np.concatenate(v) for c, v in parts.items() if v}
    y = columns[labels]
    keep = np.array([not (v is None or (isinstance(v, float) and np.isnan(v)))
                     for v in y.tolist()])
    pred = (columns[predictions[0]] if len(predictions) == 1
            else np.column_stack([columns[c].astype(np.float64) for c in predictions]))
    x = {c: columns[c][keep] for c in features if c in columns}
    return fit_estimation(x or None, pred[keep], y[keep])
