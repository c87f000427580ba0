"""otel_ml.shadow: the caller gets the champion's result; the challenger runs off its path."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

import otel_ml
from otel_ml.contract import Attr, Role, Skip

from conftest import points


def _value(reader, name, want=None):
    """Sum of the points of ``name`` whose attributes contain ``want``."""
    return sum(v for attrs, v in points(reader, name)
               if all(attrs.get(k) == v for k, v in (want or {}).items()))


def champion(x):
    return (np.asarray(x)[:, 0] > 0).astype(int)


def challenger(x):
    return (np.asarray(x)[:, 0] > 0.3).astype(int)


def test_result_is_the_champions_and_disagreements_are_counted(providers, metric_reader,
                                                                span_exporter):
    f = otel_ml.shadow(champion, challenger, name="m", champion_version="1",
                       challenger_version="2", **providers)
    rng = np.random.default_rng(1)
    expected_disagreements = 0
    rows = 0
    for i in range(20):
        x = rng.normal(size=(50, 3))
        out = f(x, prediction_id=f"p{i}")
        np.testing.assert_array_equal(out, champion(x))
        expected_disagreements += int((champion(x) != challenger(x)).sum())
        rows += 50
    assert f.shadow.drain(10)
    report = f.comparison_report()
    assert report.counters["pairs"] == 20 and report.counters["rows"] == rows
    assert report.counters["disagreements"] == expected_disagreements
    assert report.counters["agreement_rate"] == pytest.approx(1 - expected_disagreements / rows)
    pair = {"ml.model.version": "1", "ml.model.challenger.version": "2"}
    assert _value(metric_reader, "ml.model.comparison.disagreements", pair) == \
        expected_disagreements
    assert _value(metric_reader, "ml.model.comparison.rows") == rows
    info = points(metric_reader, "ml.model.comparison.info")
    assert info == [({"ml.model.name": "m", **pair, "ml.comparison.mode": "shadow"}, 1)]
    # Both versions are monitored as versions of one model, with a role on their spans.
    calls = {a["ml.model.version"]: v for a, v in points(metric_reader, "ml.model.predict.calls")}
    assert calls == {"1": 20, "2": 20}
    spans = [s for s in span_exporter.get_finished_spans() if s.name == "ml.predict m"]
    champions = {s.context.span_id: s for s in spans
                 if s.attributes[Attr.MODEL_ROLE] == Role.CHAMPION}
    challengers = [s for s in spans if s.attributes[Attr.MODEL_ROLE] == Role.CHALLENGER]
    assert len(champions) == len(challengers) == 20
    for s in challengers:
        (link,) = s.links
        linked = champions[link.context.span_id]
        assert s.context.trace_id != linked.context.trace_id  # its own trace, linked
        assert s.attributes[Attr.PREDICTION_ID] == linked.attributes[Attr.PREDICTION_ID]
        assert s.attributes[Attr.MODEL_VERSION] == "2"


def test_labels_join_to_both_versions_and_the_test_decides(providers):
    f = otel_ml.shadow(champion, challenger, name="m", champion_version="1",
                       challenger_version="2", task="classification", **providers)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3000, 2))
    truth = (x[:, 0] > 0.3).astype(int)  # the challenger is right everywhere
    for i in range(3):
        f(x[i * 1000:(i + 1) * 1000], prediction_id=f"b{i}")
    f.shadow.drain(10)
    for i in range(3):
        f.record_outcome(f"b{i}", truth[i * 1000:(i + 1) * 1000])
    report = f.monitor.comparison_report()
    assert report is not None and report.challenger_version == "2"
    acc1 = float((champion(x) == truth).mean())
    assert report.performance["1"]["accuracy"] == pytest.approx(acc1)
    assert report.performance["2"]["accuracy"] == 1.0
    (test,) = report.tests
    assert test.metric == "accuracy" and test.verdict == "better"
    assert test.n_champion == test.n_challenger == 3000
    assert report.prediction_distance is None  # no reference: no prediction bins


def test_challenger_errors_never_reach_the_caller(providers, metric_reader):
    def broken(x):
        raise KeyError("column")

    f = otel_ml.shadow(champion, broken, name="m", champion_version="1",
                       challenger_version="2", **providers)
    x = np.ones((4, 2))
    for _ in range(5):
        np.testing.assert_array_equal(f(x), champion(x))
    f.shadow.drain(10)
    assert f.comparison_report().counters["skipped"][Skip.CHALLENGER_ERROR] == 5
    errors = points(metric_reader, "ml.model.predict.errors")
    assert [(a["ml.model.version"], a["error.type"], v) for a, v in errors] == [("2", "KeyError", 5)]


def test_champion_errors_propagate_unchanged_and_run_no_challenger(providers):
    calls = []

    def failing(x):
        raise ValueError("bad input")

    f = otel_ml.shadow(failing, lambda x: calls.append(x), name="m", champion_version="1",
                       challenger_version="2", **providers)
    with pytest.raises(ValueError, match="bad input"):
        f(np.ones((1, 2)))
    f.shadow.drain(5)
    assert calls == []


def test_a_hanging_challenger_neither_delays_the_caller_nor_grows_the_queue(providers):
    release = threading.Event()

    def hangs(x):
        release.wait(30)
        return champion(x)

    f = otel_ml.shadow(champion, hangs, name="m", champion_version="1", challenger_version="2",
                       max_queue=5, **providers)
    x = np.ones((2, 2))
    start = time.perf_counter()
    for _ in range(200):
        f(x)
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0  # no call waited for the challenger (each would wait 30 s)
    assert f.shadow.executor.pending <= 5 + 1  # queued plus the one running
    skipped = f.comparison_report().counters["skipped"][Skip.QUEUE_FULL]
    assert 200 - 6 <= skipped <= 200 - 5
    release.set()
    assert f.shadow.drain(10)


def test_slow_sync_challenger_counts_as_timeout(providers):
    def slow(x):
        time.sleep(0.05)
        return champion(x)

    f = otel_ml.shadow(champion, slow, name="m", champion_version="1", challenger_version="2",
                       timeout_s=0.01, **providers)
    f(np.ones((2, 2)))
    f.shadow.drain(5)
    counters = f.comparison_report().counters
    assert counters["skipped"][Skip.TIMEOUT] == 1 and counters["pairs"] == 0


@pytest.mark.parametrize("other, reason", [
    (lambda x: champion(x)[:1], Skip.SHAPE_MISMATCH),
    (lambda x: np.array(["a", "b", "c"]), Skip.TYPE_MISMATCH),
])
def test_another_shape_or_type_is_counted_not_compared(providers, other, reason):
    f = otel_ml.shadow(champion, other, name="m", champion_version="1", challenger_version="2",
                       **providers)
    x = np.ones((3, 2))
    np.testing.assert_array_equal(f(x), champion(x))
    f.shadow.drain(5)
    counters = f.comparison_report().counters
    assert counters["skipped"][reason] == 1 and counters["pairs"] == 0


def test_the_challenger_cannot_change_the_callers_data(providers):
    def scribbles(x):
        x[:] = -1.0
        return champion(x)

    f = otel_ml.shadow(champion, scribbles, name="m", champion_version="1",
                       challenger_version="2", **providers)
    x = np.ones((3, 2))
    out = f(x)
    f.shadow.drain(5)
    assert (x == 1.0).all()
    np.testing.assert_array_equal(out, [1, 1, 1])
    out[:] = 7  # nor does the caller's later write reach the comparison
    assert f.comparison_report().counters["disagreements"] == 3


def test_sample_zero_runs_no_challenger(providers):
    seen = []
    f = otel_ml.shadow(champion, lambda x: seen.append(1) or champion(x), name="m",
                       champion_version="1", challenger_version="2", sample=0.0, **providers)
    for _ in range(20):
        f(np.ones((1, 2)))
    f.shadow.drain(5)
    assert seen == []


def test_async_champion_and_challenger(providers):
    async def champ(x):
        await asyncio.sleep(0)
        return champion(x)

    async def chal(x):
        await asyncio.sleep(0.001)
        return challenger(x)

    async def hangs(x):
        await asyncio.sleep(60)

    f = otel_ml.shadow(champ, chal, name="a", champion_version="1", challenger_version="2",
                       **providers)
    g = otel_ml.shadow(champ, hangs, name="b", champion_version="1", challenger_version="2",
                       timeout_s=0.05, **providers)
    x = np.array([[0.1, 0.0], [0.5, 0.0], [-1.0, 0.0]])

    async def main():
        return await f(x), await g(x)

    a, b = asyncio.run(main())
    np.testing.assert_array_equal(a, champion(x))
    np.testing.assert_array_equal(b, champion(x))
    assert f.shadow.drain(5) and g.shadow.drain(5)
    assert f.comparison_report().counters["disagreements"] == 1
    assert g.comparison_report().counters["skipped"][Skip.TIMEOUT] == 1


def test_model_objects_on_bundled_data(providers, metric_reader):
    data = load_breast_cancer()
    x, y = data.data, data.target
    lr = LogisticRegression(max_iter=5000).fit(x[:300], y[:300])
    tree = DecisionTreeClassifier(max_depth=2, random_state=0).fit(x[:300], y[:300])
    model = otel_ml.shadow(lr, tree, name="cancer", champion_version="lr",
                           challenger_version="tree", **providers)
    assert isinstance(model, LogisticRegression)  # the proxy passes for the champion
    test = x[300:]
    np.testing.assert_array_equal(model.predict(test), lr.predict(test))
    np.testing.assert_allclose(model.predict_proba(test[:5]), lr.predict_proba(test[:5]))
    model.shadow.drain(10)
    counters = model.comparison_report().counters
    assert counters["rows"] == len(test)
    assert counters["disagreements"] == int((lr.predict(test) != tree.predict(test)).sum())
    methods = {a["ml.model.version"] for a, _ in points(metric_reader, "ml.model.predict.calls")}
    assert methods == {"lr", "tree"}


def test_setup_errors_fail_fast(providers):
    with pytest.raises(ValueError, match="different versions"):
        otel_ml.shadow(champion, challenger, name="m", champion_version="1",
                       challenger_version="1", **providers)
    with pytest.raises(ValueError, match="sample"):
        otel_ml.shadow(champion, challenger, name="m", champion_version="1",
                       challenger_version="2", sample=2, **providers)
    with pytest.raises(ValueError, match="max_queue"):
        otel_ml.shadow(champion, challenger, name="m", champion_version="1",
                       challenger_version="2", max_queue=0, **providers)
    with pytest.raises(TypeError, match="shadow needs"):
        otel_ml.shadow(LogisticRegression(), object(), name="m", champion_version="1",
                       challenger_version="2", **providers)


def test_closed_shadow_stops_the_challenger_and_the_pair(providers, metric_reader):
    f = otel_ml.shadow(champion, challenger, name="m", champion_version="1",
                       challenger_version="2", **providers)
    f.shadow.close()
    x = np.ones((2, 2))
    np.testing.assert_array_equal(f(x), champion(x))
    assert points(metric_reader, "ml.model.comparison.info") == []
    assert f.monitor.comparison_report() is None


def test_labels_reach_the_challenger_only_for_calls_it_predicted_on(providers):
    f = otel_ml.shadow(champion, challenger, name="m", champion_version="1",
                       challenger_version="2", sample=0.0, task="classification", **providers)
    x = np.ones((2, 2))
    f(x, prediction_id="unsampled")
    f.shadow.sample = 1.0
    f(x, prediction_id="sampled")
    f.shadow.drain(5)
    for pid in ("unsampled", "sampled"):
        f.record_outcome(pid, [1, 1])
    champion_report = f.monitor.performance_report()
    challenger_report = f.shadow.challenger_monitor.performance_report()
    assert champion_report.count == 4 and not champion_report.unmatched.get("unknown_id")
    assert challenger_report.count == 2 and not challenger_report.unmatched.get("unknown_id")
