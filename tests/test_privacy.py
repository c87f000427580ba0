"""Privacy: by default no raw feature value, prediction or label leaves the process.

Distinctive values go through every path (decorated predict, wrap_model, observe, stages, labels
joined later and in bulk, bad input that gets logged, collection), then everything exported is
scanned: span names, attributes, events and status; every metric point's attributes, and its
exemplars' filtered attributes and values; every log record (at DEBUG, every logger). Metric
values themselves are aggregates over several rows, chosen so no aggregate equals a raw value.

Opt-in payload capture (``capture_payloads``, ``redact``) samples, drops the redacted fields and
is documented.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import otel_ml
from otel_ml.contract import Attr

pd = pytest.importorskip("pandas")

ROOT = Path(__file__).resolve().parents[1]

# Raw values fed in, and the text each must never appear as.
SECRET_NUMBER = 987654.321
SECRET_CATEGORY = "SECRET-CATEGORY-XYZ"
SECRET_STRING = "SECRET-STRING-IN-NUMERIC"
SECRET_PREDICTION = 424242.4242
SECRET_LABEL = 313131.5
SECRET_ID_FEATURE = "SECRET-CUSTOMER-77"
NEEDLES = ("987654", "SECRET-CATEGORY", "SECRET-STRING", "424242", "313131", "SECRET-CUSTOMER")
RAW_NUMBERS = (SECRET_NUMBER, SECRET_PREDICTION, SECRET_LABEL)

REFERENCE = otel_ml.Reference.from_data(pd.DataFrame({
    "income": np.linspace(1000.0, 90000.0, 200),
    "age": np.linspace(18.0, 90.0, 200),
    "colour": ["red", "green", "blue", "grey"] * 50,
}))


def frame(rows: int = 4) -> Any:
    """A batch where the secrets sit among ordinary rows (so no aggregate equals them)."""
    return pd.DataFrame({
        "income": [SECRET_NUMBER] + [50000.0 + i for i in range(rows - 1)],
        "age": [SECRET_STRING] + [40.0 + i for i in range(rows - 1)],
        "colour": [SECRET_CATEGORY] + ["red"] * (rows - 1),
        "customer": [SECRET_ID_FEATURE] * rows,  # not a feature: an extra column
    })


def regression(X: Any) -> np.ndarray:
    out = np.full(len(X), 100.0)
    out[0] = SECRET_PREDICTION
    return out


class Model:
    def predict(self, X: Any) -> np.ndarray:
        return regression(X)


def text_of(value: Any) -> str:
    return repr(value) + " " + str(value)


def span_texts(exporter: Any) -> list[str]:
    out = []
    for span in exporter.get_finished_spans():
        parts = [span.name, text_of(dict(span.attributes or {})),
                 text_of(span.status.description)]
        for event in span.events:
            parts += [event.name, text_of(dict(event.attributes or {}))]
        for link in span.links:
            parts.append(text_of(dict(link.attributes or {})))
        out.append(" ".join(parts))
    return out


def metric_texts(reader: Any) -> tuple[list[str], list[float]]:
    texts, exemplar_values = [], []
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        texts.append(text_of(dict(rm.resource.attributes)))
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for p in metric.data.data_points:
                    texts.append(metric.name + " " + text_of(dict(p.attributes)))
                    for ex in getattr(p, "exemplars", None) or ():
                        texts.append(text_of(dict(ex.filtered_attributes or {})))
                        exemplar_values.append(ex.value)
    return texts, exemplar_values


@pytest.fixture
def all_logs(caplog):
    caplog.set_level(logging.DEBUG)  # root: every logger, every level
    logging.getLogger("otel_ml").setLevel(logging.DEBUG)
    yield caplog
    logging.getLogger("otel_ml").setLevel(logging.NOTSET)


def exercise(providers: dict, **options: Any) -> list[otel_ml.ModelMonitor]:
    """Every path raw values can take."""
    decorated = otel_ml.instrument_model(name="private", version="1", reference=REFERENCE,
                                         task="regression", **options, **providers)(regression)
    monitor = decorated.monitor
    pids = []
    for _ in range(3):
        decorated(frame())
        pids.append(None)

    @otel_ml.instrument_model(name="private-ids", task="regression", **providers)
    def with_id(X: Any, prediction_id: str | None = None) -> np.ndarray:
        pids.append(otel_ml.current_prediction_id())
        with otel_ml.trace_stage("features", **providers):
            return regression(X)

    for i in range(4):
        with_id(frame(), prediction_id=f"req-{i}")
    with_id.monitor.record_outcome("req-0", np.array([SECRET_LABEL, 1.0, 2.0, 3.0]))
    with_id.monitor.record_outcome("unknown-id", SECRET_LABEL)
    with_id.monitor.record_outcomes(np.array([SECRET_LABEL, 10.0, 20.0]),
                                    np.array([SECRET_PREDICTION, 11.0, 19.0]))
    wrapped = otel_ml.wrap_model(Model(), name="private-wrapped", reference=REFERENCE,
                                 **options, **providers)
    wrapped.predict(frame())
    monitor.observe(frame(), regression(frame()))
    decorated([[SECRET_NUMBER, SECRET_STRING]])  # wrong width and a string: logged, counted
    decorated({"income": [SECRET_NUMBER, 1.0], "colour": [SECRET_CATEGORY, "red"]})
    for m in (monitor, with_id.monitor, wrapped.monitor):
        m.flush()
        m.drift_report()
        m.performance_report()
    return [monitor, with_id.monitor, wrapped.monitor]


def test_no_raw_value_is_exported_or_logged_by_default(providers, span_exporter, metric_reader,
                                                        all_logs):
    exercise(providers)
    spans = span_texts(span_exporter)
    metrics, exemplar_values = metric_texts(metric_reader)
    logs = [r.getMessage() + " " + (r.exc_text or "") for r in all_logs.records]
    assert spans and metrics  # there was something to scan
    assert any("payload" in t for t in spans) is False
    for where, texts in (("span", spans), ("metric", metrics), ("log", logs)):
        for needle in NEEDLES:
            leaks = [t for t in texts if needle in t]
            assert not leaks, f"{needle!r} leaked into a {where}: {leaks[0][:300]}"
    for value in exemplar_values:
        assert all(not np.isclose(value, raw) for raw in RAW_NUMBERS), value


def test_payload_capture_is_opt_in_sampled_and_redacted(providers, span_exporter):
    random.seed(1234)
    decorated = otel_ml.instrument_model(name="payloads", reference=REFERENCE,
                                         capture_payloads=0.25, redact=["income"],
                                         **providers)(regression)
    calls = 800
    for _ in range(calls):
        decorated(frame())
    spans = span_exporter.get_finished_spans()
    captured = [s for s in spans if Attr.PAYLOAD_INPUTS in s.attributes]
    # Sampled: about a quarter (binomial, n=800, p=.25: sd ~12; bounds at > 5 sd).
    assert 140 < len(captured) < 260, len(captured)
    for span in captured:
        inputs = span.attributes[Attr.PAYLOAD_INPUTS]
        assert SECRET_CATEGORY in inputs  # captured as asked...
        assert "income" not in inputs and "987654" not in inputs  # ...except what is redacted
        assert "424242" in span.attributes[Attr.PAYLOAD_PREDICTIONS]
    assert all(Attr.PAYLOAD_PREDICTIONS not in s.attributes for s in spans
               if s not in captured)


def test_payload_capture_is_documented():
    text = (ROOT / "docs" / "configuration.md").read_text()
    assert "capture_payloads" in text and "redact" in text
    assert "OTEL_ML_CAPTURE_PAYLOADS" in text
