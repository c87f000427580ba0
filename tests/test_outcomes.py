"""Outcomes joined to predictions: counters, gauges, span links, store bounds, bad input."""

from __future__ import annotations

import math
import random
import threading
import tracemalloc

import numpy as np
import pytest
from conftest import collect, points
from opentelemetry.trace import SpanContext, TraceFlags
from sklearn import metrics as skm

import otel_ml
from otel_ml import ModelMonitor
from otel_ml._internal.core.caps import CappedValues
from otel_ml._internal.core.instruments import instruments_for, tracer_for
from otel_ml._internal.core.state import Switch
from otel_ml._internal.monitor.analysis import Analysis
from otel_ml._internal.monitor.batch import Batch, RowBins
from otel_ml._internal.monitor.outcome_analysis import OutcomeAnalysis
from otel_ml._internal.monitor.settings import Settings
from otel_ml.contract import ALL_SEGMENTS, NO_SEGMENT, OTHER

MODEL = {"ml.model.name": "m", "ml.model.version": "1"}


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _monitor(providers, **options) -> ModelMonitor:
    return ModelMonitor("m", "1", **providers, **options)


class _NoFeatures:
    """The feature side without a reference: no bins (the real interface of FeatureIngest)."""

    def __init__(self) -> None:
        self.bin_requests = 0

    def batch_of(self, x, rows=None):
        return Batch(_Columns(), x, 1 if rows is None else rows, None)

    def bin_rows(self, batch) -> RowBins | None:
        self.bin_requests += 1
        return None

    def bin_label(self, feature: str, index: int) -> str:
        return str(index)


class _Columns:
    """Reads columns of a dict input (the BatchReader interface)."""

    def column_of(self, x, name):
        return None if not isinstance(x, dict) or name not in x else np.asarray(x[name])


def _analysis(providers, *, features=None, reference=None, clock=None, **options):
    """The outcome side alone, on a clock the test moves (protocol-level tests)."""
    settings = Settings.create("m", "1", **options)
    return OutcomeAnalysis(
        settings, reference=reference, features=features or _NoFeatures(),
        tracer=tracer_for(providers["tracer_provider"]),
        instruments=instruments_for(providers["meter_provider"]), switch=Switch(),
        segment_values=CappedValues("segment", settings.max_segments, settings.segments),
        clock=clock or Clock())


def _collected(analysis, name, key):
    return {attrs[key]: value for value, attrs in analysis.collectors()[name]()}


def _by(reader, name, key):
    return {attrs[key]: value for attrs, value in points(reader, name)}


def _decorated(providers, fn, **options):
    ids = []

    @otel_ml.instrument_model(name="m", version="1", **providers, **options)
    def predict(x):
        ids.append(otel_ml.current_prediction_id())
        return fn(x)

    return predict, ids


# ------------------------------------------------------------------ classification
def test_confusion_counters_gauges_and_report_for_labels(providers, metric_reader):
    predict, ids = _decorated(providers, lambda x: np.asarray(x) > 0)
    for x in (1, -1, 2, -3, 4):
        predict(np.array([x]))
    monitor = predict.monitor
    for pid, actual in zip(ids, (1, 1, 0, 0, 1)):  # predicted 1 0 1 0 1
        monitor.record_outcome(pid, actual)

    counts = {(a["ml.class.predicted"], a["ml.class.actual"]): v
              for a, v in points(metric_reader, "ml.model.outcomes")}
    assert counts == {("1", "1"): 2, ("0", "1"): 1, ("1", "0"): 1, ("0", "0"): 1}
    attrs, _ = points(metric_reader, "ml.model.outcomes")[0]
    assert set(attrs) == {*MODEL, "ml.segment", "ml.class.predicted", "ml.class.actual"}
    assert attrs["ml.segment"] == NO_SEGMENT

    perf = {(a["ml.segment"], a["ml.performance.metric"]): v
            for a, v in points(metric_reader, "ml.model.performance")}
    assert perf[(ALL_SEGMENTS, "accuracy")] == pytest.approx(3 / 5)
    assert perf[(ALL_SEGMENTS, "precision")] == pytest.approx(2 / 3)
    assert perf[(ALL_SEGMENTS, "recall")] == pytest.approx(2 / 3)
    assert perf[(ALL_SEGMENTS, "count")] == 5
    assert {s for s, _ in perf} == {ALL_SEGMENTS}  # no segments in use: no duplicate series

    report = monitor.performance_report()
    assert report.task == "classification" and report.count == 5
    assert report.metrics["accuracy"] == pytest.approx(0.6)
    assert report.per_class["1"]["support"] == 3
    assert monitor.resolved_task == "classification"
    assert _by(metric_reader, "ml.model.info", "ml.model.task") == {"classification": 1}


def test_outcome_span_links_to_the_prediction_span(providers, span_exporter):
    predict, ids = _decorated(providers, lambda x: np.array(["spam"]))
    predict(np.array([0.5]))
    predict.monitor.record_outcome(ids[0], "spam")
    spans = span_exporter.get_finished_spans()
    predict_span = next(s for s in spans if s.name == "ml.predict m")
    outcome_span = next(s for s in spans if s.name == "ml.outcome m")
    assert [link.context.span_id for link in outcome_span.links] == [predict_span.context.span_id]
    assert outcome_span.links[0].context.trace_id == predict_span.context.trace_id
    assert outcome_span.attributes["ml.prediction.id"] == ids[0]
    assert outcome_span.attributes["ml.model.name"] == "m"
    assert outcome_span.instrumentation_scope.name == "otel_ml"
    # aggregates only: no label value on the span
    assert "spam" not in [str(v) for v in outcome_span.attributes.values()]


