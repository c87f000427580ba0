"""Outcomes of a batch job scored by partitions (otel_ml.integrations.scoring with ``labels``):
the partitions' labelled rows merged in any order equal one process calling
``monitor.record_outcomes`` on every partition, in the performance report (fairness included)
and in every exported outcome metric (confusion counters, unmatched labels, windowed
performance, the absolute-error histogram and squared-error counter of a regressor). The
concept-drift detectors are sequential: by default the merged state does not feed them
(asserted); with ``concept_drift=True`` each partition carries its error stream and the
driver feeds them in partition order, equal to one process (asserted).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pandas as pd
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression

from otel_ml import ModelMonitor, Reference
from otel_ml._internal.core.readout import read_points
from otel_ml._internal.monitor.outcome_state import ErrorTally, OutcomeState
from otel_ml.contract import ERROR_BUCKETS
from otel_ml.integrations.partitions import PartitionError
from otel_ml.integrations.scoring import BatchState, ScoringSpec, score_partition
from test_batch_scoring import _close, predictor, scoring_data

#: 90% of the rows in one partition, and empty partitions.
CUTS = [0, 240, 240, 250, 269, 269]

OUTCOME_METRICS = ("ml.model.outcomes", "ml.model.outcomes.unmatched", "ml.model.performance",
                   "ml.model.error.squared", "ml.model.error.absolute", "ml.fairness.group.rate",
                   "ml.fairness.gap")


def outcome_points(reader: InMemoryMetricReader) -> dict[tuple[str, tuple], Any]:
    """Every outcome data point: (metric, attributes) -> value (a histogram: count, sum,
    bucket counts, min, max)."""
    out = {}
    for name, points in read_points(reader).items():
        if name not in OUTCOME_METRICS:
            continue
        for p in points:
            value = getattr(p, "value", None)
            if value is None:
                value = (p.count, p.sum, list(p.bucket_counts), p.min, p.max)
            out[(name, tuple(sorted(p.attributes.items())))] = value
    return out


def classification_case() -> tuple[pd.DataFrame, Reference, Any]:
    """Breast-cancer rows with their labels (``diagnosis``, two missing), a sensitive group
    column and the segment column of ``scoring_data``."""
    from sklearn.datasets import load_breast_cancer

    train, batch, model = scoring_data()
    batch = batch.copy()
    labels = load_breast_cancer().target[300:].astype(np.float64)
    labels[[5, 250]] = np.nan  # labels that cannot be scored: counted unmatched
    batch["diagnosis"] = labels
    batch["group"] = np.where(batch["mean_area"] > batch["mean_area"].median(), "large", "small")
    reference = Reference.from_data(train, predictions=predictor(model)(train))
    return batch, reference, predictor(model)


def monitor_of(reference: Reference, **options: Any) -> tuple[ModelMonitor, InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    monitor = ModelMonitor("batch-outcomes", "1", reference=reference, segment_by="site",
                           meter_provider=MeterProvider(metric_readers=[reader]), **options)
    return monitor, reader


def one_process(parts: list[pd.DataFrame], reference: Reference, predict: Any, label: str,
                **options: Any) -> tuple[ModelMonitor, InMemoryMetricReader]:
    """What the merged state must equal: one monitor observing every partition and recording
    its labels (segments and groups from the columns)."""
    one = monitor_of(reference, **options)
    sensitive = options.get("sensitive_attribute")
    for part in parts:
        if not len(part):
            continue
        x = part.drop(columns=[label])
        y_pred = predict(x.drop(columns=[c for c in ("site", sensitive) if c]))
        one[0].observe(x, y_pred)
        one[0].record_outcomes(part[label].to_numpy(), y_pred, segments=part["site"].to_numpy(),
                               groups=None if sensitive is None else part[sensitive].to_numpy())
    return one


def merged_monitor(parts: list[pd.DataFrame], reference: Reference, predict: Any, label: str,
                   seed: int, concept_drift: bool = False,
                   **options: Any) -> tuple[ModelMonitor, InMemoryMetricReader, BatchState]:
    spec = ScoringSpec.of(monitor_of(reference, **options)[0], predict, labels=label,
                          concept_drift=concept_drift)
    states = [BatchState.from_bytes(score_partition(p, spec, i).to_bytes())
              for i, p in enumerate(parts)]
    random.Random(seed).shuffle(states)
    merged = BatchState.merge_all(states)
    cluster = monitor_of(reference, **options)
    merged.record_into(cluster[0])
    return cluster[0], cluster[1], merged


def assert_same_outcomes(got: tuple[ModelMonitor, InMemoryMetricReader],
                         expected: tuple[ModelMonitor, InMemoryMetricReader]) -> dict:
    a = got[0].performance_report().to_dict()
    b = expected[0].performance_report().to_dict()
    for report in (a, b):
        report.pop("concept_drift")  # sequential: not part of the merged state (below)
    _close(a, b, "performance")
    pa, pb = outcome_points(got[1]), outcome_points(expected[1])
    assert pa.keys() == pb.keys()
    for key in pa:
        _close(pa[key], pb[key], str(key))
    return pa


def test_classification_outcomes_merged_in_any_order_equal_one_process() -> None:
    batch, reference, predict = classification_case()
    parts = [batch.iloc[a:b] for a, b in zip(CUTS[:-1], CUTS[1:])]
    options = {"sensitive_attribute": "group", "task": "classification"}
    expected = one_process(parts, reference, predict, "diagnosis", **options)
    for seed in (1, 2):
        monitor, reader, merged = merged_monitor(parts, reference, predict, "diagnosis", seed,
                                                 **options)
        assert merged.labelled == len(batch) - 2
        points = assert_same_outcomes((monitor, reader), expected)
    report = monitor.performance_report()
    assert report.count == len(batch) - 2 and report.unmatched == {"missing_label": 2}
    assert set(report.by_segment) == {"north", "south"}
    assert 0.5 < report.metrics["accuracy"] < 1.0 and report.metrics["brier"] > 0
    assert report.fairness is not None and {g for g, *_ in report.fairness.rates()} == \
        {"large", "small"}
    assert sum(v for (name, _), v in points.items() if name == "ml.model.outcomes") == \
        len(batch) - 2
    # The features (and their drift) are still those of one process: the labels column is
    # not a feature.
    assert "diagnosis" not in monitor.drift_report().features
    _close(monitor.drift_report().to_dict(), expected[0].drift_report().to_dict(), "drift")
    # Concept drift: the driver's detectors are not fed by the merged state (documented).
    assert all(d["detections"] == 0 for d in report.concept_drift.values())


def test_regression_error_histogram_and_sums_equal_one_process() -> None:
    data = load_diabetes(as_frame=True)
    X, y = data.data, data.target
    model = LinearRegression().fit(X.iloc[:250], y.iloc[:250])
    batch = X.iloc[250:].reset_index(drop=True)
    batch["site"] = np.where(np.arange(len(batch)) % 4 == 0, "north", "south")
    batch["progression"] = y.iloc[250:].to_numpy()
    batch.loc[150:, "progression"] += 150.0  # the last rows' labels move: concept drift

    def predict(x: pd.DataFrame) -> np.ndarray:
        return model.predict(x)

    reference = Reference.from_data(X.iloc[:250], predictions=model.predict(X.iloc[:250]))
    cuts = [0, 170, 170, 180, 192]
    parts = [batch.iloc[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
    expected = one_process(parts, reference, predict, "progression", task="regression")
    monitor, reader, merged = merged_monitor(parts, reference, predict, "progression", 3,
                                             task="regression")
    points = assert_same_outcomes((monitor, reader), expected)
    histograms = {k: v for k, v in points.items() if k[0] == "ml.model.error.absolute"}
    assert len(histograms) == 2  # per segment
    assert sum(v[0] for v in histograms.values()) == len(batch)
    assert set(monitor.performance_report().metrics) >= {"mae", "rmse"}
    # Concept drift is sequential: one process's detectors see the errors grow at the end
    # of the stream; the driver's detectors are not fed from the merged state (documented).
    one_detections = expected[0].performance_report().concept_drift
    assert one_detections["page_hinkley"]["detections"] > 0
    assert all(d["detections"] == 0 for d in monitor.performance_report().concept_drift.values())
    assert merged.outcomes is not None and not merged.outcomes.streams
    # Opt-in: the partitions' error streams, fed in partition order, give the same detections.
    fed, fed_reader, merged = merged_monitor(parts, reference, predict, "progression", 4,
                                             concept_drift=True, task="regression")
    assert fed.performance_report().concept_drift == one_detections
    assert sorted(merged.outcomes.streams) == [0, 2, 3]  # the partitions with rows
    assert_same_outcomes((fed, fed_reader), expected)
    assert concept_points(fed_reader) == concept_points(expected[1])


def concept_points(reader: InMemoryMetricReader) -> dict[tuple[str, tuple], float]:
    return {(name, tuple(sorted(p.attributes.items()))): p.value
            for name, points in read_points(reader).items() if name.startswith("ml.concept_drift")
            for p in points}


def test_a_classifiers_error_stream_is_carried_as_bits_and_fed_in_partition_order() -> None:
    batch, reference, predict = classification_case()
    batch = batch.drop(columns=["group"])  # no sensitive attribute here
    # The labels of the last rows are flipped: the error rate jumps (a concept change).
    batch.loc[200:, "diagnosis"] = 1.0 - batch.loc[200:, "diagnosis"]
    parts = [batch.iloc[a:b] for a, b in zip(CUTS[:-1], CUTS[1:])]
    options = {"task": "classification"}
    expected = one_process(parts, reference, predict, "diagnosis", **options)
    detections = expected[0].performance_report().concept_drift
    assert sum(d["detections"] for d in detections.values()) > 0
    monitor, reader, merged = merged_monitor(parts, reference, predict, "diagnosis", 5,
                                             concept_drift=True, **options)
    assert monitor.performance_report().concept_drift == detections
    assert concept_points(reader) == concept_points(expected[1])
    n, packed = merged.outcomes.streams[0]
    assert n == 239 and packed.nbytes == 30  # 240 rows, one label missing: 1 bit per row


def test_error_tally_replays_equal_buckets_extremes_and_sum() -> None:
    rng = np.random.default_rng(0)
    values = np.abs(load_diabetes().target - load_diabetes().target.mean())
    a, b = ErrorTally(ERROR_BUCKETS), ErrorTally(ERROR_BUCKETS)
    for v in values.tolist():
        (a if rng.random() < 0.3 else b).record(v, {"ml.segment": "s"})
    a.merge(b)
    (seg, replayed), = a.values()
    again = ErrorTally(ERROR_BUCKETS)
    for v in replayed:
        again.record(v, {"ml.segment": seg})
    assert np.array_equal(again.per[seg][0], a.per[seg][0])  # bucket counts
    assert min(replayed) == values.min() and max(replayed) == values.max()
    assert abs(sum(replayed) - values.sum()) <= 1e-9 * values.sum()


def test_outcome_states_that_read_the_output_differently_are_refused() -> None:
    proba, labels = OutcomeState(), OutcomeState()
    proba.settled, labels.settled = True, False
    with pytest.raises(ValueError, match="read the model's output differently"):
        proba.merge(labels)
    regression, classification = OutcomeState(), OutcomeState()
    regression.task, classification.task = "regression", "classification"
    with pytest.raises(ValueError, match="different tasks"):
        regression.merge(classification)


def test_a_missing_labels_column_names_the_partition() -> None:
    batch, reference, predict = classification_case()
    spec = ScoringSpec.of(monitor_of(reference)[0], predict, labels="diagnosis")
    with pytest.raises(PartitionError, match="partition 2: no labels column 'diagnosis'"):
        score_partition(batch.drop(columns=["diagnosis"]), spec, 2)
    with pytest.raises(ValueError, match="also a feature"):
        ScoringSpec.of(monitor_of(reference)[0], predict, features=["diagnosis"],
                       labels="diagnosis")
