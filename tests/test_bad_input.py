"""Bad input, property-based: nothing escapes, the caller's data is untouched, every bad value counts.

Hypothesis draws inputs of every shape the adapters accept and many they do not (NaN, inf, None,
strings in numeric columns, mixed dtypes, empty batches, 0-column frames, wrong widths, nested
objects, objects whose ``__array__`` or ``__len__`` raise...). For each: the decorated function
returns its own result, receives the very object it was given, and that object is byte-for-byte
unchanged afterwards. For tables of numeric features with bad cells, ``ml.data_quality.issues``
moves by exactly the number of bad values of each kind. Reference files that are truncated, of
another version, or hand-edited inconsistently are refused at load with a message naming the
problem.
"""

from __future__ import annotations

import copy
import json
import math
import pickle
from collections import Counter
from typing import Any

import numpy as np
import pytest
from conftest import points
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import otel_ml
from otel_ml.contract import INPUT_FEATURE, Attr, Check

pd = pytest.importorskip("pandas")

FEATURES = ["a", "b", "c"]
REF_DATA = np.array([[-10.0, -10.0, -10.0], [10.0, 10.0, 10.0]] + [[0.5, 1.5, -2.0]] * 8)
REFERENCE = otel_ml.Reference.from_data(REF_DATA, feature_names=FEATURES)
EXAMPLES = Counter()  # inputs tried, by test (reported by the last test of the module)
SETTINGS = settings(max_examples=250, deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


# ---------------------------------------------------------------------------- hostile objects
class ArrayRaises:
    """Looks array-like, but converting it raises."""

    shape = (3, 2)

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("no array for you")

    def __len__(self) -> int:
        return 3

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ArrayRaises)


class LenRaises:
    """Every protocol raises."""

    def __len__(self) -> int:
        raise RuntimeError("no len")

    def __iter__(self) -> Any:
        raise RuntimeError("no iter")

    def __getitem__(self, item: Any) -> Any:
        raise RuntimeError("no getitem")

    @property
    def shape(self) -> Any:
        raise RuntimeError("no shape")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LenRaises)


class WeirdShape:
    shape = "not a shape"
    columns = 5

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WeirdShape)


class ReprRaises:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __hash__(self) -> int:
        raise RuntimeError("no hash")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ReprRaises)


# ---------------------------------------------------------------------------- strategies
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**20, 10**20),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
    st.binary(max_size=4), st.complex_numbers(allow_nan=True),
    st.sampled_from([math.nan, math.inf, -math.inf, "", "1.5", "nan", np.float32(1.5),
                     np.int64(3), np.datetime64("2024-01-01"), pd.NA, pd.NaT]),
)
nested = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.tuples(inner, inner),
    st.dictionaries(st.text(max_size=4), inner, max_size=4)), max_leaves=20)
array_dtypes = st.one_of(hnp.floating_dtypes(), hnp.integer_dtypes(), hnp.boolean_dtypes(),
                         hnp.unicode_string_dtypes(max_len=4), hnp.datetime64_dtypes(),
                         hnp.complex_number_dtypes())
arrays = hnp.arrays(array_dtypes, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0,
                                                   max_side=6))
object_arrays = hnp.arrays(object, hnp.array_shapes(min_dims=1, max_dims=2, max_side=5),
                           elements=scalars)
rows_of_any = st.lists(st.lists(scalars, min_size=0, max_size=6), max_size=8)
dict_rows = st.lists(st.dictionaries(st.sampled_from(FEATURES + ["x", "", "seg"]), scalars,
                                     max_size=5), max_size=6)
dict_columns = st.dictionaries(st.sampled_from(FEATURES + ["x", "seg"]),
                               st.one_of(st.lists(scalars, max_size=6), scalars), max_size=4)


