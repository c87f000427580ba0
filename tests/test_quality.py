"""Data quality: exact counts per feature and check, schema mismatches, nothing raised."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import points

from otel_ml import ModelMonitor, Reference
from otel_ml.contract import INPUT_FEATURE, NO_SEGMENT, Attr, Check


@pytest.fixture(scope="module")
def ref() -> Reference:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"age": rng.uniform(18, 90, 5_000), "income": rng.normal(50, 10, 5_000),
                       "plan": rng.choice(["basic", "pro", "team"], 5_000)})
    return Reference.from_data(df)


def _issues(reader) -> dict[tuple[str, str], int]:
    return {(a[Attr.FEATURE], a[Attr.CHECK]): v
            for a, v in points(reader, "ml.data_quality.issues")}


def test_checks_counted_exactly(ref, providers, metric_reader) -> None:
    monitor = ModelMonitor("m", "1", reference=ref, **providers)
    df = pd.DataFrame({
        "age": [30.0, np.nan, 200.0, 10.0, np.inf, 40.0],
        "income": [50.0, 51.0, None, 49.0, 48.0, -np.inf],
        "plan": ["pro", "enterprise", None, "basic", "team", "enterprise"],
    })
    before = df.copy()
    monitor.observe(df)
    pd.testing.assert_frame_equal(df, before)
    assert _issues(metric_reader) == {
        ("age", Check.MISSING): 1,
        ("age", Check.NON_FINITE): 1,
        ("age", Check.OUT_OF_RANGE): 2,  # 200 above the max, 10 below the min
        ("income", Check.MISSING): 1,
        ("income", Check.NON_FINITE): 1,
        ("plan", Check.MISSING): 1,
        ("plan", Check.UNSEEN_CATEGORY): 2,
    }
    attrs = points(metric_reader, "ml.data_quality.issues")[0][0]
    assert attrs[Attr.SEGMENT] == NO_SEGMENT and attrs[Attr.MODEL_NAME] == "m"


def test_single_rows_count_the_same(ref, providers, metric_reader) -> None:
    monitor = ModelMonitor("m", "1", reference=ref, **providers)
    rows = [{"age": 30.0, "income": 50.0, "plan": "pro"},
            {"age": None, "income": 50.0, "plan": "zzz"},
            {"age": 500.0, "income": float("nan"), "plan": "team"}]
    for row in rows:
        monitor.observe(row)
    assert _issues(metric_reader) == {("age", Check.MISSING): 1, ("age", Check.OUT_OF_RANGE): 1,
                                      ("income", Check.MISSING): 1,
                                      ("plan", Check.UNSEEN_CATEGORY): 1}


def test_schema_mismatches_become_issues_not_errors(ref, providers, metric_reader) -> None:
    monitor = ModelMonitor("m", "1", reference=ref, **providers)

    @monitor
    def predict(X):
        return np.zeros(len(X))

    predict(pd.DataFrame({"age": [30.0, 31.0], "plan": ["pro", "pro"], "extra": [1, 2]}))
    predict(pd.DataFrame({"age": ["old", 31.0], "income": [1.0, 2.0], "plan": ["pro", "pro"]}))
    predict(np.zeros((4, 5)))  # positional input of the wrong width
    issues = _issues(metric_reader)
    assert issues[("income", Check.SCHEMA_MISSING_COLUMN)] == 2
    assert issues[("extra", Check.SCHEMA_EXTRA_COLUMN)] == 2
    assert issues[("age", Check.TYPE_MISMATCH)] == 1
    assert issues[(INPUT_FEATURE, Check.SCHEMA_FEATURE_COUNT)] == 4


def test_unreadable_input_is_a_type_mismatch_and_a_log_line(ref, providers, metric_reader,
                                                            caplog) -> None:
    class Broken:
        def __array__(self, dtype=None, copy=None):
            raise RuntimeError("device tensor")

    monitor = ModelMonitor("m", "1", reference=ref, **providers)

    @monitor
    def predict(x):
        return 1.0

    with caplog.at_level("WARNING", logger="otel_ml"):
        assert predict(Broken()) == 1.0
        assert predict(object()) == 1.0
    assert _issues(metric_reader)[(INPUT_FEATURE, Check.TYPE_MISMATCH)] == 2
    assert "not readable as features" in caplog.text


def test_without_reference_schema_is_the_first_batch(providers, metric_reader) -> None:
    monitor = ModelMonitor("m", "1", **providers)
    monitor.observe(pd.DataFrame({"x": [1.0, 2.0], "c": ["a", "b"]}))
    monitor.observe(pd.DataFrame({"x": [np.nan, np.inf, "bad"], "c": ["a", None, "c"],
                                  "new": [1, 2, 3]}))
    monitor.observe(pd.DataFrame({"c": ["a"]}))
    assert _issues(metric_reader) == {  # a string is a type mismatch, not also missing
        ("x", Check.MISSING): 1, ("x", Check.NON_FINITE): 1, ("x", Check.TYPE_MISMATCH): 1,
        ("c", Check.MISSING): 1, ("new", Check.SCHEMA_EXTRA_COLUMN): 3,
        ("x", Check.SCHEMA_MISSING_COLUMN): 1,
    }


def test_prediction_quality(ref, providers, metric_reader) -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 2))
    pref = Reference.from_data(X, predictions=X[:, 0])
    monitor = ModelMonitor("m", "1", reference=pref, **providers)
    monitor.observe(X[:3], np.array([0.0, np.nan, 99.0]))
    issues = _issues(metric_reader)
    assert issues[("__prediction__", Check.MISSING)] == 1
    assert issues[("__prediction__", Check.OUT_OF_RANGE)] == 1


def test_extra_column_names_are_capped(providers, metric_reader) -> None:
    monitor = ModelMonitor("m", "1", feature_names=["a"], **providers)
    monitor.observe({"a": [1.0]})
    for i in range(30):
        monitor.observe({"a": [1.0], f"x{i}": [2.0]})
    names = {f for f, c in _issues(metric_reader) if c == Check.SCHEMA_EXTRA_COLUMN}
    assert len(names) == 21 and "__other__" in names
