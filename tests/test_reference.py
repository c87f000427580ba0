"""Reference profiles: building, exactness, merging, saving, loading and validation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from otel_ml import Reference, ReferenceBuilder
from otel_ml.errors import DataFileError, InvalidReferenceError


def test_numeric_profile_exact_on_small_data() -> None:
    x = np.arange(1.0, 11.0)  # 1..10
    ref = Reference.from_data(x.reshape(-1, 1), bins=5, feature_names=["a"])
    p = ref.features["a"]
    assert p.kind == "numeric"
    assert (p.count, p.missing, p.min, p.max) == (10, 0, 1.0, 10.0)
    assert p.mean == pytest.approx(5.5) and p.std == pytest.approx(np.std(x))
    # Quantile positions 1.8, 3.6, 5.4, 7.2 of 1..10, rounded up: 3, 5, 7, 9.
    np.testing.assert_allclose(p.edges, [3.0, 5.0, 7.0, 9.0])
    np.testing.assert_allclose(p.shares, [0.2] * 5)
    np.testing.assert_allclose(p.centroids, [1.5, 3.5, 5.5, 7.5, 9.5])
    assert p.p_low == pytest.approx(np.quantile(x, 0.005))
    assert p.p_high == pytest.approx(np.quantile(x, 0.995))


def test_ties_are_deduplicated_and_shares_are_actual() -> None:
    x = np.array([0.0] * 70 + [1.0] * 20 + [2.0] * 10)
    p = Reference.from_data(x.reshape(-1, 1)).features["f0"]
    assert p.kind == "numeric"
    np.testing.assert_allclose(p.edges, [1.0, 2.0])  # no edge at the minimum: no empty bin
    np.testing.assert_allclose(p.shares, [0.7, 0.2, 0.1])
    assert np.all(np.diff(p.edges) > 0)


def test_missing_and_non_finite_values_are_counted_not_binned() -> None:
    x = np.array([1.0, np.nan, 2.0, np.inf, 3.0, 4.0])
    p = Reference.from_data({"a": x}).features["a"]
    assert (p.count, p.missing) == (6, 2)
    assert p.max == 4.0 and p.shares.sum() == pytest.approx(1.0)


def test_categorical_top_k_and_other() -> None:
    values = ["a"] * 50 + ["b"] * 30 + ["c"] * 15 + ["d"] * 5 + [None] * 4
    ref = Reference.from_data({"c": np.array(values, dtype=object)}, max_categories=2)
    p = ref.features["c"]
    assert p.kind == "categorical"
    assert p.categories == ("a", "b")
    np.testing.assert_allclose(p.shares, [0.5, 0.3, 0.2])
    assert (p.count, p.missing, p.other_categories) == (104, 4, 2)


def test_kinds_from_dtypes_and_declared() -> None:
    df = pd.DataFrame({
        "num": [1.5, 2.5, 3.5, 4.5],
        "text": ["x", "y", "x", "z"],
        "flag": [True, False, True, True],
        "cat": pd.Categorical(["lo", "hi", "lo", "lo"]),
        "code": [1, 2, 1, 3],
    })
    ref = Reference.from_data(df, categorical=["code"])
    kinds = {n: p.kind for n, p in ref.features.items()}
    assert kinds == {"num": "numeric", "text": "categorical", "flag": "categorical",
                     "cat": "categorical", "code": "categorical"}
    assert ref.features["flag"].categories == ("True", "False")
    assert set(ref.features["code"].categories) == {"1", "2", "3"}


def test_prediction_profiles() -> None:
    X = np.random.default_rng(0).normal(size=(200, 2))
    scores = Reference.from_data(X, predictions=np.linspace(0, 1, 200)).prediction
    assert scores.kind == "numeric"
    classes = Reference.from_data(X, predictions=np.array(["yes", "no"] * 100)).prediction
    assert classes.kind == "categorical" and set(classes.categories) == {"yes", "no"}
    proba = np.column_stack([np.linspace(1, 0, 200), np.linspace(0, 1, 200)])
    positive = Reference.from_data(X, predictions=proba).prediction
    assert positive.kind == "numeric" and positive.max == pytest.approx(1.0)
    with pytest.raises(ValueError, match="3 predictions for 200 rows"):
        Reference.from_data(X, predictions=[1, 2, 3])


def test_input_is_never_mutated() -> None:
    X = np.random.default_rng(1).normal(size=(500, 3))
    X[3, 1] = np.nan
    before = X.copy()
    Reference.from_data(X)
    np.testing.assert_array_equal(X, before)


def test_save_load_round_trip(tmp_path) -> None:
    df = pd.DataFrame({"a": np.arange(100.0), "b": ["u", "v"] * 50})
    ref = Reference.from_data(df, predictions=np.arange(100) % 2, performance={"accuracy": 0.9},
                              attributions={"a": 0.3, "b": 0.1}, metadata={"data": "train-v1"})
    path = tmp_path / "ref.json"
    ref.save(path)
    text = path.read_text()
    assert "NaN" not in text
    data = json.loads(text)
    assert data["format"] == "otel_ml.reference" and data["version"] == 1
    again = Reference.load(path)
    assert again.feature_names == ("a", "b")
    assert again.performance == {"accuracy": 0.9}
    assert again.attributions == {"a": 0.3, "b": 0.1}
    assert again.metadata == {"data": "train-v1"}
    for name in ("a", "b"):
        np.testing.assert_allclose(again.features[name].shares, ref.features[name].shares)
    np.testing.assert_allclose(again.features["a"].edges, ref.features["a"].edges)
    assert again.prediction.kind == "categorical"


def test_no_raw_rows_in_the_file(tmp_path) -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(1000, 2))
    path = tmp_path / "ref.json"
    Reference.from_data(X).save(path)
    text = path.read_text()
    # Aggregates that are order statistics (min, max, bin edges) are single values of the
    # data; no other value, and no row, appears.
    hits = sum(1 for v in X[:, 0] if repr(float(v)) in text)
    assert hits <= 2 + 9
    assert not any(repr(float(a)) in text and repr(float(b)) in text for a, b in X)
    # Aggregates only: about 75 fine bins (edge, share, mean) per feature, a few kB each,
    # never the rows (1000 x 2 values would be ~40 kB).
    assert len(text) < 16000


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(format="something"), "not an otel_ml reference"),
    (lambda d: d.update(version=2), "version 2 is not supported.*upgrade"),
    (lambda d: d.update(version=0), "version 0 is not supported.*re-create"),
    (lambda d: d.update(features=[]), "features: must be a non-empty list"),
    (lambda d: d["features"][0]["shares"].pop(), "features\\[0\\] \\('a'\\).shares: .*shares for"),
    (lambda d: d["features"][0]["shares"].__setitem__(0, 0.5), "shares sum to"),
    (lambda d: d["features"][0]["edges"].reverse(), "strictly increasing"),
    (lambda d: d["features"][0].update(kind="text"), "must be 'numeric' or 'categorical'"),
    (lambda d: d["features"][0].update(count=-1), "non-negative integer"),
    (lambda d: d["features"][0].update(missing=10**9), "missing values out of"),
    (lambda d: d["features"][1]["categories"].append("u"), "categories must be unique"),
    (lambda d: d["features"][1]["shares"].pop(), "one per category, then other"),
    (lambda d: d.update(performance={"accuracy": "high"}), "performance.accuracy"),
    (lambda d: d["features"].append(dict(d["features"][0])), "duplicate feature name 'a'"),
])
def test_load_says_what_is_wrong(tmp_path, mutate, message) -> None:
    df = pd.DataFrame({"a": np.arange(50.0), "b": ["u", "v"] * 25})
    data = Reference.from_data(df).to_dict()
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InvalidReferenceError, match=message) as info:
        Reference.load(path)
    assert str(path) in str(info.value)


def test_truncated_empty_and_missing_files(tmp_path) -> None:
    good = tmp_path / "good.json"
    Reference.from_data(np.arange(20.0).reshape(-1, 1)).save(good)
    truncated = tmp_path / "truncated.json"
    truncated.write_text(good.read_text()[:100])
    with pytest.raises(InvalidReferenceError, match="not valid JSON \\(the file looks truncated\\)"):
        Reference.load(truncated)
    empty = tmp_path / "empty.json"
    empty.write_text("")
    with pytest.raises(InvalidReferenceError, match="the file is empty"):
        Reference.load(empty)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Reference.load(tmp_path / "nope.json")


def test_monitor_accepts_a_path(tmp_path, providers) -> None:
    from otel_ml import ModelMonitor

    path = tmp_path / "ref.json"
    Reference.from_data(np.arange(30.0).reshape(-1, 3)).save(path)
    monitor = ModelMonitor("m", reference=str(path), **providers)
    assert monitor.reference.feature_names == ("f0", "f1", "f2")


def test_builder_merge_is_exact_for_moments_and_counts() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(5, 2, size=(20_000, 2))
    cats = rng.choice(["a", "b", "c"], size=20_000)
    parts = []
    for i, chunk in enumerate(np.array_split(np.arange(20_000), 4)):
        b = ReferenceBuilder(sample_size=2_000, seed=i)
        b.update({"x": X[chunk, 0], "y": X[chunk, 1], "c": cats[chunk]})
        parts.append(b)
    merged = parts[0]
    for b in parts[1:]:
        merged.merge(b)
    ref = merged.build()
    whole = Reference.from_data({"x": X[:, 0], "y": X[:, 1], "c": cats})
    for name in ("x", "y"):
        a, w = ref.features[name], whole.features[name]
        assert a.count == w.count == 20_000
        assert a.mean == pytest.approx(w.mean, rel=1e-12)
        assert a.std == pytest.approx(w.std, rel=1e-10)
        assert (a.min, a.max) == (w.min, w.max)
        # Edges from a 2,000-value uniform sample: shares within a few standard errors.
        assert np.abs(a.shares - 0.1).max() < 4 * np.sqrt(0.1 * 0.9 / 2_000)
    np.testing.assert_allclose(ref.features["c"].shares, whole.features["c"].shares)


def test_references_with_the_same_edges_merge_exactly() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(5_000, 1)), rng.normal(1, 1, size=(3_000, 1))
    first = Reference.from_data(a)
    second = ReferenceBuilder(edges_from=first).update(b).build()
    merged = first.merge(second)
    both = ReferenceBuilder(edges_from=first).update(np.vstack([a, b])).build()
    p, q = merged.features["f0"], both.features["f0"]
    np.testing.assert_allclose(p.shares, q.shares, atol=1e-12)
    np.testing.assert_allclose(p.centroids, q.centroids, atol=1e-9)
    assert p.mean == pytest.approx(q.mean) and p.std == pytest.approx(q.std)
    assert merged.rows == 8_000
    other = Reference.from_data(b)
    with pytest.raises(ValueError, match="different bin edges"):
        first.merge(other)


def test_builder_errors_name_the_column() -> None:
    b = ReferenceBuilder().update({"a": np.array([1.0, 2.0]), "b": np.array([3.0, 4.0])})
    with pytest.raises(ValueError, match=r"missing \['b'\], unexpected \['z'\]"):
        b.update({"a": np.array([1.0]), "z": np.array([2.0])})
    with pytest.raises(ValueError, match="column 'a': 1 value\\(s\\) are not numbers"):
        b.update({"a": np.array([1.0, "x"], dtype=object), "b": np.array([1.0, 2.0])})
    with pytest.raises(ValueError, match="no rows"):
        Reference.from_data(np.empty((0, 3)))


def test_from_file_csv_parquet_npy_agree(tmp_path) -> None:
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"a": rng.normal(size=3_000), "b": rng.uniform(size=3_000),
                       "label": rng.integers(0, 2, 3_000)})
    df.to_csv(tmp_path / "d.csv", index=False)
    df.to_parquet(tmp_path / "d.parquet")
    np.save(tmp_path / "d.npy", df[["a", "b"]].to_numpy())
    seen = []
    csv_ref = Reference.from_file(tmp_path / "d.csv", exclude=["label"], chunk_rows=700,
                                  progress=lambda done, total: seen.append((done, total)))
    pq_ref = Reference.from_file(tmp_path / "d.parquet", prediction_column="label")
    npy_ref = Reference.from_file(tmp_path / "d.npy")
    assert csv_ref.feature_names == ("a", "b") and npy_ref.feature_names == ("f0", "f1")
    assert seen[-1] == (3_000, None) and len(seen) == 5
    for ref in (pq_ref, npy_ref):
        first = next(iter(ref.features.values()))
        np.testing.assert_allclose(first.shares, csv_ref.features["a"].shares)
        np.testing.assert_allclose(first.edges, csv_ref.features["a"].edges)
    assert pq_ref.prediction.kind == "categorical"


def test_from_file_two_passes_when_larger_than_the_sample(tmp_path) -> None:
    rng = np.random.default_rng(6)
    X = rng.normal(size=(5_000, 2))
    np.save(tmp_path / "big.npy", X)
    seen = []
    ref = Reference.from_file(tmp_path / "big.npy", sample_size=1_000, chunk_rows=1_000,
                              progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (10_000, 10_000)  # both passes counted
    p = ref.features["f0"]
    # Shares counted exactly over all rows for the sample's edges.
    counts = np.bincount(np.searchsorted(p.edges, X[:, 0], side="right"), minlength=p.bins)
    np.testing.assert_allclose(p.shares, counts / 5_000)


def test_data_file_errors_name_the_file(tmp_path) -> None:
    with pytest.raises(DataFileError, match="no such file"):
        Reference.from_file(tmp_path / "x.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataFileError, match="empty.csv: the file is empty"):
        Reference.from_file(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("a,b\n")
    with pytest.raises(DataFileError, match="header.csv: no data rows"):
        Reference.from_file(tmp_path / "header.csv")
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(DataFileError, match="bad.parquet: not a readable Parquet file"):
        Reference.from_file(tmp_path / "bad.parquet")
    (tmp_path / "data.txt").write_text("1,2")
    with pytest.raises(DataFileError, match="unsupported file type"):
        Reference.from_file(tmp_path / "data.txt")
    (tmp_path / "mixed.csv").write_text("a,b\n1,2\nx,3\n")
    with pytest.raises(DataFileError, match="mixed.csv: rows 1\\+: column 'a'"):
        Reference.from_file(tmp_path / "mixed.csv", chunk_rows=1)
    np.save(tmp_path / "cube.npy", np.zeros((2, 2, 2)))
    with pytest.raises(DataFileError, match="expected a 2-D array"):
        Reference.from_file(tmp_path / "cube.npy")
