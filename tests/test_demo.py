"""The embedded demo: phases, traffic, the metric snapshot, the alert conditions, a short run."""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("pandas")

from otel_ml.contract import ALL_SEGMENTS, LATENCY_BUCKETS, PREDICTION_FEATURE  # noqa: E402
from otel_ml.demo import alerts  # noqa: E402
from otel_ml.demo.model import COLUMNS, FEATURES, DemoService, FeatureStoreTimeout, load_data, train_model  # noqa: E402
from otel_ml.demo.snapshot import Snapshot, histogram_quantile  # noqa: E402
from otel_ml.demo.traffic import DEFAULT_PHASES, LabelQueue, PhaseClock, TrafficGenerator  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------- snapshot
def test_histogram_quantile_interpolates_like_prometheus():
    bounds = (0.1, 0.2, 0.4)
    counts = (10, 10, 0, 0)  # 10 in (0, 0.1], 10 in (0.1, 0.2]
    assert histogram_quantile(0.5, bounds, counts) == pytest.approx(0.1)
    assert histogram_quantile(0.75, bounds, counts) == pytest.approx(0.15)
    assert histogram_quantile(0.25, bounds, counts) == pytest.approx(0.05)
    assert histogram_quantile(0.99, bounds, (0, 0, 0, 5)) == 0.4  # +Inf bucket: highest bound
    assert histogram_quantile(0.5, bounds, (0, 0, 0, 0)) is None


def test_snapshot_reads_the_exported_metrics(providers, metric_reader):
    from otel_ml import ModelMonitor

    monitor = ModelMonitor("m", "1", statistics=False, **providers)

    @monitor
    def predict(x):
        if x == "boom":
            raise KeyError(x)
        return [1]

    first = Snapshot.read(metric_reader, at=0.0)
    for _ in range(9):
        predict([1.0])
    with pytest.raises(KeyError):
        predict("boom")
    snap = Snapshot.read(metric_reader, at=2.0, previous=first)
    assert snap.calls == 10
    assert snap.predictions == 9
    assert snap.errors == {"KeyError": 1}
    assert snap.interval_s == 2.0
    assert snap.call_rate == pytest.approx(5.0)
    assert snap.error_rate == pytest.approx(0.1)
    assert snap.latency_bounds == LATENCY_BUCKETS
    assert sum(snap.latency_counts) == 10
    assert 0 < snap.latency["p50"] <= snap.latency["p99"] < 1.0
    # Nothing new: the recent percentiles are empty, the totals stay.
    later = Snapshot.read(metric_reader, at=3.0, previous=snap)
    assert later.latency["p50"] is None and later.calls == 10 and later.call_rate == 0


