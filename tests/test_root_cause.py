"""monitor.root_cause_report(): the new hospital ranks first, with its shifted features on top."""

from __future__ import annotations

import json

import numpy as np
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

pytest.importorskip("sklearn")

import hospital_scenario  # noqa: E402

import otel_ml  # noqa: E402
from otel_ml._internal.monitor.root_cause import root_cause_report  # noqa: E402
from otel_ml.thresholds import THRESHOLDS, Thresholds  # noqa: E402


@pytest.fixture(scope="module")
def hospitals() -> hospital_scenario.Hospitals:
    return hospital_scenario.load()


def _monitor(hospitals: hospital_scenario.Hospitals, *, shares: dict[str, float],
             batches: int = 40, rows: int = 250, seed: int = 3) -> otel_ml.ModelMonitor:
    monitor = otel_ml.ModelMonitor(
        "triage", "1", task="classification", reference=hospitals.reference(),
        segment_by="hospital", tracer_provider=TracerProvider(),
        meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]))
    predict = monitor(lambda frame, prediction_id=None: hospitals.predict(frame))
    rng = np.random.default_rng(seed)
    for i in range(batches):
        frame, truth = hospitals.batch(rng, rows, shares)
        predict(frame, prediction_id=f"p{i}")
        monitor.record_outcome(f"p{i}", truth)
    return monitor


def test_the_new_hospital_ranks_first_with_its_shifted_features_on_top(hospitals):
    report = _monitor(hospitals, shares=hospital_scenario.HOSPITALS).root_cause_report()

    assert isinstance(report, otel_ml.RootCauseReport)
    assert report.top_segment == "C"
    # Prediction drift: C first, and the only segment whose alert condition holds.
    first, *rest = report.prediction_drift
    assert (first.segment, first.measure, first.exceeded) == ("C", "psi", True)
    assert first.value > THRESHOLDS.segment_psi
    assert first.value > THRESHOLDS.segment_factor * report.fleet_prediction_psi
    assert first.contribution == pytest.approx(first.share * first.value)
    assert 0.15 < first.share < 0.25
    assert {c.segment for c in rest} == {"A", "B"} and not any(c.exceeded for c in rest)
    # Performance: C's accuracy (and macro F1) loss contributes most.
    worst = report.performance[0]
    assert worst.segment == "C" and worst.measure in ("accuracy", "f1_macro"), worst
    accuracy = {c.segment: c for c in report.performance if c.measure == "accuracy"}
    assert accuracy["C"].exceeded and accuracy["C"].value > THRESHOLDS.performance_drop
    assert accuracy["C"].threshold == THRESHOLDS.performance_drop
    assert not accuracy["A"].exceeded and not accuracy["B"].exceeded
    # Within C: bmi and bp on top, each over the threshold; the other features are not.
    ranked = report.features["C"]
    assert {c.feature for c in ranked[:2]} == set(hospital_scenario.SHIFTED)
    assert all(c.exceeded and c.value > 1.0 for c in ranked[:2]), ranked[:2]
    assert not any(c.exceeded for c in ranked[2:])
    assert [c.value for c in ranked] == sorted((c.value for c in ranked), reverse=True)
    for segment in set(report.features) - {"C"}:
        assert not any(c.exceeded for c in report.features[segment]), segment
    # Error rate by reference bin, all segments: ranked by spread, each entry says where.
    spreads = [c.value for c in report.error_by_bin]
    assert spreads and spreads == sorted(spreads, reverse=True)
    assert all(c.threshold is None and "bin" in c.detail for c in report.error_by_bin)


def test_the_report_reads_as_text_and_as_json(hospitals):
    report = _monitor(hospitals, shares=hospital_scenario.HOSPITALS, batches=20).root_cause_report()
    data = json.loads(json.dumps(report.to_dict()))
    assert data["top_segment"] == "C"
    assert data["prediction_drift"][0]["segment"] == "C"
    assert [f["feature"] for f in data["features"]["C"][:2]] in (["bmi", "bp"], ["bp", "bmi"])
    text = str(report)
    assert text.startswith("root cause of triage 1: segment C")
    assert "segment C / bmi: psi" in text
    assert f"threshold {THRESHOLDS.segment_psi:.3g}" in text and "[ALERT]" in text
    assert "of the rows -> contribution" in text


def test_a_problem_in_every_row_names_no_segment(hospitals):
    """One segment carrying all the traffic has no rest to differ from: nothing is flagged
    (the fleet-wide alerts speak for it), though it is still ranked."""
    report = _monitor(hospitals, shares={"C": 1.0}, batches=20).root_cause_report()
    assert report.prediction_drift[0].segment == "C"
    assert report.prediction_drift[0].value > THRESHOLDS.segment_psi
    assert not any(c.exceeded for c in (*report.prediction_drift, *report.performance,
                                        *report.features.get("C", ())))


def test_a_small_segment_below_the_minimum_rows_is_not_flagged(hospitals):
    report = _monitor(hospitals, shares={"A": 0.495, "B": 0.495, "C": 0.01}, batches=20,
                      rows=250).root_cause_report()
    c = next(x for x in report.prediction_drift if x.segment == "C")
    assert c.rows < THRESHOLDS.segment_min_rows and c.value > THRESHOLDS.segment_psi
    assert not c.exceeded
    assert not any(x.exceeded for x in report.features.get("C", ()))
    # With a lower minimum the same segment is flagged: the minimum is what holds it back.
    monitor = _monitor(hospitals, shares={"A": 0.495, "B": 0.495, "C": 0.01}, batches=20)
    low = root_cause_report(monitor.drift_report(), monitor.performance_report(),
                            thresholds=Thresholds(segment_min_rows=10))
    assert next(x for x in low.prediction_drift if x.segment == "C").exceeded


def test_without_segments_the_report_says_why(hospitals):
    monitor = otel_ml.ModelMonitor(
        "plain", "1", task="classification", reference=hospitals.reference(),
        meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]),
        tracer_provider=TracerProvider())
    report = monitor.root_cause_report()
    assert report.top_segment is None
    assert report.prediction_drift == () and report.performance == ()
    assert "segment_by" in report.reason and "segment_by" in str(report)
