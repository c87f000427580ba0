"""The metric contract follows the OpenTelemetry conventions and maps to unique Prometheus names."""

from __future__ import annotations

import re

import pytest

from otel_ml import contract
from otel_ml.contract import Attr, Kind, prometheus_label, prometheus_name

SPECS = list(contract.METRICS.values())
# UCUM units used by the contract: base units, or a curly-brace annotation (no Prometheus suffix).
UCUM = {"s", "ms", "By", "1"}
_NAME = re.compile(r"^ml(\.[a-z][a-z0-9_]*)+$")
_ATTR = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_name_is_dotted_lowercase_in_the_ml_namespace(spec):
    assert _NAME.match(spec.name), spec.name
    assert "total" not in spec.name.split(".") and not spec.name.endswith("_total")
    assert not re.search(r"(^|[._])(count|sum|bucket)$", spec.name), spec.name


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_unit_is_ucum(spec):
    assert spec.unit in UCUM or re.fullmatch(r"\{[a-z_]+\}", spec.unit), spec.unit


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_durations_and_times_are_in_seconds(spec):
    if spec.name.endswith((".duration", ".time")):
        assert spec.unit == "s", spec.name
    assert spec.unit != "ms", f"{spec.name}: use seconds"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_no_gauge_uses_unit_one(spec):
    """A gauge with unit 1 gets ``_ratio`` through the Collector but not through the Python
    Prometheus exporter: one metric would have two names."""
    if spec.kind is Kind.OBSERVABLE_GAUGE:
        assert spec.unit != "1", spec.name


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_histograms_have_explicit_increasing_buckets(spec):
    if spec.kind is Kind.HISTOGRAM:
        assert spec.buckets, f"{spec.name}: the SDK default buckets are millisecond-shaped"
        assert list(spec.buckets) == sorted(set(spec.buckets)), spec.name
        assert spec.buckets[0] >= 0
    else:
        assert spec.buckets is None, spec.name


def test_latency_buckets_are_in_seconds():
    for name in ("ml.model.predict.duration", "ml.pipeline.stage.duration"):
        buckets = contract.by_name(name).buckets
        assert buckets[0] <= 0.001 and 10 <= buckets[-1] <= 120


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_attributes_are_known_dotted_keys(spec):
    keys = {v for k, v in vars(Attr).items() if k.isupper()}
    assert len(spec.attributes) == len(set(spec.attributes)), spec.name
    for attr in spec.attributes:
        assert attr in keys, f"{spec.name}: attribute {attr} is not in contract.Attr"
        assert _ATTR.match(attr), attr
    # Span-only attributes never label a metric (cardinality, raw data).
    assert not set(spec.attributes) & {Attr.PREDICTION_ID, Attr.BATCH_SIZE, Attr.OUTCOME,
                                       Attr.ROWS_IN, Attr.ROWS_OUT}, spec.name


def test_prometheus_names_are_unique():
    series = [s for spec in SPECS for s in spec.prometheus_series]
    assert len(series) == len(set(series))
    assert not set(series) & set(contract.EXTERNAL_METRICS)


def test_label_names_are_unique_per_metric_and_valid():
    for spec in SPECS:
        labels = [prometheus_label(a) for a in spec.attributes]
        assert len(labels) == len(set(labels)), spec.name
        assert all(re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", lbl) for lbl in labels)
        assert not {"job", "instance", "le"} & set(labels), spec.name


@pytest.mark.parametrize("name, unit, kind, expected", [
    ("ml.model.predict.duration", "s", Kind.HISTOGRAM, "ml_model_predict_duration_seconds"),
    ("ml.model.predictions", "{prediction}", Kind.OBSERVABLE_COUNTER, "ml_model_predictions_total"),
    ("ml.model.predict.cpu.time", "s", Kind.OBSERVABLE_COUNTER,
     "ml_model_predict_cpu_time_seconds_total"),
    ("process.memory.usage", "By", Kind.OBSERVABLE_GAUGE, "process_memory_usage_bytes"),
    ("x.y", "1", Kind.OBSERVABLE_GAUGE, "x_y_ratio"),
    ("x.seconds", "s", Kind.OBSERVABLE_GAUGE, "x_seconds"),
    ("ml.feature.drift.score", "{score}", Kind.OBSERVABLE_GAUGE, "ml_feature_drift_score"),
])
def test_prometheus_name_matches_the_collector_rules(name, unit, kind, expected):
    assert prometheus_name(name, unit, kind) == expected


def test_external_metrics_follow_the_same_rules():
    assert prometheus_name("process.cpu.time", "s", Kind.COUNTER) in contract.EXTERNAL_METRICS
    assert prometheus_name("process.memory.usage", "By", Kind.OBSERVABLE_GAUGE) in (
        contract.EXTERNAL_METRICS)


def test_by_name_names_the_unknown_metric():
    with pytest.raises(KeyError, match="ml.nope"):
        contract.by_name("ml.nope")


def test_special_values_do_not_collide():
    values = [contract.OTHER, contract.PREDICTION_FEATURE, contract.INPUT_FEATURE,
              contract.NO_SEGMENT, contract.ALL_SEGMENTS]
    assert len(values) == len(set(values))
    assert len(contract.Check.ALL) == len(set(contract.Check.ALL))


def test_batch_size_ranges_partition_every_row_count():
    """Each row count falls in exactly the range its label names; the ranges are contiguous."""

    def bounds(label: str) -> tuple[int, float]:
        if label.endswith("+"):
            return int(label[:-1]), float("inf")
        lo, _, hi = label.partition("-")
        return int(lo), int(hi or lo)

    spans = [bounds(label) for label in contract.BATCH_SIZE_RANGES]
    assert spans[0] == (0, 0) and spans[-1][1] == float("inf")
    assert all(hi + 1 == lo for (_, hi), (lo, _) in zip(spans, spans[1:]))
    for rows in [*range(70_000), 10**9]:
        lo, hi = spans[contract.batch_size_range(rows)]
        assert lo <= rows <= hi, rows
