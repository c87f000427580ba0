"""Multivariate drift (issue 16): PCA reconstruction error on real data (breast cancer, bundled
with scikit-learn). A correlation flip between two features whose marginals stay identical is
found by the reconstruction error and by no univariate test; a stationary stream stays quiet."""

from __future__ import annotations

import numpy as np
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from sklearn.datasets import load_breast_cancer

from otel_ml import ModelMonitor, Reference
from otel_ml._internal.monitor.feature_ingest import FeatureIngest
from otel_ml._internal.monitor.multivariate import MultivariateDrift
from otel_ml._internal.monitor.settings import Settings
from otel_ml._internal.reference.projection import fit_projection

COLUMNS = ["mean radius", "mean area", "mean texture", "mean smoothness", "mean symmetry"]


def _split() -> tuple:
    data = load_breast_cancer(as_frame=True).data[COLUMNS]
    order = np.random.default_rng(0).permutation(len(data))
    return data.iloc[order[:300]], data.iloc[order[300:]].copy()


def _flip(frame, a: str = "mean radius", b: str = "mean area"):
    """``b`` reassigned so that its rank is the reverse of ``a``'s: both marginals are exactly
    the same values, the correlation (0.99) becomes negative."""
    out = frame.copy()
    rank = np.argsort(np.argsort(-out[a].to_numpy()))
    out[b] = np.sort(out[b].to_numpy())[rank]
    return out


def _monitor(reference, **options):
    reader = InMemoryMetricReader()
    return ModelMonitor("cancer", "1", reference=reference,
                        meter_provider=MeterProvider(metric_readers=[reader]), **options), reader


def test_reference_keeps_the_components_that_explain_65_percent():
    ref, _ = _split()
    p = Reference.from_data(ref).projections["features"]
    assert p.columns == tuple(COLUMNS)
    assert p.explained >= 0.65 and p.k < len(COLUMNS)
    # One fewer component would not reach 65%.
    q = fit_projection(ref.to_numpy(), "features", columns=tuple(COLUMNS))
    assert q.k == p.k


def test_correlation_flip_is_found_by_reconstruction_error_and_by_no_univariate_test():
    ref, cur = _split()
    flipped = _flip(cur)
    assert sorted(flipped["mean area"]) == sorted(cur["mean area"])  # identical marginals
    assert np.corrcoef(flipped["mean radius"], flipped["mean area"])[0, 1] < -0.5
    reference = Reference.from_data(ref)
    verdicts = {}
    for label, data in (("stationary", cur), ("flipped", flipped)):
        monitor, reader = _monitor(reference)
        monitor.observe(data)
        report = monitor.drift_report()
        assert report.drifted_features == [], label  # no univariate test fires
        verdicts[label] = report.multivariate["reconstruction_error"]
    assert verdicts["flipped"]["drifted"]
    assert verdicts["flipped"]["value"] > verdicts["flipped"]["upper"]
    assert not verdicts["stationary"]["drifted"]
    # A batch above 256 rows contributes every k-th row: 269 rows -> every 2nd, 135.
    assert verdicts["stationary"]["rows"] == verdicts["flipped"]["rows"] == 135


def test_stationary_stream_raises_no_alarm_in_95_percent_of_windows():
    ref, cur = _split()
    reference = Reference.from_data(ref)
    rng = np.random.default_rng(1)
    alarms = windows = 0
    for _ in range(10):  # the held-out rows, reshuffled into windows of 100
        rows = cur.iloc[rng.permutation(len(cur))]
        for start in range(0, len(rows) - 99, 100):
            monitor, _ = _monitor(reference)
            monitor.observe(rows.iloc[start:start + 100])
            alarms += monitor.drift_report().multivariate["reconstruction_error"]["drifted"]
            windows += 1
    assert windows == 20 and alarms / windows <= 0.05


def test_gauges_per_segment_with_bounds_and_a_minimum_of_rows():
    ref, cur = _split()
    monitor, reader = _monitor(Reference.from_data(ref), segment_by="site")
    frame = cur.copy()
    frame["site"] = ["A"] * 150 + ["B"] * (len(cur) - 150)
    flipped_b = _flip(frame.iloc[150:])
    monitor.observe(frame.iloc[:150])
    monitor.observe(flipped_b)
    monitor.observe(frame.iloc[:50].assign(site="tiny"))  # below the minimum: not exported
    points = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                for p in m.data.data_points:
                    if m.name.startswith("ml.drift.reconstruction_error"):
                        points[(m.name, p.attributes["ml.segment"])] = p.value
                        assert p.attributes["ml.multivariate.space"] == "features"
    value, upper = "ml.drift.reconstruction_error", "ml.drift.reconstruction_error.upper"
    assert points[(value, "B")] > points[(upper, "B")]
    assert points[(value, "A")] < points[(upper, "A")]
    assert (value, "__all__") in points and (value, "tiny") not in points
    report = monitor.drift_report()
    assert report.segments["B"].multivariate["reconstruction_error"]["drifted"]
    assert not report.segments["tiny"].multivariate["reconstruction_error"]["drifted"]


