"""One line when the collector cannot be reached, instead of the exporters' retry messages.

The OTLP exporters log every failed attempt ("Transient error StatusCode.UNAVAILABLE ...,
retrying in 0.87s", then "Failed to export ..."), 3 to 5 lines per export and signal while no
collector runs. For the providers :func:`otel_ml.configure` builds, :class:`ExportFailureLog`
turns the first of them into one ``otel_ml`` warning that names the endpoint, and logs the
later ones at DEBUG. Failures that are not about reaching the collector (a rejected token, an
invalid request) pass through unchanged: those need the user's attention.
"""

from __future__ import annotations

import logging
import threading

__all__ = ["EXPORTER_LOGGERS", "ExportFailureLog"]

logger = logging.getLogger("otel_ml")

#: The loggers of the OTLP exporters (gRPC; HTTP per signal and their shared client).
EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.common.http",
)

#: Messages about a collector that does not answer (retries, giving up, aborted retries).
_UNREACHABLE = (
    "Transient error",
    "Failed to export %s batch due to timeout",
    "Shutdown in progress, aborting retry",
    "Exporter already shutdown",
    "OTLP client already shutdown",
)
#: gRPC codes of a "Failed to export" record that mean the collector did not answer.
_UNREACHABLE_CODES = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED")


def _is_unreachable(record: logging.LogRecord) -> bool:
    msg = str(record.msg)
    if msg.startswith(_UNREACHABLE):
        return True
    if msg.startswith("Failed to export %s to %s, error code"):  # gRPC, after the last retry
        args = record.args if isinstance(record.args, tuple) else ()
        return len(args) > 2 and str(args[2]).rsplit(".", 1)[-1] in _UNREACHABLE_CODES
    return False


class ExportFailureLog(logging.Filter):
    """A filter on the exporters' loggers: the first "cannot reach" record becomes one line.

    Args:
        endpoint: The collector's address as the user gave it (for the message).

    Attributes:
        failed: Set at the first failed attempt to reach the collector (``configure``'s exit
            handler stops waiting for an export that cannot succeed).
    """

    def __init__(self, endpoint: str) -> None:
        super().__init__("otel_ml.export")
        self.endpoint = endpoint
        self.failed = threading.Event()
        self._said = False
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the first unreachable-collector record with one line; demote the rest."""
        if not _is_unreachable(record):
            return True
        self.failed.set()
        with self._lock:
            first, self._said = not self._said, True
        if first:
            try:
                logger.warning("otel_ml: cannot reach the OTLP collector at %s; telemetry is "
                               "dropped until it answers (details at DEBUG level)", self.endpoint)
            except Exception:  # a broken handler must not break the exporter thread
                pass
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)

    def install(self) -> None:
        """Attach to every exporter logger, ahead of their own filters."""
        for name in EXPORTER_LOGGERS:
            target = logging.getLogger(name)
            others = [f for f in target.filters if not isinstance(f, ExportFailureLog)]
            for f in list(target.filters):
                target.removeFilter(f)
            target.addFilter(self)
            for f in others:
                target.addFilter(f)

    def uninstall(self) -> None:
        """Detach from the exporter loggers."""
        for name in EXPORTER_LOGGERS:
            logging.getLogger(name).removeFilter(self)
