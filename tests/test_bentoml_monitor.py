"""OtelMLMonitor in process (BentoML's MonitorBase protocol: start_record, log, stop_record),
with the SDK's in-memory reader: roles map to statistics, outcomes and the id join."""

from __future__ import annotations

import pytest
from conftest import points

bentoml_integration = pytest.importorskip("otel_ml.integrations.bentoml")


def _record(monitor, columns: dict) -> None:
    monitor.start_record()
    for name, (role, values) in columns.items():
        monitor.log_batch(values, name=name, role=role, data_type="numerical")
    monitor.stop_record()


def test_roles_feed_statistics_outcomes_and_the_late_label_join(providers, metric_reader):
    mon = bentoml_integration.OtelMLMonitor("svc", model_name="bento-unit", model_version="1",
                                            log_path="ignored", **providers)
    _record(mon, {"x": ("feature", [1.0, 2.0, 3.0]), "y": ("prediction", [0, 1, 1])})
    _record(mon, {"y": ("prediction", [0, 1]), "label": ("target", [0, 0])})
    # A late label joined by id to a prediction an instrumented call made with that id.
    predict = mon.monitor.instrument_method(lambda x, prediction_id=None: [1], "predict")
    predict([[4.0]], prediction_id="r-1")
    _record(mon, {"id": ("prediction_id", ["r-1", "unknown-id"]), "label": ("target", [1, 0])})
    mon.monitor.flush()

    (_, rows), = points(metric_reader, "ml.drift.window.rows")
    assert rows == 4  # three logged rows and the instrumented call's one
    mean = {a["ml.feature.name"]: v for a, v in points(metric_reader, "ml.feature.mean")}
    assert mean["x"] == pytest.approx(2.5)
    outcomes = points(metric_reader, "ml.model.outcomes")
    assert sum(v for _, v in outcomes) == 3  # two with their predictions, one joined by id
    unmatched = points(metric_reader, "ml.model.outcomes.unmatched")
    assert sum(v for _, v in unmatched) == 1
    # Monitors of one model share its ModelMonitor; a bad option records nothing, quietly.
    assert bentoml_integration.OtelMLMonitor("other", model_name="bento-unit",
                                             model_version="1").monitor is mon.monitor
    broken = bentoml_integration.OtelMLMonitor("bad", model_name="bento-bad", no_such_option=1)
    assert broken.monitor is None
    _record(broken, {"x": ("feature", [1.0])})  # does not raise
