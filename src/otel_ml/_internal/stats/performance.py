"""Model performance from labelled predictions: sufficient statistics, metrics, the report.

The monitor keeps :class:`Tally` objects (confusion counts, sums of Brier scores, log losses,
absolute and squared errors) per time slot and segment; metrics are computed from their sum at
collection time. The same code scores validation data for the reference profile
(:func:`reference_performance`), so the live and the reference figures are comparable.

Metric names (``ml.performance.metric``), see :data:`PERFORMANCE_METRICS`:

- classification: ``accuracy``, ``error_rate``, ``precision_macro``, ``recall_macro``,
  ``f1_macro`` (averaged over the classes present among labels and predictions, a class
  without predictions scoring 0, as scikit-learn does), and for a binary problem whose
  positive class is present ``precision``, ``recall``, ``f1`` of the positive class;
- probabilistic outputs: ``brier`` (binary: mean squared error of the positive-class
  probability; multiclass: mean over rows of the squared distance to the one-hot label, as
  scikit-learn's ``brier_score_loss``) and ``log_loss`` (probabilities clipped to
  ``[eps, 1 - eps]``);
- regression: ``mae``, ``rmse``;
- both: ``count`` (labelled rows).

Class labels become strings (:func:`label_str`): integral numbers and booleans by their integer
value (``1``, ``1.0`` and ``True`` are all ``"1"``, as numpy compares them), other numbers by
``repr``, strings as they are.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from otel_ml.contract import ERROR_BUCKETS

__all__ = [
    "PERFORMANCE_METRICS",
    "PerformanceReport",
    "Tally",
    "brier_rows",
    "classification_metrics",
    "label_str",
    "label_strings",
    "log_loss_rows",
    "reference_performance",
]

#: Every value ``ml.performance.metric`` takes, with its direction (True: higher is better).
PERFORMANCE_METRICS: dict[str, bool] = {
    "accuracy": True,
    "error_rate": False,
    "precision_macro": True,
    "recall_macro": True,
    "f1_macro": True,
    "precision": True,
    "recall": True,
    "f1": True,
    "brier": False,
    "log_loss": False,
    "mae": False,
    "rmse": False,
    "count": True,
}

_EPS = float(np.finfo(np.float64).eps)
_ERROR_BOUNDS = np.asarray(ERROR_BUCKETS, dtype=np.float64)


# ---------------------------------------------------------------------------- class labels
def label_str(value: Any) -> str:
    """The string a class label is reported as (see the module docstring)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        f = float(value)
        if math.isfinite(f) and f.is_integer():
            return str(int(f))
        return repr(f)
    return str(value)


def label_strings(values: Any) -> np.ndarray:
    """Class-label strings of an array of labels (object array, one per element).

    Vectorised over distinct values: ``str`` is called once per distinct label.
    """
    arr = np.asarray(values)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    arr = arr.ravel()
    if arr.size == 0:
        return np.empty(0, dtype=object)
    try:
        uniques, inverse = np.unique(arr, return_inverse=True)
    except TypeError:  # mixed object types do not sort
        return np.array([label_str(v) for v in arr.tolist()], dtype=object)
    names = np.array([label_str(v) for v in uniques.tolist()], dtype=object)
    return names[inverse.ravel()]


# ---------------------------------------------------------------------------- per-row scores
def brier_rows(proba: np.ndarray, actual_col: np.ndarray, positive_col: int | None) -> np.ndarray:
    """Brier score of each row.

    Args:
        proba: ``(n, k)`` class probabilities, or ``(n,)`` positive-class probabilities.
        actual_col: Column of the actual class per row (1-D proba: 1 positive, 0 negative).
        positive_col: Positive-class column of a two-column matrix (binary Brier score);
            ``None`` for the multiclass score.

    Returns:
        ``(n,)`` float array.
    """
    proba = np.asarray(proba, dtype=np.float64)
    actual_col = np.asarray(actual_col, dtype=np.int64)
    if proba.ndim == 1:
        return (proba - actual_col) ** 2
    n, k = proba.shape
    if k == 2 and positive_col is not None:
        return (proba[:, positive_col] - (actual_col == positive_col)) ** 2
    onehot = np.zeros((n, k))
    onehot[np.arange(n), actual_col] = 1.0
    return ((proba - onehot) ** 2).sum(axis=1)