@st.composite
def frames(draw: Any) -> Any:
    n = draw(st.integers(0, 6))
    columns = draw(st.lists(st.sampled_from(FEATURES + ["x", "seg", 0, 1]), unique=True,
                            max_size=5))
    data = {}
    for c in columns:
        kind = draw(st.sampled_from(["float", "int", "object", "category", "str", "bool"]))
        if kind == "float":
            data[c] = draw(st.lists(st.floats(allow_nan=True, allow_infinity=True),
                                    min_size=n, max_size=n))
        elif kind == "int":
            data[c] = draw(st.lists(st.integers(-10**6, 10**6), min_size=n, max_size=n))
        elif kind == "bool":
            data[c] = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        else:
            values = draw(st.lists(scalars, min_size=n, max_size=n))
            data[c] = values if kind == "object" else [str(v) for v in values]
        if kind == "category":
            data[c] = pd.Categorical(data[c])
    frame = pd.DataFrame(data, index=range(n)) if data else pd.DataFrame(index=range(n))
    if draw(st.booleans()) and len(frame.columns):
        return frame[frame.columns[0]]  # a Series
    return frame


hostile = st.one_of(st.builds(ArrayRaises), st.builds(LenRaises), st.builds(WeirdShape),
                    st.builds(ReprRaises), st.sampled_from([print, type, Ellipsis, NotImplemented]))
inputs = st.one_of(arrays, object_arrays, rows_of_any, dict_rows, dict_columns, frames(),
                   nested, hostile, st.lists(hostile, max_size=3))


# ---------------------------------------------------------------------------- helpers
def fingerprint(x: Any) -> Any:
    """A snapshot that changes if ``x`` is mutated in any way."""
    if isinstance(x, (pd.DataFrame, pd.Series)):
        return pickle.dumps(x)
    if isinstance(x, np.ndarray):
        return (x.dtype.str, x.shape, x.strides, pickle.dumps(x))
    try:
        return pickle.dumps(x)
    except Exception:  # noqa: BLE001 - unpicklable: a deep copy compares by value instead
        return copy.deepcopy(x)


def build_monitors(providers: dict) -> list[otel_ml.ModelMonitor]:
    """Every configuration the adapters take a different path through."""
    return [
        otel_ml.ModelMonitor("bare", **providers),
        otel_ml.ModelMonitor("named", feature_names=FEATURES, **providers),
        otel_ml.ModelMonitor("ref", reference=REFERENCE, segment_by="seg",
                             capture_payloads=1.0, redact=["b"], **providers),
        otel_ml.ModelMonitor("kw", features_arg="X", reference=REFERENCE,
                             segment_by=lambda args, kwargs: kwargs.get("X"), **providers),
    ]


@pytest.fixture
def monitors(providers):
    return build_monitors(providers)


# ---------------------------------------------------------------------------- properties
@SETTINGS
@given(x=inputs)
# DataFrame.to_numpy() consolidates a frame's blocks in place (its pickle changes): found here.
@example(x=pd.DataFrame({"a": [0.0, 0.0, 0.0], "b": pd.to_datetime([None, None, "2024-01-01"])}))
def test_any_input_reaches_the_function_untouched_and_nothing_escapes(monitors, metric_reader,
                                                                     x):
    EXAMPLES["any input"] += 1
    before = fingerprint(x)
    seen: list[Any] = []
    sentinel = object()

    def model(X: Any) -> Any:
        seen.append(X)
        return sentinel

    for monitor in monitors:
        predict = monitor(model)
        seen.clear()
        if monitor.features_arg == "X":
            assert predict(X=x) is sentinel
        else:
            assert predict(x) is sentinel
        assert len(seen) == 1 and seen[0] is x
        assert fingerprint(x) == before
        monitor.observe(x, x)  # the non-decorated path too
        assert fingerprint(x) == before
    metric_reader.get_metrics_data()  # collection after any input works too
    for monitor in monitors:
        monitor.drift_report()


@SETTINGS
@given(x=inputs, predictions=inputs)
def test_any_prediction_shape_is_survived(monitors, metric_reader, x, predictions):
    EXAMPLES["any prediction"] += 1
    before = fingerprint(predictions)
    for monitor in monitors[:3]:
        predict = monitor(lambda X: predictions)
        assert predict(x) is predictions
        assert fingerprint(predictions) == before
        monitor.record_outcome("some-id", predictions)
    metric_reader.get_metrics_data()


@SETTINGS
@given(x=inputs)
def test_the_users_exception_still_propagates_unchanged_on_bad_input(monitors, x):
    EXAMPLES["user exception"] += 1
    error = KeyError("mine")

    def model(X: Any) -> Any:
        raise error

    predict = monitors[2](model)
    with pytest.raises(KeyError) as info:
        predict(x)
    assert info.value is error