# ---------------------------------------------------------------------------- alerts
def _gen_rules():
    path = ROOT / "tools" / "gen_rules.py"
    if not path.exists():
        pytest.skip("tools/gen_rules.py is not in this checkout")
    spec = importlib.util.spec_from_file_location("otel_ml_gen_rules_for_demo", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_alert_names_are_the_shipped_alerts():
    yaml = pytest.importorskip("yaml")
    shipped = {rule["alert"] for group in
               yaml.safe_load((ROOT / "prometheus/rules/otel-ml-alerts.yml").read_text())["groups"]
               for rule in group["rules"] if "alert" in rule}
    names = {c.name for c in alerts.ALERTS}
    assert names <= shipped
    # Every shipped alert has an in-process equivalent except the one about missing telemetry.
    assert shipped - names == {"MLModelTelemetryAbsent"}


def _snap(**kwargs) -> Snapshot:
    snap = Snapshot(at=1.0, interval_s=1.0, window_rows={ALL_SEGMENTS: 1000.0})
    for key, value in kwargs.items():
        setattr(snap, key, value)
    return snap


def _holding(snap: Snapshot) -> set[str]:
    return {c.name for c, _ in alerts.firing(snap)}


def test_alert_conditions_on_both_sides_of_their_thresholds():
    assert _holding(_snap()) == set()
    drift = {("bmi", ALL_SEGMENTS): {"psi": 0.3}, ("bp", ALL_SEGMENTS): {"psi": 0.12},
             ("s5", "clinic-b"): {"psi": 0.9}}
    assert _holding(_snap(drift=drift)) == {"MLFeatureDriftWarning", "MLFeatureDriftCritical"}
    assert _holding(_snap(drift={("bp", ALL_SEGMENTS): {"psi": 0.12}})) == {"MLFeatureDriftWarning"}
    assert _holding(_snap(drift={("bp", ALL_SEGMENTS): {"psi": 0.09}})) == set()
    # Too few rows in the window: not judged (like the rule's minimum observations).
    few = _snap(drift=drift, window_rows={ALL_SEGMENTS: 150.0})
    assert _holding(few) == set()
    assert _holding(_snap(drift={(PREDICTION_FEATURE, ALL_SEGMENTS): {"psi": 0.2}})) == {
        "MLPredictionDrift"}
    assert _holding(_snap(error_rate=0.06)) == {"MLModelErrorRatioHigh"}
    assert _holding(_snap(error_rate=0.05)) == set()
    assert _holding(_snap(latency={"p99": 0.6})) == {"MLModelLatencyP99High"}
    assert _holding(_snap(quality_delta={("bp", "missing"): 12.0},
                          observations_delta={"bp": 88.0})) == {"MLFeatureMissingValuesSurge"}
    assert _holding(_snap(quality_delta={("bp", "missing"): 8.0},
                          observations_delta={"bp": 92.0})) == set()
    assert _holding(_snap(quality_delta={("source", "unseen_category"): 6.0},
                          observations_delta={"source": 100.0})) == {
        "MLFeatureUnseenCategoriesSurge"}
    perf = {(ALL_SEGMENTS, "accuracy"): 0.70}
    assert _holding(_snap(outcomes=500.0, performance=perf,
                          reference_performance={"accuracy": 0.80})) == {
        "MLModelPerformanceBelowReference"}
    assert _holding(_snap(outcomes=50.0, performance=perf,
                          reference_performance={"accuracy": 0.80})) == set()
    assert _holding(_snap(outcomes=500.0, performance=perf,
                          reference_performance={"accuracy": 0.74})) == set()
    assert _holding(_snap(fairness={("sex", "disparate_impact_ratio"): 0.7})) == {"MLFairnessGap"}
    assert _holding(_snap(fairness={("sex", "disparate_impact_ratio"): 0.9,
                                    ("sex", "demographic_parity_difference"): 0.05})) == set()
    assert _holding(_snap(concept_drift={"adwin": 1.0})) == {"MLConceptDriftDetected"}
    assert _holding(_snap(rejected_delta={"unauthorized": 5.0}, call_rate=10.0)) == {
        "MLRejectedRequestsSpike"}


def test_segment_alert_conditions_need_a_segment_that_differs_from_the_fleet():
    rows = {ALL_SEGMENTS: 1000.0, "clinic-a": 500.0, "clinic-b": 500.0}
    drift = {("s5", ALL_SEGMENTS): {"psi": 0.3}, ("s5", "clinic-b"): {"psi": 0.9},
             (PREDICTION_FEATURE, ALL_SEGMENTS): {"psi": 0.05},
             (PREDICTION_FEATURE, "clinic-b"): {"psi": 0.3}}
    held = _holding(_snap(drift=drift, window_rows=rows))
    assert {"MLSegmentFeatureDrift", "MLSegmentPredictionDrift"} <= held
    same = {("s5", ALL_SEGMENTS): {"psi": 0.5}, ("s5", "clinic-b"): {"psi": 0.9}}
    assert "MLSegmentFeatureDrift" not in _holding(_snap(drift=same, window_rows=rows))
    few = {**rows, "clinic-b": 299.0}
    assert "MLSegmentFeatureDrift" not in _holding(_snap(drift=drift, window_rows=few))
    perf = {(ALL_SEGMENTS, "accuracy"): 0.66, ("clinic-b", "accuracy"): 0.50}
    labelled = {"clinic-a": 600.0, "clinic-b": 600.0}
    held = _holding(_snap(performance=perf, outcomes_by_segment=labelled, outcomes=1200.0,
                          reference_performance={"accuracy": 0.74}))
    assert "MLSegmentPerformanceBelowReference" in held
    half = {(ALL_SEGMENTS, "accuracy"): 0.62, ("clinic-b", "accuracy"): 0.50}
    assert "MLSegmentPerformanceBelowReference" not in _holding(_snap(
        performance=half, outcomes_by_segment=labelled, reference_performance={"accuracy": 0.74}))
    missing = _snap(segment_quality_delta={("bp", "clinic-b", "missing"): 60.0},
                    segment_observations_delta={("bp", "clinic-b"): 340.0},
                    quality_delta={("bp", "missing"): 60.0}, observations_delta={"bp": 940.0})
    assert "MLSegmentMissingValuesSurge" in _holding(missing)


# ---------------------------------------------------------------------------- traffic
def test_phase_clock_orders_and_repeats_the_phases():
    clock = PhaseClock(DEFAULT_PHASES, 100.0)
    names = [clock.phases[clock.index(t)].name
             for t in (0, 19.9, 20, 45, 65, 74.9, 75.1, 89.9, 90.1, 99.9)]
    assert names == ["normal", "normal", "drift", "new-source", "error-burst", "error-burst",
                     "recovery", "recovery", "shadow", "shadow"]
    assert clock.phases[clock.index(120.0)].name == "drift"  # second cycle
    assert clock.start_of(1) == pytest.approx(20.0) and clock.length_of(3) == pytest.approx(15.0)
    with pytest.raises(ValueError):
        PhaseClock((), 10.0)


def test_traffic_phases_change_the_data_as_described():
    data = load_data()
    assert tuple(data.frame.columns) == COLUMNS and set(np.unique(data.target)) == {0, 1}
    phases = {p.name: p for p in DEFAULT_PHASES}
    gen = TrafficGenerator(data, seed=1)
    normal, _ = gen.request(phases["normal"], 4000)
    drift, _ = gen.request(phases["drift"], 4000)
    assert (normal["source"] == "clinic-a").all()
    assert drift["bmi"].mean() > normal["bmi"].mean() * 1.12
    assert drift["bp"].mean() > normal["bp"].mean() + 10
    assert abs(drift["age"].mean() - normal["age"].mean()) < 1.5
    rows = [gen.request(phases["new-source"], 1)[0] for _ in range(1200)]
    import pandas as pd

    mixed = pd.concat(rows)
    clinic_b = mixed[mixed["source"] == "clinic-b"]
    assert 0.35 < len(clinic_b) / len(mixed) < 0.45
    assert clinic_b["s5"].mean() > normal["s5"].mean() + 0.7
    assert 0.04 < clinic_b["bp"].isna().mean() < 0.12
    assert mixed[mixed["source"] == "clinic-a"]["bp"].isna().sum() == 0


def test_label_queue_delivers_a_share_of_labels_late():
    queue = LabelQueue(share=0.5, delay_s=(1.0, 2.0), seed=3)
    sent = sum(queue.push(0.0, f"p{i}", np.array([i % 2])) for i in range(1000))
    assert 400 < sent < 600 and len(queue) == sent
    assert queue.due(0.99) == []
    due = queue.due(2.0)
    assert len(due) == sent and len(queue) == 0
    assert all(isinstance(pid, str) for pid, _ in due)


def test_service_runs_the_stages_and_fails_in_the_error_burst(providers, span_exporter):
    from otel_ml import ModelMonitor

    data = load_data()
    model, medians, accuracy = train_model(data)
    assert accuracy > 0.65
    service = DemoService(model, medians, seed=0)
    predict = ModelMonitor("demo", "1", statistics=False, **providers)(service.predict)
    frame = data.frame.iloc[:5].copy()
    frame.loc[0, "bp"] = np.nan
    labels = predict(frame, prediction_id="r1")
    assert labels.shape == (5,) and set(labels) <= {0, 1}
    spans = {s.name: s for s in span_exporter.get_finished_spans()}
    assert {"ml.stage load", "ml.stage preprocess", "ml.stage features", "ml.stage predict",
            "ml.predict demo"} <= set(spans)
    root = spans["ml.predict demo"]
    assert all(spans[f"ml.stage {n}"].parent.span_id == root.context.span_id
               for n in ("load", "preprocess", "features", "predict"))
    service.failure_rate = 1.0
    with pytest.raises(FeatureStoreTimeout):
        predict(frame)
    assert set(FEATURES) < set(COLUMNS)


# ---------------------------------------------------------------------------- a whole run
def test_a_short_run_shows_each_phase_in_the_telemetry(monkeypatch):
    """5 s at 200 calls/s: drift in bmi and bp, then in clinic-b, errors only in the burst."""
    from otel_ml.demo import DemoOptions, run_demo

    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    out = io.StringIO()
    summary = run_demo(DemoOptions(duration_s=5.0, rate=200, seed=0, live=False), out=out)
    phases = {p.name: p for p in summary.phases}
    assert list(phases) == ["normal", "drift", "new-source", "error-burst", "recovery",
                            "shadow"]
    assert not summary.interrupted and summary.calls == sum(p.calls for p in summary.phases)

    assert not {"bmi", "bp"} & set(phases["normal"].drifted)
    drift = phases["drift"]
    assert {"bmi", "bp"} <= set(drift.drifted), out.getvalue()
    assert drift.detected_after_s is not None and drift.detected_after_s < 1.0
    if drift.calls >= 120:  # the rule judges drift from 200 rows in the window on
        assert "MLFeatureDriftWarning" in drift.alerts

    new_source = phases["new-source"]
    # A decision needs 50 values of clinic-b in the window: ~50 calls (40% from clinic-b, 2.6
    # rows each); a loaded machine sends fewer than the 200 calls/s asked for.
    if new_source.calls >= 60:
        assert {"s3", "s5"} <= set(new_source.drifted_by_segment.get("clinic-b", [])), \
            out.getvalue()
    assert not {"s3", "s5"} & set(new_source.drifted_by_segment.get("clinic-a", []))
    assert new_source.quality.get(("source", "unseen_category"), 0) > 0
    assert new_source.quality.get(("bp", "missing"), 0) > 0

    assert phases["error-burst"].errors > 0
    assert summary.errors == phases["error-burst"].errors
    assert "MLModelErrorRatioHigh" in phases["error-burst"].alerts
    assert summary.final.errors == {"FeatureStoreTimeout": summary.errors}

    assert summary.labels_sent > 0.3 * (summary.calls - summary.errors)
    assert summary.final.outcomes > 0 and summary.final.performance
    # The shadow phase: a challenger compared on the same requests, off the caller's path;
    # the view reads the model's own figures only (the challenger's calls are not counted).
    assert summary.final.compared_rows > 0
    assert summary.final.calls == summary.calls
    text = out.getvalue()
    assert "otel-ml demo finished after" in text
    assert "bmi+bp detected after" in text
    assert "shadow: the challenger agreed with the model on " in text
    assert "s3+s5 detected after" in text or new_source.calls < 60


def test_without_rich_the_demo_prints_plain_lines(monkeypatch):
    from otel_ml.demo import DemoOptions, run_demo

    monkeypatch.setattr("otel_ml.demo.runner.rich_available", lambda: False)
    out = io.StringIO()
    run_demo(DemoOptions(duration_s=1.0, rate=50, live=True), out=out)
    text = out.getvalue()
    assert text.startswith("otel-ml demo: rich is not installed (pip install 'otel-ml[demo]')")
    assert "phase=normal" in text


def test_options_are_validated():
    from otel_ml.demo import DemoOptions

    for bad in (DemoOptions(rate=0), DemoOptions(duration_s=-1), DemoOptions(label_share=2)):
        with pytest.raises(ValueError):
            bad.validate()


# ---------------------------------------------------------------------------- what the view says
def _busy_snapshot() -> Snapshot:
    """A reading from the new-source phase with most alerts holding (the crowded case)."""
    drift = {("source", "clinic-b"): {"psi": 18.419, "chi2": 0.5},
             ("source", ALL_SEGMENTS): {"psi": 4.66, "chi2": 0.4},
             (PREDICTION_FEATURE, ALL_SEGMENTS): {"psi": 0.175, "ks": 0.9},
             ("bmi", ALL_SEGMENTS): {"psi": 0.726, "ks": 0.3},
             ("s5", "clinic-b"): {"psi": 4.011, "ks": 0.6},
             ("s3", "clinic-b"): {"psi": 1.928, "ks": 0.4},
             ("s5", "clinic-a"): {"psi": 0.01, "ks": 0.01}}
    return _snap(
        calls=123_456.0, predictions=345_678.0, call_rate=52.0, error_rate=0.31,
        errors={"FeatureStoreTimeout": 12_345.0}, latency={"p50": 0.0044, "p95": 0.0263,
                                                            "p99": 0.612},
        drift=drift, drifted=set(drift) - {("s5", "clinic-a")},
        pvalues={k: {"ks": 1e-12} for k in drift},
        window_rows={ALL_SEGMENTS: 1000.0, "clinic-a": 500.0, "clinic-b": 500.0},
        quality={("source", "unseen_category"): 202.0, ("bp", "missing"): 1_234.0,
                 ("s5", "out_of_range"): 27.0, ("bp", "out_of_range"): 30.0,
                 ("s3", "out_of_range"): 13.0, ("bmi", "out_of_range"): 9.0},
        quality_delta={("bp", "missing"): 12.0, ("source", "unseen_category"): 6.0},
        observations_delta={"bp": 88.0, "source": 100.0},
        outcomes=5_000.0,
        performance={(ALL_SEGMENTS, "accuracy"): 0.612, (ALL_SEGMENTS, "f1_macro"): 0.6,
                     ("clinic-a", "accuracy"): 0.744, ("clinic-b", "accuracy"): 0.534},
        reference_performance={"accuracy": 0.744},
        fairness={("sex", "equalized_odds_difference"): 0.152,
                  ("sex", "demographic_parity_difference"): 0.021,
                  ("sex", "disparate_impact_ratio"): 0.97},
        concept_drift={"adwin": 1.0, "ddm": 0.0, "page_hinkley": 1.0})


def _state(snapshot: Snapshot, **kwargs):
    from otel_ml.demo.runner import scenario_notes
    from otel_ml.demo.view import ViewState

    data = load_data()
    model, _, _ = train_model(data, seed=0)
    from otel_ml.demo.model import study_figures

    values = dict(snapshot=snapshot, phase="new-source",
                  phase_description=DEFAULT_PHASES[2].description, elapsed_s=33.0,
                  duration_s=60.0, model="diabetes-progression 1.0.0",
                  destination="in process (no collector); add --otlp http://localhost:4317 "
                              "to export", labels_sent=4_000, labels_pending=123,
                  spans={"predict": 123_456, "stage": 493_824, "outcome": 4_000},
                  notes=scenario_notes(study_figures(model, data), 0), phase_number=3,
                  phase_count=5, seed=0)
    values.update(kwargs)
    return ViewState(**values)


def _rendered(state, width: int, height: int) -> str:
    from rich.console import Console

    from otel_ml.demo.layout import render

    console = Console(width=width, height=height, record=True, file=io.StringIO(),
                      color_system=None)
    console.print(render(state, width, height))
    return console.export_text()


@pytest.mark.parametrize("width, height", [(80, 24), (160, 50)])
def test_the_view_fits_the_terminal_with_every_panel_and_whole_numbers(width, height):
    """Issue 13: at 80x24 the data quality, performance and alert panels were cut off and
    names and scores truncated to ``sou…``/``18.…``."""
    pytest.importorskip("rich")
    snap = _busy_snapshot()
    holding = _holding(snap)
    assert len(holding) >= 8
    text = _rendered(_state(snap), width, height)
    lines = text.rstrip("\n").splitlines()
    assert len(lines) <= height, text
    assert max(len(line) for line in lines) <= width
    assert "…" not in text, text
    for title in ("Traffic", "Drift", "Data quality", "Performance"):
        assert title in text
    for number in ("123,456", "18.42", "4.66", "0.61", "0.74", "1,234", "612.0"):
        assert number in text, number
    assert "__prediction__" not in text and "prediction" in text
    if width == 80:
        assert f"Alerts holding now: {len(holding)} of {len(alerts.ALERTS)}" in text
        assert "MLFeatureDriftCritical" in text and "MLModelErrorRatioHigh" in text
    else:
        assert all(name in text for name in holding)
        assert "genuine" in text and "seed 0 fixes the requests" in text


def test_top_drifting_features_are_ordered_by_the_psi_shown():
    """prediction at PSI 0.175 was listed above bmi at 0.726 (sorted by another score)."""
    rows = _busy_snapshot().top_drift(10)
    psi = [scores["psi"] for _, _, scores, _ in rows]
    assert psi == sorted(psi, reverse=True)
    names = [f for f, seg, _, _ in rows if seg == ALL_SEGMENTS]
    assert names.index("bmi") < names.index(PREDICTION_FEATURE)


def test_while_one_clinic_sends_traffic_its_rows_do_not_repeat_all():
    drift = {("bmi", ALL_SEGMENTS): {"psi": 0.7}, ("bmi", "clinic-a"): {"psi": 0.7},
             ("bp", ALL_SEGMENTS): {"psi": 0.4}, ("bp", "clinic-a"): {"psi": 0.4}}
    one = _snap(drift=drift, drifted=set(drift),
                window_rows={ALL_SEGMENTS: 500.0, "clinic-a": 500.0, "clinic-b": 0.0})
    assert [(f, seg) for f, seg, _, _ in one.top_drift(5)] == [("bmi", ALL_SEGMENTS),
                                                              ("bp", ALL_SEGMENTS)]
    two = _snap(drift=drift, drifted=set(drift),
                window_rows={ALL_SEGMENTS: 500.0, "clinic-a": 400.0, "clinic-b": 100.0})
    assert len(two.top_drift(5)) == 4
    from otel_ml.demo.view import plain_line

    line = plain_line(_state(one))
    assert line.endswith("drifted=bmi,bp"), line


def test_plain_lines_stay_within_100_characters_and_name_alert_changes():
    """``--no-live`` lines ran to 300-500 characters."""
    from otel_ml.demo.view import LINE_WIDTH, PlainView

    out = io.StringIO()
    view = PlainView(out)
    view.update(_state(_snap()))
    view.update(_state(_busy_snapshot()))
    view.update(_state(_snap(error_rate=0.4)))
    lines = out.getvalue().splitlines()
    assert LINE_WIDTH == 100 and max(len(line) for line in lines) <= 100, lines
    assert sum(line.startswith("[") for line in lines) == 3
    assert any(line.strip().startswith("+ MLFeatureDriftCritical: source psi 4.66")
               for line in lines)
    assert [line.strip() for line in lines[-11:]].count("- MLFeatureDriftWarning") == 1
    assert not any("+ MLModelErrorRatioHigh" in line for line in lines[-11:])  # still holds
    assert "__prediction__" not in out.getvalue()


def test_an_alert_is_credited_to_the_phase_it_started_in():
    """Alerts of one phase were listed under the next (they hold ~1 s into it)."""
    from otel_ml.demo.summary import AlertLedger, PhaseSummary

    drift = _snap(drift={("bmi", ALL_SEGMENTS): {"psi": 0.4}})
    other = _snap(drift={("s5", ALL_SEGMENTS): {"psi": 0.4}}, error_rate=0.3)
    ledger = AlertLedger()
    first, second = PhaseSummary("drift", 0.0), PhaseSummary("new-source", 10.0)
    ledger.observe(first, _snap(), 1.0)
    ledger.close(first, drift, 10.0)  # first held at the boundary reading: the ending phase's
    ledger.observe(second, drift, 10.5)  # still holding from the drift phase
    assert first.alerts == {"MLFeatureDriftWarning", "MLFeatureDriftCritical"}
    assert second.alerts == set()
    assert second.carried == {"MLFeatureDriftWarning": "drift", "MLFeatureDriftCritical": "drift"}
    ledger.observe(second, other, 12.0)  # new reasons (s5, not bmi): raised in this phase
    assert second.alerts == {"MLFeatureDriftWarning", "MLFeatureDriftCritical",
                             "MLModelErrorRatioHigh"}


def test_the_scenario_explains_its_accuracy_and_its_fairness_gap():
    """Accuracy rose during the drift phase, and MLFairnessGap held in the normal phase,
    with nothing on screen to explain either (issue 13)."""
    from otel_ml.demo.model import feature_matrix, study_figures
    from otel_ml.demo.runner import scenario_notes
    from otel_ml.demo.traffic import CLINIC_B_SHIFT, apply_shifts

    data = load_data()
    model, _, validation = train_model(data, seed=0)
    study = study_figures(model, data)

    def accuracy(frame) -> float:
        return float((model.predict(feature_matrix(frame)) == data.target).mean())

    assert accuracy(data.frame) == pytest.approx(study.accuracy)
    phases = {p.name: p for p in DEFAULT_PHASES}
    drifted = accuracy(apply_shifts(data.frame.copy(), phases["drift"].drift))
    clinic_b = accuracy(apply_shifts(data.frame.copy(), CLINIC_B_SHIFT))
    mixed = (1 - phases["new-source"].new_source_share) * study.accuracy + \
        phases["new-source"].new_source_share * clinic_b
    # Both shifted phases fall clearly below the 0.05 margin of the performance alert.
    assert study.accuracy - drifted > 0.1 and study.accuracy - mixed > 0.08
    assert "MLModelPerformanceBelowReference" in phases["drift"].expect_alerts
    # The gap is the model's own on the study rows (seed 0): above the limit, hence genuine.
    assert study.equalized_odds_difference > 0.1
    notes = scenario_notes(study, 0)
    assert notes[0].startswith(f"fairness: odds gap by sex is {study.equalized_odds_difference:.2f}")
    assert notes[0].endswith("genuine")
    assert f"accuracy reference {study.accuracy:.2f}" in notes[1]
    assert all(len(note) <= 78 for note in notes)


# ---------------------------------------------------------------------------- where (issue 15)
def _new_clinic_monitor():
    """The demo's monitor after 400 requests of the new-source phase (clinic-b sends 40%)."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    from otel_ml import ModelMonitor
    from otel_ml._internal.reference.profile import Reference
    from otel_ml.demo.model import feature_matrix, study_figures
    from otel_ml.demo.runner import SEGMENT_BY

    data = load_data()
    model, medians, _ = train_model(data, seed=0)
    reference = Reference.from_data(
        data.frame, predictions=model.predict(feature_matrix(data.frame)),
        categorical=["sex", "source"],
        performance={"accuracy": study_figures(model, data).accuracy})
    monitor = ModelMonitor("demo", "1", task="classification", reference=reference,
                           segment_by=SEGMENT_BY, tracer_provider=TracerProvider(),
                           meter_provider=MeterProvider())
    predict = monitor(DemoService(model, medians, seed=0).predict)
    traffic = TrafficGenerator(data, seed=0)
    for _ in range(400):
        frame, _ = traffic.request(DEFAULT_PHASES[2], traffic.batch_size())
        predict(frame)
    return monitor


def test_the_new_clinic_phase_names_clinic_b_and_its_shifted_features_first():
    """The demo's "new clinic" phase shows where the change comes from: clinic-b first, then
    its shifted features (s5, s3) by PSI; the segment column itself is left out."""
    from otel_ml.demo.runner import SEGMENT_BY
    from otel_ml.demo.summary import DemoSummary, PhaseSummary, print_summary
    from otel_ml.demo.view import PlainView, where_line

    monitor = _new_clinic_monitor()
    report = monitor.root_cause_report()
    line = where_line(report, skip=(SEGMENT_BY,))
    assert line.startswith("where: clinic-b (share "), line
    head, _, features = line.partition(", features ")
    first = features.split(", ")[0].split()[0]
    assert first in ("s5", "s3") and "source" not in features, line
    assert {"s5", "s3"} <= {f.split()[0] for f in features.split(", ")}, line
    cause = report.prediction_drift[0]
    assert cause.segment == "clinic-b" and f"share {cause.share:.0%}" in head
    monitor.close()

    # The --no-live output prints it once (when it changes), the summary under its phase.
    out = io.StringIO()
    view = PlainView(out)
    for _ in range(3):
        view.update(_state(_snap(), where=line))
    assert out.getvalue().count("where: clinic-b") == 1
    assert max(len(x) for x in out.getvalue().splitlines()) <= 100
    phase = PhaseSummary("new-source", 24.0, where=line)
    text = io.StringIO()
    print_summary(DemoSummary([phase], 10, 0, 0, 1.0, False, _snap(), 0.7), text)
    assert "    where: clinic-b" in text.getvalue()


@pytest.mark.parametrize("width, height", [(80, 24), (160, 50)])
def test_the_view_shows_the_ranking_within_the_terminal(width, height):
    pytest.importorskip("rich")
    line = ("where: clinic-b (share 40% x prediction PSI 2.18 = 0.87), features "
            "s5 7.13, s3 2.04, bp 0.31, bmi 0.02")
    text = _rendered(_state(_busy_snapshot(), where=line), width, height)
    lines = text.rstrip("\n").splitlines()
    assert len(lines) <= height and max(len(x) for x in lines) <= width, text
    where = next(x for x in lines if "where: clinic-b" in x)
    assert "s5 7.13" in where and "…" not in text
    for number in ("123,456", "18.42", "1,234"):  # the panels are still whole
        assert number in text


def test_where_line_fits_whole_items_and_is_empty_for_one_segment():
    from otel_ml._internal.monitor.root_cause import Cause, RootCauseReport
    from otel_ml.demo.view import fit_where, where_line

    def drift(segment, share, psi):
        return Cause("prediction_drift", "psi", psi, 0.25, psi > 0.25, segment=segment,
                     feature=PREDICTION_FEATURE, share=share, contribution=share * psi)

    features = tuple(Cause("feature_drift", "psi", v, 0.25, True, segment="clinic-b",
                           feature=f, contribution=v)
                     for f, v in (("source", 18.4), ("s5", 7.13), ("s3", 2.04)))
    report = RootCauseReport("m", "1", prediction_drift=(drift("clinic-b", 0.4, 2.18),
                                                         drift("clinic-a", 0.6, 0.02)),
                             features={"clinic-b": features})
    assert where_line(report, skip=("source",)) == (
        "where: clinic-b (share 40% x prediction PSI 2.18 = 0.87), features s5 7.13, "
        "s3 2.04")
    assert len(where_line(report)) > 80
    assert fit_where(where_line(report), 80) == (
        "where: clinic-b (40% x PSI 2.18), features source 18.40, s5 7.13, s3 2.04")
    assert fit_where(where_line(report), 52) == "where: clinic-b, features source 18.40, s5 7.13 +1"
    assert fit_where(where_line(report), 20) == "where: clinic-b"
    # Nothing holds for the top segment (it is the fleet, or its figures are under the
    # thresholds): no line.
    quiet = RootCauseReport("m", "1", prediction_drift=(drift("clinic-b", 0.4, 0.2),
                                                        drift("clinic-a", 0.6, 0.02)))
    assert quiet.top_segment == "clinic-b" and where_line(quiet) == ""


def test_the_shadow_phase_shows_the_known_disagreement(monkeypatch):
    """Only the shadow phase, 3 s: the challenger's measured agreement is the share of the
    requests where its threshold and the model's disagree, as computed from the study rows."""
    from otel_ml.demo import DemoOptions, run_demo
    from otel_ml.demo.model import disagreement_share, load_data, train_model
    from otel_ml.demo.runner import CHALLENGER_THRESHOLD

    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    shadow_only = tuple(p for p in DEFAULT_PHASES if p.challenger)
    assert [p.name for p in shadow_only] == ["shadow"]
    out = io.StringIO()
    summary = run_demo(DemoOptions(duration_s=3.0, rate=300, seed=0, live=False,
                                   phases=shadow_only, label_share=0.0), out=out)
    data = load_data()
    model, _, _ = train_model(data, 0)
    expected = 1 - disagreement_share(model, data, CHALLENGER_THRESHOLD)
    final = summary.final
    assert final.compared_rows >= 200, out.getvalue()
    # Requests replay the study rows at random: the measured share is a sample of the known one.
    margin = 4 * (expected * (1 - expected) / final.compared_rows) ** 0.5
    assert abs(final.agreement - expected) < margin, (final.agreement, expected)
    assert 0.5 < expected < 0.99  # a known share, neither none nor all


def test_challenger_conditions_mirror_the_rules():
    """MLChallengerDisagreementHigh / Worse / Better on the snapshot, with the rules' minimums."""
    names = {c.name: c for c in alerts.ALERTS}
    t = alerts.THRESHOLDS
    disagree = names["MLChallengerDisagreementHigh"].holds
    assert disagree(_snap(compared_rows=1000.0, disagreements=150.0))
    assert not disagree(_snap(compared_rows=1000.0, disagreements=50.0))
    assert not disagree(_snap(compared_rows=t.challenger_min_rows - 1.0, disagreements=400.0))
    pairs = [("1.0.0", "1.1.0")]

    def perf(acc_a, acc_b, n):
        return {"1.0.0": {"accuracy": acc_a, "count": n}, "1.1.0": {"accuracy": acc_b, "count": n}}

    worse, better = names["MLChallengerWorse"].holds, names["MLChallengerBetter"].holds
    assert worse(_snap(pairs=pairs, version_performance=perf(0.80, 0.75, 5000.0)))
    assert not better(_snap(pairs=pairs, version_performance=perf(0.80, 0.75, 5000.0)))
    assert better(_snap(pairs=pairs, version_performance=perf(0.75, 0.80, 5000.0)))
    assert not better(_snap(pairs=pairs, version_performance=perf(0.80, 0.81, 5000.0)))
    assert not worse(_snap(pairs=pairs, version_performance=perf(0.9, 0.5, 500.0)))  # too few