def test_user_prediction_id(providers, metric_reader):
    monitor = _monitor(providers)

    @monitor
    def predict(x, prediction_id=None):
        return np.array(["cat"])

    predict(np.zeros(2), prediction_id="order-42")
    monitor.record_outcome("order-42", "cat")
    assert _by(metric_reader, "ml.model.outcomes", "ml.class.actual") == {"cat": 1}


def test_probabilities_give_brier_and_log_loss_like_sklearn(providers):
    rng = np.random.default_rng(0)
    p1 = rng.uniform(0.05, 0.95, 300)
    proba = np.column_stack([1 - p1, p1])
    y = (rng.uniform(size=300) < p1).astype(int)
    predict, ids = _decorated(providers, lambda x: proba[int(x[0])][None, :])
    for i in range(300):
        predict(np.array([i, 0.0]))
    monitor = predict.monitor
    for pid, actual in zip(ids, y):
        monitor.record_outcome(pid, int(actual))
    m = monitor.performance_report().metrics
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, p1), abs=1e-9)
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, proba), abs=1e-9)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, p1 >= 0.5), abs=1e-9)
    assert m["f1"] == pytest.approx(skm.f1_score(y, p1 >= 0.5), abs=1e-9)


def test_threshold_turns_probability_into_the_positive_class(providers, metric_reader):
    monitor = _monitor(providers, threshold=0.8)
    monitor.record_outcomes([1, 1, 0], np.array([[0.3, 0.7], [0.1, 0.9], [0.85, 0.15]]))
    counts = {(a["ml.class.predicted"], a["ml.class.actual"]): v
              for a, v in points(metric_reader, "ml.model.outcomes")}
    assert counts == {("0", "1"): 1, ("1", "1"): 1, ("0", "0"): 1}


