"""Performance metrics: hand-computed cases and agreement with scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from otel_ml._internal.stats.performance import (
    PERFORMANCE_METRICS,
    PerformanceReport,
    Tally,
    brier_rows,
    classification_metrics,
    label_str,
    label_strings,
    log_loss_rows,
    reference_performance,
)


def test_label_strings_follow_numpy_equality():
    assert [label_str(v) for v in (1, 1.0, True, np.int64(1), np.float32(1.0))] == ["1"] * 5
    assert [label_str(v) for v in (0.5, "cat", b"dog", False)] == ["0.5", "cat", "dog", "0"]
    assert label_strings(np.array([2, 0, 2])).tolist() == ["2", "0", "2"]
    assert label_strings(np.array([1.0, 0.0])).tolist() == ["1", "0"]
    assert label_strings(np.array(["a", 1], dtype=object)).tolist() == ["a", "1"]
    assert label_strings(3).tolist() == ["3"]


def test_confusion_metrics_hand_computed():
    # actual:    a a a b b c
    # predicted: a a b b c c
    confusion = {("a", "a"): 2, ("b", "a"): 1, ("b", "b"): 1, ("c", "b"): 1, ("c", "c"): 1}
    out, per_class = classification_metrics(confusion)
    assert out["accuracy"] == pytest.approx(4 / 6)
    assert out["error_rate"] == pytest.approx(2 / 6)
    # precision a=2/2, b=1/2, c=1/2; recall a=2/3, b=1/2, c=1/1
    assert per_class["a"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8,
                                            "support": 3.0})
    assert out["precision_macro"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert out["recall_macro"] == pytest.approx((2 / 3 + 0.5 + 1) / 3)
    assert out["f1_macro"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert "precision" not in out  # not binary


def test_binary_positive_class_metrics_and_zero_division():
    # actual 1 1 0 0, predicted 1 0 0 0: precision(1) = 1, recall(1) = 1/2
    out, _ = classification_metrics({("1", "1"): 1, ("0", "1"): 1, ("0", "0"): 2}, positive="1")
    assert (out["precision"], out["recall"], out["f1"]) == pytest.approx((1.0, 0.5, 2 / 3))
    # a class never predicted scores precision 0, as scikit-learn's zero_division default
    out, per_class = classification_metrics({("0", "1"): 2, ("0", "0"): 2}, positive="1")
    assert per_class["1"]["precision"] == 0.0 and out["precision"] == 0.0


def test_brier_and_log_loss_hand_computed():
    proba = np.array([[0.2, 0.8], [0.6, 0.4]])
    actual = np.array([1, 1])
    assert brier_rows(proba, actual, positive_col=1) == pytest.approx([0.04, 0.36])
    # multiclass: squared distance to the one-hot row
    assert brier_rows(proba, actual, None) == pytest.approx([0.08, 0.72])
    assert log_loss_rows(proba, actual) == pytest.approx([-math.log(0.8), -math.log(0.4)])
    # 1-D probabilities of the positive class
    assert brier_rows(np.array([0.9, 0.3]), np.array([1, 0]), None) == pytest.approx([0.01, 0.09])
    assert log_loss_rows(np.array([0.9, 0.3]), np.array([1, 0])) == pytest.approx(
        [-math.log(0.9), -math.log(0.7)])
    # certainty on the wrong class is clipped, not infinite
    assert math.isfinite(log_loss_rows(np.array([[1.0, 0.0]]), np.array([1]))[0])


def test_regression_tally_hand_computed():
    tally = Tally()
    tally.add_errors(np.array([1.0, -2.0, 2.0]))
    out, _ = tally.metrics()
    assert out == {"mae": pytest.approx(5 / 3), "rmse": pytest.approx(math.sqrt(3)),
                   "count": 3.0}


def test_tally_merge_equals_one_tally():
    rng = np.random.default_rng(0)
    p, a = rng.integers(0, 3, 200).astype(str), rng.integers(0, 3, 200).astype(str)
    whole, left, right = Tally(), Tally(), Tally()
    whole.add_labels(p, a)
    left.add_labels(p[:77], a[:77])
    right.add_labels(p[77:], a[77:])
    assert left.merge(right).confusion == whole.confusion


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_sklearn_multiclass(seed):
    rng = np.random.default_rng(seed)
    n, k = 500, 4
    logits = rng.normal(size=(n, k))
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y_true = rng.integers(0, k, n)
    y_pred = proba.argmax(axis=1)
    ours = reference_performance(y_true, y_pred, proba=proba)
    assert ours["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred), abs=1e-9)
    p, r, f, _ = skm.precision_recall_fscore_support(y_true, y_pred, average="macro",
                                                     zero_division=0)
    assert (ours["precision_macro"], ours["recall_macro"], ours["f1_macro"]) == pytest.approx(
        (p, r, f), abs=1e-9)
    assert ours["f1_macro"] == pytest.approx(skm.f1_score(y_true, y_pred, average="macro"),
                                             abs=1e-9)
    assert ours["log_loss"] == pytest.approx(skm.log_loss(y_true, proba), abs=1e-9)
    assert ours["brier"] == pytest.approx(skm.brier_score_loss(y_true, proba), abs=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_sklearn_binary(seed):
    rng = np.random.default_rng(seed)
    n = 400
    p1 = rng.uniform(0.01, 0.99, n)
    y_true = (rng.uniform(size=n) < p1).astype(int)
    proba = np.column_stack([1 - p1, p1])
    y_pred = (p1 >= 0.5).astype(int)
    ours = reference_performance(y_true, proba=proba)  # predictions from proba
    assert ours["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred), abs=1e-9)
    assert ours["precision"] == pytest.approx(skm.precision_score(y_true, y_pred), abs=1e-9)
    assert ours["recall"] == pytest.approx(skm.recall_score(y_true, y_pred), abs=1e-9)
    assert ours["f1"] == pytest.approx(skm.f1_score(y_true, y_pred), abs=1e-9)
    assert ours["brier"] == pytest.approx(skm.brier_score_loss(y_true, p1), abs=1e-9)
    assert ours["log_loss"] == pytest.approx(skm.log_loss(y_true, proba), abs=1e-9)
    # the 1-D positive-class probability gives the same figures
    flat = reference_performance(y_true, proba=p1)
    assert flat["brier"] == pytest.approx(ours["brier"], abs=1e-12)
    assert flat["log_loss"] == pytest.approx(ours["log_loss"], abs=1e-12)
    assert flat["f1"] == pytest.approx(ours["f1"], abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_sklearn_regression(seed):
    rng = np.random.default_rng(seed)
    y_true = rng.normal(10, 3, 1000)
    y_pred = y_true + rng.normal(0, 1, 1000)
    ours = reference_performance(y_true, y_pred)
    assert ours["mae"] == pytest.approx(skm.mean_absolute_error(y_true, y_pred), abs=1e-9)
    rmse = math.sqrt(skm.mean_squared_error(y_true, y_pred))
    assert ours["rmse"] == pytest.approx(rmse, abs=1e-9)
    assert ours["count"] == 1000


def test_reference_performance_string_classes_and_errors():
    out = reference_performance(["cat", "dog", "cat"], ["cat", "cat", "cat"], positive_class="cat")
    assert out["accuracy"] == pytest.approx(2 / 3)
    assert out["precision"] == pytest.approx(2 / 3) and out["recall"] == 1.0
    with pytest.raises(ValueError, match="labels"):
        reference_performance([1, 0], [1])
    with pytest.raises(ValueError, match="not columns"):
        reference_performance([5, 0], proba=np.full((2, 2), 0.5))
    with pytest.raises(ValueError, match="at least one"):
        reference_performance([], [])
    with pytest.raises(ValueError, match="y_pred, proba"):
        reference_performance([1])


def test_report_delta_and_dict():
    report = PerformanceReport("m", "1", "classification", 3600.0, count=10,
                               metrics={"accuracy": 0.82, "count": 10.0},
                               reference={"accuracy": 0.9, "f1": 0.5, "count": 99.0})
    assert report.delta == {"accuracy": pytest.approx(-0.08)}
    assert report.to_dict()["delta"] == report.delta
    assert set(report.metrics) <= set(PERFORMANCE_METRICS)