def log_loss_rows(proba: np.ndarray, actual_col: np.ndarray) -> np.ndarray:
    """Negative log-likelihood of the actual class per row (probabilities clipped to
    ``[eps, 1 - eps]``; a 1-D ``proba`` is the positive-class probability)."""
    proba = np.asarray(proba, dtype=np.float64)
    actual_col = np.asarray(actual_col, dtype=np.int64)
    if proba.ndim == 1:
        p = np.where(actual_col == 1, proba, 1.0 - proba)
    else:
        p = proba[np.arange(proba.shape[0]), actual_col]
    return -np.log(np.clip(p, _EPS, 1.0 - _EPS))


# ---------------------------------------------------------------------------- statistics
class Tally:
    """Sufficient statistics of labelled predictions; add with :meth:`add_*`, sum with
    :meth:`merge`, turn into metrics with :meth:`metrics`.

    Not thread-safe by itself: the monitor holds its lock around every use.
    """

    __slots__ = ("abs_hist", "abs_sum", "brier_sum", "confusion", "log_loss_sum", "n_proba",
                 "n_reg", "sq_sum")

    def __init__(self) -> None:
        self.confusion: dict[tuple[str, str], int] = {}  # (predicted, actual) -> rows
        self.n_proba = 0
        self.brier_sum = 0.0
        self.log_loss_sum = 0.0
        self.n_reg = 0
        self.abs_sum = 0.0
        self.sq_sum = 0.0
        #: Absolute errors per ``ERROR_BUCKETS`` bucket (``<=`` each bound, then above the
        #: last): the same buckets as the ``ml.model.error.absolute`` histogram.
        self.abs_hist: np.ndarray | None = None

    @property
    def count(self) -> int:
        """Labelled rows."""
        return sum(self.confusion.values()) + self.n_reg

    def add_labels(self, predicted: np.ndarray, actual: np.ndarray) -> None:
        """Add rows of predicted and actual class strings (equal lengths)."""
        if len(predicted) == 1:
            key = (predicted[0], actual[0])
            self.confusion[key] = self.confusion.get(key, 0) + 1
            return
        for key, n in _pair_counts(predicted, actual):
            self.confusion[key] = self.confusion.get(key, 0) + n

    def add_proba(self, brier: np.ndarray, log_loss: np.ndarray) -> None:
        """Add per-row Brier scores and log losses."""
        self.n_proba += len(brier)
        self.brier_sum += float(np.sum(brier))
        self.log_loss_sum += float(np.sum(log_loss))

    def add_errors(self, errors: np.ndarray) -> None:
        """Add signed regression errors (predicted - actual)."""
        self.n_reg += len(errors)
        absolute = np.abs(errors)
        self.abs_sum += float(np.sum(absolute))
        counts = np.bincount(np.searchsorted(_ERROR_BOUNDS, absolute, side="left"),
                             minlength=_ERROR_BOUNDS.size + 1)
        self.abs_hist = counts if self.abs_hist is None else self.abs_hist + counts
        # einsum, not np.dot: a BLAS dot wakes OpenBLAS threads, ~100x slower on busy cores.
        self.sq_sum += float(np.einsum("i,i->", errors, errors))

    def merge(self, other: Tally) -> Tally:
        """Add ``other`` into this tally; returns ``self``."""
        for key, n in other.confusion.items():
            self.confusion[key] = self.confusion.get(key, 0) + n
        self.n_proba += other.n_proba
        self.brier_sum += other.brier_sum
        self.log_loss_sum += other.log_loss_sum
        self.n_reg += other.n_reg
        self.abs_sum += other.abs_sum
        self.sq_sum += other.sq_sum
        if other.abs_hist is not None:
            self.abs_hist = other.abs_hist.copy() if self.abs_hist is None \
                else self.abs_hist + other.abs_hist
        return self

    def error_distribution(self) -> dict[str, int]:
        """Absolute regression errors per bucket: ``"<= bound"`` (and ``"> last"``) to rows;
        empty without regression labels."""
        if self.abs_hist is None:
            return {}
        labels = [f"<= {b:g}" for b in _ERROR_BOUNDS.tolist()] + [f"> {_ERROR_BOUNDS[-1]:g}"]
        return dict(zip(labels, self.abs_hist.tolist()))

    def metrics(self, positive: str | None = None,
                ) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
        """Metrics and per-class figures (see the module docstring for the names).

        Args:
            positive: Positive class string for the binary ``precision``/``recall``/``f1``.
        """
        out: dict[str, float] = {}
        per_class: dict[str, dict[str, float]] = {}
        n_cls = sum(self.confusion.values())
        if n_cls:
            out, per_class = classification_metrics(self.confusion, positive)
        if self.n_proba:
            out["brier"] = self.brier_sum / self.n_proba
            out["log_loss"] = self.log_loss_sum / self.n_proba
        if self.n_reg:
            out["mae"] = self.abs_sum / self.n_reg
            out["rmse"] = math.sqrt(self.sq_sum / self.n_reg)
        if n_cls or self.n_reg:
            out["count"] = float(n_cls + self.n_reg)
        return out, per_class


