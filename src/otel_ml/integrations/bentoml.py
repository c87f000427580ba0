"""BentoML: a monitor class that feeds ``bentoml.monitor(...)`` records into otel_ml.

Configure it in BentoML's configuration (``BENTOML_CONFIG``)::

    monitoring:
      enabled: true
      type: otel_ml.integrations.bentoml.OtelMLMonitor
      options:
        model_name: churn          # default: the monitor's name
        model_version: 2.1.0
        reference: reference.json  # a profile saved with Reference.save (drift)

and log as BentoML documents, unchanged::

    with bentoml.monitor("churn") as mon:
        mon.log_batch(ages, name="age", role="feature", data_type="numerical")
        mon.log_batch(predictions, name="churned", role="prediction", data_type="categorical")

Each record (one ``with`` block) maps to otel_ml:

| BentoML ``role`` | otel_ml |
|---|---|
| ``feature`` columns | the feature statistics, data quality and drift (``ModelMonitor.observe``) |
| ``prediction`` column | the prediction distribution and its drift (same call) |
| ``target`` with ``prediction`` in one record | labelled outcomes: performance (``record_outcomes``) |
| ``target`` with a ``prediction_id`` column | late labels joined to the predictions of instrumented calls with those ids (``record_outcome``) |

A column's role is taken from every ``log`` call (BentoML fixes its schema at the first record;
here a later record, e.g. a feedback endpoint's targets, keeps its roles too). Columns are read
as otel_ml reads any dict of columns (strings are categorical; a reference profile fixes each
feature's kind). Monitors of one model name and version share one ``ModelMonitor``. Metrics leave through the global OpenTelemetry SDK when the process has
one, else through providers :func:`otel_ml.configure` makes from the ``OTEL_*`` variables
(not installed globally: BentoML's own tracing is left alone). Never raises into the service:
a record that cannot be read is logged and counted.
"""

from __future__ import annotations

import collections
import logging
import threading
from typing import Any

try:
    from bentoml.monitoring import MonitorBase
except ImportError as exc:  # a setup error: say what to install
    raise ImportError("otel_ml.integrations.bentoml needs BentoML: "
                      "pip install 'otel-ml[bentoml]'") from exc
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider

from otel_ml._internal.core.config import configure
from otel_ml._internal.core.log import internal_error
from otel_ml._internal.instrument.model_monitor import ModelMonitor

__all__ = ["OtelMLMonitor"]

_logger = logging.getLogger("otel_ml.integrations.bentoml")

#: Role of a column holding the id of the prediction a target belongs to (BentoML logs roles
#: it does not know with a warning; ``request_id`` is a column BentoML reserves).
ID_ROLE = "prediction_id"

#: Options BentoML's configuration gives every monitor (its default monitor's).
_BENTOML_DEFAULT_OPTIONS = ("log_config_file", "log_path")

_lock = threading.Lock()
#: One ModelMonitor per (model name, version) in this process.
_MONITORS: dict[tuple[str, str], ModelMonitor] = {}


class OtelMLMonitor(MonitorBase):  # type: ignore[misc]
    """A BentoML monitor whose records feed an :class:`otel_ml.ModelMonitor`.

    Args:
        name: The monitor's name (``bentoml.monitor(name)``).
        model_name: ``ml.model.name`` (default: ``name``).
        model_version: ``ml.model.version``.
        reference: Path of a reference profile.
        **options: Further :class:`otel_ml.ModelMonitor` options (``task=``, ``segment_by=``).
    """

    def __init__(self, name: str, model_name: str | None = None,
                 model_version: str = "unknown", reference: str | None = None,
                 **options: Any) -> None:
        super().__init__(name)
        for option in _BENTOML_DEFAULT_OPTIONS:  # merged in from BentoML's default monitor
            options.pop(option, None)
        self.monitor: ModelMonitor | None = None
        try:
            self.monitor = _monitor_for(model_name or name, model_version, reference, options,
                                        service_name=f"bentoml-{name}")
        except Exception as exc:  # never into the service: its records are not recorded
            internal_error("bentoml", exc)
            _logger.warning("otel_ml: BentoML monitor %r records nothing: %s", name, exc)
        self._kinds: dict[str, str] = {}

    def log(self, data: Any, name: str, role: str, data_type: str) -> None:
        """BentoML's ``log``; the column's role is remembered for every record."""
        self._kinds[name] = role
        super().log(data, name, role, data_type)

    def export_schema(self, columns_schema: dict[str, dict[str, str]]) -> None:
        """BentoML's schema of the first record: the roles are already known from ``log``."""
        for name, column in columns_schema.items():
            self._kinds.setdefault(name, column.get("role", ""))

    def export_data(self, datas: dict[str, collections.deque[Any]]) -> None:
        """One record: features and prediction to the statistics, targets to the outcomes."""
        try:
            if self.monitor is not None:
                self._export(datas)
        except Exception as exc:  # never into the service
            internal_error("bentoml", exc)
            _logger.warning("otel_ml: a BentoML record of %r was not recorded: %s", self.name, exc)

    def _export(self, datas: dict[str, collections.deque[Any]]) -> None:
        monitor = self.monitor
        assert monitor is not None
        roles: dict[str, dict[str, list[Any]]] = collections.defaultdict(dict)
        for column, values in datas.items():
            roles[self._kinds.get(column, "")][column] = list(values)
        features = roles.get("feature", {})
        predictions = _single(roles.get("prediction"))
        targets = _single(roles.get("target"))
        ids = _single(roles.get(ID_ROLE))
        # A feedback record (targets with the predictions they belong to, no features) does
        # not count those predictions a second time.
        if features or (predictions is not None and targets is None):
            monitor.observe(features or None, predictions)
        if targets is not None:
            if predictions is not None:
                monitor.record_outcomes(targets, predictions)
            elif ids is not None:
                for prediction_id, actual in zip(ids, targets):
                    monitor.record_outcome(str(prediction_id), actual)


def _monitor_for(model_name: str, model_version: str, reference: str | None, options: dict,
                 service_name: str) -> ModelMonitor:
    """The process's one ModelMonitor of this model name and version."""
    key = (model_name, model_version)
    with _lock:
        monitor = _MONITORS.get(key)
        if monitor is None:
            providers: dict[str, Any] = {}
            if "meter_provider" not in options and not isinstance(metrics.get_meter_provider(),
                                                                 MeterProvider):
                telemetry = configure(service_name=service_name, set_global=False, force=True)
                providers = {"tracer_provider": telemetry.tracer_provider,
                             "meter_provider": telemetry.meter_provider}
            monitor = _MONITORS[key] = ModelMonitor(model_name, model_version,
                                                    reference=reference, **options, **providers)
        return monitor


def _single(columns: dict[str, list[Any]] | None) -> list[Any] | None:
    """The one column of a role (the first, when several were logged)."""
    if not columns:
        return None
    return next(iter(columns.values()))