def test_batch_outcomes_match_sklearn_and_segments(providers, metric_reader):
    rng = np.random.default_rng(1)
    n = 1000
    y_true = rng.integers(0, 3, n)
    y_pred = np.where(rng.uniform(size=n) < 0.7, y_true, rng.integers(0, 3, n))
    segments = np.where(np.arange(n) < 600, "north", "south")
    monitor = _monitor(providers)
    monitor.record_outcomes(y_true, y_pred, segments=segments)
    report = monitor.performance_report()
    assert report.metrics["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred), abs=1e-9)
    assert report.metrics["f1_macro"] == pytest.approx(
        skm.f1_score(y_true, y_pred, average="macro"), abs=1e-9)
    south = segments == "south"
    assert report.by_segment["south"]["accuracy"] == pytest.approx(
        skm.accuracy_score(y_true[south], y_pred[south]), abs=1e-9)
    total = sum(v for _, v in points(metric_reader, "ml.model.outcomes"))
    assert total == n
    by_seg = {}
    for attrs, v in points(metric_reader, "ml.model.outcomes"):
        by_seg[attrs["ml.segment"]] = by_seg.get(attrs["ml.segment"], 0) + v
    assert by_seg == {"north": 600, "south": 400}
    perf_segments = {a["ml.segment"] for a, _ in points(metric_reader, "ml.model.performance")}
    assert perf_segments == {ALL_SEGMENTS, "north", "south"}


def test_class_labels_are_capped(providers, metric_reader):
    monitor = _monitor(providers)
    labels = np.arange(80)
    monitor.record_outcomes(labels, labels)
    actual = {a["ml.class.actual"] for a, _ in points(metric_reader, "ml.model.outcomes")}
    assert len(actual) == 51 and OTHER in actual


# ------------------------------------------------------------------ regression
def test_regression_error_histogram_in_the_outcome_span_and_squared_sum(
        providers, metric_reader, span_exporter):
    predict, ids = _decorated(providers, lambda x: np.array([2.0 * x[0]]), task="regression")
    for x in (1.0, 2.0, 3.0):
        predict(np.array([x]))  # predictions 2, 4, 6
    monitor = predict.monitor
    for pid, actual in zip(ids, (2.5, 3.0, 9.0)):  # errors -0.5, 1, -3
        monitor.record_outcome(pid, actual)
    [(attrs, hist)] = points(metric_reader, "ml.model.error.absolute")
    assert attrs == {**MODEL, "ml.segment": NO_SEGMENT}
    assert (hist.count, hist.sum) == (3, pytest.approx(4.5))
    assert _by(metric_reader, "ml.model.error.squared", "ml.segment") == {
        NO_SEGMENT: pytest.approx(10.25)}
    m = monitor.performance_report().metrics
    assert (m["mae"], m["rmse"]) == (pytest.approx(1.5), pytest.approx(math.sqrt(10.25 / 3)))
    # the exemplars point at the outcome spans
    outcome_spans = {s.context.span_id for s in span_exporter.get_finished_spans()
                     if s.name == "ml.outcome m"}
    assert hist.exemplars and {e.span_id for e in hist.exemplars} <= outcome_spans


# ------------------------------------------------------------------ bad input
def test_unmatched_reasons_are_counted_and_never_raised(providers, metric_reader, caplog):
    predict, ids = _decorated(providers, lambda x: np.array([[0.2, 0.8]] * len(x)))
    for _ in range(5):
        predict(np.zeros((2, 3)))
    monitor = predict.monitor
    monitor.record_outcome("never-seen", 1)
    monitor.record_outcome(ids[0], [1, 0])
    monitor.record_outcome(ids[0], [1, 0])  # again: duplicate
    monitor.record_outcome(ids[1], [1, 0, 1])  # 3 labels for 2 rows
    monitor.record_outcome(ids[2], [float("nan"), 1.0])  # one row scored, one missing
    monitor.record_outcome(ids[3], [7, 1])  # 7 is not a class of the probabilities
    monitor.record_outcome(ids[4], object())
    monitor.record_outcome(None, None)
    unmatched = _by(metric_reader, "ml.model.outcomes.unmatched", "ml.reason")
    assert unmatched == {"unknown_id": 2, "duplicate": 2, "wrong_shape": 4, "missing_label": 1,
                         "unseen_class": 1}
    assert sum(v for _, v in points(metric_reader, "ml.model.outcomes")) == 2 + 1 + 1
    assert "not scored" in caplog.text


def test_regression_rejects_non_numeric_labels(providers, metric_reader):
    monitor = _monitor(providers, task="regression")
    monitor.record_outcomes(["a", "b"], [1.0, 2.0])
    assert _by(metric_reader, "ml.model.outcomes.unmatched", "ml.reason") == {"wrong_type": 2}
    monitor.record_outcomes([1.0, None], [1.0, 2.0])
    monitor.record_outcomes(np.array([1.0, np.nan]), [1.0, 2.0])
    assert _by(metric_reader, "ml.model.outcomes.unmatched", "ml.reason")["missing_label"] == 2
    assert monitor.performance_report().count == 2


def test_late_labels_beyond_the_ttl_are_unmatched(providers):
    clock = Clock()
    outcomes = _analysis(providers, clock=clock, outcome_ttl_s=60.0)
    outcomes.remember("a", None, np.array([1]), "auto", None, None)
    outcomes.remember("b", None, np.array([1]), "auto", None, None)
    clock.t += 30
    outcomes.record_outcome("a", 1)  # in time
    clock.t += 31
    outcomes.remember("c", None, np.array([1]), "auto", None, None)  # purges "b"
    outcomes.record_outcome("b", 1)  # 61 s old
    clock.t += 61
    outcomes.record_outcome("c", 1)  # expired, not purged yet
    assert _collected(outcomes, "ml.model.outcomes.unmatched", "ml.reason") == {"expired": 2}
    assert outcomes.performance_report().store["expired"] == 2


# ------------------------------------------------------------------ concurrency and memory
def test_concurrent_outcomes_give_exact_counts(providers):
    outcomes = _analysis(providers)
    n = 4000
    for i in range(n):
        outcomes.remember(str(i), None, np.array([i % 3]), "label", None, None)
    errors = []

    def label(worker: int) -> None:
        try:
            for i in range(worker, n, 8):
                outcomes.record_outcome(str(i), (i % 3) if i % 4 else (i + 1) % 3)
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=label, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    counts = list(outcomes.collectors()["ml.model.outcomes"]())
    assert sum(v for v, _ in counts) == n
    wrong = sum(v for v, a in counts if a["ml.class.predicted"] != a["ml.class.actual"])
    assert wrong == n // 4
    assert outcomes.performance_report().metrics["accuracy"] == pytest.approx(0.75)
    assert outcomes.store_stats()["records"] == 0


def test_store_is_bounded_by_count(providers):
    outcomes = _analysis(providers, outcome_store_size=1000)
    prediction = np.array([1.0])
    for i in range(100_000):
        outcomes.remember(format(i, "016x"), None, prediction, "auto", None, None)
    stats = outcomes.store_stats()
    assert stats["records"] == 1000 and stats["evicted"] == 99_000
    assert stats["bytes"] <= 1000 * 800
    # steady state: once every record and tombstone alive was allocated under tracing,
    # 20k more calls leave nothing behind
    tracemalloc.start()
    try:
        for i in range(100_000, 105_000):
            outcomes.remember(format(i, "016x"), None, prediction, "auto", None, None)
        before = tracemalloc.take_snapshot()
        for i in range(105_000, 125_000):
            outcomes.remember(format(i, "016x"), None, prediction, "auto", None, None)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert abs(grown) < 20_000, grown
    outcomes.record_outcome(format(123_500, "016x"), 1.0)  # evicted recently: said so
    outcomes.record_outcome(format(0, "016x"), 1.0)  # evicted long ago: forgotten
    assert outcomes.performance_report().unmatched == {"evicted": 1, "unknown_id": 1}


class _Context:
    """What the store reads of a span context (cheaper to make than the SDK's, under
    tracemalloc)."""

    __slots__ = ("span_id", "trace_flags", "trace_id")

    def __init__(self, trace_id: int, span_id: int) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.trace_flags = 1


def test_default_store_of_single_row_calls_stays_within_its_memory_bound(providers,
                                                                         span_exporter):
    """200k single-row calls (span-id ids, input row held for the reference bins) with the
    default settings: what the store keeps, measured by tracemalloc, stays under 4 MiB
    (the bound docs/configuration.md states), flat once full, and store_stats() says so."""
    from otel_ml._internal.monitor.feature_ingest import FeatureIngest

    rng = np.random.default_rng(3)
    reference = otel_ml.Reference.from_data(rng.normal(size=(2000, 20)))
    settings = Settings.create("m", "1")
    ingest = FeatureIngest(settings, reference, CappedValues("segment", 20))
    outcomes = _analysis(providers, features=ingest, reference=reference)
    x = rng.normal(size=(1, 20))
    batch = ingest.prepare(x, np.array([0.5]), segment=None, output="auto")
    assert batch is not None and batch.rows == 1
    prediction = np.array([0.5])
    remember = outcomes.remember

    def calls(start: int, stop: int) -> None:
        for i in range(start, stop):  # span contexts as the SDK's: ints made for each call
            span_id = (i * 0x9E3779B97F4A7C15 + 12345) & 0xFFFF_FFFF_FFFF_FFFF | 1
            ctx = _Context(span_id << 64 | i, span_id)
            remember(format(span_id, "016x"), batch, prediction, "auto", ctx, None)

    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        outcomes.after_fork()  # the store, allocated under tracing
        calls(0, 100_000)
        half = tracemalloc.get_traced_memory()[0] - base
        calls(100_000, 200_000)
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    stats = outcomes.store_stats()
    assert stats["records"] == 10_000 and stats["evicted"] == 190_000
    assert held < 4 * 2**20, held
    assert abs(held - half) < 50_000, (half, held)  # flat once full
    assert 0.7 * held < stats["bytes"] < 1.3 * held, (stats["bytes"], held)  # honest count
    # the latest calls are still joinable, link to their span, and bin the row they held
    ids = random.Random(4)
    span_id = ids.getrandbits(64) | 1
    trace_id = ids.getrandbits(128) | 1
    ctx = SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(1))
    outcomes.remember(format(span_id, "016x"), batch, prediction, "auto", ctx, None)
    outcomes.record_outcome(format(span_id, "016x"), 0.25)
    [span] = [s for s in span_exporter.get_finished_spans() if s.name == "ml.outcome m"]
    [link] = span.links
    assert (link.context.trace_id, link.context.span_id) == (trace_id, span_id)
    assert link.context.trace_flags == 1
    report = outcomes.performance_report()
    assert report.count == 1 and report.metrics["mae"] == pytest.approx(0.25)
    row_bins = ingest.bin_rows(batch)
    expected = {f: {ingest.bin_label(f, int(b)): {"count": 1.0, "error": pytest.approx(0.25)}}
                for f, b in zip(row_bins.features, row_bins.bins[0].tolist()) if b >= 0}
    assert expected and report.error_by_bin == expected


