"""Deprecated: the prediction store's byte budget is the ``outcome_store_bytes`` argument of
:class:`otel_ml.ModelMonitor` (kept for one release)."""

from otel_ml._deprecated import forwarder

__getattr__ = forwarder(__name__, {
    "DEFAULT_STORE_BYTES": ("otel_ml._internal.monitor.settings",
                            "ModelMonitor(outcome_store_bytes=...)"),
})