# ---------------------------------------------------------------------------- accounting
BAD = {"nan": math.nan, "none": None, "inf": math.inf, "-inf": -math.inf, "str": "oops"}
cells = st.one_of(st.floats(-9, 9), st.sampled_from(list(BAD)))
tables = st.lists(st.tuples(cells, cells, cells), min_size=1, max_size=12)
layouts = st.sampled_from(["rows", "dict_rows", "columns", "frame", "object_array"])


def value(cell: Any) -> Any:
    return BAD[cell] if isinstance(cell, str) else cell


def as_input(table: list[tuple], layout: str) -> Any:
    rows = [[value(c) for c in row] for row in table]
    if layout == "rows":
        return rows
    if layout == "dict_rows":
        return [dict(zip(FEATURES, row)) for row in rows]
    if layout == "columns":
        return {f: [row[i] for row in rows] for i, f in enumerate(FEATURES)}
    if layout == "frame":
        return pd.DataFrame(rows, columns=FEATURES, dtype=object)
    return np.array(rows, dtype=object)


def expected_issues(table: list[tuple]) -> Counter:
    """Per (feature, check): None/NaN are missing, +-inf non-finite, a string a type mismatch
    (and not also missing)."""
    out: Counter = Counter()
    for row in table:
        for feature, cell in zip(FEATURES, row):
            if cell in ("nan", "none"):
                out[(feature, Check.MISSING)] += 1
            elif cell in ("inf", "-inf"):
                out[(feature, Check.NON_FINITE)] += 1
            elif cell == "str":
                out[(feature, Check.TYPE_MISMATCH)] += 1
    return out


def issue_counts(reader: Any, model: str) -> Counter:
    out: Counter = Counter()
    for attrs, v in points(reader, "ml.data_quality.issues"):
        if attrs.get(Attr.MODEL_NAME) == model:
            out[(attrs[Attr.FEATURE], attrs[Attr.CHECK])] += v
    return out


