"""Probability calibration of a classifier, fitted on labelled validation data and stored as
plain data in the reference profile (no pickles).

One isotonic curve per class (one-vs-rest, pool-adjacent-violators), applied by linear
interpolation between the curve's points and clipped at its ends (as scikit-learn's
``IsotonicRegression(out_of_bounds="clip")``, which NannyML's CBPE uses); a multiclass row is
renormalised to sum to 1 after calibration. Isotonic rather than histogram binning: it keeps
the ranking inside a bin (the binary ROC AUC estimate needs it) and has no bin count to tune;
the benchmark (``benchmarks/estimation_accuracy.py``) checks it against NannyML's CBPE.

Besides the curves, a :class:`Calibration` holds what the estimators need from the
reference: each class's self-confidence threshold (the mean calibrated probability of the
class among rows labelled with it: the confident-learning rule for suspect labels) and, for a
binary model, the edges of the score bins the ROC AUC estimate is accumulated over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["AUC_BINS", "Calibration", "isotonic_fit"]

#: Score bins (reference quantiles) of the binary ROC AUC estimate.
AUC_BINS = 200
#: Points kept per isotonic curve (the PAV blocks, thinned evenly beyond this).
MAX_POINTS = 5000


def isotonic_fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pool-adjacent-violators: the non-decreasing fit of ``y`` on ``x``.

    Args:
        x: Scores (1-D, finite).
        y: Targets (0/1 or any numbers), same length.

    Returns:
        ``(xs, ys)``: the curve's points (each block's first and last score with the block's
        mean), non-decreasing in both; evaluate with ``np.interp(v, xs, ys)``.

    Example:
        >>> xs, ys = isotonic_fit(np.array([0.1, 0.2, 0.3, 0.4]), np.array([0, 1, 0, 1.0]))
        >>> [round(float(v), 2) for v in np.interp([0.1, 0.25, 0.4], xs, ys)]
        [0.0, 0.5, 1.0]
    """
    order = np.argsort(x, kind="mergesort")
    xs, ys = x[order].astype(np.float64), y[order].astype(np.float64)
    # Ties in x are one point (their mean), as scikit-learn does.
    ux, start = np.unique(xs, return_index=True)
    sums = np.add.reduceat(ys, start)
    counts = np.diff(np.append(start, len(xs))).astype(np.float64)
    means, weights, lo, hi = [], [], [], []
    for i in range(len(ux)):
        m, w, a, b = sums[i] / counts[i], counts[i], ux[i], ux[i]
        while means and means[-1] >= m:
            pw = weights.pop()
            m = (means.pop() * pw + m * w) / (pw + w)
            w += pw
            a = lo.pop()
            hi.pop()
        means.append(m)
        weights.append(w)
        lo.append(a)
        hi.append(b)
    px = np.column_stack([lo, hi]).ravel()
    py = np.repeat(means, 2)
    keep = np.ones(len(px), dtype=bool)
    keep[1:] = np.diff(px) > 0  # a one-score block is one point
    px, py = px[keep], py[keep]
    if len(px) > MAX_POINTS:
        idx = np.unique(np.linspace(0, len(px) - 1, MAX_POINTS).round().astype(int))
        px, py = px[idx], py[idx]
    return px, py


class Calibration:
    """A classifier's probability calibration and what estimation needs of its reference.

    Attributes:
        classes: Class labels (strings) in probability-column order.
        curves: Per class, the isotonic curve ``(xs, ys)``.
        thresholds: Per class, the self-confidence threshold (confident learning).
        auc_edges: Binary models: increasing edges of the raw positive-class score bins of
            the ROC AUC estimate (``None`` for multiclass models).
    """

    def __init__(self, classes: Sequence[str], curves: Sequence[tuple[np.ndarray, np.ndarray]],
                 thresholds: Sequence[float], auc_edges: np.ndarray | None = None) -> None:
        self.classes = tuple(str(c) for c in classes)
        self.curves = [(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
                       for x, y in curves]
        self.thresholds = np.asarray(thresholds, dtype=np.float64)
        self.auc_edges = None if auc_edges is None else np.asarray(auc_edges, dtype=np.float64)
        if len(self.curves) != len(self.classes) or len(self.thresholds) != len(self.classes):
            raise ValueError("a calibration needs one curve and one threshold per class")

    @property
    def k(self) -> int:
        """Number of classes."""
        return len(self.classes)

    def apply(self, proba: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of valid ``(rows, k)`` probabilities (rows sum to 1)."""
        out = np.empty_like(proba, dtype=np.float64)
        if self.k == 2:  # binary: calibrate the positive column, the other is its complement
            x, y = self.curves[1]
            out[:, 1] = np.interp(proba[:, 1], x, y)
            out[:, 0] = 1.0 - out[:, 1]
            return out
        for j, (x, y) in enumerate(self.curves):
            out[:, j] = np.interp(proba[:, j], x, y)
        total = out.sum(axis=1, keepdims=True)
        bad = total[:, 0] <= 0
        if bad.any():  # every curve at 0: fall back to the raw row
            out[bad] = proba[bad]
            total[bad] = 1.0
        out /= total
        return out

    @classmethod
    def fit(cls, proba: np.ndarray, label_index: np.ndarray, classes: Sequence[str]) -> Calibration:
        """Fit on validation probabilities ``(rows, k)`` and label column indices."""
        k = proba.shape[1]
        curves = []
        for j in range(k):
            if k == 2 and j == 0:
                curves.append((np.array([0.0, 1.0]), np.array([0.0, 1.0])))  # unused
                continue
            curves.append(isotonic_fit(proba[:, j], (label_index == j).astype(np.float64)))
        draft = cls(classes, curves, np.ones(k))
        calibrated = draft.apply(proba)
        thresholds = np.ones(k)
        for j in range(k):
            rows = label_index == j
            if rows.any():
                thresholds[j] = float(calibrated[rows, j].mean())
        edges = None
        if k == 2:
            edges = np.unique(np.quantile(proba[:, 1], np.linspace(0, 1, AUC_BINS + 1)))
        return cls(classes, curves, thresholds, edges)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "method": "isotonic",
            "classes": list(self.classes),
            "curves": [{"x": x.tolist(), "y": y.tolist()} for x, y in self.curves],
            "thresholds": self.thresholds.tolist(),
            "auc_edges": None if self.auc_edges is None else self.auc_edges.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        """Read the JSON form (raises ``ValueError`` saying what is wrong)."""
        if data.get("method") != "isotonic":
            raise ValueError(f"unknown calibration method {data.get('method')!r}")
        classes = data["classes"]
        curves = []
        for i, c in enumerate(data["curves"]):
            x, y = np.asarray(c["x"], dtype=np.float64), np.asarray(c["y"], dtype=np.float64)
            if x.ndim != 1 or x.shape != y.shape or len(x) < 1 or not (
                    np.isfinite(x).all() and np.isfinite(y).all()) or (np.diff(x) < 0).any():
                raise ValueError(f"curves[{i}] must be finite, increasing x with one y each")
            curves.append((x, y))
        edges = data.get("auc_edges")
        return cls(classes, curves, data["thresholds"],
                   None if edges is None else np.asarray(edges, dtype=np.float64))