def _pair_counts(predicted: np.ndarray, actual: np.ndarray,
                 ) -> Iterable[tuple[tuple[str, str], int]]:
    p_names, p_idx = np.unique(np.asarray(predicted, dtype=str), return_inverse=True)
    a_names, a_idx = np.unique(np.asarray(actual, dtype=str), return_inverse=True)
    codes = p_idx.ravel() * len(a_names) + a_idx.ravel()
    values, counts = np.unique(codes, return_counts=True)
    for code, n in zip(values.tolist(), counts.tolist()):
        yield (str(p_names[code // len(a_names)]), str(a_names[code % len(a_names)])), int(n)


def classification_metrics(confusion: dict[tuple[str, str], int], positive: str | None = None,
                           ) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Accuracy, macro and per-class precision/recall/F1 from sparse confusion counts.

    Args:
        confusion: ``(predicted, actual) -> rows``.
        positive: Positive class; when it is present and at most two classes are, the
            binary ``precision``, ``recall`` and ``f1`` of that class are included.

    Returns:
        ``(metrics, per_class)``; ``per_class[c]`` has ``precision``, ``recall``, ``f1``,
        ``support`` (actual rows of ``c``).
    """
    classes = sorted({c for pair in confusion for c in pair})
    index = {c: i for i, c in enumerate(classes)}
    k = len(classes)
    matrix = np.zeros((k, k), dtype=np.float64)  # rows: actual, columns: predicted
    for (pred, act), n in confusion.items():
        matrix[index[act], index[pred]] += n
    total = matrix.sum()
    tp = np.diag(matrix)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(support + predicted > 0, 2 * tp / (support + predicted), 0.0)
    out = {
        "accuracy": float(tp.sum() / total) if total else 0.0,
        "precision_macro": float(precision.mean()),
        "recall_macro": float(recall.mean()),
        "f1_macro": float(f1.mean()),
    }
    out["error_rate"] = 1.0 - out["accuracy"]
    if positive is not None and positive in index and k <= 2:
        i = index[positive]
        out["precision"] = float(precision[i])
        out["recall"] = float(recall[i])
        out["f1"] = float(f1[i])
    per_class = {c: {"precision": float(precision[i]), "recall": float(recall[i]),
                     "f1": float(f1[i]), "support": float(support[i])}
                 for c, i in index.items()}
    return out, per_class


# ---------------------------------------------------------------------------- reference
def reference_performance(y_true: Any, y_pred: Any = None, *, proba: Any = None,
                          classes: Sequence[Any] | None = None, task: str = "auto",
                          positive_class: Any = 1) -> dict[str, float]:
    """Performance on validation data, to store with the reference profile
    (``Reference(..., performance=reference_performance(y_val, model.predict(X_val)))``).

    Args:
        y_true: Actual labels or values.
        y_pred: Predicted labels or values (derived from ``proba`` when omitted).
        proba: ``(n, k)`` class probabilities (columns in ``classes`` order), or ``(n,)``
            positive-class probabilities; adds ``brier`` and ``log_loss``.
        classes: Labels of the ``proba`` columns (default ``0..k-1``).
        task: ``"classification"``, ``"regression"`` or ``"auto"`` (classification when
            ``proba`` is given or the predictions are labels rather than floats).
        positive_class: Positive class for the binary metrics.

    Returns:
        Metric name to value (names as in :data:`PERFORMANCE_METRICS`).

    Raises:
        ValueError: Lengths differ, the input is empty, or an actual class is not a column
            of ``proba``.
    """
    if task not in ("auto", "classification", "regression"):
        raise ValueError(f"task must be 'auto', 'classification' or 'regression', got {task!r}")
    truth = np.asarray(y_true).ravel()
    if truth.size == 0:
        raise ValueError("reference_performance needs at least one label")
    prob = None if proba is None else np.asarray(proba, dtype=np.float64)
    if prob is not None and prob.ndim == 2 and prob.shape[1] == 1:
        prob = prob[:, 0]
    if prob is not None and prob.shape[0] != truth.size:
        raise ValueError(f"proba has {prob.shape[0]} rows for {truth.size} labels")
    if y_pred is None and prob is None:
        raise ValueError("give y_pred, proba or both")
    if task == "auto":
        pred_kind = None if y_pred is None else np.asarray(y_pred).dtype.kind
        task = "classification" if prob is not None or pred_kind in ("b", "i", "u", "U", "S", "O") \
            else "regression"
    tally = Tally()
    if task == "regression":
        pred = np.asarray(y_pred, dtype=np.float64).ravel()
        if pred.size != truth.size:
            raise ValueError(f"y_pred has {pred.size} values for {truth.size} labels")
        tally.add_errors(pred - truth.astype(np.float64))
        return tally.metrics()[0]
    positive = label_str(positive_class)
    actual = label_strings(truth)
    if prob is not None:
        columns = [label_str(c) for c in (classes if classes is not None else
                                          range(2 if prob.ndim == 1 else prob.shape[1]))]
        col_of = {c: i for i, c in enumerate(columns)}
        unknown = sorted(set(actual.tolist()) - col_of.keys())
        if unknown:
            raise ValueError(f"classes {unknown[:5]} are not columns of proba ({columns})")
        actual_col = np.array([col_of[a] for a in actual.tolist()], dtype=np.int64)
        if prob.ndim == 1:
            pos_col = col_of.get(positive, len(columns) - 1)
            y_pos = (actual_col == pos_col).astype(np.int64)
            tally.add_proba(brier_rows(prob, y_pos, None), log_loss_rows(prob, y_pos))
        else:
            pos_col = col_of.get(positive) if prob.shape[1] == 2 else None
            tally.add_proba(brier_rows(prob, actual_col, pos_col), log_loss_rows(prob, actual_col))
        if y_pred is None:
            if prob.ndim == 1:
                neg = columns[1 - col_of.get(positive, 1)] if len(columns) == 2 else "0"
                y_pred = np.where(prob >= 0.5, positive, neg)
            else:
                y_pred = np.asarray(columns, dtype=object)[prob.argmax(axis=1)]
    predicted = label_strings(y_pred)
    if predicted.size != actual.size:
        raise ValueError(f"y_pred has {predicted.size} values for {actual.size} labels")
    tally.add_labels(predicted, actual)
    return tally.metrics(positive)[0]


# ---------------------------------------------------------------------------- the report
@dataclass
class PerformanceReport:
    """Performance of one model over the current window (``monitor.performance_report()``).

    Attributes:
        model: Model name.
        version: Model version.
        task: ``"classification"``, ``"regression"`` or ``"auto"`` (nothing labelled yet).
        window_s: Length of the window the figures cover.
        count: Labelled rows in the window.
        metrics: Metric name to value over every segment (names: :data:`PERFORMANCE_METRICS`).
        per_class: Class to its ``precision``, ``recall``, ``f1``, ``support``.
        by_segment: Segment to its metrics (segment ``"__none__"``: calls without one).
        reference: Validation performance stored with the reference profile.
        fairness: Fairness figures for the sensitive attribute, if one is declared.
        concept_drift: Detector name to ``{"drift": bool, "detections": int}``.
        error_by_bin: Feature to reference bin to ``{"count", "error"}`` (error rate for a
            classifier, mean absolute error for a regressor).
        attributions: Feature to mean absolute attribution over the window.
        attribution_drift: Feature to relative change of its mean absolute attribution
            against the reference (``0.5``: half as large again).
        unmatched: Reason to labels that could not be scored (since start).
        store: The prediction store: ``records``, ``bytes`` held; ``evicted``, ``expired``
            since start.
        estimated: Performance estimated without labels over the window (needs a reference
            fitted with labels): metric name (``accuracy``, ``precision``, ``recall``,
            ``f1`` (macro), ``roc_auc`` for a binary model; ``mae``, ``rmse`` for a regressor)
            to ``{"value", "lower", "upper"}`` (95% sampling band for the window's rows),
            plus ``rows`` estimated and ``by_segment``; empty when estimation is off.
        suspect_labels: Joined labels flagged as suspect (confident learning): ``count`` and
            ``share`` of the window's labelled rows, ``by_class``, and ``recent`` prediction
            ids (ids only).
        confusion: Actual class to predicted class to labelled rows in the window (the
            counts ``metrics`` and ``per_class`` come from).
        errors: Regression: the window's absolute errors per bucket of the
            ``ml.model.error.absolute`` histogram (``"<= 0.5": rows``), empty otherwise.
    """

    model: str
    version: str
    task: str
    window_s: float
    count: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    by_segment: dict[str, dict[str, float]] = field(default_factory=dict)
    reference: dict[str, float] = field(default_factory=dict)
    fairness: Any = None
    concept_drift: dict[str, dict[str, Any]] = field(default_factory=dict)
    error_by_bin: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    attributions: dict[str, float] = field(default_factory=dict)
    attribution_drift: dict[str, float] = field(default_factory=dict)
    unmatched: dict[str, int] = field(default_factory=dict)
    store: dict[str, int] = field(default_factory=dict)
    estimated: dict[str, Any] = field(default_factory=dict)
    suspect_labels: dict[str, Any] = field(default_factory=dict)
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def delta(self) -> dict[str, float]:
        """Current minus reference value, for every metric both have (``accuracy: -0.08``
        means 8 points below validation)."""
        return {name: self.metrics[name] - value for name, value in self.reference.items()
                if name in self.metrics and name != "count"}

    @property
    def concept_drift_detected(self) -> bool:
        """Whether any detector is in the drift state."""
        return any(state.get("drift") for state in self.concept_drift.values())

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-serialisable)."""
        out = asdict(self) if self.fairness is None else {
            **{k: v for k, v in asdict(self).items() if k != "fairness"},
            "fairness": self.fairness.to_dict()}
        out["delta"] = self.delta
        return out