def test_store_is_bounded_by_bytes(providers):
    outcomes = _analysis(providers, outcome_store_bytes=1_000_000)
    big = np.zeros(10_000)  # 80 kB of predictions per call
    for i in range(50):
        outcomes.remember(str(i), None, big, "auto", None, None)
    stats = outcomes.store_stats()
    assert stats["bytes"] <= 1_000_000 and stats["records"] == 12
    # the stored predictions are a private copy
    mutable = np.array([1.0])
    outcomes.remember("x", None, mutable, "auto", None, None)
    mutable[0] = 100.0
    outcomes.record_outcome("x", 1.0)
    assert outcomes.performance_report().metrics["mae"] == 0.0


# ------------------------------------------------------------------ window
def test_windowed_gauges_forget_old_slots_but_counters_do_not(providers):
    clock = Clock()
    outcomes = _analysis(providers, clock=clock, drift_window_s=600, slot_s=60)
    outcomes.record_outcomes([1, 1], [1, 0])
    clock.t += 300
    outcomes.record_outcomes([1, 1], [1, 1])
    assert outcomes.performance_report().metrics["accuracy"] == pytest.approx(0.75)
    clock.t += 400  # the first batch left the window
    assert outcomes.performance_report().metrics["accuracy"] == 1.0
    clock.t += 600
    assert outcomes.performance_report().count == 0
    assert list(outcomes.collectors()["ml.model.performance"]()) == []
    assert sum(v for v, _ in outcomes.collectors()["ml.model.outcomes"]()) == 4


# ------------------------------------------------------------------ reference, attributions
def test_reference_performance_and_attribution_drift(providers, metric_reader):
    reference = otel_ml.Reference.from_data(
        np.random.default_rng(0).normal(size=(100, 2)), feature_names=["age", "income"],
        performance={"accuracy": 0.9, "f1_macro": 0.85},
        attributions={"age": 0.5, "income": 0.2})
    monitor = _monitor(providers, reference=reference)
    monitor.record_outcomes([1, 1, 0, 0, 1], [1, 0, 0, 1, 1])
    assert _by(metric_reader, "ml.model.performance.reference", "ml.performance.metric") == {
        "accuracy": 0.9, "f1_macro": 0.85}
    report = monitor.performance_report()
    assert report.delta["accuracy"] == pytest.approx(0.6 - 0.9)

    monitor.record_attributions(np.array([[0.4, -0.1, 1.0], [-0.6, 0.3, 0.0]]),
                                feature_names=["age", "income", "tenure"])
    assert _by(metric_reader, "ml.feature.attribution", "ml.feature.name") == {
        "age": pytest.approx(0.5), "income": pytest.approx(0.2), "tenure": pytest.approx(0.5)}
    monitor.record_attributions({"age": [1.5], "income": [0.2], "tenure": [0.5]})
    drift = _by(metric_reader, "ml.feature.attribution.drift", "ml.feature.name")
    # age: (0.4 + 0.6 + 1.5) / 3 = 5/6 against 0.5; tenure has no reference value
    assert drift == {"age": pytest.approx((5 / 6) / 0.5 - 1), "income": pytest.approx(0.0)}
    # unnamed columns take the reference's feature names
    monitor.record_attributions(np.array([[0.5, 0.2]]))
    assert set(_by(metric_reader, "ml.feature.attribution", "ml.feature.name")) == {
        "age", "income", "tenure"}


def test_bad_attributions_are_dropped(providers, metric_reader, caplog):
    monitor = _monitor(providers)
    monitor.record_attributions(np.ones((2, 3)), feature_names=["a", "b"])
    monitor.record_attributions("not numbers")
    monitor.record_attributions(np.ones((2, 2, 2)))
    assert points(metric_reader, "ml.feature.attribution") == []
    assert "attributions" in caplog.text


