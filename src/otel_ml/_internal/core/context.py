"""Per-call context: which predict call is in progress (contextvars: threads and asyncio safe)."""

from __future__ import annotations

import contextvars
from typing import Any

__all__ = ["CURRENT_CALL", "STREAMED", "current_prediction_id"]

#: The ``Call`` (instrument.recorder) of the innermost instrumented predict call in progress, if any.
CURRENT_CALL: contextvars.ContextVar[Any] = contextvars.ContextVar("otel_ml_call", default=None)

#: Passed as the result of a generator call whose items were observed as they were yielded.
STREAMED = object()


def current_prediction_id() -> str | None:
    """The prediction id of the instrumented predict call in progress.

    It is the id the caller passed (the monitor's ``prediction_id_arg`` keyword argument,
    recorded on the span as ``ml.prediction.id``), or else the call's span id as 16 hex digits
    (the span's own id, not written again as an attribute). Pass it to
    :meth:`otel_ml.ModelMonitor.record_outcome` when the label arrives.

    Returns:
        The id, or ``None`` outside an instrumented call.
    """
    call = CURRENT_CALL.get()
    return None if call is None else call.prediction_id
