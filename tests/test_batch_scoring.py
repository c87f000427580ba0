"""Monitoring a batch job by partitions (otel_ml.integrations.scoring), without an engine:
partitions scored apart and merged in any order equal one process observing every partition,
in the drift report and in every exported feature metric; a partition is never counted twice.
"""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pandas as pd
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from sklearn.datasets import load_breast_cancer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from otel_ml import ModelMonitor, Reference
from otel_ml._internal.core.readout import read_points
from otel_ml.integrations.partitions import PartitionError
from otel_ml.integrations.scoring import BatchState, ScoringSpec, score_partition

#: Drift scores and moments summed in another order differ by rounding only.
SCORE_TOLERANCE = 1e-9


def scoring_data() -> tuple[pd.DataFrame, pd.DataFrame, Any]:
    """scikit-learn's breast-cancer data: a model and reference on the first 300 rows, a
    "nightly batch" of the other 269 with a segment column, a shift in one feature and
    data-quality problems (missing values, an out-of-range value)."""
    data = load_breast_cancer(as_frame=True)
    X = data.data.iloc[:, :8].rename(columns=lambda c: c.replace(" ", "_"))
    train, batch = X.iloc[:300].reset_index(drop=True), X.iloc[300:].reset_index(drop=True)
    model = make_pipeline(SimpleImputer(), LogisticRegression(max_iter=2_000)).fit(train, data.target.iloc[:300])
    batch = batch.copy()
    batch["mean_texture"] *= 1.3
    batch.loc[[3, 40, 41], "mean_radius"] = np.nan
    batch.loc[7, "mean_area"] = 1e6
    batch["site"] = np.where(np.arange(len(batch)) % 3 == 0, "north", "south")
    return train, batch, model


def predictor(model: Any):  # noqa: ANN201 - a closure
    return lambda x: model.predict_proba(x)[:, 1]


