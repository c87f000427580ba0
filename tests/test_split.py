"""otel_ml.split: sticky assignment, per-variant monitoring and labels, fallbacks."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB

import otel_ml
from otel_ml._internal.instrument.split import assign_unit
from otel_ml.contract import Assignment

from conftest import points


def a(x, **kw):
    return np.zeros(len(x), dtype=int)


def b(x, **kw):
    return np.ones(len(x), dtype=int)


def test_assignment_is_sticky_deterministic_and_follows_the_weights(providers):
    s = otel_ml.split({"1": a, "2": b}, name="m", key="user", weights=[0.8, 0.2], **providers)
    x = np.zeros((1, 2))
    served = {}
    for user in range(4000):
        out = int(s(x, user=user)[0])
        served[user] = out
        assert out == int(s(x, user=user)[0])  # sticky
        assert s.variant_for(user) == ("1" if out == 0 else "2")
    share_b = sum(served.values()) / len(served)
    assert abs(share_b - 0.2) < 0.02
    # The assignment is a pure function of salt and key: the same in any process.
    assert assign_unit("m", 12345) == assign_unit("m", "12345")
    other = otel_ml.split({"1": a, "2": b}, name="m", key="user", weights=[0.8, 0.2],
                          salt="other", **providers)
    moved = sum(other.variant_for(u) != s.variant_for(u) for u in range(4000))
    assert 0.2 * 4000 < moved < 0.45 * 4000  # independent salt: about 2 * 0.8 * 0.2 move
    assert s.traffic() == {"1": 2 * (4000 - sum(served.values())), "2": 2 * sum(served.values())}


def test_a_failing_key_goes_to_the_first_variant_and_is_counted(providers, metric_reader):
    def key(args, kwargs):
        return kwargs["request"]["user"]

    s = otel_ml.split({"1": a, "2": b}, name="m", key=key, **providers)
    x = np.zeros((1, 2))
    for _ in range(7):
        assert s(x, request={})[0] == 0  # KeyError in the key: the control variant
    # The key's value None counts as a failure too.
    assert s(x, request={"user": None})[0] == 0
    pts = {(attrs["ml.model.version"], attrs["ml.reason"]): v
           for attrs, v in points(metric_reader, "ml.model.split.assignments")}
    assert pts[("1", Assignment.KEY_ERROR)] == 8
    assert pts[("2", Assignment.KEY_ERROR)] == 0


def test_the_key_argument_is_taken_out_of_the_call(providers):
    seen = []

    def model(x):  # takes no user_id: it never sees it
        seen.append(len(x))
        return np.zeros(len(x))

    s = otel_ml.split({"1": model, "2": model}, name="m", key="user_id", **providers)
    s(np.zeros((3, 1)), user_id=9)
    assert seen == [3]


def test_each_variant_is_a_version_with_its_own_labels(providers, metric_reader):
    data = load_wine()
    x, y = data.data, data.target
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order], y[order]
    lr = LogisticRegression(max_iter=5000).fit(x[:100], y[:100])
    nb = GaussianNB().fit(x[:100], y[:100])
    s = otel_ml.split({"lr": lr, "nb": nb}, name="wine", key="user",
                      task="classification", **providers)
    rows = range(100, len(y))
    correct = {"lr": 0, "nb": 0}
    count = {"lr": 0, "nb": 0}
    for i in rows:
        version = s.variant_for(i)
        out = s.predict(x[i:i + 1], user=i, prediction_id=f"r{i}")
        model = lr if version == "lr" else nb
        assert out[0] == model.predict(x[i:i + 1])[0]
        correct[version] += int(out[0] == y[i])
        count[version] += 1
    for j, i in enumerate(rows):  # labels: half joined by the remembered id, half by key
        s.record_outcome(f"r{i}", y[i:i + 1], key=i if j % 2 else None)
    report = s.comparison_report()
    assert report.mode == "split" and report.champion_version == "lr"
    for version in ("lr", "nb"):
        assert report.performance[version]["count"] == count[version]
        assert report.performance[version]["accuracy"] == pytest.approx(
            correct[version] / count[version])
    assert report.traffic == count
    assert report.tests[0].verdict == "insufficient_data"  # 78 rows: below the minimum
    info = points(metric_reader, "ml.model.comparison.info")
    assert [(i["ml.model.version"], i["ml.model.challenger.version"], i["ml.comparison.mode"])
            for i, _ in info] == [("lr", "nb", "split")]
    # A split declares its pairs but no shadow counters (its variants see different inputs).
    assert points(metric_reader, "ml.model.comparison.rows") == []


def test_async_variants(providers):
    async def fa(x):
        return 0

    async def fb(x):
        return 1

    s = otel_ml.split({"1": fa, "2": fb}, name="m", key="u", **providers)

    async def main():
        return [await s([0], u=u) for u in range(50)]

    out = asyncio.run(main())
    assert out == [0 if s.variant_for(u) == "1" else 1 for u in range(50)]


@pytest.mark.parametrize("kwargs, error", [
    ({"variants": {"1": a}}, "at least two"),
    ({"weights": [1.0]}, "1 weights for 2 variants"),
    ({"weights": [-1.0, 2.0]}, "finite, >= 0"),
    ({"weights": {"1": 1.0, "3": 1.0}}, "exactly the versions"),
    ({"key": 3}, "key must be"),
])
def test_setup_errors_fail_fast(providers, kwargs, error):
    args = {"variants": {"1": a, "2": b}, "key": "u", **kwargs}
    variants = args.pop("variants")
    with pytest.raises((ValueError, TypeError), match=error):
        otel_ml.split(variants, name="m", **args, **providers)


def test_weights_by_version(providers):
    s = otel_ml.split({"1": a, "2": b}, name="m", key="u", weights={"2": 3.0, "1": 1.0},
                      **providers)
    assert s.weights == [0.25, 0.75]
