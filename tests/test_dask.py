"""Reference profiles on Dask, on a ``distributed.LocalCluster`` of two worker processes (one
for the module): equal to ``Reference.from_data`` on the same rows, with skewed and empty
partitions; partitions whose schemas disagree are named.

Needs dask[dataframe] and distributed (``pip install 'otel-ml[dask]'``, in the dev install);
skipped without them, or failing when ``OTEL_ML_REQUIRE_STACK=1`` (CI).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from otel_ml import Reference, reference_performance
from otel_ml.integrations.partitions import PartitionError
from partition_data import assert_same_reference, diabetes, iris, skewed_slices


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        reason = "dask.distributed is not installed (pip install 'otel-ml[dask]')"
        if os.environ.get("OTEL_ML_REQUIRE_STACK", "").strip() == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as active:
        yield active


def _partitioned(frames: list[pd.DataFrame]) -> Any:
    import dask.dataframe as dd

    return dd.from_map(lambda f: f, frames, meta=frames[0].iloc[:0], enforce_metadata=False)


def test_skewed_partitions_equal_from_data(client: Any) -> None:
    from otel_ml.integrations import dask as otel_dask

    frame = iris()
    ddf = _partitioned([frame.iloc[s] for s in skewed_slices(len(frame))])
    assert ddf.map_partitions(len).compute().tolist() == [135, 0, 6, 9, 0]
    got = otel_dask.profile(ddf, predictions="prediction", labels="label")
    expected = Reference.from_data(
        frame.drop(columns=["prediction", "label"]), predictions=frame["prediction"],
        performance=reference_performance(frame["label"], frame["prediction"]))
    assert_same_reference(got, expected)
    assert len(client.scheduler_info()["workers"]) == 2


def test_segments_in_the_same_pass(client: Any) -> None:
    import dask.dataframe as dd

    from otel_ml.integrations import dask as otel_dask

    frame = diabetes()
    result = otel_dask.profile_segments(dd.from_pandas(frame, npartitions=4), "sex_group",
                                        predictions="prediction", labels="target")
    features = frame.drop(columns=["prediction", "target", "sex_group"])
    expected = Reference.from_data(
        features, predictions=frame["prediction"],
        performance=reference_performance(frame["target"], frame["prediction"],
                                          task="regression"))
    assert_same_reference(result.reference, expected)
    for segment in ("a", "b"):
        rows = (frame["sex_group"] == segment).to_numpy()
        assert_same_reference(result.segments[segment], Reference.from_data(
            features[rows], predictions=frame["prediction"][rows]))


def test_a_partition_with_a_column_of_another_type_is_named(client: Any) -> None:
    from otel_ml.integrations import dask as otel_dask

    frame = diabetes()[["age", "bmi"]]
    other = frame.iloc[200:].astype({"bmi": str})
    ddf = _partitioned([frame.iloc[:200], other])
    with pytest.raises(PartitionError, match=r"column 'bmi' is numeric in partition 0 and not "
                                             r"numeric .* in partition 1"):
        otel_dask.profile(ddf)


def test_a_schema_that_differs_between_partitions_is_named(client: Any) -> None:
    from otel_ml.integrations import dask as otel_dask

    frame = diabetes()
    ddf = _partitioned([frame.iloc[:200][["age", "bmi"]], frame.iloc[200:][["age", "bp"]]])
    with pytest.raises(PartitionError, match=r"lacks \['bmi'\] and has \['bp'\]"):
        otel_dask.profile(ddf)


def test_batch_scoring_on_dask_equals_one_process(client: Any) -> None:
    import dask.dataframe as dd

    from otel_ml.integrations import dask as otel_dask
    from test_batch_scoring import assert_same_monitoring, make_monitor, predictor, scoring_data

    train, batch, model = scoring_data()
    predict = predictor(model)
    reference = Reference.from_data(train, predictions=predict(train))
    cluster = make_monitor(reference)
    ddf = dd.from_pandas(batch, npartitions=3)
    state = otel_dask.monitor(ddf, predict, monitor=cluster[0])
    assert state.rows == len(batch)
    one = make_monitor(reference)
    # One process observing the same batches (the partitions): multivariate drift reads a
    # systematic sample of at most 256 rows per batch, so it depends on the batches.
    for i in range(ddf.npartitions):
        part = ddf.partitions[i].compute()
        one[0].observe(part, predict(part.drop(columns=["site"])))
    assert cluster[0].drift_report().multivariate["reconstruction_error"]["rows"] == len(batch)
    assert_same_monitoring(cluster, one)


def test_exact_shares_beyond_the_sample(client: Any) -> None:
    """More rows than the sample: the second pass counts every row into the merged edges."""
    import dask.dataframe as dd
    import numpy as np

    from otel_ml.integrations import dask as otel_dask

    values = np.random.default_rng(9).lognormal(size=4_000)
    ddf = dd.from_pandas(pd.DataFrame({"x": values}), npartitions=4)
    for options in ({}, {"expected_rows": len(ddf)}):  # the row count bounds the samples
        got = otel_dask.profile(ddf, sample_size=300, exact_shares=True, **options).features["x"]
        counts = np.diff(np.concatenate(([0], np.searchsorted(np.sort(values), got.edges),
                                         [4_000])))
        assert got.shares.tolist() == (counts / 4_000).tolist()
        assert got.count == 4_000 and got.max == values.max()
        assert got.p_low <= np.quantile(values, 0.05) and got.fine is not None


def test_batch_scoring_with_labels_on_dask_equals_one_process(client: Any) -> None:
    """With ``labels``, the workers also score the labels; the driver's performance report
    and outcome metrics equal one process calling ``record_outcomes`` on every partition."""
    import dask.dataframe as dd

    from otel_ml.integrations import dask as otel_dask
    from test_batch_outcomes import assert_same_outcomes, classification_case, monitor_of, one_process

    batch, reference, predict = classification_case()
    options = {"sensitive_attribute": "group", "task": "classification"}
    ddf = dd.from_pandas(batch, npartitions=3)
    cluster = monitor_of(reference, **options)
    state = otel_dask.monitor(ddf, predict, monitor=cluster[0], labels="diagnosis",
                              concept_drift=True)
    assert state.labelled == len(batch) - 2
    parts = [ddf.partitions[i].compute() for i in range(ddf.npartitions)]
    expected = one_process(parts, reference, predict, "diagnosis", **options)
    assert_same_outcomes(cluster, expected)
    assert sorted(state.outcomes.streams) == [0, 1, 2]
    assert cluster[0].performance_report().concept_drift == \
        expected[0].performance_report().concept_drift
