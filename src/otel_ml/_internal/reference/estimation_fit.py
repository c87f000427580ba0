"""What performance estimation without labels needs from labelled validation data: a
:class:`~otel_ml._internal.reference.calibration.Calibration` (classifiers with probabilities)
or a :class:`~otel_ml._internal.reference.loss_model.LossModel` (regressors), and the
reference's realised performance; all stored as plain data in the reference profile under
``"estimation"`` (a profile without it loads unchanged: estimation is then off).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from otel_ml._internal.data.inputs import InputError, is_categorical, to_float, to_table
from otel_ml._internal.reference.calibration import Calibration
from otel_ml._internal.reference.loss_model import LossModel

__all__ = ["Estimation", "fit_estimation", "label_key"]


class Estimation:
    """The estimation part of a reference profile: exactly one of the two models.

    Attributes:
        calibration: Classifier calibration, or ``None``.
        loss: Regression loss model, or ``None``.
    """

    def __init__(self, calibration: Calibration | None = None,
                 loss: LossModel | None = None) -> None:
        self.calibration = calibration
        self.loss = loss

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"calibration": None if self.calibration is None else self.calibration.to_dict(),
                "loss_model": None if self.loss is None else self.loss.to_dict()}

    @classmethod
    def from_dict(cls, data: Any) -> Estimation:
        """Read the JSON form (raises ``ValueError`` saying what is wrong)."""
        if not isinstance(data, Mapping):
            raise ValueError("must be an object")
        try:
            cal = data.get("calibration")
            loss = data.get("loss_model")
            return cls(None if cal is None else Calibration.from_dict(cal),
                       None if loss is None else LossModel.from_dict(loss))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed: {exc!r}") from None


def label_key(value: Any) -> str:
    """A class label as a string (integral numbers and booleans by their integer value)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return str(value)


def fit_estimation(X: Any, predictions: Any, labels: Any,
                   feature_names: Sequence[str] | None = None,
                   classes: Sequence[Any] | None = None
                   ) -> tuple[Estimation | None, dict[str, float]]:
    """Fit the estimation models on labelled validation data.

    Args:
        X: The features (anything the monitor reads).
        predictions: The model's outputs: probabilities ``(rows, k)`` or the positive-class
            probability (classifiers), labels, or values (regressors).
        labels: The true labels, one per row.
        feature_names: Names for positional input.
        classes: Class labels in probability-column order (default: the sorted labels, or
            ``0..k-1`` when the labels are those integers).

    Returns:
        ``(estimation, performance)``: the models (``None`` when the predictions are labels
        only: nothing to calibrate) and the realised performance on these rows.

    Raises:
        ValueError: Predictions and labels of different lengths, NaN labels, or labels that
            do not fit the probability columns.
    """
    y = np.asarray(labels)
    if y.ndim != 1:
        y = y.ravel()
    pred = np.asarray(predictions)
    n = len(y)
    if pred.shape[0] != n:
        raise ValueError(f"{pred.shape[0]} predictions for {n} labels")
    if n == 0:
        raise ValueError("no labelled rows")
    if pred.ndim == 2 and pred.shape[1] == 1:
        pred = pred[:, 0]
    numeric_y = y.dtype.kind in "fiub"
    if pred.ndim == 2 or _looks_binary_proba(pred, y):
        return _classifier(pred, y, classes)
    if pred.dtype.kind in "fiu" and numeric_y and not _class_like(pred, y):
        return _regressor(X, pred.astype(np.float64), y.astype(np.float64), feature_names)
    keys = np.array([label_key(v) for v in y], dtype=object)
    pk = np.array([label_key(v) for v in pred], dtype=object)
    return None, _class_metrics(pk, keys, sorted(set(keys.tolist()) | set(pk.tolist())))


def _class_like(pred: np.ndarray, y: np.ndarray) -> bool:
    return y.dtype.kind in "iub" or (len(np.unique(y)) <= 50 and bool(np.all(y == np.round(y)))
                                     and bool(np.all(pred == np.round(pred))))


def _looks_binary_proba(pred: np.ndarray, y: np.ndarray) -> bool:
    if pred.ndim != 1 or pred.dtype.kind != "f" or len(np.unique(y)) > 2:
        return False
    finite = pred[np.isfinite(pred)]
    return bool(len(finite) and finite.min() >= 0 and finite.max() <= 1
                and not np.all((finite == 0) | (finite == 1)))


