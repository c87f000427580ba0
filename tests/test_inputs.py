"""Input adapters: every shape people pass to predict gives the same statistics."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import otel_ml
from conftest import points

from otel_ml import ModelMonitor, Reference
from otel_ml._internal.monitor.feature_ingest import FeatureIngest
from otel_ml._internal.monitor.feature_readout import SegmentTotals
from otel_ml._internal.monitor.feature_stats import FeatureStatistics
from otel_ml._internal.monitor.settings import Settings
from otel_ml.contract import NO_SEGMENT, Attr
from otel_ml._internal.data.inputs import (
    InputError,
    category_key,
    count_rows,
    is_categorical,
    to_categories,
    to_float,
    to_table,
)

from stack.harness import stack_skip_or_fail

polars = pytest.importorskip("polars")


class TensorLike:
    """Stands in for a torch tensor: only ``__array__``."""

    def __init__(self, data: np.ndarray) -> None:
        self._data = data

    def __array__(self, dtype=None, copy=None):
        return self._data if dtype is None else self._data.astype(dtype)


@pytest.fixture(scope="module")
def ref() -> Reference:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=2_000), "y": rng.uniform(size=2_000),
                       "kind": rng.choice(["a", "b", "c"], 2_000)})
    return Reference.from_data(df)


def _totals(ref: Reference | None, *inputs, feature_names=None) -> SegmentTotals:
    """The cumulative statistics after feeding ``inputs`` to the feature analysis, through
    its protocol (the ingest prepares each batch, the analysis observes it)."""
    settings = Settings.create("m", feature_names=feature_names)
    ingest = FeatureIngest(settings, ref, str)
    stats = FeatureStatistics(settings, ingest)
    for x in inputs:
        stats.observe(ingest.prepare(x, None, segment=None, output="auto"))
    return stats.snapshot().totals[NO_SEGMENT]


DATA = {"x": [0.1, -1.5, 2.5, 0.0], "y": [0.2, 0.9, 0.5, 0.0], "kind": ["a", "c", "b", "zz"]}


def _forms() -> dict[str, object]:
    rows = [dict(zip(DATA, values)) for values in zip(*DATA.values())]
    return {
        "pandas": pd.DataFrame(DATA),
        "pandas_categorical": pd.DataFrame({**DATA, "kind": pd.Categorical(DATA["kind"])}),
        "polars": polars.DataFrame(DATA),
        "dict_of_lists": dict(DATA),
        "dict_of_arrays": {k: np.asarray(v) for k, v in DATA.items()},
        "list_of_dicts": rows,
        "reordered_pandas": pd.DataFrame(DATA)[["kind", "y", "x"]],
        "object_array": np.array(list(zip(*DATA.values())), dtype=object),
    }


@pytest.mark.parametrize("form", list(_forms()))
def test_every_form_gives_the_same_statistics(ref, form) -> None:
    st = _totals(ref, _forms()[form])
    expected = _totals(ref, pd.DataFrame(DATA))
    assert expected.bins.sum() == 3 * 4 and expected.issues.sum() > 0  # "zz": unseen
    np.testing.assert_array_equal(st.bins, expected.bins)
    np.testing.assert_array_equal(st.issues, expected.issues)
    assert st.rows == 4


def test_single_rows_in_every_form(ref, providers) -> None:
    monitor = ModelMonitor("m", reference=ref, **providers)
    for values in zip(*DATA.values()):
        monitor.observe(dict(zip(DATA, values)))
    monitor.observe({k: [v[0]] for k, v in DATA.items()})
    monitor.observe(pd.DataFrame({k: [v[1]] for k, v in DATA.items()}))
    assert monitor.drift_report().rows == 6


def test_numeric_forms_and_tensors() -> None:
    X = np.random.default_rng(1).normal(size=(50, 3))
    ref = Reference.from_data(X)
    results = []
    # (float32 input is accepted too, but rounding moves values that sit on an edge.)
    for form in (X, X.tolist(), TensorLike(X), polars.DataFrame(X, schema=["f0", "f1", "f2"]),
                 pd.DataFrame(X, columns=["f0", "f1", "f2"])):
        results.append(_totals(ref, form).bins)
    assert results[0].sum() == 50 * 3
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])
    np.testing.assert_array_equal(_totals(ref, *(TensorLike(row) for row in X)).bins, results[0])


@pytest.mark.filterwarnings("error")  # nothing of ours may warn into the host
def test_real_torch_tensors_through_a_decorated_model(providers, metric_reader) -> None:
    """CPU tensors in and out of a decorated predict (batches and single rows) give the
    statistics of the same values as numpy arrays, predictions included, and late labels
    score against the tensors' predictions."""
    try:
        import torch
    except ImportError:
        stack_skip_or_fail("torch is not installed (pip install 'otel-ml[torch]')")
    X = np.random.default_rng(2).normal(size=(300, 3))
    ref = Reference.from_data(X, predictions=X[:, 0] * 2)
    stats, maes = [], []
    for name, wrap in (("numpy", np.asarray), ("torch", torch.from_numpy)):
        monitor = ModelMonitor(name, reference=ref, task="regression", **providers)
        ids = []

        def model(x):
            ids.append(otel_ml.current_prediction_id())
            return x[..., 0] * 2

        predict = monitor(model)
        predict(wrap(X[:200]))
        for row in X[200:]:
            out = predict(wrap(row.reshape(1, 3)))
            assert type(out) is type(wrap(row))  # the model's own result, untouched
        monitor.flush()
        stats.append(tuple({tuple(sorted((k, v) for k, v in a.items() if k != Attr.MODEL_NAME)): n
                            for a, n in points(metric_reader, metric)
                            if a[Attr.MODEL_NAME] == name}
                           for metric in ("ml.drift.window.rows", "ml.feature.observations",
                                          "ml.data_quality.issues")))
        for pid, truth in zip(ids[1:], X[200:, 0] * 2 + 0.5):
            monitor.record_outcome(pid, truth)
        report = monitor.performance_report()
        assert report.count == 100 and report.unmatched == {}
        maes.append(report.metrics["mae"])
    (rows_n, bins_n, issues_n), (rows_t, bins_t, issues_t) = stats
    assert list(rows_n.values()) == list(rows_t.values()) == [300]
    assert sum(bins_n.values()) == 300 * 4  # three features and the predictions
    assert bins_t == bins_n  # features and predictions alike
    assert issues_t == issues_n
    assert maes == pytest.approx([0.5, 0.5])


