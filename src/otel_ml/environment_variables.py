"""Environment variables otel_ml reads. Each constant's name equals its value.

They are read when :func:`otel_ml.configure` runs or a :class:`otel_ml.ModelMonitor` is created,
never at import. The standard ``OTEL_*`` variables (``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_PROTOCOL``,
``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_EXPORTER_OTLP_CERTIFICATE``, ``OTEL_SDK_DISABLED``,
``OTEL_METRIC_EXPORT_INTERVAL``, ...) keep their specified meaning.
"""

OTEL_ML_DRIFT_WINDOW = "OTEL_ML_DRIFT_WINDOW"
"""Drift window in seconds. Default: ``3600``."""

OTEL_ML_CAPTURE_PAYLOADS = "OTEL_ML_CAPTURE_PAYLOADS"
"""Sample rate (0..1) of opt-in payload capture on spans. Default: ``0`` (never)."""

OTEL_ML_SYSTEM_METRICS = "OTEL_ML_SYSTEM_METRICS"
"""``false`` stops :func:`otel_ml.configure` from enabling process CPU/memory metrics. Default: ``true``."""

# Zero-code instrumentation (``opentelemetry-instrument``): read when an instrumentor's
# ``instrument()`` runs, never at import.

OTEL_ML_MODEL_NAME = "OTEL_ML_MODEL_NAME"
"""Model name of the models the instrumentors observe (``ml.model.name``), unless
:func:`otel_ml.set_model_info` names one. Default: the estimator's class name."""

OTEL_ML_MODEL_VERSION = "OTEL_ML_MODEL_VERSION"
"""Model version of the models the instrumentors observe (``ml.model.version``). Default:
``unknown``."""

OTEL_ML_REFERENCE = "OTEL_ML_REFERENCE"
"""Path of a reference profile (``Reference.save``) the instrumentors compare the inputs and
predictions with (drift). Default: none (statistics without drift)."""
