"""Reference profiles on Spark (``local[2]``, one session for the module): equal to
``Reference.from_data`` on the same rows, with skewed and empty partitions and a retried task.

Needs pyspark and Java 17+ (``make test`` installs both); skipped without them, or failing when
``OTEL_ML_REQUIRE_STACK=1`` (CI).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from otel_ml import Reference, reference_performance
from otel_ml.integrations.partitions import PartitionError
from partition_data import assert_same_reference, diabetes, iris, skewed_slices


def _missing(reason: str) -> None:
    if os.environ.get("OTEL_ML_REQUIRE_STACK", "").strip() == "1":
        pytest.fail(f"{reason} (OTEL_ML_REQUIRE_STACK=1 turns a missing component into a failure)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        _missing("pyspark is not installed (pip install 'otel-ml[spark]')")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        _missing("Java 17+ is missing (make test installs a Debian JRE)")
    # The executors' Python is this one (with otel_ml and its dependencies); at most two
    # attempts per task, so a failed attempt is retried once.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (SparkSession.builder.master("local[2, 2]").appName("otel_ml-tests")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "2")
               .config("spark.driver.memory", "1g")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _partitioned(spark: Any, frame: pd.DataFrame, slices: list[slice]) -> Any:
    """A DataFrame whose partition ``i`` holds exactly ``frame.iloc[slices[i]]``."""
    records = [(i, row) for i, s in enumerate(slices)
               for row in zip(*(frame.iloc[s][c].tolist() for c in frame.columns))]
    rdd = spark.sparkContext.parallelize(records, len(slices))
    rdd = rdd.partitionBy(len(slices), lambda key: key).map(lambda kv: kv[1])
    schema = spark.createDataFrame(frame.iloc[:1]).schema
    df = spark.createDataFrame(rdd, schema)
    assert df.rdd.glom().map(len).collect() == [s.stop - s.start for s in slices]
    return df


def test_skewed_partitions_equal_from_data(spark: Any) -> None:
    from otel_ml.integrations import spark as otel_spark

    frame = iris()
    df = _partitioned(spark, frame, skewed_slices(len(frame)))
    got = otel_spark.profile(df, predictions="prediction", labels="label")
    expected = Reference.from_data(
        frame.drop(columns=["prediction", "label"]), predictions=frame["prediction"],
        performance=reference_performance(frame["label"], frame["prediction"]))
    assert_same_reference(got, expected)


def test_segments_in_the_same_pass(spark: Any) -> None:
    from otel_ml.integrations import spark as otel_spark

    frame = diabetes()
    df = spark.createDataFrame(frame).repartition(3)
    result = otel_spark.profile_segments(df, "sex_group", predictions="prediction",
                                         exclude=["target"])
    features = frame.drop(columns=["prediction", "target", "sex_group"])
    assert_same_reference(result.reference,
                          Reference.from_data(features, predictions=frame["prediction"]))
    for segment in ("a", "b"):
        rows = (frame["sex_group"] == segment).to_numpy()
        assert_same_reference(result.segments[segment], Reference.from_data(
            features[rows], predictions=frame["prediction"][rows]))


def test_a_retried_task_is_counted_once(spark: Any) -> None:
    """The first attempt of partition 1 fails after reading its rows; Spark retries it and the
    profile still counts every row once."""
    from otel_ml.integrations import spark as otel_spark

    def fail_first_attempt(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from pyspark import TaskContext

        context = TaskContext.get()
        frames = list(batches)
        if context.partitionId() == 1 and context.attemptNumber() == 0:
            raise RuntimeError("executor lost (injected)")
        yield from frames

    frame = diabetes().drop(columns=["sex_group"])
    df = spark.createDataFrame(frame).repartition(3)
    flaky = df.mapInPandas(fail_first_attempt, schema=df.schema)
    got = otel_spark.profile(flaky, predictions="prediction", exclude=["target"])
    assert_same_reference(got, Reference.from_data(
        frame.drop(columns=["prediction", "target"]), predictions=frame["prediction"]))


def test_a_missing_column_names_the_partition_and_column(spark: Any) -> None:
    from otel_ml.integrations import spark as otel_spark

    df = spark.createDataFrame(iris()).repartition(2)
    with pytest.raises(Exception, match=r"partition \d: no column\(s\) \['score'\]"):
        otel_spark.profile(df, predictions="score")


def test_an_empty_dataframe_is_an_error(spark: Any) -> None:
    from otel_ml.integrations import spark as otel_spark

    df = spark.createDataFrame(iris()).limit(0)
    with pytest.raises(PartitionError, match="no rows"):
        otel_spark.profile(df)


def test_batch_scoring_on_spark_equals_one_process(spark: Any) -> None:
    """``spark.monitor`` scores on the executors; the driver's monitor then reports the drift
    and exports the feature metrics one process observing every partition would."""
    from otel_ml.integrations import spark as otel_spark
    from test_batch_scoring import assert_same_monitoring, make_monitor, predictor, scoring_data

    train, batch, model = scoring_data()
    predict = predictor(model)
    reference = Reference.from_data(train, predictions=predict(train))
    slices = [slice(0, 242), slice(242, 242), slice(242, 269)]
    df = _partitioned(spark, batch, slices)
    cluster = make_monitor(reference)
    state = otel_spark.monitor(df, predict, monitor=cluster[0])
    assert state.rows == len(batch) and state.partitions == frozenset(range(3))
    one = make_monitor(reference)
    for s in slices:
        part = batch.iloc[s]
        if len(part):
            one[0].observe(part, predict(part.drop(columns=["site"])))
    assert_same_monitoring(cluster, one)
    assert cluster[0].drift_report().features["mean_texture"].drifted


def test_batch_scoring_with_labels_on_spark_equals_one_process(spark: Any) -> None:
    """With ``labels``, the executors also score the labels; the driver's performance report
    and outcome metrics equal one process calling ``record_outcomes`` on every partition."""
    from otel_ml.integrations import spark as otel_spark
    from test_batch_outcomes import assert_same_outcomes, classification_case, monitor_of, one_process

    batch, reference, predict = classification_case()
    options = {"sensitive_attribute": "group", "task": "classification"}
    slices = [slice(0, 242), slice(242, 242), slice(242, 269)]
    df = _partitioned(spark, batch, slices)
    cluster = monitor_of(reference, **options)
    state = otel_spark.monitor(df, predict, monitor=cluster[0], labels="diagnosis",
                               concept_drift=True)
    assert state.labelled == len(batch) - 2
    expected = one_process([batch.iloc[s] for s in slices], reference, predict, "diagnosis",
                           **options)
    assert_same_outcomes(cluster, expected)
    # The error streams, fed in partition order: the detectors equal one process's.
    assert sorted(state.outcomes.streams) == [0, 2]
    assert cluster[0].performance_report().concept_drift == \
        expected[0].performance_report().concept_drift