# ------------------------------------------------------------------ fairness
def test_fairness_gauges_and_insufficient_groups(providers, metric_reader):
    monitor = _monitor(providers, sensitive_attribute="sex")
    # A: 40 rows selection .5 TPR .75 FPR .25; B: 50 rows selection .2 TPR .5 FPR 0; C: 5 rows
    y_true = [1] * 15 + [0] * 5 + [1] * 5 + [0] * 15 + [1] * 10 + [1] * 10 + [0] * 30 + [1] * 5
    y_pred = [1] * 15 + [1] * 5 + [0] * 5 + [0] * 15 + [1] * 10 + [0] * 10 + [0] * 30 + [1] * 5
    groups = ["A"] * 40 + ["B"] * 50 + ["C"] * 5
    monitor.record_outcomes(y_true, y_pred, groups=groups)
    rates = {(a["ml.fairness.group"], a["ml.fairness.metric"]): v
             for a, v in points(metric_reader, "ml.fairness.group.rate")}
    assert rates == {("A", "selection_rate"): 0.5, ("A", "true_positive_rate"): 0.75,
                     ("A", "false_positive_rate"): 0.25, ("B", "selection_rate"): 0.2,
                     ("B", "true_positive_rate"): 0.5, ("B", "false_positive_rate"): 0.0}
    gaps = _by(metric_reader, "ml.fairness.gap", "ml.fairness.metric")
    assert gaps == {"demographic_parity_difference": pytest.approx(0.3),
                    "disparate_impact_ratio": pytest.approx(0.4),
                    "equalized_odds_difference": pytest.approx(0.25)}
    attrs, _ = points(metric_reader, "ml.fairness.gap")[0]
    assert attrs["ml.fairness.attribute"] == "sex"
    fairness = monitor.performance_report().fairness
    assert fairness.insufficient_groups == ["C"] and fairness.groups["C"].count == 5


def test_fairness_misuse_fails_fast(providers):
    with pytest.raises(ValueError, match="regression"):
        ModelMonitor("m", task="regression", sensitive_attribute="sex", **providers)
    with pytest.raises(TypeError, match="sensitive_attribute"):
        ModelMonitor("m", sensitive_attribute=3, **providers)
    monitor = ModelMonitor("m", **providers)
    with pytest.raises(ValueError, match="sensitive_attribute"):
        monitor.record_outcomes([1], [1], groups=["a"])


# ------------------------------------------------------------------ concept drift
def test_concept_drift_counter_and_state(providers):
    clock = Clock()
    outcomes = _analysis(providers, clock=clock)
    rng = np.random.default_rng(7)
    y_true = rng.integers(0, 2, 2000)
    wrong = np.concatenate([rng.uniform(size=1000) < 0.1, rng.uniform(size=1000) < 0.5])
    y_pred = np.where(wrong, 1 - y_true, y_true)
    outcomes.record_outcomes(y_true[:1000], y_pred[:1000])
    assert _collected(outcomes, "ml.concept_drift.state", "ml.detector") == {
        "page_hinkley": 0, "adwin": 0, "ddm": 0}
    outcomes.record_outcomes(y_true[1000:], y_pred[1000:])
    detections = _collected(outcomes, "ml.concept_drift.detections", "ml.detector")
    assert detections["page_hinkley"] >= 1 and detections["adwin"] >= 1
    assert detections["ddm"] >= 1
    assert _collected(outcomes, "ml.concept_drift.state", "ml.detector") == {
        "page_hinkley": 1, "adwin": 1, "ddm": 1}
    assert outcomes.performance_report().concept_drift_detected
    clock.t += 3600 + 1  # the drift window
    assert _collected(outcomes, "ml.concept_drift.state", "ml.detector") == {
        "page_hinkley": 0, "adwin": 0, "ddm": 0}


def test_regression_concept_drift_on_scaled_errors(providers, metric_reader):
    monitor = _monitor(providers, task="regression")
    rng = np.random.default_rng(3)
    y = rng.normal(100, 10, 3000)
    noise = np.concatenate([rng.normal(0, 1000, 1500), rng.normal(0, 3000, 1500)])
    monitor.record_outcomes(y[:1500], y[:1500] + noise[:1500])
    assert sum(_by(metric_reader, "ml.concept_drift.detections", "ml.detector").values()) == 0
    monitor.record_outcomes(y[1500:], y[1500:] + noise[1500:])
    assert _by(metric_reader, "ml.concept_drift.detections", "ml.detector")["adwin"] >= 1


# ------------------------------------------------------------------ batches from the features side
class _Bins(_NoFeatures):
    """A feature side with fixed reference bins (the real interface of FeatureIngest)."""

    def __init__(self, bins):
        super().__init__()
        self.bins = bins

    def bin_rows(self, batch) -> RowBins | None:
        self.bin_requests += 1
        return RowBins(("age", "income"), self.bins)

    def bin_label(self, feature, index):
        return f"b{index}"


