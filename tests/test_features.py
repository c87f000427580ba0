"""Streaming statistics through the real SDK: bins, moments, window, segments, threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import points

from otel_ml import ModelMonitor, Reference
from otel_ml.contract import ALL_SEGMENTS, NO_SEGMENT, PREDICTION_FEATURE, Attr
from otel_ml._internal.monitor.features import BUFFER_ROWS

MODEL = {Attr.MODEL_NAME: "m", Attr.MODEL_VERSION: "1"}


@pytest.fixture(scope="module")
def ref() -> Reference:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20_000, 3))
    return Reference.from_data(X, feature_names=["a", "b", "c"], predictions=X[:, 0] + X[:, 1])


def _bins(ref: Reference, name: str, values: np.ndarray) -> np.ndarray:
    p = ref.features[name]
    return np.bincount(p.bin_of(values), minlength=p.bins)


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


def test_lookup_table_binning_equals_searchsorted_at_edges(providers) -> None:
    rng = np.random.default_rng(3)
    data = np.column_stack([rng.normal(size=5_000), rng.lognormal(0, 2, size=5_000),
                            rng.integers(0, 5, 5_000).astype(float), rng.uniform(size=5_000)])
    ref = Reference.from_data(data, bins=12)
    monitor = ModelMonitor("m", reference=ref, **providers)
    fm = monitor._features
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
    got = fm._stats[NO_SEGMENT].bins
    lay = fm._layout
    for i, name in enumerate(ref.features):
        start = lay.ref_offsets[i]
        counts = got[start: start + lay.ref_sizes[i]]
        np.testing.assert_array_equal(counts, np.bincount(expected[:, i],
                                                          minlength=lay.ref_sizes[i]), name)
    assert report.rows == len(V)


def test_window_slots_expire(ref, providers) -> None:
    monitor = ModelMonitor("m", reference=ref, drift_window_s=300, slot_s=60, **providers)
    fm = monitor._features
    now = [1000.0]
    fm.clock = lambda: now[0]
    rng = np.random.default_rng(4)
    monitor.observe(rng.normal(size=(500, 3)))
    now[0] += 120
    monitor.observe(rng.normal(size=(300, 3)))
    assert monitor.drift_report().rows == 800
    now[0] += 200  # the first batch's slot is now older than 5 slots
    assert monitor.drift_report().rows == 300
    now[0] += 1000
    assert monitor.drift_report().rows == 0


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


def test_eight_threads_give_the_same_statistics_as_one(ref, providers) -> None:
    rng = np.random.default_rng(7)
    rows = rng.normal(size=(4_000, 3))
    batches = [rng.normal(size=(50, 3)) for _ in range(40)]

    def run(threads: int) -> tuple:
        monitor = ModelMonitor("m", reference=ref, **providers)

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
        fm = monitor._features
        fm.flush()
        st = fm._stats[NO_SEGMENT]
        window = st.window(int(fm.clock() // fm._slot_s))
        return st.rows, st.bins.copy(), st.issues.copy(), st.outliers, window

    one, eight = run(1), run(8)
    assert one[0] == eight[0] == 6_000
    np.testing.assert_array_equal(one[1], eight[1])
    np.testing.assert_array_equal(one[2], eight[2])
    assert one[3] == eight[3]
    np.testing.assert_array_equal(one[4][2], eight[4][2])
    np.testing.assert_allclose(one[4][3], eight[4][3], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(one[4][4], eight[4][4], rtol=1e-9)


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


def test_batch_exposes_rows_columns_segments_and_bins(ref, providers) -> None:
    import pandas as pd

    monitor = ModelMonitor("m", reference=ref, segment_by="region", **providers)
    fm = monitor._features
    df = pd.DataFrame({"a": [0.0, 5.0], "b": [1.0, -1.0], "c": [0.1, 0.2],
                       "region": ["x", "y"], "group": ["g1", "g2"]})
    batch = fm.observe(df, None, segment=None, output="auto")
    assert batch.rows == 2
    assert list(batch.column("group")) == ["g1", "g2"]
    assert batch.column("nope") is None
    assert list(batch.segments) == ["x", "y"]
    bins = fm.bin_rows(batch)
    assert bins.shape == (2, 3)
    assert bins[0, 0] == ref.features["a"].bin_of(np.array([0.0]))[0]
    assert bins[1, 0] == ref.features["a"].bins - 1  # 5.0: the top bin
    arr = fm.observe(np.array([[1.0, 2.0, 3.0]]), None, segment=None, output="auto")
    assert list(arr.column("b")) == [2.0]


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
    assert monitor._features.feature_names == ("f0", "f1", "f2", "f3")
    assert "max_features" in caplog.text
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
def test_batches_with_missing_and_infinite_values_give_exact_statistics(ref, providers,
                                                                        order) -> None:
    from otel_ml._internal.stats.ring import CHECK_INDEX
    from otel_ml.contract import Check
    from otel_ml._internal.monitor.features import _CHUNK_ROWS

    monitor = ModelMonitor("m", reference=ref, **providers)
    fm = monitor._features
    rng = np.random.default_rng(21)
    X = rng.normal(0.2, 1.3, size=(2 * _CHUNK_ROWS + 123, 3))  # several chunks, one partial
    X[rng.random(X.shape) < 0.005] = np.nan
    X[rng.random(X.shape) < 0.001] = np.inf
    X[rng.random(X.shape) < 0.001] = -np.inf
    X[:40, 2] = 9.0  # beyond the reference range
    X[40:80, 0] = np.nan  # a row can hold several missing values
    X[40:80, 1] = -np.inf
    X = np.array(X, order=order)
    X.flags.writeable = False  # the caller's array is never written
    before = X.copy()
    monitor.observe(X)
    np.testing.assert_array_equal(X, before)
    st = fm._stats[NO_SEGMENT]
    lay = fm._layout
    rows, _, n, s1, s2 = st.window(int(fm.clock() // fm._slot_s))
    assert st.rows == rows == len(X)
    k = lay.outlier_k
    beyond = np.zeros(len(X), dtype=bool)
    outside = np.zeros(len(X), dtype=int)
    for i, name in enumerate("abc"):
        p = ref.features[name]
        col = X[:, i]
        ok = np.isfinite(col)
        v = col[ok]
        start = lay.ref_offsets[i]
        np.testing.assert_array_equal(st.bins[start: start + lay.ref_sizes[i]],
                                      _bins(ref, name, v), name)
        issues = st.issues[i]
        assert issues[CHECK_INDEX[Check.MISSING]] == np.isnan(col).sum()
        assert issues[CHECK_INDEX[Check.NON_FINITE]] == np.isinf(col).sum()
        assert issues[CHECK_INDEX[Check.OUT_OF_RANGE]] == ((v < p.min) | (v > p.max)).sum()
        assert n[i] == v.size
        mean = lay.shift[i] + s1[i] / n[i]
        assert mean == pytest.approx(v.mean(), rel=1e-12)
        assert s2[i] / n[i] - (s1[i] / n[i]) ** 2 == pytest.approx(v.var(), rel=1e-10)
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


def test_single_row_outlier_rate_follows_the_binned_rule(providers) -> None:
    rng = np.random.default_rng(22)
    F = 20
    ref = Reference.from_data(rng.normal(size=(20_000, F)))
    monitor = ModelMonitor("m", reference=ref, **providers)
    fm = monitor._features
    lay = fm._layout
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
    _, expected = lay.delta(rows, None, outliers=True)
    assert expected[:20].all() and not expected[20:80].any()
    assert expected[80:100].all() and not expected[100:120].any()
    assert 0 < expected[120:].sum() < 200  # and some of the random rows
    got, early = [], []
    for i, row in enumerate(rows):
        x = (row, row.tolist(), row.reshape(1, F))[i % 3]  # every fast-path form
        got.append(fm.observe(x, None, segment=None, output="auto").outlier_rate)
        # Read before the call for the span's start attributes: numpy rows only.
        early.append(fm.row_outlier_rate(x) if i % 3 != 1 else got[-1])
        assert i % 3 != 1 or fm.row_outlier_rate(x) is None
    np.testing.assert_array_equal(np.array(got), expected.astype(float))
    np.testing.assert_array_equal(np.array(early), expected.astype(float))
    fm.flush()
    assert fm._stats[NO_SEGMENT].outliers == int(expected.sum())  # the counter agrees


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