def fresh_reader() -> tuple[Any, dict]:
    """A provider per example: hundreds of models on one would hit the SDK's series limit."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    return reader, {"meter_provider": MeterProvider(metric_readers=[reader])}


@SETTINGS
@given(table=tables, layout=layouts)
def test_data_quality_counts_every_bad_value(table, layout):
    EXAMPLES["quality accounting"] += 1
    reader, providers = fresh_reader()
    monitor = otel_ml.ModelMonitor("dq", reference=REFERENCE, **providers)
    predict = monitor(lambda X: [0] * len(table))
    predict(as_input(table, layout))
    monitor.flush()
    got = +issue_counts(reader, "dq")
    assert got == +expected_issues(table), (layout, table)
    providers["meter_provider"].shutdown()


@SETTINGS
@given(width=st.integers(0, 8), rows=st.integers(1, 5))
def test_wrong_feature_counts_are_counted_as_schema_issues(width, rows):
    EXAMPLES["feature count"] += 1
    reader, providers = fresh_reader()
    monitor = otel_ml.ModelMonitor("width", reference=REFERENCE, **providers)
    X = np.ones((rows, width))
    before = X.copy()
    predictions = np.zeros(rows)
    assert monitor(lambda X: predictions)(X) is predictions
    np.testing.assert_array_equal(X, before)
    monitor.flush()
    got = issue_counts(reader, "width")
    if width == len(FEATURES):
        assert (INPUT_FEATURE, Check.SCHEMA_FEATURE_COUNT) not in got
    else:
        assert got[(INPUT_FEATURE, Check.SCHEMA_FEATURE_COUNT)] >= 1, got
    providers["meter_provider"].shutdown()


def test_a_huge_batch_is_observed_without_copying_into_the_callers_array(providers,
                                                                        metric_reader):
    monitor = otel_ml.ModelMonitor("huge", reference=REFERENCE, **providers)
    X = np.random.default_rng(0).normal(size=(300_000, 3))
    X[::1000, 1] = np.nan
    X.setflags(write=False)  # any write attempt would raise inside otel_ml (and be swallowed)
    checksum = X.sum(where=~np.isnan(X))
    assert monitor(lambda X: X[:, 0] > 0)(X).shape == (300_000,)
    assert X.sum(where=~np.isnan(X)) == checksum
    monitor.flush()
    assert issue_counts(metric_reader, "huge")[("b", Check.MISSING)] == 300


# ---------------------------------------------------------------------------- reference files
@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "reference.json"
    REFERENCE.save(path)
    return path


def edit(path: Any, change: Any) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9, 0.999])
def test_a_truncated_reference_is_refused_naming_the_problem(saved, cut):
    text = saved.read_text()
    saved.write_text(text[: int(len(text) * cut)])
    with pytest.raises(ValueError, match="truncated|not valid JSON") as info:
        otel_ml.Reference.load(saved)
    assert str(saved) in str(info.value)
    with pytest.raises(ValueError):  # and a monitor given it fails at setup, not on traffic
        otel_ml.ModelMonitor("m", reference=str(saved))


def _set_feature(i: int, key: str, value: Any) -> Any:
    def change(data: dict) -> None:
        data["features"][i][key] = value
    return change


@pytest.mark.parametrize(("change", "named"), [
    (lambda d: d.update(version=99), "version"),
    (lambda d: d.update(format="something.else"), "format"),
    (lambda d: d.pop("features"), "features"),
    (_set_feature(0, "shares", [0.5, 0.5, 0.5]), "shares"),
    (_set_feature(0, "shares", [1.0]), "shares"),
    (_set_feature(0, "edges", [5.0, -5.0]), "edges"),
    (_set_feature(1, "missing", 10**6), "missing"),
    (_set_feature(1, "count", -3), "count"),
    (_set_feature(2, "min", "zero"), "min"),
    (_set_feature(2, "std", -1.0), "std"),
    (_set_feature(0, "kind", "tensor"), "kind"),
    (lambda d: d["features"].append(dict(d["features"][0])), "a"),  # duplicate feature name
])
def test_an_inconsistent_reference_is_refused_naming_the_problem(saved, change, named):
    edit(saved, change)
    with pytest.raises(ValueError) as info:
        otel_ml.Reference.load(saved)
    message = str(info.value)
    assert named in message and str(saved) in message, message


@pytest.fixture(scope="module", autouse=True)
def report_examples(request):
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and EXAMPLES:
        reporter.write_line(f"[bad input] hypothesis examples: {dict(EXAMPLES)} "
                            f"total={sum(EXAMPLES.values())}")


@pytest.mark.parametrize("segment", [KeyError("no such key"), ReprRaises()])
def test_a_failing_segment_by_leaves_no_span_attached(providers, span_exporter, segment):
    from opentelemetry import trace

    def segment_by(args: tuple, kwargs: dict) -> Any:
        if isinstance(segment, Exception):
            raise segment
        return segment

    monitor = otel_ml.ModelMonitor("seg", segment_by=segment_by, **providers)
    assert monitor(lambda X: 7)([[1.0]]) == 7
    assert not trace.get_current_span().get_span_context().is_valid
    assert len(span_exporter.get_finished_spans()) == 1


def test_moments_that_overflow_warn_nothing_into_the_host(providers, metric_reader):
    """Values near the float limit overflow the sums of moments (per segment, and their total
    over segments at collection): counted data, never a RuntimeWarning in the host."""
    import warnings

    monitor = otel_ml.ModelMonitor("huge", feature_names=["a", "b"],
                                   segment_by=lambda args, kwargs: kwargs.get("seg"), **providers)
    predict = monitor(lambda X, seg=None: X[:, 0])
    huge = np.array([[1e308, -1e308], [1.5e308, -1.7e308]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # recorded, so that no guard can swallow one
        predict(np.zeros((20, 2)), seg="x")  # the first batch fixes the moments' shift: 0
        for seg in ("x", "y", "z"):
            predict(huge[1:2], seg=seg)  # finite sums per segment, beyond the range in total
        metric_reader.get_metrics_data()
        monitor.flush()
        report = monitor.drift_report()
    assert [f"{w.category.__name__}: {w.message}" for w in caught] == []
    assert report.rows == 23
    rows = {a[Attr.SEGMENT]: v for a, v in points(metric_reader, "ml.drift.window.rows")}
    assert rows == {"__all__": 23, "x": 21, "y": 1, "z": 1}
