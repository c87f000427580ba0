"""A regressor's estimate under sustained traffic (issue 17's cost target): beyond
``DENSE_ROWS`` rows in a time slot the loss model reads every ``SPARSE_STEP``-th row, chosen by
the row's position in the slot's stream, so that 1-row calls, batches of any size and one
batch read the same rows; on real data (diabetes, bundled with scikit-learn) the sampled
estimate stays within sampling error of reading every row."""

from __future__ import annotations

import numpy as np
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.model_selection import train_test_split

from otel_ml import ModelMonitor, Reference
from otel_ml._internal.monitor import estimation
from otel_ml._internal.monitor.estimation import EstimationAnalysis, EstimationInput
from otel_ml._internal.monitor.feature_ingest import FeatureIngest
from otel_ml._internal.monitor.settings import Settings

DENSE, STEP = estimation.DENSE_ROWS, estimation.SPARSE_STEP


@pytest.fixture(scope="module")
def data():
    X, y = load_diabetes(return_X_y=True)
    Xtr, Xrest, ytr, yrest = train_test_split(X, y, test_size=0.6, random_state=0)
    Xval, Xte, yval, _ = train_test_split(Xrest, yrest, test_size=0.5, random_state=0)
    model = Ridge().fit(Xtr, ytr)
    ref = Reference.from_data(Xval, predictions=model.predict(Xval), labels=yval)
    # 6,000 serving rows: the held-out rows resampled, each with a little noise.
    rng = np.random.default_rng(0)
    rows = Xte[rng.integers(0, len(Xte), 6000)]
    rows = rows + rng.normal(0, 0.1 * Xte.std(axis=0), rows.shape)
    return model, ref, rows


def _monitor(ref, **options):
    return ModelMonitor("sampled", "1", reference=ref, task="regression",
                        meter_provider=MeterProvider(), **options)


def test_one_row_calls_batches_and_one_batch_read_the_same_rows(data):
    model, ref, rows = data
    estimates = []
    one = _monitor(ref)
    one(model.predict)(rows)
    estimates.append(one.performance_report().estimated)
    mixed = _monitor(ref)
    fn, rng, start = mixed(model.predict), np.random.default_rng(1), 0
    while start < len(rows):  # batches of 1..700 rows
        n = int(rng.integers(1, 700))
        fn(rows[start:start + n])
        start += n
    estimates.append(mixed.performance_report().estimated)
    single = _monitor(ref)
    fn = single(model.predict)
    for i in range(len(rows)):
        fn(rows[i:i + 1])
    estimates.append(single.performance_report().estimated)
    expected_rows = DENSE + -(-(len(rows) - DENSE) // STEP)
    for est in estimates:
        assert est["rows"] == expected_rows
        for name in ("mae", "rmse"):
            for key in ("value", "lower", "upper"):
                assert est[name][key] == pytest.approx(estimates[0][name][key], abs=1e-9)


def test_the_sampled_estimate_is_within_sampling_error_of_every_row(data, monkeypatch):
    model, ref, rows = data
    sampled = _monitor(ref)
    sampled(model.predict)(rows)
    monkeypatch.setattr(estimation, "DENSE_ROWS", 10 ** 9)  # every row
    full = _monitor(ref)
    full(model.predict)(rows)
    a, b = sampled.performance_report().estimated, full.performance_report().estimated
    assert b["rows"] == len(rows) and a["rows"] < len(rows)
    for name in ("mae", "rmse"):
        assert a[name]["value"] == pytest.approx(b[name]["value"], rel=0.02)
        # The band of the sampled estimate covers the every-row estimate.
        assert a[name]["lower"] <= b[name]["value"] <= a[name]["upper"]


def test_a_new_slot_reads_every_row_again_and_per_row_segments_follow(data):
    model, ref, rows = data
    settings = Settings.create("sampled", task="regression", drift_window_s=600, slot_s=60)
    ingest = FeatureIngest(settings, ref, lambda v: str(v))
    now = [0.0]
    est = EstimationAnalysis(settings, ref, lambda x: None, clock=lambda: now[0],
                             plan_of=lambda: ingest.plan)
    pred = model.predict(rows)
    batch = ingest.prepare(rows, pred, segment=None, output="auto")
    est.observe(EstimationInput(pred, "auto", None, batch, None))
    first = DENSE + -(-(len(rows) - DENSE) // STEP)
    assert est.estimates()["rows"] == first
    now[0] = 60.0  # the next slot: read in full up to DENSE rows again
    est.observe(EstimationInput(pred[:1000], "auto", None,
                                ingest.prepare(rows[:1000], pred[:1000], segment=None,
                                               output="auto"), None))
    assert est.estimates()["rows"] == first + 1000
    # Per-row segments are sampled with their rows.
    settings = Settings.create("sampled", task="regression", segment_by="site")
    ingest = FeatureIngest(settings, ref, lambda v: str(v))
    est = EstimationAnalysis(settings, ref, lambda x: None, plan_of=lambda: ingest.plan)
    batch = ingest.prepare(rows, pred, segment=None, output="auto")
    batch.segments = np.array(["A", "B", "C"] * (len(rows) // 3), dtype=object)
    est.observe(EstimationInput(pred, "auto", None, batch, None))
    by_segment = est.estimates()["by_segment"]
    assert sum(s["rows"] for s in by_segment.values()) == first
    kept = list(range(DENSE)) + list(range(DENSE, len(rows), STEP))
    assert {k: s["rows"] for k, s in by_segment.items()} == \
        {k: sum(1 for j in kept if j % 3 == i) for i, k in enumerate("ABC")}
