"""Shared fixtures: the SDK's own in-memory exporter and reader, passed explicitly."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_ml._internal.core.readout import read_points


@pytest.fixture
def span_exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def metric_reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def tracer_provider(span_exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = TracerProvider(resource=Resource.create({"service.name": "test"}))
    provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    yield provider
    provider.shutdown()


@pytest.fixture
def meter_provider(metric_reader: InMemoryMetricReader) -> Iterator[MeterProvider]:
    provider = MeterProvider(resource=Resource.create({"service.name": "test"}),
                             metric_readers=[metric_reader])
    yield provider
    provider.shutdown()


@pytest.fixture
def providers(tracer_provider: TracerProvider, meter_provider: MeterProvider) -> dict[str, Any]:
    """Keyword arguments for ModelMonitor/instrument_model/wrap_model/trace_stage."""
    return {"tracer_provider": tracer_provider, "meter_provider": meter_provider}


def collect(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    """Every metric the reader collects now: name -> data points (attributes as dicts)."""
    return read_points(reader)
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                out.setdefault(metric.name, []).extend(metric.data.data_points)
    return out


def points(reader: InMemoryMetricReader, name: str) -> list[tuple[dict[str, Any], Any]]:
    """``(attributes, value)`` for each point of ``name``; value is the sum/gauge value or,
    for histograms, the point itself."""
    result = []
    for point in collect(reader).get(name, []):
        value = point if hasattr(point, "bucket_counts") else point.value
        result.append((dict(point.attributes), value))
    return result
