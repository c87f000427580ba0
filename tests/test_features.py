"""Streaming statistics through the real SDK: bins, moments, window, segments, threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import points

from otel_ml import ModelMonitor, Reference
from otel_ml._internal.monitor.analysis import Analysis
from otel_ml._internal.monitor.feature_ingest import FeatureIngest
from otel_ml._internal.monitor.feature_stats import BUFFER_ROWS, FeatureStatistics
from otel_ml._internal.monitor.settings import Settings
from otel_ml.contract import ALL_SEGMENTS, NO_SEGMENT, PREDICTION_FEATURE, Attr

MODEL = {Attr.MODEL_NAME: "m", Attr.MODEL_VERSION: "1"}


@pytest.fixture(scope="module")
def ref() -> Reference:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20_000, 3))
    return Reference.from_data(X, feature_names=["a", "b", "c"], predictions=X[:, 0] + X[:, 1])


def _bins(ref: Reference, name: str, values: np.ndarray) -> np.ndarray:
    p = ref.features[name]
    return np.bincount(p.bin_of(values), minlength=p.bins)


def _analysis(ref: Reference | None, clock=None, **options) -> tuple[FeatureIngest,
                                                                       FeatureStatistics]:
    """The feature analysis on its own, behind the Analysis protocol (what ModelMonitor wires)."""
    settings = Settings.create("m", "1", **options)
    ingest = FeatureIngest(settings, ref, str)
    stats = FeatureStatistics(settings, ingest, **({"clock": clock} if clock else {}))
    assert isinstance(stats, Analysis)
    return ingest, stats


def _feed(ingest: FeatureIngest, stats: FeatureStatistics, x, predictions=None):
    """One call through the protocol: the ingest prepares the batch, the analysis observes it."""
    batch = ingest.prepare(x, predictions, segment=None, output="auto")
    stats.observe(batch)
    return batch


def _observations(reader, feature: str, segment: str = NO_SEGMENT) -> np.ndarray:
    found = {int(a[Attr.BIN]): v for a, v in points(reader, "ml.feature.observations")
             if a[Attr.FEATURE] == feature and a[Attr.SEGMENT] == segment}
    return np.array([found[i] for i in range(len(found))])


def test_decorated_batch_feeds_exact_bins_moments_and_shares(ref, providers,
                                                             metric_reader) -> None:
    monitor = ModelMonitor("m", "1", reference=ref, **providers)

    @monitor
    def predict(X):
        return X[:, 0] + X[:, 1]

    X = np.random.default_rng(1).normal(0.3, 1.2, size=(5_000, 3))
    before = X.copy()
    predict(X)
    np.testing.assert_array_equal(X, before)  # the caller's input is never written
    for i, name in enumerate("abc"):
        np.testing.assert_array_equal(_observations(metric_reader, name),
                                      _bins(ref, name, X[:, i]))
    np.testing.assert_array_equal(
        _observations(metric_reader, PREDICTION_FEATURE),
        np.bincount(ref.prediction.bin_of(X[:, 0] + X[:, 1]), minlength=ref.prediction.bins))
    means = {a[Attr.FEATURE]: v for a, v in points(metric_reader, "ml.feature.mean")}
    stds = {a[Attr.FEATURE]: v for a, v in points(metric_reader, "ml.feature.stddev")}
    for i, name in enumerate("abc"):
        assert means[name] == pytest.approx(X[:, i].mean(), rel=1e-9)
        assert stds[name] == pytest.approx(X[:, i].std(), rel=1e-9)
    assert means[PREDICTION_FEATURE] == pytest.approx((X[:, 0] + X[:, 1]).mean(), rel=1e-9)
    assert stds[PREDICTION_FEATURE] == pytest.approx((X[:, 0] + X[:, 1]).std(), rel=1e-9)
    shares = {(a[Attr.FEATURE], a[Attr.BIN]): v
              for a, v in points(metric_reader, "ml.reference.bin.share")}
    for name in "abc":
        p = ref.features[name]
        assert [shares[(name, str(j))] for j in range(p.bins)] == pytest.approx(list(p.shares))
    # Attributes: exactly the contract's, model attributes included.
    attrs, _ = points(metric_reader, "ml.feature.observations")[0]
    assert set(attrs) == {*MODEL, Attr.FEATURE, Attr.SEGMENT, Attr.BIN}
    rows = points(metric_reader, "ml.drift.window.rows")
    assert rows == [({**MODEL, Attr.SEGMENT: ALL_SEGMENTS}, 5_000)]


def test_single_rows_are_buffered_and_flushed_at_collection(ref, providers,
                                                            metric_reader) -> None:
    monitor = ModelMonitor("m", "1", reference=ref, **providers)

    @monitor
    def predict(row):
        return float(row[0] + row[1])

    X = np.random.default_rng(2).normal(size=(BUFFER_ROWS * 2 + 7, 3))
    for row in X[: BUFFER_ROWS + 3]:
        predict(row)
    for row in X[BUFFER_ROWS + 3:]:
        predict(row.tolist())  # list rows take the same path
    # Two buffers were processed on the way, the last 7 rows at collection.
    np.testing.assert_array_equal(_observations(metric_reader, "b"), _bins(ref, "b", X[:, 1]))
    np.testing.assert_array_equal(_observations(metric_reader, PREDICTION_FEATURE),
                                  np.bincount(ref.prediction.bin_of(X[:, 0] + X[:, 1]),
                                              minlength=ref.prediction.bins))
    assert monitor.drift_report().rows == len(X)


def test_lookup_table_binning_equals_searchsorted_at_edges(providers, metric_reader) -> None:
    rng = np.random.default_rng(3)
    data = np.column_stack([rng.normal(size=5_000), rng.lognormal(0, 2, size=5_000),
                            rng.integers(0, 5, 5_000).astype(float), rng.uniform(size=5_000)])
    ref = Reference.from_data(data, bins=12)
    monitor = ModelMonitor("m", reference=ref, **providers)
    # Values exactly at edges, at extended edges, between, beyond, and random.
    probes = []
    for p in ref.features.values():
        pts = np.concatenate([p.edges, np.nextafter(p.edges, -np.inf),
                              np.nextafter(p.edges, np.inf), [p.min, p.max, p.p_low, p.p_high,
                                                              p.min - 1, p.max + 1, -1e300, 1e300]])
        probes.append(pts)
    n = max(len(x) for x in probes)
    probe = np.column_stack([np.resize(x, n) for x in probes])
    V = np.vstack([probe, rng.normal(size=(20_000, 4)) * [1, 10, 3, 1]])
    expected = np.column_stack([p.bin_of(V[:, i]) for i, p in enumerate(ref.features.values())])
    monitor.observe(V)
    report = monitor.drift_report()
    for i, (name, p) in enumerate(ref.features.items()):
        np.testing.assert_array_equal(_observations(metric_reader, name),
                                      np.bincount(expected[:, i], minlength=p.bins), name)
    assert report.rows == len(V)


def test_window_slots_expire(ref) -> None:
    now = [1000.0]
    ingest, stats = _analysis(ref, clock=lambda: now[0], drift_window_s=300, slot_s=60)
    rng = np.random.default_rng(4)
    _feed(ingest, stats, rng.normal(size=(500, 3)))
    now[0] += 120
    _feed(ingest, stats, rng.normal(size=(300, 3)))
    assert stats.report()["drift"].rows == 800
    now[0] += 200  # the first batch's slot is now older than 5 slots
    assert stats.report()["drift"].rows == 300
    now[0] += 1000
    assert stats.report()["drift"].rows == 0


def test_segment_column_concentrates_drift_in_that_segment(ref, providers,
                                                           metric_reader) -> None:
    import pandas as pd

    monitor = ModelMonitor("m", "1", reference=ref, segment_by="region", **providers)
    rng = np.random.default_rng(5)
    frames = []
    for region, shift in (("eu", 0.0), ("us", 0.0), ("apac", 1.0)):
        X = rng.normal(size=(3_000, 3))
        X[:, 2] += shift
        frames.append(pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "region": region}))
    df = pd.concat(frames).sample(frac=1.0, random_state=0)
    monitor.observe(df)
    report = monitor.drift_report()
    assert report.segments["apac"].drifted_features == ["c"]
    assert report.segments["eu"].drifted_features == []
    assert report.segments["us"].drifted_features == []
    drifted = {(a[Attr.FEATURE], a[Attr.SEGMENT]): v
               for a, v in points(metric_reader, "ml.feature.drifted")}
    assert drifted[("c", "apac")] == 1 and drifted[("c", "eu")] == 0
    assert drifted[("a", ALL_SEGMENTS)] == 0
    rows = {a[Attr.SEGMENT]: v for a, v in points(metric_reader, "ml.drift.window.rows")}
    assert rows == {ALL_SEGMENTS: 9_000, "eu": 3_000, "us": 3_000, "apac": 3_000}
    # The segment column is not reported as an extra column.
    assert not [a for a, _ in points(metric_reader, "ml.data_quality.issues")
                if a[Attr.CHECK] == "schema_extra_column"]
    # Counters per segment sum to the total.
    total = sum(_observations(metric_reader, "a", s).sum() for s in ("eu", "us", "apac"))
    assert total == 9_000


def test_per_call_segments_and_cap(ref, providers, metric_reader) -> None:
    monitor = ModelMonitor("m", "1", reference=ref, segment_by=lambda a, k: k.get("tenant"),
                           max_segments=2, **providers)

    @monitor
    def predict(X, tenant=None):
        return X[:, 0]

    rng = np.random.default_rng(6)
    for tenant in ("t1", "t2", "t3", "t4"):
        predict(rng.normal(size=(100, 3)), tenant=tenant)
    rows = {a[Attr.SEGMENT]: v for a, v in points(metric_reader, "ml.drift.window.rows")}
    assert rows == {ALL_SEGMENTS: 400, "t1": 100, "t2": 100, "__other__": 200}


def test_eight_threads_give_the_same_statistics_as_one(ref, tracer_provider) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    rng = np.random.default_rng(7)
    rows = rng.normal(size=(4_000, 3))
    batches = [rng.normal(size=(50, 3)) for _ in range(40)]

    def run(threads: int) -> dict:
        reader = InMemoryMetricReader()
        monitor = ModelMonitor("m", reference=ref, tracer_provider=tracer_provider,
                               meter_provider=MeterProvider(metric_readers=[reader]))

        @monitor
        def predict(x):
            return x[..., 0] if x.ndim == 2 else float(x[0])

        def work(k: int) -> None:
            for i in range(k, len(rows), threads):
                predict(rows[i])
            for i in range(k, len(batches), threads):
                predict(batches[i])

        workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        names = ("ml.drift.window.rows", "ml.feature.observations", "ml.data_quality.issues",
                 "ml.model.outliers", "ml.feature.mean", "ml.feature.stddev")
        return {name: {tuple(sorted(a.items())): v for a, v in points(reader, name)}
                for name in names}

    one, eight = run(1), run(8)
    assert list(one["ml.drift.window.rows"].values()) == [6_000]
    for name in ("ml.drift.window.rows", "ml.feature.observations", "ml.data_quality.issues",
                 "ml.model.outliers"):
        assert one[name] == eight[name], name  # counts: exactly equal
    assert one["ml.feature.observations"] and one["ml.model.outliers"]
    for name in ("ml.feature.mean", "ml.feature.stddev"):
        assert one[name].keys() == eight[name].keys() and len(one[name]) == 4
        for key, value in one[name].items():
            assert eight[name][key] == pytest.approx(value, rel=1e-9, abs=1e-9), (name, key)


def test_one_collection_is_consistent_and_the_next_sees_new_data(ref, providers,
                                                                 metric_reader) -> None:
    monitor = ModelMonitor("m", "1", reference=ref, **providers)
    rng = np.random.default_rng(8)
    monitor.observe(rng.normal(size=(1_000, 3)))
    first = points(metric_reader, "ml.drift.window.rows")
    monitor.observe(rng.normal(size=(500, 3)))
    second = points(metric_reader, "ml.drift.window.rows")
    assert [v for _, v in first] == [1_000] and [v for _, v in second] == [1_500]


def test_without_reference_moments_and_schema_from_first_batch(providers,
                                                               metric_reader) -> None:
    monitor = ModelMonitor("m", "1", feature_names=["x", "y"], **providers)

    @monitor
    def predict(X):
        return X.sum(axis=1) if X.ndim == 2 else float(X.sum())

    X = np.random.default_rng(9).normal(5, 2, size=(300, 2))
    predict(X[:200])
    for row in X[200:]:
        predict(row)
    means = {a[Attr.FEATURE]: v for a, v in points(metric_reader, "ml.feature.mean")}
    assert means["x"] == pytest.approx(X[:, 0].mean()) and means["y"] == pytest.approx(
        X[:, 1].mean())
    assert means[PREDICTION_FEATURE] == pytest.approx(X.sum(axis=1).mean())
    assert points(metric_reader, "ml.feature.observations") == []
    assert points(metric_reader, "ml.feature.drift.score") == []
    report = monitor.drift_report()
    assert report.reason.startswith("no reference") and report.features == {}
    assert monitor.resolved_task == "regression"


def test_inferred_task_from_predictions(providers) -> None:
    labels = ModelMonitor("a", **providers)
    labels.observe(np.zeros((3, 2)), np.array([0, 1, 1]))
    assert labels.resolved_task == "classification"
    proba = ModelMonitor("b", **providers)
    proba.observe(np.zeros((3, 2)), np.array([[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]]))
    assert proba.resolved_task == "classification"
    scores = ModelMonitor("c", **providers)
    scores.observe(np.zeros((3, 2)), np.array([1.5, 2.5, 0.1]))
    assert scores.resolved_task == "regression"


def test_batch_exposes_rows_columns_segments_and_bins(ref) -> None:
    import pandas as pd

    from otel_ml._internal.monitor.batch import RowBins

    ingest, stats = _analysis(ref, segment_by="region")
    df = pd.DataFrame({"a": [0.0, 5.0], "b": [1.0, -1.0], "c": [0.1, 0.2],
                       "region": ["x", "y"], "group": ["g1", "g2"]})
    batch = _feed(ingest, stats, df)
    assert batch.rows == 2 and batch.input is df
    assert list(batch.column("group")) == ["g1", "g2"]
    assert batch.column("nope") is None
    assert list(batch.segments) == ["x", "y"]
    got = ingest.bin_rows(batch)
    assert isinstance(got, RowBins) and got.features == ("a", "b", "c")
    assert got.bins.shape == (2, 3)
    assert got.bins[0, 0] == ref.features["a"].bin_of(np.array([0.0]))[0]
    assert got.bins[1, 0] == ref.features["a"].bins - 1  # 5.0: the top bin
    assert ingest.bin_label("a", 2) == "2"  # as the ml.bin attribute of the observations
    kept = batch.keep()
    assert kept.rows == 2 and list(kept.column("group")) == ["g1", "g2"]
    np.testing.assert_array_equal(ingest.bin_rows(kept).bins, got.bins)
    row = np.array([[1.0, 2.0, 3.0]])
    arr = _feed(ingest, stats, row)
    assert list(arr.column("b")) == [2.0]
    held = arr.keep()
    row[0, 1] = 7.0  # the caller reuses its array: a kept batch is not affected
    assert list(held.column("b")) == [2.0]
    stored = ingest.batch_of(np.array([0.0, 5.0, 1.0]))  # e.g. a row kept by the outcomes
    assert stored.rows == 1 and list(ingest.bin_rows(stored).bins[0]) == list(
        ingest.bin_rows(ingest.batch_of(np.array([[0.0, 5.0, 1.0]]))).bins[0])
    # Without a reference nothing is binned: no bins, one shape (None).
    bare_ingest, bare_stats = _analysis(None)
    assert bare_ingest.bin_rows(_feed(bare_ingest, bare_stats, np.zeros((2, 3)))) is None


def test_outliers_counted_and_rate_on_the_span(ref, providers, metric_reader,
                                               span_exporter) -> None:
    monitor = ModelMonitor("m", "1", reference=ref, **providers)

    @monitor
    def predict(X):
        return np.asarray(X)[..., 0]

    rng = np.random.default_rng(10)
    X = rng.normal(size=(1_000, 3))
    X[:10, 1] = 50.0  # beyond the reference range
    predict(X)
    predict(np.array([0.0, 0.0, 100.0]))
    predict(np.array([0.0, 0.1, 0.2]))
    predict(np.array([[0, 0, 100]]))  # integers, (1, F)
    predict([0.0, 100.0, 0.0])  # a list: the rate is known after the call only
    rates = [s.attributes.get(Attr.OUTLIER_RATE) for s in span_exporter.get_finished_spans()]
    assert rates[0] == pytest.approx((10 + np.sum(np.abs(X[10:]) > 4.5) * 0) / 1_000, abs=0.01)
    assert rates[1:] == [1.0, 0.0, 1.0, 1.0]
    outliers = points(metric_reader, "ml.model.outliers")
    assert outliers[0][0] == {**MODEL, Attr.SEGMENT: NO_SEGMENT}
    assert 11 <= outliers[0][1] <= 11 + 10  # the 11 planted, plus at most 1% by chance


def test_after_fork_starts_from_zero(ref, providers) -> None:
    monitor = ModelMonitor("m", reference=ref, **providers)
    monitor.observe(np.random.default_rng(11).normal(size=(100, 3)))
    monitor.observe(np.zeros(3))
    monitor.after_fork()
    assert monitor.drift_report().rows == 0
    monitor.observe(np.zeros((5, 3)))
    assert monitor.drift_report().rows == 5


def test_payload_capture_redacts_and_bounds(ref, providers, span_exporter) -> None:
    import json

    monitor = ModelMonitor("m", reference=ref, capture_payloads=1.0, redact=["b"], **providers)

    @monitor
    def predict(X):
        return X["a"]

    predict({"a": np.arange(50.0), "b": np.arange(50.0), "c": np.arange(50.0)})
    span = span_exporter.get_finished_spans()[0]
    rows = json.loads(span.attributes[Attr.PAYLOAD_INPUTS])
    assert len(rows) == 10 and set(rows[0]) == {"a", "c"}
    assert json.loads(span.attributes[Attr.PAYLOAD_PREDICTIONS]) == list(range(10))
    assert span.attributes[Attr.PAYLOAD_TRUNCATED] is True
    quiet = ModelMonitor("q", reference=ref, **providers)(lambda X: X[:, 0])
    quiet(np.zeros((2, 3)))
    assert Attr.PAYLOAD_INPUTS not in span_exporter.get_finished_spans()[-1].attributes


def test_feature_cap_logs_and_tracks_the_first(providers, caplog) -> None:
    X = np.random.default_rng(12).normal(size=(500, 6))
    ref = Reference.from_data(X)
    with caplog.at_level("WARNING", logger="otel_ml"):
        monitor = ModelMonitor("capped", reference=ref, max_features=4, **providers)
    assert "max_features" in caplog.text
    ingest, _ = _analysis(ref, max_features=4)
    assert ingest.feature_names == ("f0", "f1", "f2", "f3")
    monitor.observe(X)
    assert set(monitor.drift_report().features) == {"f0", "f1", "f2", "f3"}


def test_predictions_without_columns_keep_the_inputs_quality_counts(providers, metric_reader):
    monitor = ModelMonitor("m", feature_names=["a", "b"], **providers)
    predict = monitor(lambda X: np.ones((len(X), 0)))
    predict(np.array([[np.nan, 1.0], [2.0, 3.0]]))
    missing = {a["ml.feature.name"]: v for a, v in points(metric_reader, "ml.data_quality.issues")
               if a["ml.quality.check"] == "missing"}
    assert missing.get("a") == 1


@pytest.mark.parametrize("order", ["C", "F"])
def test_batches_with_missing_and_infinite_values_give_exact_statistics(ref, order) -> None:
    from otel_ml._internal.stats.kernel import CHUNK_ROWS
    from otel_ml._internal.stats.ring import CHECK_INDEX
    from otel_ml.contract import Check

    ingest, stats = _analysis(ref)
    rng = np.random.default_rng(21)
    X = rng.normal(0.2, 1.3, size=(2 * CHUNK_ROWS + 123, 3))  # several chunks, one partial
    X[rng.random(X.shape) < 0.005] = np.nan
    X[rng.random(X.shape) < 0.001] = np.inf
    X[rng.random(X.shape) < 0.001] = -np.inf
    X[:40, 2] = 9.0  # beyond the reference range
    X[40:80, 0] = np.nan  # a row can hold several missing values
    X[40:80, 1] = -np.inf
    X = np.array(X, order=order)
    X.flags.writeable = False  # the caller's array is never written
    before = X.copy()
    _feed(ingest, stats, X)
    np.testing.assert_array_equal(X, before)
    snap = stats.snapshot()
    st = snap.totals[NO_SEGMENT]
    window = snap.windows[NO_SEGMENT]
    n, s1 = window.n, window.s1
    plan = ingest.plan
    assert st.rows == window.rows == len(X)
    k = plan.outlier_k
    beyond = np.zeros(len(X), dtype=bool)
    outside = np.zeros(len(X), dtype=int)
    for i, name in enumerate("abc"):
        p = ref.features[name]
        col = X[:, i]
        ok = np.isfinite(col)
        v = col[ok]
        start = plan.reference_offsets[i]
        np.testing.assert_array_equal(st.bins[start: start + plan.reference_sizes[i]],
                                      _bins(ref, name, v), name)
        issues = st.issues[i]
        assert issues[CHECK_INDEX[Check.MISSING]] == np.isnan(col).sum()
        assert issues[CHECK_INDEX[Check.NON_FINITE]] == np.isinf(col).sum()
        assert issues[CHECK_INDEX[Check.OUT_OF_RANGE]] == ((v < p.min) | (v > p.max)).sum()
        assert n[i] == v.size
        mean = plan.shifts[i] + s1[i] / n[i]
        assert mean == pytest.approx(v.mean(), rel=1e-12)
        assert window.s2[i] / n[i] - (s1[i] / n[i]) ** 2 == pytest.approx(v.var(), rel=1e-10)
        with np.errstate(invalid="ignore"):
            beyond |= ok & ((col < p.min) | (col > p.max))
            outside += ok & ((col < p.p_low) | (col >= p.p_high))
    assert st.outliers == int((beyond | (outside >= k)).sum())
    assert st.outliers >= 40


def test_single_numpy_rows_carry_their_outlier_rate_from_the_span_start(ref) -> None:
    """Read before the call: a sampler and span processors see ``ml.outlier.rate`` at start."""
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

    class AtStart(SpanProcessor):
        def __init__(self) -> None:
            self.seen: list[dict] = []

        def on_start(self, span, parent_context=None) -> None:
            self.seen.append(dict(span.attributes))

    at_start = AtStart()
    provider = TracerProvider()
    provider.add_span_processor(at_start)
    monitor = ModelMonitor("m", "1", reference=ref, tracer_provider=provider)
    predict = monitor(lambda X: np.asarray(X)[..., 0])
    predict(np.array([0.0, 0.0, 100.0]))
    predict(np.array([[0.0, 0.1, 0.2]]))
    predict([0.0, 100.0, 0.0])  # a list: known after the call only
    assert [a.get(Attr.OUTLIER_RATE) for a in at_start.seen] == [1.0, 0.0, None]
    assert all(a[Attr.BATCH_SIZE] == 1 and a[Attr.OUTCOME] == "success" for a in at_start.seen)


def test_single_row_outlier_rate_follows_the_binned_rule() -> None:
    from otel_ml._internal.stats.kernel import delta

    rng = np.random.default_rng(22)
    F = 20
    ref = Reference.from_data(rng.normal(size=(20_000, F)))
    ingest, stats = _analysis(ref)
    lay = ingest.plan
    assert lay.outlier_k > 1  # rows with some, but too few, values in the tails exist
    rows = rng.normal(size=(600, F)) * rng.choice([0.5, 1.0, 1.5], size=(600, 1))
    p = next(iter(ref.features.values()))
    rows[:120] = 0.0
    rows[:20, 0] = p.max + 1  # beyond the range: an outlier on its own
    rows[20:40, 3] = np.nan
    rows[40:60, :5] = np.inf  # non-finite values are data-quality issues, not outliers
    rows[60:80, :2] = -np.inf
    rows[80:100, 0] = p.p_high  # at the top of the central range: outside it
    rows[80:100, 1:lay.outlier_k] = 10.0
    rows[100:120, :lay.outlier_k - 1] = 3.5  # in the tails, one value short of the rule
    # The binned rule of every row, from the batch kernel.
    _, expected = delta(lay, rows, outliers=True)
    assert expected[:20].all() and not expected[20:80].any()
    assert expected[80:100].all() and not expected[100:120].any()
    assert 0 < expected[120:].sum() < 200  # and some of the random rows
    got, early = [], []
    for i, row in enumerate(rows):
        x = (row, row.tolist(), row.reshape(1, F))[i % 3]  # every fast-path form
        got.append(_feed(ingest, stats, x).outlier_rate)
        # Read before the call for the span's start attributes: numpy rows only.
        early.append(ingest.row_outlier_rate(x) if i % 3 != 1 else got[-1])
        assert i % 3 != 1 or ingest.row_outlier_rate(x) is None
    np.testing.assert_array_equal(np.array(got), expected.astype(float))
    np.testing.assert_array_equal(np.array(early), expected.astype(float))
    # The counter agrees (buffered rows are processed at the snapshot).
    assert stats.snapshot().totals[NO_SEGMENT].outliers == int(expected.sum())


def test_overflowing_inputs_raise_no_warning_in_the_host(providers):
    import warnings

    monitor = ModelMonitor("m", feature_names=["a", "b"], **providers)
    predict = monitor(lambda X: X[:, 0])
    huge = np.array([[1e308, -1e308], [1e308, np.inf], [-np.inf, 1e308]] * 100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):
            predict(huge)
            predict(huge[:1])
        monitor.flush()
        monitor.drift_report()


@pytest.mark.parametrize("constant", [0.0, 1.0, -3.5, 1e6])
def test_a_constant_reference_column_is_a_one_bin_feature(providers, metric_reader,
                                                          span_exporter, constant) -> None:
    """A constant reference column (one value, zero width) is one bin: that value is in range
    and no outlier; any other value is out of range (and an outlier on its own)."""
    rng = np.random.default_rng(30)
    X = np.column_stack([np.full(2_000, constant), rng.normal(size=2_000)])
    ref = Reference.from_data(X, feature_names=["const", "x"])
    monitor = ModelMonitor("m", "1", reference=ref, **providers)  # 0.0 raised ZeroDivisionError
    predict = monitor(lambda X: np.asarray(X)[..., 1])
    Y = np.column_stack([np.full(100, constant), np.zeros(100)])
    Y[:10, 0] = constant + 1.0
    Y[10:20, 0] = constant - 1.0
    Y[20:25, 0] = np.nextafter(constant, np.inf)  # the very next float is out of range too
    predict(Y)
    predict(np.array([constant, 0.0]))
    predict(np.array([constant + 0.5, 0.0]))
    assert _observations(metric_reader, "const").tolist() == [102]  # one bin
    issues = {(a[Attr.FEATURE], a[Attr.CHECK]): v
              for a, v in points(metric_reader, "ml.data_quality.issues")}
    assert issues == {("const", "out_of_range"): 26}
    assert [v for _, v in points(metric_reader, "ml.model.outliers")] == [26]
    rates = [s.attributes.get(Attr.OUTLIER_RATE) for s in span_exporter.get_finished_spans()]
    assert rates == [pytest.approx(0.25), 0.0, 1.0]
    report = monitor.drift_report()
    assert report.rows == 102 and set(report.features) == {"const", "x"}
    const = report.features["const"]  # the window's out-of-range values reach the drift test
    assert const.rows == 102 and const.drifted and "26 of 102 values differ" in const.reason
