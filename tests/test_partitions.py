"""Partition profiles (otel_ml.integrations.partitions): profiled apart, merged in any order or
tree, they equal ``Reference.from_data`` on all the rows; retries and bad partitions never give
a silently wrong profile. No engine here: the Spark and Dask tests run the same code."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from otel_ml import Reference, reference_performance
from otel_ml.integrations.partitions import (
    PartitionError,
    PartitionProfile,
    ProfileSpec,
    merge_tree,
    profile_partition,
)
from partition_data import assert_same_reference, diabetes, iris, skewed_slices


def _profiles(frame: pd.DataFrame, spec: ProfileSpec, slices: list[slice]) -> list[PartitionProfile]:
    return [profile_partition(frame.iloc[s], spec, i) for i, s in enumerate(slices)]


def test_skewed_partitions_merge_to_the_one_process_profile() -> None:
    frame = iris()
    spec = ProfileSpec(predictions="prediction", labels="label")
    merged = merge_tree(_profiles(frame, spec, skewed_slices(len(frame))))
    got = merged.references().reference
    expected = Reference.from_data(
        frame.drop(columns=["prediction", "label"]), predictions=frame["prediction"],
        performance=reference_performance(frame["label"], frame["prediction"]))
    assert_same_reference(got, expected)
    assert got.features["species"].categories == ("setosa", "versicolor", "virginica")
    assert merged.rows == len(frame) and merged.partitions == frozenset(range(5))


def test_merge_order_does_not_matter() -> None:
    frame = diabetes()
    spec = ProfileSpec(predictions="prediction", exclude=("target", "sex_group"))
    slices = [slice(i, i + 60) for i in range(0, len(frame), 60)]
    expected = Reference.from_data(frame.drop(columns=["prediction", "target", "sex_group"]),
                                   predictions=frame["prediction"])
    for order in itertools.islice(itertools.permutations(range(len(slices))), 0, 200, 67):
        parts = _profiles(frame, spec, slices)
        merged = merge_tree([parts[i] for i in order])
        assert_same_reference(merged.references().reference, expected)


def test_regression_performance_and_segments_in_one_pass() -> None:
    frame = diabetes()
    spec = ProfileSpec(predictions="prediction", labels="target", segment_by="sex_group")
    slices = [slice(0, 300), slice(300, 300), slice(300, 442)]
    result = merge_tree(_profiles(frame, spec, slices)).references()
    features = frame.drop(columns=["prediction", "target", "sex_group"])
    expected = Reference.from_data(
        features, predictions=frame["prediction"],
        performance=reference_performance(frame["target"], frame["prediction"],
                                          task="regression"))
    assert_same_reference(result.reference, expected)
    assert sorted(result.segments) == ["a", "b"]
    for segment, reference in result.segments.items():
        rows = (frame["sex_group"] == segment).to_numpy()
        assert_same_reference(reference, Reference.from_data(
            features[rows], predictions=frame["prediction"][rows]))


def test_sampled_profile_is_a_uniform_sample_of_the_union() -> None:
    """Beyond the sample, edges come from a uniform sample of every partition's rows: with a
    partition of sorted values each, the merged quantiles stay within the sampling error."""
    rng = np.random.default_rng(3)
    values = np.sort(rng.normal(size=40_000))
    frame = pd.DataFrame({"x": values})
    spec = ProfileSpec(options={"sample_size": 2_000})
    slices = [slice(i, i + 10_000) for i in range(0, 40_000, 10_000)]
    got = merge_tree(_profiles(frame, spec, slices)).references().reference.features["x"]
    true_shares = np.diff(np.concatenate(([0], np.searchsorted(values, got.edges), [40_000])))
    # Each share's standard error is sqrt(p(1-p)/2000) ~ 0.0067 at p = 0.1.
    assert np.abs(true_shares / 40_000 - 0.1).max() < 5 * 0.0067
    assert got.count == 40_000 and got.min == values[0] and got.max == values[-1]


def test_a_partition_merged_twice_is_refused() -> None:
    frame = iris()
    spec = ProfileSpec()
    first = profile_partition(frame.iloc[:50], spec, 0)
    again = profile_partition(frame.iloc[:50], spec, 0)  # a retried attempt of partition 0
    with pytest.raises(PartitionError, match=r"partition\(s\) \[0\] merged twice"):
        first.merge(again)


def test_a_retried_partition_gives_the_same_profile() -> None:
    frame = pd.DataFrame({"x": np.random.default_rng(1).normal(size=5_000)})
    spec = ProfileSpec(options={"sample_size": 500})
    a = profile_partition(frame, spec, 7).references().reference
    b = profile_partition(frame, spec, 7).references().reference
    c = profile_partition(frame, spec, 8).references().reference
    assert a.features["x"].edges.tolist() == b.features["x"].edges.tolist()
    assert a.features["x"].edges.tolist() != c.features["x"].edges.tolist()


def test_a_column_of_the_wrong_type_names_the_column_and_partitions() -> None:
    frame = diabetes()[["age", "bmi"]]
    bad = frame.iloc[100:200].astype({"bmi": str})
    bad.loc[bad.index[0], "bmi"] = "n/a"
    parts = [profile_partition(frame.iloc[:100], ProfileSpec(), 0),
             profile_partition(bad, ProfileSpec(), 1)]
    with pytest.raises(PartitionError, match=r"column 'bmi' is numeric in partition 0 and not "
                                             r"numeric .* in partition 1"):
        merge_tree(parts)


def test_a_declared_numeric_column_with_text_names_partition_and_column() -> None:
    frame = pd.DataFrame({"x": np.array([1.5, "oops", 2.0], dtype=object)})
    numeric = Reference.from_data({"x": np.arange(200.0)})
    with pytest.raises(PartitionError, match=r"partition 4: column 'x': 1 value\(s\) are not "
                                             r"numbers"):
        profile_partition(frame, ProfileSpec(edges_from=numeric), 4)


def test_a_schema_that_differs_between_partitions_is_named() -> None:
    frame = diabetes()
    parts = [profile_partition(frame.iloc[:100][["age", "bmi"]], ProfileSpec(), 0),
             profile_partition(frame.iloc[100:][["age", "bp"]], ProfileSpec(), 1)]
    with pytest.raises(PartitionError, match=r"partition 1 lacks \['bmi'\] and has \['bp'\]"):
        merge_tree(parts)


def test_a_missing_named_column_is_named() -> None:
    with pytest.raises(PartitionError, match=r"partition 2: no column\(s\) \['score'\]"):
        profile_partition(iris(), ProfileSpec(predictions="score"), 2)


def test_only_empty_partitions_is_an_error() -> None:
    frame = iris().iloc[:0]
    merged = merge_tree([profile_partition(frame, ProfileSpec(), i) for i in range(3)])
    with pytest.raises(PartitionError, match="no rows in the 3 partition"):
        merged.references()


def test_profiles_travel_as_bytes() -> None:
    frame = iris()
    state = profile_partition(frame, ProfileSpec(segment_by="species"), 0)
    again = PartitionProfile.from_bytes(state.to_bytes())
    assert_same_reference(again.references().reference, state.references().reference)
    with pytest.raises(TypeError, match="not a PartitionProfile"):
        PartitionProfile.from_bytes(__import__("pickle").dumps({"a": 1}))


def test_a_bad_builder_option_fails_at_setup() -> None:
    with pytest.raises(ValueError, match="bins must be"):
        ProfileSpec(options={"bins": 1})


def test_a_sampled_profile_does_not_depend_on_the_merge_order() -> None:
    """Partitions smaller than the sample, their union larger: the merged sample (and so the
    edges) is the same whatever the order or tree of the merges."""
    frame = pd.DataFrame({"x": np.random.default_rng(2).lognormal(size=3_000)})
    spec = ProfileSpec(options={"sample_size": 1_000})
    slices = [slice(i, i + 500) for i in range(0, 3_000, 500)]
    edges = set()
    for order in ([0, 1, 2, 3, 4, 5], [5, 3, 1, 0, 2, 4], [2, 0, 4, 1, 5, 3]):
        parts = _profiles(frame, spec, slices)
        tree = merge_tree([parts[i] for i in order]).references().reference
        parts = _profiles(frame, spec, slices)
        folded = parts[order[0]]
        for i in order[1:]:
            folded = folded.merge(parts[i])
        edges.add(tuple(tree.features["x"].edges.tolist()))
        edges.add(tuple(folded.references().reference.features["x"].edges.tolist()))
    assert len(edges) == 1
