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