def _classifier(pred: np.ndarray, y: np.ndarray, classes: Sequence[Any] | None
                ) -> tuple[Estimation, dict[str, float]]:
    proba = pred.astype(np.float64)
    if proba.ndim == 1:
        proba = np.column_stack([1.0 - proba, proba])
    k = proba.shape[1]
    keys = np.array([label_key(v) for v in y], dtype=object)
    if classes is not None:
        names = [label_key(c) for c in classes]
    else:
        present = sorted(set(keys.tolist()), key=_sort_key)
        ints = [str(i) for i in range(k)]
        names = ints if set(present) <= set(ints) else present
    if len(names) != k:
        raise ValueError(f"{k} probability columns but {len(names)} classes {names}: pass "
                         "classes= in column order")
    index = {c: i for i, c in enumerate(names)}
    label_index = np.array([index.get(c, -1) for c in keys.tolist()])
    if (label_index < 0).any():
        unknown = sorted(set(keys[label_index < 0].tolist()))[:5]
        raise ValueError(f"labels {unknown} are not among the classes {names}")
    ok = np.isfinite(proba).all(axis=1)
    proba, label_index = proba[ok], label_index[ok]
    calibration = Calibration.fit(proba, label_index, names)
    predicted = np.asarray(names, dtype=object)[proba.argmax(axis=1)]
    actual = np.asarray(names, dtype=object)[label_index]
    perf = _class_metrics(predicted, actual, names)
    if k == 2:
        auc = _roc_auc(proba[:, 1], label_index == 1)
        if auc is not None:
            perf["roc_auc"] = auc
    return Estimation(calibration=calibration), perf


def _sort_key(c: str) -> tuple[int, float | str]:
    try:
        return 0, float(c)
    except ValueError:
        return 1, c


def _class_metrics(predicted: np.ndarray, actual: np.ndarray, names: Sequence[str]
                   ) -> dict[str, float]:
    n = len(actual)
    perf = {"accuracy": float((predicted == actual).mean())}
    precision, recall, f1 = [], [], []
    for c in names:
        tp = float(((predicted == c) & (actual == c)).sum())
        pp, ap = float((predicted == c).sum()), float((actual == c).sum())
        if pp == 0 and ap == 0:
            continue
        precision.append(tp / pp if pp else 0.0)
        recall.append(tp / ap if ap else 0.0)
        f1.append(2 * tp / (pp + ap))
    perf.update(precision_macro=float(np.mean(precision)), recall_macro=float(np.mean(recall)),
                f1_macro=float(np.mean(f1)), count=float(n))
    return perf


def _roc_auc(score: np.ndarray, positive: np.ndarray) -> float | None:
    from scipy.stats import rankdata

    npos = int(positive.sum())
    nneg = len(positive) - npos
    if npos == 0 or nneg == 0:
        return None
    ranks = rankdata(score)
    return float((ranks[positive].sum() - npos * (npos + 1) / 2) / (npos * nneg))


def _regressor(X: Any, pred: np.ndarray, y: np.ndarray, feature_names: Sequence[str] | None
               ) -> tuple[Estimation, dict[str, float]]:
    ok = np.isfinite(pred) & np.isfinite(y)
    if not ok.any():
        raise ValueError("no row with a finite prediction and label")
    columns: dict[str, tuple[np.ndarray, bool]] = {}
    try:
        table = to_table(X) if X is not None else None
    except InputError as exc:
        raise ValueError(f"cannot read the features: {exc}") from exc
    if table is not None and table.rows == len(y):
        names = list(table.names) if table.names is not None else (
            list(feature_names) if feature_names is not None
            else [f"f{i}" for i in range(table.width)])
        for i, name in enumerate(names):
            col = table.column(i)
            if is_categorical(col):
                values = np.asarray([str(v) for v in col], dtype=object)
                columns[str(name)] = (values[ok], True)
            else:
                values, _ = to_float(col)
                columns[str(name)] = (values[ok], False)
    errors = y[ok] - pred[ok]
    model = LossModel.fit(pred[ok], errors, columns)
    perf = {"mae": float(np.abs(errors).mean()), "rmse": float(np.sqrt((errors ** 2).mean())),
            "count": float(ok.sum())}
    return Estimation(loss=model), perf
