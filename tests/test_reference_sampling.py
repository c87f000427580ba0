"""The reference builder's bottom-k sample: kept exactly, cheaply, and small when the rows are
known up front; and the exact second pass that keeps no sample. On scikit-learn's bundled
diabetes and breast-cancer data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from otel_ml import Reference, ReferenceBuilder
from otel_ml._internal.reference.columns import NumericColumn
from otel_ml.integrations.partitions import (
    ALL_ROWS,
    ProfileSpec,
    merge_tree,
    profile_chunks,
    profile_exactly,
    profile_partition,
)
from partition_data import assert_same_reference, diabetes


def _values() -> np.ndarray:
    """Every breast-cancer feature value, in row order (17,070 values with ties)."""
    return load_breast_cancer().data.reshape(-1)


@pytest.mark.parametrize(("k", "chunk"), [(100, 7), (1000, 333), (5000, 4096), (2000, 20000)])
def test_the_sample_is_the_bottom_k_of_every_key_drawn(k: int, chunk: int) -> None:
    values = _values()
    column = NumericColumn(np.random.default_rng(7), k)
    for i in range(0, values.shape[0], chunk):
        column.add(values[i:i + chunk])
    # The same keys, drawn as the column draws them: the values held at the first overflow at
    # once, then one draw per later chunk.
    twin, held, keys = np.random.default_rng(7), 0, []
    for i in range(0, values.shape[0], chunk):
        n = min(chunk, values.shape[0] - i)
        if not keys and held + n > k:
            keys.append(twin.random(held))
        if keys:
            keys.append(twin.random(n))
        held += n
    all_keys = np.concatenate(keys)
    expected = np.sort(values[np.argsort(all_keys)[:k]])
    got = column.profile("x", 10)  # settles the sample
    assert got.count == values.shape[0]
    assert np.array_equal(np.sort(np.concatenate(column.sample)), expected)
    # Between settles the parts hold at most a quarter more than k.
    column.add(values[:chunk])
    assert sum(a.shape[0] for a in column.sample) <= k + k // 4 + chunk


def test_an_exact_pass_without_a_sample_equals_one_with_it() -> None:
    frame = diabetes().drop(columns=["sex_group"])
    first_pass = ReferenceBuilder(sample_size=100, seed=3)
    for start in range(0, len(frame), 50):  # the same chunks draw the same keys
        first_pass.update(frame.iloc[start:start + 50])
    first = first_pass.build()
    with_sample = ReferenceBuilder(sample_size=100, seed=3, edges_from=first)
    without = ReferenceBuilder(sample_size=100, seed=3, edges_from=first, sample=False)
    for start in range(0, len(frame), 50):
        with_sample.update(frame.iloc[start:start + 50])
        without.update(frame.iloc[start:start + 50])
    got, expected = without.build(), with_sample.build()
    assert got.to_dict() == expected.to_dict()
    assert got.features["bmi"].fine is not None


def test_no_sample_needs_edges_from() -> None:
    with pytest.raises(ValueError, match="sample=False needs edges_from"):
        ReferenceBuilder(sample=False)
    with pytest.raises(ValueError, match="expected_rows"):
        ReferenceBuilder(expected_rows=0)


def _partitions(frame: pd.DataFrame, parts: int) -> list[pd.DataFrame]:
    return [frame.iloc[i::parts].reset_index(drop=True) for i in range(parts)]


def _run(frames: list[pd.DataFrame]):  # noqa: ANN202 - the runner profile_exactly takes
    return lambda spec: merge_tree(profile_partition(f, spec, i) for i, f in enumerate(frames))


def test_known_rows_keep_partial_samples_small_and_the_result_a_bottom_k() -> None:
    frame = pd.DataFrame(load_breast_cancer().data[:, :6],
                         columns=[f"f{i}" for i in range(6)])
    frame = pd.concat([frame] * 8, ignore_index=True)  # 4,552 rows
    frames = _partitions(frame, 8)
    spec = ProfileSpec(options={"sample_size": 500})
    bounded = ProfileSpec(options={"sample_size": 500, "expected_rows": len(frame)})
    small = profile_partition(frames[0], bounded, 0)
    full = profile_partition(frames[0], spec, 0)
    # A partition of an eighth of the rows ships about an eighth of the sample, not all of it.
    assert len(small.to_bytes()) < len(full.to_bytes()) / 2
    merged = _run(frames)(bounded)
    assert merged.builders[ALL_ROWS].sample_complete()
    got = profile_exactly(_run(frames), spec, rows=len(frame)).reference
    exact = Reference.from_data(frame)
    for name, profile in got.features.items():
        # Exact counts and moments; shares exact (second pass) over edges from a uniform sample.
        assert profile.count == exact.features[name].count
        assert profile.mean == pytest.approx(exact.features[name].mean, rel=1e-12)
        assert profile.shares.sum() == pytest.approx(1.0)
        assert len(profile.edges) >= 5


def test_a_bound_that_drops_too_much_is_detected_and_profiled_again() -> None:
    frame = diabetes().drop(columns=["sex_group"])
    # 80% of one column missing: far fewer values than rows, so a bound computed from the rows
    # leaves fewer than sample_size keys below it.
    frame.loc[frame.index % 5 != 0, "bmi"] = np.nan
    frames = _partitions(frame, 4)
    spec = ProfileSpec(options={"sample_size": 100})
    bounded = ProfileSpec(options={"sample_size": 100, "expected_rows": len(frame)})
    merged = _run(frames)(bounded)
    assert not merged.builders[ALL_ROWS].sample_complete()
    got = profile_exactly(_run(frames), spec, rows=len(frame))
    expected = profile_exactly(_run(frames), spec)  # no bound at all
    assert_same_reference(got.reference, expected.reference)


def test_an_overstated_expected_rows_option_falls_back_to_the_plain_profile() -> None:
    frames = _partitions(diabetes().drop(columns=["sex_group"]), 3)
    spec = ProfileSpec(options={"sample_size": 100})
    overstated = ProfileSpec(options={"sample_size": 100, "expected_rows": 10**9})
    got = profile_exactly(_run(frames), overstated)
    assert_same_reference(got.reference, profile_exactly(_run(frames), spec).reference)


@pytest.mark.parametrize("sample_size", [500, 5000])
def test_a_partition_profiled_in_slices(sample_size: int) -> None:
    """Dask profiles a partition in slices of 100,000 rows: the same profile as whole when the
    rows fit the sample; beyond it another uniform sample (the builder's columns share one key
    stream, drawn slice by slice), with the same counts and moments, and the same on a retry."""
    frame = pd.DataFrame(load_breast_cancer().data[:, :5], columns=[f"f{i}" for i in range(5)])
    frame = pd.concat([frame] * 8, ignore_index=True)  # 4,552 rows
    spec = ProfileSpec(options={"sample_size": sample_size})

    def sliced() -> Reference:
        chunks = (frame.iloc[i:i + 700] for i in range(0, len(frame), 700))
        return profile_chunks(chunks, spec, 3).references().reference

    whole = profile_partition(frame, spec, 3).references().reference
    got = sliced()
    assert got.to_dict() == sliced().to_dict()  # a retried partition gives the same profile
    if sample_size >= len(frame):
        assert_same_reference(got, whole)  # moments within rounding (summation order)
    for name, profile in got.features.items():
        assert profile.count == whole.features[name].count
        assert profile.mean == pytest.approx(whole.features[name].mean, rel=1e-12)
