"""Deprecated: import ``DataFileError`` from :mod:`otel_ml.errors` (kept for one release)."""

from otel_ml._deprecated import forwarder

__getattr__ = forwarder(__name__, {
    "DataFileError": ("otel_ml._internal.data.files", "otel_ml.errors.DataFileError"),
    "read_table": ("otel_ml._internal.data.files", "the otel-ml CLI (read_table is internal)"),
})