def test_single_rows_are_buffered_and_counted():
    ref, cur = _split()
    monitor, _ = _monitor(Reference.from_data(ref))

    @monitor
    def predict(x):
        return float(x.sum())

    values = cur.to_numpy()
    for row in values[:200]:
        predict(row)
    mv = monitor.drift_report().multivariate["reconstruction_error"]
    assert mv["rows"] == 200 and not mv["drifted"]
    flipped = _flip(cur).to_numpy()
    monitor2, _ = _monitor(Reference.from_data(ref))
    for row in flipped:
        monitor2.observe(row)
    assert monitor2.drift_report().multivariate["reconstruction_error"]["drifted"]


def _drift(reference):
    """A window of 60 s in slots of 10 s on a clock the test moves: (settings, ingest,
    analysis, clock)."""
    settings = Settings.create("cancer", drift_window_s=60, slot_s=10)
    ingest = FeatureIngest(settings, reference, lambda v: str(v))
    now = [0.0]
    return settings, ingest, MultivariateDrift(settings, reference, ingest.plan,
                                               clock=lambda: now[0]), now


def test_window_expires_and_memory_does_not_grow_with_traffic():
    ref, cur = _split()
    reference = Reference.from_data(ref)
    _, ingest, mv, now = _drift(reference)
    mv.observe(ingest.prepare(_flip(cur), None, segment=None, output="auto"))
    entry = mv.report()["multivariate"][None]["features"]["reconstruction_error"]
    assert entry["drifted"] and entry["rows"] == 135  # every 2nd row of a 269-row batch
    now[0] = 120.0  # two windows later: nothing of the old rows stays
    assert mv.windows()["features"]["__all__"][0] == 0
    for _ in range(50):
        mv.observe(ingest.prepare(cur, None, segment=None, output="auto"))
    sums = mv.windows()["features"]
    # Every 2nd row (135) until the slot holds 1,024 rows (8 calls), then every 8th batch of
    # the 42 left (5 of them).
    assert set(sums) == {"__all__"} and sums["__all__"][0] == 8 * 135 + 5 * 135
    assert not mv.report()["multivariate"][None]["features"]["reconstruction_error"]["drifted"]


def test_busy_slots_read_one_batch_in_eight_per_segment_and_slot():
    ref, cur = _split()
    reference = Reference.from_data(ref)
    settings, ingest, mv, now = _drift(reference)
    batch = ingest.prepare(_flip(cur), None, segment="A", output="auto")
    rows = []
    for t in [i * 0.5 for i in range(20)] + [10.0]:
        now[0] = t
        before = mv.windows()["features"].get("A", np.zeros(3))[0]
        mv.observe(batch)
        rows.append(int(mv.windows()["features"]["A"][0] - before))
    # Every batch (135 rows) until the slot [0, 10) holds 1,024 rows, one batch in 8 after;
    # a new slot at t=10 reads densely again.
    assert rows == [135] * 8 + [0] * 7 + [135] + [0] * 4 + [135]
    # Another segment in the same busy slot is read densely: its own count.
    mv.observe(ingest.prepare(cur, None, segment="B", output="auto"))
    assert mv.windows()["features"]["B"][0] == 135
    # The flip is still found in the busy slots' mixture of dense and sparse rows.
    assert mv.report()["multivariate"]["A"]["features"]["reconstruction_error"]["drifted"]
    # A batch job's partitions read every batch densely (what they read depends on their
    # batches only, not on the order one process saw them in).
    dense = MultivariateDrift(settings, reference, ingest.plan, clock=lambda: 0.0, dense=True)
    for _ in range(10):
        dense.observe(batch)
    assert dense.windows()["features"]["A"][0] == 10 * 135


def test_no_projection_without_enough_numeric_features():
    reference = Reference.from_data({"x": np.arange(100.0), "c": ["a", "b"] * 50})
    assert "features" not in reference.projections
    monitor, reader = _monitor(reference)
    monitor.observe({"x": np.arange(50.0), "c": ["a"] * 50})
    assert monitor.drift_report().multivariate == {}


def test_projection_band_is_conservative_for_in_between_sizes():
    ref, _ = _split()
    p = Reference.from_data(ref).projections["features"]
    bands = [p.upper("reconstruction_error", n) for n in (20, 50, 100, 400, 3000, 100_000)]
    assert all(a > b for a, b in zip(bands, bands[1:]))  # narrower with more rows
    assert p.upper("reconstruction_error", 120) == pytest.approx(
        p.upper("reconstruction_error", 119), rel=0.05)


def test_a_reference_with_projections_pickles_for_workers():
    """Spark and Dask ship the reference to their workers by pickling it: the projections
    travel without their lock and give the same errors and bounds."""
    import pickle

    x = load_breast_cancer().data
    reference = Reference.from_data(x)
    copy = pickle.loads(pickle.dumps(reference))
    a, b = reference.projections["features"], copy.projections["features"]
    np.testing.assert_array_equal(a.apply(x)[1], b.apply(x)[1])
    assert a.upper("reconstruction_error", 64) == b.upper("reconstruction_error", 64)