def make_monitor(reference: Reference, **options: Any) -> tuple[ModelMonitor, InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    monitor = ModelMonitor("batch-model", "1", reference=reference, segment_by="site",
                           meter_provider=MeterProvider(metric_readers=[reader]), **options)
    return monitor, reader


def feature_points(reader: InMemoryMetricReader) -> dict[tuple[str, tuple], float]:
    """Every feature and data-quality data point: (metric, attributes) -> value."""
    out = {}
    for name, points in read_points(reader).items():
        if not name.startswith(("ml.feature", "ml.prediction", "ml.data")):
            continue
        for p in points:
            value = getattr(p, "value", None)
            if value is None:
                value = (p.count, p.sum)
            out[(name, tuple(sorted(p.attributes.items())))] = value
    return out


def assert_same_monitoring(got: tuple[ModelMonitor, InMemoryMetricReader],
                           expected: tuple[ModelMonitor, InMemoryMetricReader]) -> None:
    a, b = got[0].drift_report().to_dict(), expected[0].drift_report().to_dict()
    _close(a, b, "drift")
    pa, pb = feature_points(got[1]), feature_points(expected[1])
    assert pa.keys() == pb.keys()
    assert len(pa) > 50
    for key in pa:
        _close(pa[key], pb[key], str(key))


def _close(a: Any, b: Any, where: str) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            if k not in ("evaluated_at",):
                _close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and not isinstance(b, bool):
        assert (math.isnan(a) and math.isnan(b)) or \
            abs(a - b) <= SCORE_TOLERANCE * max(1.0, abs(b)), (where, a, b)
    else:
        assert a == b, (where, a, b)


def test_partitions_merged_in_any_order_equal_one_process() -> None:
    train, batch, model = scoring_data()
    reference = Reference.from_data(train, predictions=predictor(model)(train))
    predict = predictor(model)
    cuts = [0, 240, 240, 250, 269, 269]  # 90% in one partition, empty ones
    parts = [batch.iloc[a:b] for a, b in zip(cuts[:-1], cuts[1:])]

    one = make_monitor(reference)
    for part in parts:
        if len(part):
            one[0].observe(part, predict(part.drop(columns=["site"])))

    spec = ScoringSpec.of(make_monitor(reference)[0], predict)
    states = [score_partition(part, spec, i) for i, part in enumerate(parts)]
    random.Random(4).shuffle(states)
    merged = BatchState.merge_all(states)
    assert merged.rows == len(batch) and merged.partitions == frozenset(range(5))
    cluster = make_monitor(reference)
    merged.record_into(cluster[0])
    assert_same_monitoring(cluster, one)
    report = cluster[0].drift_report()
    assert report.features["mean_texture"].drifted  # the shifted feature, seen by both
    assert set(report.segments) == {"north", "south"}
    # Multivariate drift (the sums of reconstruction errors and centroid distances) is part
    # of the merged state: every row of every partition read, per segment as in one process.
    assert report.multivariate["reconstruction_error"]["rows"] == len(batch)
    assert {k: r.multivariate["centroid_distance"]["rows"] for k, r in report.segments.items()} \
        == batch["site"].value_counts().to_dict()


def test_bytes_round_trip_and_a_partition_counted_twice_is_refused() -> None:
    train, batch, model = scoring_data()
    reference = Reference.from_data(train)
    spec = ScoringSpec.of(make_monitor(reference)[0], predictor(model))
    first = BatchState.from_bytes(score_partition(batch.iloc[:100], spec, 0).to_bytes())
    retried = score_partition(batch.iloc[:100], spec, 0)
    with pytest.raises(PartitionError, match=r"partition\(s\) \[0\] merged twice"):
        first.merge(retried)
    assert first.rows == 100


def test_a_partition_whose_model_fails_is_named() -> None:
    train, batch, _ = scoring_data()
    spec = ScoringSpec.of(make_monitor(Reference.from_data(train))[0], lambda x: 1 / 0)
    with pytest.raises(PartitionError, match="partition 3: predict_fn raised "
                                             "ZeroDivisionError"):
        score_partition(batch, spec, 3)


def test_a_wrong_typed_column_is_a_data_quality_signal_as_in_one_process() -> None:
    train, batch, model = scoring_data()
    reference = Reference.from_data(train)
    bad = batch.iloc[:50].astype({"mean_smoothness": object})
    bad.loc[bad.index[:5], "mean_smoothness"] = "n/a"
    parts = [bad, batch.iloc[50:]]

    def predict(x: pd.DataFrame) -> np.ndarray:
        return np.full(len(x), 0.5)

    one = make_monitor(reference)
    for part in parts:
        one[0].observe(part, predict(part))
    spec = ScoringSpec.of(make_monitor(reference)[0], predict)
    cluster = make_monitor(reference)
    BatchState.merge_all(score_partition(p, spec, i) for i, p in enumerate(parts)
                         ).record_into(cluster[0])
    assert_same_monitoring(cluster, one)
    issues = {k: v for k, v in feature_points(cluster[1]).items()
              if "mean_smoothness" in str(k) and "type" in str(k)}
    assert sum(issues.values()) >= 5


def test_without_a_reference_setup_fails_fast() -> None:
    monitor = ModelMonitor("no-reference", meter_provider=MeterProvider())
    with pytest.raises(ValueError, match="needs a reference profile"):
        ScoringSpec.of(monitor, lambda x: x)


def test_the_reference_with_its_multivariate_projection_pickles() -> None:
    """The spec is pickled to the executors: the reference's projection (its lock dropped)
    must survive and give the same bounds, so the executors read rows as the driver does."""
    import pickle

    train, _, _ = scoring_data()
    reference = Reference.from_data(train)
    assert "features" in reference.projections
    copy = pickle.loads(pickle.dumps(reference))
    for quantity in ("reconstruction_error", "centroid_distance"):
        assert copy.projections["features"].upper(quantity, 90) == \
            reference.projections["features"].upper(quantity, 90)