def test_error_rate_by_bin_segments_and_groups_from_the_batch(providers):
    bins = np.array([[0, 2], [1, 2], [1, 0], [1, -1]])  # -1: missing value, no bin
    reference = otel_ml.Reference.from_data(np.zeros((10, 2)), feature_names=["age", "income"])
    outcomes = _analysis(providers, features=_Bins(bins), reference=reference,
                         sensitive_attribute="sex")
    batch = Batch(_Columns(), {"sex": ["f", "m", "f", "m"]}, 4, None,
                  segments=np.array(["web", "web", "app", "app"], dtype=object))
    outcomes.remember("p", batch, np.array([1, 1, 0, 0]), "label", None, None)
    outcomes.record_outcome("p", np.array([1, 0, 0, 1]))  # wrong: rows 1 and 3
    by_bin = {(a["ml.feature.name"], a["ml.feature.bin"]): v
              for v, a in outcomes.collectors()["ml.model.error_rate.by_bin"]()}
    assert by_bin == {("age", "b0"): 0.0, ("age", "b1"): pytest.approx(2 / 3),
                      ("income", "b0"): 0.0, ("income", "b2"): 0.5}
    segs = {}
    for v, attrs in outcomes.collectors()["ml.model.outcomes"]():
        segs[attrs["ml.segment"]] = segs.get(attrs["ml.segment"], 0) + v
    assert segs == {"web": 2, "app": 2}
    report = outcomes.performance_report()
    assert report.by_segment["app"]["accuracy"] == 0.5
    assert report.error_by_bin["age"]["b1"] == {"count": 3.0, "error": pytest.approx(2 / 3)}
    assert report.fairness.groups["f"].count == 2 and not report.fairness.groups["f"].sufficient


def test_bins_are_not_requested_without_a_reference(providers):
    features = _Bins(np.array([[0, 1]]))
    outcomes = _analysis(providers, features=features, sensitive_attribute="sex")
    batch = Batch(_Columns(), {"sex": ["f"]}, 1, None)
    outcomes.remember("p", batch, np.array([1]), "label", None, None)
    outcomes.record_outcome("p", 1)
    assert features.bin_requests == 0
    report = outcomes.performance_report()
    assert report.count == 1 and report.error_by_bin == {}
    assert report.fairness.groups["f"].count == 1


# ------------------------------------------------------------------ access, fork
def test_rejected_requests_by_reason(providers, metric_reader):
    monitor = _monitor(providers)
    for reason in ("unauthorized", "unauthorized", "rate_limited"):
        monitor.record_rejected(reason)
    for i in range(40):
        monitor.record_rejected(f"r{i}")
    got = _by(metric_reader, "ml.model.requests.rejected", "ml.reason")
    assert got["unauthorized"] == 2 and got["rate_limited"] == 1
    assert len(got) == 33 and got[OTHER] == 40 - 30
    attrs, _ = points(metric_reader, "ml.model.requests.rejected")[0]
    assert set(attrs) == {*MODEL, "ml.reason"}


def test_after_fork_starts_empty(providers, metric_reader):
    monitor = _monitor(providers)

    @monitor
    def predict(x, prediction_id=None):
        return np.array([1])

    predict(np.zeros(2), prediction_id="p")
    monitor.record_outcomes([1], [1])
    assert monitor.performance_report().store["records"] == 1
    monitor.after_fork()
    assert points(metric_reader, "ml.model.outcomes") == []
    assert monitor.performance_report().store["records"] == 0
    monitor.record_outcome("p", 1)
    assert monitor.performance_report().unmatched == {"unknown_id": 1}


def test_every_collector_is_in_the_contract(providers):
    from otel_ml.contract import METRICS

    reference = otel_ml.Reference.from_data(np.zeros((10, 1)), feature_names=["a"],
                                            performance={"accuracy": 1.0},
                                            attributions={"a": 1.0})
    outcomes = _analysis(providers, reference=reference, sensitive_attribute="g")
    outcomes.record_outcomes([1, 0] * 40, [1, 1] * 40, segments="s", groups=["x", "y"] * 40)
    outcomes.record_attributions([[1.0]], ["a"])
    seen = set()
    for name, collector in outcomes.collectors().items():
        assert name in METRICS
        for _, attrs in collector():
            assert set(attrs) == set(METRICS[name].attributes) - set(MODEL), name
            seen.add(name)
    missing = set(outcomes.collectors()) - seen
    # regression only, bins only with a reference and batches, nothing unmatched
    assert missing == {"ml.model.error.squared", "ml.model.error_rate.by_bin",
                       "ml.model.outcomes.unmatched"}
    assert isinstance(outcomes, Analysis)
    assert outcomes.report()["performance"].count == 80


def test_real_batches_give_segments_groups_and_bins(providers, metric_reader):
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"age": rng.normal(40, 10, 1000), "income": rng.normal(50, 5, 1000),
                          "sex": rng.choice(["f", "m"], 1000),
                          "source": rng.choice(["web", "app"], 1000)})
    reference = otel_ml.Reference.from_data(frame[["age", "income"]])
    predict, ids = _decorated(providers, lambda df: (df["age"].to_numpy() > 40).astype(int),
                              reference=reference, segment_by="source",
                              sensitive_attribute="sex")
    batch, singles = frame.iloc[:300], frame.iloc[300:340]
    predict(batch)
    for i in range(len(singles)):
        predict(singles.iloc[i:i + 1])
    labelled = frame.iloc[:340]
    y = (labelled["income"].to_numpy() > 50).astype(int)
    monitor = predict.monitor
    monitor.record_outcome(ids[0], y[:300])
    for pid, actual in zip(ids[1:], y[300:]):
        monitor.record_outcome(pid, actual)
    wrong = int(((labelled["age"].to_numpy() > 40).astype(int) != y).sum())

    segs = {}
    for attrs, v in points(metric_reader, "ml.model.outcomes"):
        segs[attrs["ml.segment"]] = segs.get(attrs["ml.segment"], 0) + v
    assert segs == labelled["source"].value_counts().to_dict()
    report = monitor.performance_report()
    assert {g: r.count for g, r in report.fairness.groups.items()} == \
        labelled["sex"].value_counts().to_dict()
    assert set(report.error_by_bin) == {"age", "income"}
    for cells in report.error_by_bin.values():
        assert sum(c["count"] for c in cells.values()) == 340
        assert sum(c["count"] * c["error"] for c in cells.values()) == pytest.approx(wrong)
    by_bin = points(metric_reader, "ml.model.error_rate.by_bin")
    features = {attrs["ml.feature.name"] for attrs, _ in by_bin}
    assert features == {"age", "income"}


