"""A classifier's output is read one way per monitor (issue 14, item 2): probabilities that are
exactly 0.0 or 1.0 stay probabilities, whichever batch they arrive in."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from conftest import points
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss
from sklearn.tree import DecisionTreeClassifier

import otel_ml
from otel_ml import ModelMonitor
from otel_ml._internal.monitor.outcome_stats import UNMATCHED_REASONS
from otel_ml._internal.stats.output_kind import LABEL, PROBA, SCORE, batch_kind
from otel_ml.contract import Unmatched


@pytest.fixture(scope="module")
def scored():
    """A real data set whose positive-class probabilities include many exact 0s and 1s:
    breast cancer (bundled with scikit-learn), a depth-3 tree fit on half, scored on the other
    half; the exact rows first, so the first labelled rows are ambiguous."""
    x, y = load_breast_cancer(return_X_y=True)
    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(x[::2], y[::2])
    xs, ys = x[1::2], y[1::2]
    p = tree.predict_proba(xs)[:, 1]
    exact = (p == 0.0) | (p == 1.0)
    order = np.argsort(~exact, kind="stable")
    assert 0.3 < exact.mean() < 0.5 and exact[order[:8]].all()
    # Confidently wrong rows exist: they are what probability metrics must not lose.
    assert ((p == 1.0) & (ys == 0)).any() or ((p == 0.0) & (ys == 1)).any()
    return xs[order], ys[order], p[order]


def _expected(y, p) -> dict[str, float]:
    return {"brier": brier_score_loss(y, p), "log_loss": log_loss(y, p, labels=[0, 1])}


def _probability_metrics(monitor: ModelMonitor) -> dict[str, float]:
    metrics = monitor.performance_report().metrics
    return {k: metrics[k] for k in ("brier", "log_loss") if k in metrics}


def _exported(reader, name: str) -> dict[str, float]:
    return {a["ml.performance.metric"]: v for a, v in points(reader, "ml.model.performance")
            if a["ml.model.name"] == name and a["ml.segment"] == "__all__"
            and a["ml.performance.metric"] in ("brier", "log_loss")}


def test_two_batches_the_second_only_zeros_and_ones(providers, metric_reader):
    monitor = ModelMonitor("two", task="classification", **providers)
    monitor.record_outcomes([1, 0], [0.8, 0.3])
    monitor.record_outcomes([1, 0], [1.0, 1.0])
    want = _expected([1, 0, 1, 0], [0.8, 0.3, 1.0, 1.0])  # 0.2825 and 9.16
    got = _probability_metrics(monitor)
    assert got == pytest.approx(want, abs=1e-9)
    assert _exported(metric_reader, "two") == pytest.approx(want, abs=1e-9)
    assert monitor.performance_report().count == 4


def test_ambiguous_batches_first_wait_for_the_decision(providers):
    monitor = ModelMonitor("first", task="classification", **providers)
    monitor.record_outcomes([1, 0], [1.0, 1.0])
    assert _probability_metrics(monitor) == {}  # labels or probabilities: not decided yet
    assert monitor.performance_report().count == 2  # the labels count already
    monitor.record_outcomes([1, 0], [0.8, 0.3])
    want = _expected([1, 0, 1, 0], [1.0, 1.0, 0.8, 0.3])
    assert _probability_metrics(monitor) == pytest.approx(want, abs=1e-9)


@pytest.mark.parametrize("batch", [1, 4, None])
def test_decorator_matches_scikit_learn(providers, metric_reader, scored, batch):
    """One row at a time, 4 rows at a time, or all at once through the decorator: the same
    Brier score and log loss as scikit-learn, in the report and in the exported gauge."""
    x, y, p = scored
    by_row = dict(zip(map(bytes, x), p))
    name = f"tree{batch}"

    @otel_ml.instrument_model(name=name, task="classification", **providers)
    def predict(rows, prediction_id=None):
        return np.array([by_row[bytes(r)] for r in np.atleast_2d(rows)])

    size = len(y) if batch is None else batch
    for start in range(0, len(y), size):
        rows = x[start:start + size]
        predict(rows[0] if size == 1 else rows, prediction_id=f"r{start}")
    for start in range(0, len(y), size):
        labels = y[start:start + size]
        predict.monitor.record_outcome(f"r{start}", labels[0] if size == 1 else labels)
    want = _expected(y, p)
    assert predict.monitor.performance_report().count == len(y)
    assert _probability_metrics(predict.monitor) == pytest.approx(want, abs=1e-9)
    assert _exported(metric_reader, name) == pytest.approx(want, abs=1e-9)


def test_record_outcomes_row_by_row_matches_scikit_learn(providers, scored):
    _, y, p = scored
    monitor = ModelMonitor("rows", task="classification", **providers)
    for label, prob in zip(y.tolist(), p.tolist()):
        monitor.record_outcomes([label], [prob])
    assert _probability_metrics(monitor) == pytest.approx(_expected(y, p), abs=1e-9)


def test_reference_decides_before_any_batch(providers, scored, caplog):
    x, y, p = scored
    reference = otel_ml.Reference.from_data(x, predictions=p)
    monitor = ModelMonitor("ref", task="classification", reference=reference, **providers)
    with caplog.at_level(logging.INFO, logger="otel_ml"):
        monitor.record_outcomes(y[:4], p[:4])  # only exact 0/1: read as probabilities at once
        monitor.record_outcomes(y[4:8], p[4:8])
    assert _probability_metrics(monitor) == pytest.approx(_expected(y[:8], p[:8]), abs=1e-9)
    told = [r.getMessage() for r in caplog.records if "are read as" in r.getMessage()]
    assert told == ["otel_ml: model 'ref': predictions are read as probabilities (floats "
                    "within [0, 1], some strictly between): shown by the reference profile's "
                    "predictions"]


def test_declared_labels(providers, metric_reader):
    monitor = ModelMonitor("labels", task="classification", output="label", **providers)
    y = [1, 0, 1, 1, 0]
    pred = [1.0, 0.0, 0.0, 1.0, 1.0]  # floats, read as classes: no probability metrics
    monitor.record_outcomes(y, pred)
    report = monitor.performance_report()
    assert report.metrics["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert "brier" not in report.metrics and "log_loss" not in report.metrics
    monitor.record_outcomes([1, 0], [0.9, 0.2])  # fractions contradict labels
    assert monitor.performance_report().unmatched == {Unmatched.OUTPUT_MISMATCH: 2}
    assert monitor.performance_report().count == 5


def test_ambiguous_rows_are_dropped_from_probability_metrics_when_labels_are_decided(providers):
    monitor = ModelMonitor("late", task="classification", **providers)
    monitor.record_outcomes([1, 0], [1.0, 1.0])  # waits
    monitor.record_outcomes([2, 0], [2.0, 0.0])  # whole numbers beyond 1: class labels
    monitor.record_outcomes([1, 0], [0.0, 0.0])  # labels now, never probabilities
    report = monitor.performance_report()
    assert "brier" not in report.metrics and report.count == 6
    assert report.metrics["accuracy"] == pytest.approx(4 / 6)


def test_declared_scores_give_labels_only(providers):
    monitor = ModelMonitor("scores", task="classification", output="score", **providers)
    monitor.record_outcomes([1, 0, 1, 0], [0.4, -2.0, 3.5, 0.2])  # positive above 0
    report = monitor.performance_report()
    assert report.metrics["accuracy"] == pytest.approx(0.75)
    assert "brier" not in report.metrics and "log_loss" not in report.metrics
    monitor.record_outcomes(["1"], ["yes"])  # strings are not scores
    assert monitor.performance_report().unmatched == {Unmatched.OUTPUT_MISMATCH: 1}


def test_declared_output_is_validated(providers):
    with pytest.raises(ValueError, match="output must be one of"):
        ModelMonitor("bad", output="probability", **providers)
    with pytest.raises(ValueError, match="describes a classifier"):
        ModelMonitor("bad", task="regression", output="proba", **providers)


def test_contradicting_batches_are_a_data_quality_signal(providers, metric_reader):
    monitor = ModelMonitor("contra", task="classification", **providers)
    monitor.record_outcomes([1, 0], [0.8, 0.3])  # decides: one column of probabilities
    monitor.record_outcomes([1, 0, 1], [1.7, -0.2, 0.9])  # outside [0, 1]: never raises
    monitor.record_outcomes([1, 0], [[0.2, 0.8], [0.6, 0.4]])  # another number of columns
    monitor.record_outcomes([1, 0], [1, 0])  # integers: labels, not probabilities
    monitor.record_outcomes([0], [0.0])  # agrees
    report = monitor.performance_report()
    assert report.unmatched == {Unmatched.OUTPUT_MISMATCH: 7}
    want = _expected([1, 0, 0], [0.8, 0.3, 0.0])
    assert _probability_metrics(monitor) == pytest.approx(want, abs=1e-9)
    assert report.count == 3
    unmatched = {a["ml.reason"]: v for a, v in points(metric_reader, "ml.model.outcomes.unmatched")
                 if a["ml.model.name"] == "contra"}
    assert unmatched == {Unmatched.OUTPUT_MISMATCH: 7}


def test_wrap_model_predict_proba_is_probabilities(providers, scored):
    x, y, _ = scored
    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(x, y)
    model = otel_ml.wrap_model(tree, "wrapped", task="classification", **providers)
    proba = model.predict_proba(x[:3], prediction_id="a")  # (3, 2): exact 0/1 rows included
    model.monitor.record_outcome("a", y[:3])
    want = _expected(y[:3], proba[:, 1])
    assert _probability_metrics(model.monitor) == pytest.approx(want, abs=1e-9)


@pytest.mark.parametrize(("values", "kind"), [
    ([0.0, 1.0, 1.0], None),
    ([np.nan, 1.0], None),
    ([0.0, 0.5], PROBA),
    ([[0.0, 1.0], [1.0, 0.0]], PROBA),
    ([[2.0, -1.0]], SCORE),
    ([1, 0], LABEL),
    (["yes", "no"], LABEL),
    ([True, False], LABEL),
    ([2.0, 0.0, 1.0], LABEL),
    ([-0.5, 0.2], SCORE),
    ([np.inf, 2.0], LABEL),
    ([np.inf, 0.5], SCORE),
])
def test_what_a_batch_shows(values, kind):
    assert batch_kind(np.array(values)) == kind


def test_unmatched_reasons_follow_the_contract():
    assert tuple(UNMATCHED_REASONS) == Unmatched.ALL