def test_feature_names_from_monitor_for_positional_input(providers, metric_reader) -> None:
    monitor = ModelMonitor("m", feature_names=["a", "b"], **providers)
    monitor.observe(np.array([[1.0, 2.0], [3.0, 4.0]]))
    unnamed = ModelMonitor("u", **providers)
    unnamed.observe(np.zeros((2, 3)))
    means = {(a[Attr.MODEL_NAME], a[Attr.FEATURE]): v
             for a, v in points(metric_reader, "ml.feature.mean")}
    assert means == {("m", "a"): 2.0, ("m", "b"): 3.0,
                     ("u", "f0"): 0.0, ("u", "f1"): 0.0, ("u", "f2"): 0.0}


def test_count_rows_semantics_are_unchanged() -> None:
    assert count_rows(np.zeros(5)) == 1
    assert count_rows(np.zeros((7, 3))) == 7
    assert count_rows(pd.DataFrame({"a": [1, 2, 3]})) == 3
    assert count_rows([{"a": 1}, {"a": 2}]) == 2
    assert count_rows({"a": [1, 2, 3, 4], "b": [1, 2, 3, 4]}) == 4
    assert count_rows([1.0, 2.0]) == 1
    assert count_rows(object()) == 1


def test_tables() -> None:
    t = to_table(np.zeros((4, 2)))
    assert (t.names, t.rows, t.width) == (None, 4, 2) and t.matrix.shape == (4, 2)
    assert to_table(np.zeros(3)).rows == 1
    t = to_table({"a": 1.0, "b": "x"})
    assert (t.names, t.rows) == (["a", "b"], 1) and list(t.column(1)) == ["x"]
    t = to_table([{"a": 1}, {"b": 2}])
    assert t.names == ["a", "b"] and list(t.column(0)) == [1, None]
    structured = np.array([(1.0, 2)], dtype=[("p", "f8"), ("q", "i4")])
    assert to_table(structured).names == ["p", "q"]
    with pytest.raises(InputError):
        to_table([[1, 2], [3]])
    with pytest.raises(InputError, match="__array__ raised"):
        class Bad:
            def __array__(self, dtype=None, copy=None):
                raise RuntimeError("no")
        to_table(Bad())


def test_column_conversions() -> None:
    values, bad = to_float(np.array([1, "x", None, 2.5, True], dtype=object))
    assert bad == 1
    np.testing.assert_array_equal(np.isnan(values), [False, True, True, False, False])
    assert to_float(pd.Series([1, None], dtype="Int64"))[0].tolist()[0] == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pandas would cast with a warning into the host
        for z in (1 + 2j, np.complex128(1 + 2j)):  # a number, but not a real one
            values, bad = to_float(pd.Series([z, 3.0, None], dtype=object))
            assert bad == 1 and np.isnan(values[0]) and values[1] == 3.0
        values, bad = to_float(pd.Series([1.5, None, 2, True], dtype=object))
        assert bad == 0 and values[0] == 1.5 and np.isnan(values[1]) and list(values[2:]) == [2, 1]
        # Strings are type mismatches in a pandas column as in a numpy one.
        assert to_float(pd.Series(["1.5", 2.0], dtype=object))[1] == \
            to_float(np.array(["1.5", 2.0], dtype=object))[1] == 1
    codes, keys = to_categories(pd.Series(["a", None, "b", "a"]))
    assert [keys[c] if c >= 0 else None for c in codes] == ["a", None, "b", "a"]
    assert [category_key(v) for v in (3, 3.0, np.int64(3), True, "s", None, float("nan"), 2.5)] \
        == ["3", "3", "3", "True", "s", None, None, "2.5"]
    assert is_categorical(np.array(["a"])) and is_categorical(np.array([True]))
    assert not is_categorical(np.array([1, None], dtype=object))
    assert is_categorical(polars.Series(["a", "b"]))