def test_single_rows_kept_compactly_score_like_one_batch(providers):
    """Single rows (1-D arrays, (1, F) arrays, lists) are kept as float rows in the store:
    their bins and sensitive groups come out as when the same rows arrive as one batch."""
    rng = np.random.default_rng(11)
    X = np.column_stack([rng.normal(40, 10, 200), rng.normal(50, 15, 200),
                         rng.integers(0, 2, 200)]).astype(float)
    y = (X[:, 1] > 50).astype(int)
    reference = otel_ml.Reference.from_data(X[:, :2], feature_names=["age", "income"])
    options = {"reference": reference, "feature_names": ["age", "income", "group"],
               "sensitive_attribute": "group", "task": "classification"}

    def model(x):
        return (np.asarray(x, dtype=float).reshape(-1, 3)[:, 0] > 40).astype(int)

    singles, ids = _decorated(providers, model, **options)
    for i, row in enumerate(X):
        singles([row, row.reshape(1, -1), row.tolist()][i % 3])
    # every row in the array of rows: about 0.2 kB a call with its 3 floats (a list held
    # beside the slot would cost more than 0.35 kB)
    assert singles.monitor.performance_report().store["bytes"] <= 200 * 200
    for pid, actual in zip(ids, y):
        singles.monitor.record_outcome(pid, actual)
    batched, batch_ids = _decorated(providers, model, **options)
    batched(X)
    batched.monitor.record_outcome(batch_ids[0], y)
    one, many = singles.monitor.performance_report(), batched.monitor.performance_report()
    assert one.count == many.count == 200 and one.unmatched == {}
    assert one.error_by_bin == many.error_by_bin and set(one.error_by_bin) == {"age", "income"}
    assert {g: r.count for g, r in one.fairness.groups.items()} == \
        {g: r.count for g, r in many.fairness.groups.items()}
    assert one.metrics["accuracy"] == many.metrics["accuracy"]


def test_single_row_fast_path_keeps_what_the_general_path_keeps(providers):
    """A float prediction of a single numeric row under the span's own id takes a short path
    into the store; every remembered record equals what the general path keeps."""
    from otel_ml._internal.monitor.feature_ingest import FeatureIngest
    from otel_ml._internal.monitor.prediction_store import PredictionStore
    from otel_ml._internal.stats.task import TaskGuess

    rng = np.random.default_rng(5)
    reference = otel_ml.Reference.from_data(rng.normal(size=(300, 4)))
    rows = [rng.normal(size=(1, 4)), rng.normal(size=4), rng.normal(size=(1, 4))]
    settings = Settings.create("m", "1", task="regression")
    ingest = FeatureIngest(settings, reference, CappedValues("segment", 20))
    seen, short = [], []
    for own_id in (True, False):
        store = PredictionStore(settings, TaskGuess("regression"), True, ingest, Clock())
        for i, x in enumerate(rows * 3):
            ctx = SpanContext(0xABC0 + i, 0x1000 + i, is_remote=False,
                              trace_flags=TraceFlags(TraceFlags.SAMPLED))
            batch = ingest.prepare(x, None, segment=None, output="score")
            store.remember(format(0x1000 + i, "016x"), batch, np.array([0.25 * i]), "score",
                           ctx, None, own_id)
        short.append(store.short_path_calls)
        seen.append([store.peek(format(0x1000 + i, "016x")) for i in range(9)])
        assert store.stats()["records"] == 9
    # The first call decides the row width and the float layout; the rest take the short path.
    assert short == [8, 0]
    fast, general = seen
    assert fast == general
    assert [r["row"] for r in fast] == [np.ravel(x).tolist() for x in rows * 3]
    assert {(r["trace_flags"], r["output"], r["rows"], r["segment"], r["extra"])
            for r in fast} == {(1, "score", 1, None, False)}
    assert [(r["trace_id"], r["span_id"], r["prediction"]) for r in fast] == [
        (0xABC0 + i, 0x1000 + i, [0.25 * i]) for i in range(9)]


def test_disabled_monitor_records_nothing(providers, metric_reader):
    monitor = _monitor(providers)
    monitor.switch.off = True
    monitor.record_outcome("p", 1)
    monitor.record_outcomes([1, 0], [1, 1])
    monitor.record_rejected("unauthorized")
    monitor.record_attributions([[1.0]], ["a"])
    assert collect_names(metric_reader) & {
        "ml.model.outcomes", "ml.model.outcomes.unmatched", "ml.model.requests.rejected",
        "ml.feature.attribution"} == set()


def collect_names(reader):
    return {name for name, pts in collect(reader).items() if pts}


def test_declared_classes_name_the_probability_columns(providers, metric_reader):
    monitor = otel_ml.ModelMonitor("churn", "1", classes=["stay", "leave"],
                                   positive_class="leave", **providers)
    ids = []

    def proba(X):
        ids.append(otel_ml.current_prediction_id())
        return np.array([[0.2, 0.8]] * len(X))

    predict_proba = monitor.instrument_method(proba, "predict_proba", "proba")
    for _ in range(3):
        predict_proba(np.zeros((1, 2)))
    for pid, actual in zip(ids, ["leave", "stay", "leave"]):
        monitor.record_outcome(pid, actual)
    confusion = {(a["ml.class.predicted"], a["ml.class.actual"]): v
                 for a, v in points(metric_reader, "ml.model.outcomes")}
    assert confusion == {("leave", "leave"): 2, ("leave", "stay"): 1}


