"""Performance without labels (issue 17): calibration in the reference, confidence-based and
direct loss estimation, bands, streaming equals batch, bad input, suspect labels.

Real data bundled with scikit-learn (breast cancer: binary; digits: 10 classes; diabetes:
regression); the peer comparison with NannyML is ``benchmarks/estimation_accuracy.py``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split

from otel_ml import ModelMonitor, Reference
from otel_ml.contract import METRICS


def _split(loader, seed=0):
    X, y = loader(return_X_y=True)
    Xtr, Xrest, ytr, yrest = train_test_split(X, y, test_size=0.6, random_state=seed)
    Xval, Xte, yval, yte = train_test_split(Xrest, yrest, test_size=0.5, random_state=seed)
    return Xtr, ytr, Xval, yval, Xte, yte


@pytest.fixture(scope="module")
def binary():
    Xtr, ytr, Xval, yval, Xte, yte = _split(load_breast_cancer)
    model = LogisticRegression(max_iter=5000).fit(Xtr, ytr)
    ref = Reference.from_data(Xval, predictions=model.predict_proba(Xval), labels=yval)
    return model, ref, Xte, yte


@pytest.fixture(scope="module")
def multiclass():
    Xtr, ytr, Xval, yval, Xte, yte = _split(load_digits)
    model = LogisticRegression(max_iter=5000).fit(Xtr, ytr)
    ref = Reference.from_data(Xval, predictions=model.predict_proba(Xval), labels=yval)
    return model, ref, Xte, yte


@pytest.fixture(scope="module")
def regression():
    Xtr, ytr, Xval, yval, Xte, yte = _split(load_diabetes)
    model = Ridge().fit(Xtr, ytr)
    ref = Reference.from_data(Xval, predictions=model.predict(Xval), labels=yval)
    return model, ref, Xte, yte


def _monitor(ref, name="est", **options):
    reader = InMemoryMetricReader()
    monitor = ModelMonitor(name, "1", reference=ref, meter_provider=MeterProvider(
        metric_readers=[reader]), **options)
    return monitor, reader


def _points(reader, name):
    out = []
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name == name:
                    out.extend((p.value, dict(p.attributes)) for p in m.data.data_points)
    return out


def test_reference_stores_calibration_and_realised_performance(binary, tmp_path):
    model, ref, _, _ = binary
    assert ref.estimation.calibration.classes == ("0", "1")
    assert 0.9 < ref.performance["accuracy"] <= 1.0 and 0.95 < ref.performance["roc_auc"] <= 1
    path = tmp_path / "ref.json"
    ref.save(path)
    data = json.loads(path.read_text())
    assert data["estimation"]["calibration"]["method"] == "isotonic"  # plain data
    again = Reference.load(path)
    cal, cal2 = ref.estimation.calibration, again.estimation.calibration
    p = np.linspace(0, 1, 11)
    rows = np.column_stack([1 - p, p])
    np.testing.assert_allclose(cal.apply(rows), cal2.apply(rows))


def test_previous_format_loads_unchanged_with_estimation_off(binary, tmp_path):
    model, _, Xte, _ = binary
    old = Reference.from_data(Xte, predictions=model.predict_proba(Xte)[:, 1])
    assert "estimation" not in old.to_dict()  # byte-for-byte the previous format
    path = tmp_path / "old.json"
    old.save(path)
    monitor, reader = _monitor(str(path), output="proba")
    monitor(lambda x: model.predict_proba(x))(Xte)
    assert monitor.performance_report().estimated == {}
    assert _points(reader, "ml.model.expected.confusion") == []


def test_binary_estimate_is_close_to_realised_and_band_covers_it(binary):
    model, ref, Xte, yte = binary
    monitor, reader = _monitor(ref, output="proba")
    monitor(lambda x: model.predict_proba(x))(Xte)
    est = monitor.performance_report().estimated
    realised = float((model.predict(Xte) == yte).mean())
    acc = est["accuracy"]
    assert acc["lower"] <= realised <= acc["upper"]
    assert abs(acc["value"] - realised) < 0.03
    assert acc["upper"] - acc["lower"] < 0.1
    assert set(est) >= {"accuracy", "precision", "recall", "f1", "roc_auc", "rows"}
    assert est["rows"] == len(Xte)
    # The float counters hold the expected confusion: they sum to the rows.
    conf = _points(reader, "ml.model.expected.confusion")
    assert abs(sum(v for v, _ in conf) - len(Xte)) < 1e-9
    assert all({"ml.class.predicted", "ml.class.actual", "ml.segment"} <= set(a) for _, a in conf)


def test_multiclass_estimate_and_bands(multiclass):
    model, ref, Xte, yte = multiclass
    monitor, _ = _monitor(ref, output="proba")
    monitor(lambda x: model.predict_proba(x))(Xte)
    est = monitor.performance_report().estimated
    realised = float((model.predict(Xte) == yte).mean())
    assert abs(est["accuracy"]["value"] - realised) < 0.04
    assert "roc_auc" not in est
    for name in ("accuracy", "precision", "recall", "f1"):
        e = est[name]
        assert 0 <= e["lower"] <= e["value"] <= e["upper"] <= 1


def test_streaming_equals_batch(binary):
    model, ref, Xte, _ = binary
    batch, _ = _monitor(ref, output="proba")
    batch(lambda x: model.predict_proba(x))(Xte)
    stream, _ = _monitor(ref, output="proba")
    fn = stream(lambda x: model.predict_proba(x))
    for i in range(len(Xte)):
        fn(Xte[i:i + 1])
    a, b = batch.performance_report().estimated, stream.performance_report().estimated
    for name in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        for key in ("value", "lower", "upper"):
            assert abs(a[name][key] - b[name][key]) <= 1e-9, (name, key)


def test_bad_probabilities_are_counted_and_left_out(binary):
    model, ref, Xte, _ = binary
    monitor, reader = _monitor(ref, output="proba")
    good = model.predict_proba(Xte[:10])
    bad = np.array([[np.nan, 0.5], [1.5, -0.5], [0.7, 0.7], [0.2, 0.8]])
    outputs = iter([good, bad, np.full((3, 3), 1 / 3)])
    fn = monitor(lambda x: next(outputs))
    fn(Xte[:10])
    fn(Xte[:4])
    fn(Xte[:3])  # three columns for a two-class reference
    est = monitor.performance_report().estimated
    assert est["rows"] == 11  # the ten good rows and the one valid row of the bad batch
    excluded = {a["ml.reason"]: v for v, a in _points(reader, "ml.model.estimation.excluded")}
    assert excluded == {"missing": 1, "out_of_range": 1, "not_normalised": 1,
                        "wrong_class_count": 3}


def test_regression_estimate(regression):
    model, ref, Xte, yte = regression
    monitor, reader = _monitor(ref, task="regression")
    monitor(lambda x: model.predict(x))(Xte)
    est = monitor.performance_report().estimated
    realised = float(np.abs(model.predict(Xte) - yte).mean())
    assert abs(est["mae"]["value"] - realised) / realised < 0.15
    assert est["mae"]["lower"] <= realised <= est["mae"]["upper"]
    assert est["rmse"]["value"] > est["mae"]["value"]
    sums = _points(reader, "ml.model.estimated.error.absolute")
    rows = _points(reader, "ml.model.estimated.rows")
    assert abs(sum(v for v, _ in sums) / sum(v for v, _ in rows) - est["mae"]["value"]) < 1e-9


def test_suspect_labels_flag_flipped_labels(binary):
    model, ref, Xte, yte = binary
    monitor, reader = _monitor(ref, output="proba")
    fn = monitor(lambda x: model.predict_proba(x))
    proba = model.predict_proba(Xte)
    confident = np.nonzero(proba.max(axis=1) > 0.99)[0][:10]
    for i in range(len(Xte)):
        fn(Xte[i:i + 1], prediction_id=f"r{i}")
    for i in range(len(Xte)):
        label = yte[i]
        if i in confident:
            label = int(np.argmax(proba[i]) == 0)  # the other class: a wrong label
        monitor.record_outcome(f"r{i}", label)
    report = monitor.performance_report().suspect_labels
    assert report["count"] >= len(confident)
    assert report["labelled"] == len(Xte)
    assert set(f"r{i}" for i in confident[-5:]) <= set(report["recent"])
    assert 0 < report["share"] < 0.2
    counted = sum(v for v, _ in _points(reader, "ml.outcome.suspect_labels"))
    assert counted == report["count"]


def test_reference_without_labels_logs_one_line(binary, caplog):
    model, _, Xte, _ = binary
    ref = Reference.from_data(Xte, predictions=model.predict_proba(Xte)[:, 1])
    with caplog.at_level("INFO"):
        monitor, reader = _monitor(ref, name="no-labels", output="proba")
        monitor(lambda x: model.predict_proba(x))(Xte)
    assert monitor.performance_report().estimated == {}
    assert _points(reader, "ml.model.estimated.rows") == []
    assert sum("not estimated" in r.getMessage() for r in caplog.records) == 1


def test_estimation_metrics_are_in_the_contract():
    for name in ("ml.model.expected.confusion", "ml.model.estimated.rows",
                 "ml.model.estimated.error.absolute", "ml.model.estimated.error.squared",
                 "ml.model.estimated.variance", "ml.model.estimation.excluded",
                 "ml.outcome.suspect_labels"):
        assert name in METRICS


def test_loss_model_round_trips_as_data(regression, tmp_path):
    model, ref, Xte, _ = regression
    path = tmp_path / "ref.json"
    ref.save(path)
    assert json.loads(path.read_text())["estimation"]["loss_model"]["method"] == "ga2m_log_bins"
    again = Reference.load(path)
    pred = model.predict(Xte)
    names = list(ref.feature_names)

    def column(name):
        return Xte[:, names.index(name)]

    for a, b in zip(ref.estimation.loss.expected(pred, column),
                    again.estimation.loss.expected(pred, column)):
        np.testing.assert_allclose(a, b)


def test_a_corrupt_estimation_block_is_refused_at_load(binary, tmp_path):
    from otel_ml.errors import InvalidReferenceError

    _, ref, _, _ = binary
    data = ref.to_dict()
    data["estimation"]["calibration"]["curves"][1]["x"] = [0.5, 0.1]  # decreasing
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InvalidReferenceError, match="estimation"):
        Reference.load(path)


def test_regression_streaming_equals_batch(regression):
    model, ref, Xte, _ = regression
    batch, _ = _monitor(ref, task="regression")
    batch(lambda x: model.predict(x))(Xte)
    stream, _ = _monitor(ref, task="regression")
    fn = stream(lambda x: model.predict(x))
    for i in range(len(Xte)):
        fn(Xte[i:i + 1])
    a, b = batch.performance_report().estimated, stream.performance_report().estimated
    for name in ("mae", "rmse"):
        for key in ("value", "lower", "upper"):
            assert abs(a[name][key] - b[name][key]) <= 1e-9, (name, key)


def test_multiclass_sums_equal_the_definition(multiclass):
    """The bincount sums are the expected confusion and second moments by definition."""
    from otel_ml._internal.stats.estimation import ClassAcc

    model, ref, Xte, _ = multiclass
    cal = ref.estimation.calibration.apply(model.predict_proba(Xte))
    predicted = cal.argmax(axis=1)
    acc = ClassAcc(cal.shape[1])
    acc.add_rows(predicted, cal, None)
    onehot = np.eye(cal.shape[1])[predicted]
    np.testing.assert_allclose(acc.conf, onehot.T @ cal, atol=1e-12)
    np.testing.assert_allclose(acc.m2, np.einsum("rk,rj,rl->kjl", onehot, cal, cal), atol=1e-12)


def test_segments_per_row_are_estimated_separately(binary):
    model, ref, Xte, _ = binary
    monitor, reader = _monitor(ref, output="proba", segment_by=lambda args, kwargs: kwargs.get("region"))
    fn = monitor(lambda x, region=None: model.predict_proba(x))
    half = len(Xte) // 2
    fn(Xte[:half], region="eu")
    fn(Xte[half:], region="us")
    est = monitor.performance_report().estimated
    assert set(est["by_segment"]) == {"eu", "us"}
    assert est["by_segment"]["eu"]["rows"] == half
    rows = {a["ml.segment"]: v for v, a in _points(reader, "ml.model.estimated.rows")}
    assert rows == {"eu": half, "us": len(Xte) - half}


def test_observe_by_hand_feeds_the_estimate(binary):
    model, ref, Xte, _ = binary
    monitor, _ = _monitor(ref, output="proba")
    monitor.observe(Xte, model.predict_proba(Xte))
    assert monitor.performance_report().estimated["rows"] == len(Xte)


def test_demo_conditions_mirror_the_estimation_alerts():
    """The demo's in-process equivalents of the two alerts hold on the same numbers as the
    promtool tests (estimated accuracy 0.5 against a reference of 0.95; realised 0.5 against
    an estimate of 0.95)."""
    from otel_ml.contract import ALL_SEGMENTS
    from otel_ml.demo import alerts
    from otel_ml.demo.snapshot import Snapshot

    below = Snapshot(expected_confusion={("1", "1"): 400.0, ("1", "0"): 400.0},
                     estimated={"rows": 800.0, "variance:accuracy": 200.0},
                     reference_performance={"accuracy": 0.95})
    fine = Snapshot(expected_confusion={("1", "1"): 760.0, ("1", "0"): 40.0},
                    estimated={"rows": 800.0, "variance:accuracy": 38.0},
                    reference_performance={"accuracy": 0.95},
                    performance={(ALL_SEGMENTS, "accuracy"): 0.5}, outcomes=400.0)
    names = lambda snap: {c.name for c, _ in alerts.firing(snap)}  # noqa: E731
    assert "MLEstimatedPerformanceBelowReference" in names(below)
    assert "MLEstimatedPerformanceBelowReference" not in names(fine)
    assert "MLEstimateDiverges" in names(fine)
    agree = Snapshot(expected_confusion=fine.expected_confusion, estimated=fine.estimated,
                     reference_performance={"accuracy": 0.95},
                     performance={(ALL_SEGMENTS, "accuracy"): 0.95}, outcomes=400.0)
    assert "MLEstimateDiverges" not in names(agree)


def test_class_values_on_the_estimation_metrics_are_capped(multiclass, monkeypatch):
    """Beyond the cap, classes are summed as "__other__" (as ml.model.outcomes caps them):
    no more series than the cap allows, and no expected count lost."""
    from otel_ml._internal.stats import estimation

    model, ref, Xte, yte = multiclass
    monitor, reader = _monitor(ref, "capped")
    monitor.observe(Xte, model.predict_proba(Xte))
    full = _points(reader, "ml.model.expected.confusion")
    monkeypatch.setattr(estimation, "MAX_EXPORTED_CLASSES", 5)
    monitor, reader = _monitor(ref, "capped")
    monitor.observe(Xte, model.predict_proba(Xte))
    capped = _points(reader, "ml.model.expected.confusion")
    values = {a[k] for _, a in capped for k in ("ml.class.predicted", "ml.class.actual")}
    assert len(values) == 5 and "__other__" in values
    assert len({a["ml.class.actual"] for _, a in full}) == 10
    assert sum(v for v, _ in capped) == pytest.approx(sum(v for v, _ in full), rel=1e-12)
    assert sum(v for v, _ in full) == pytest.approx(len(Xte), rel=1e-9)
