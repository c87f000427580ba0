"""Exceptions otel_ml raises at setup or from its offline tools (never from a monitored call)."""

from otel_ml._internal.data.files import DataFileError
from otel_ml._internal.data.inputs import InputError
from otel_ml._internal.reference.codec import InvalidReferenceError

__all__ = ["DataFileError", "InputError", "InvalidReferenceError"]