def test_a_store_of_size_zero_keeps_nothing_and_batch_labels_still_score(providers,
                                                                           metric_reader):
    monitor = ModelMonitor("churn", "1", outcome_store_size=0, **providers)
    ids = []

    def predict(X):
        ids.append(otel_ml.current_prediction_id())
        return np.array([1] * len(X))

    monitor(predict)(np.zeros((2, 3)))
    monitor.record_outcome(ids[0], [1, 0])
    unmatched = {a["ml.reason"]: v for a, v in points(metric_reader, "ml.model.outcomes.unmatched")}
    assert unmatched == {"unknown_id": 2}
    monitor.record_outcomes(np.array([1, 0]), np.array([1, 1]))
    confusion = {(a["ml.class.predicted"], a["ml.class.actual"]): v
                 for a, v in points(metric_reader, "ml.model.outcomes")}
    assert confusion == {("1", "1"): 1, ("1", "0"): 1}
    with pytest.raises(ValueError, match="outcome_store_size"):
        ModelMonitor("churn", outcome_store_size=-1)


# ------------------------------------------------------------------ telemetry errors, shim
def _telemetry_errors(reader) -> dict[str, float]:
    return {attrs["ml.reason"]: v for attrs, v in points(reader, "ml.telemetry.errors")}


def test_unscorable_labels_are_not_counted_as_otel_ml_failures(providers, metric_reader):
    """ml.telemetry.errors counts failures inside otel_ml; a label for an unknown id, a
    duplicate, a bad shape or bad attributions are the caller's data, counted elsewhere."""
    monitor = _monitor(providers)
    before = _telemetry_errors(metric_reader)
    monitor.record_outcome("never-seen", 1)
    monitor.record_outcomes([1, 2, 3], [1, 2])
    monitor.record_attributions("not numbers")
    assert _by(metric_reader, "ml.model.outcomes.unmatched", "ml.reason") == {
        "unknown_id": 1, "wrong_shape": 3}
    after = _telemetry_errors(metric_reader)
    assert after.get("outcome", 0) == before.get("outcome", 0)
    assert after.get("outcomes", 0) == before.get("outcomes", 0)


def test_deprecated_outcomes_module_forwards_the_store_budget():
    import importlib

    module = importlib.import_module("otel_ml.outcomes")
    with pytest.warns(DeprecationWarning, match="outcome_store_bytes"):
        value = module.DEFAULT_STORE_BYTES
    assert value == 32 * 2**20


# ------------------------------------------------------------------ DDM on a classifier
def _error_labels(rng, error_rates):
    """Labels and predictions whose errors follow ``error_rates`` (one rate per row)."""
    y_true = rng.integers(0, 2, len(error_rates))
    wrong = rng.uniform(size=len(error_rates)) < error_rates
    return y_true, np.where(wrong, 1 - y_true, y_true)


def test_ddm_detects_a_classifier_error_rate_change_after_it_and_not_before(providers):
    """DDM on a classifier's 0/1 error stream: the error rate jumps from 0.1 to 0.4 at row
    1,500 of 3,000; labels arrive in batches of 50. No detection before the change, one
    within 300 rows after it; none on a stationary stream of the same length."""
    change, n, step = 1500, 3000, 50
    for seed in range(5):
        rates = np.where(np.arange(n) < change, 0.1, 0.4)
        y_true, y_pred = _error_labels(np.random.default_rng(seed), rates)
        outcomes = _analysis(providers)
        first = None
        for start in range(0, n, step):
            outcomes.record_outcomes(y_true[start:start + step], y_pred[start:start + step])
            detections = _collected(outcomes, "ml.concept_drift.detections", "ml.detector")
            if first is None and detections["ddm"]:
                first = start + step
        assert first is not None and change < first <= change + 300, (seed, first)
        assert outcomes.performance_report().concept_drift["ddm"]["drift"]

        steady = _analysis(providers)
        y_true, y_pred = _error_labels(np.random.default_rng(100 + seed), np.full(n, 0.1))
        for start in range(0, n, step):
            steady.record_outcomes(y_true[start:start + step], y_pred[start:start + step])
        assert _collected(steady, "ml.concept_drift.detections", "ml.detector")["ddm"] == 0
        assert _collected(steady, "ml.concept_drift.state", "ml.detector")["ddm"] == 0


def test_ddm_is_not_fed_regression_errors(providers):
    outcomes = _analysis(providers, task="regression")
    rng = np.random.default_rng(3)
    y = rng.normal(100, 10, 3000)
    noise = np.concatenate([rng.normal(0, 1, 1500), rng.normal(0, 5, 1500)])
    outcomes.record_outcomes(y, y + noise)
    detections = _collected(outcomes, "ml.concept_drift.detections", "ml.detector")
    assert detections["adwin"] >= 1 and detections["ddm"] == 0


def test_the_callers_frames_are_left_as_they_were(providers):
    """Predictions kept for the label join and labels are read without converting a pandas
    frame whole (DataFrame.to_numpy() consolidates its blocks in place, visible in its pickle)."""
    import pickle

    pd = pytest.importorskip("pandas")

    def frame():
        return pd.DataFrame({"a": [pd.Timestamp("2024-01-01")] * 2, "b": [0.0, 1.0]})

    predictions, labels = frame(), frame()
    before = (pickle.dumps(predictions), pickle.dumps(labels))
    monitor = _monitor(providers, statistics=False)
    monitor(lambda x: predictions)(np.zeros((2, 3)), prediction_id="f")
    monitor.record_outcome("f", labels)
    monitor.record_outcome("unknown", labels)
    assert (pickle.dumps(predictions), pickle.dumps(labels)) == before
