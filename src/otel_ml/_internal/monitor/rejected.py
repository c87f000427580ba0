"""Requests refused before predict (auth failure, rate limit, invalid payload), by reason."""

from __future__ import annotations

from collections.abc import Mapping

from otel_ml._internal.core.caps import CappedValues
from otel_ml._internal.core.log import internal_error
from otel_ml._internal.core.state import Switch
from otel_ml.contract import Attr

__all__ = ["MAX_REASONS", "RejectedRequests"]

#: Distinct reasons reported (then ``__other__``).
MAX_REASONS = 32


class RejectedRequests:
    """Counts ``ml.model.requests.rejected`` by ``ml.reason``.

    Args:
        attributes: The model's attributes (name, version).
        counter: The ``ml.model.requests.rejected`` counter.
        switch: The monitor's on/off switch.
    """

    def __init__(self, attributes: Mapping[str, str], counter: object, switch: Switch) -> None:
        self._attributes = dict(attributes)
        self._counter = counter
        self._switch = switch
        self._reasons = CappedValues("rejection reason", MAX_REASONS)
        self._attrs: dict[str, dict[str, str]] = {}

    def record(self, reason: str) -> None:
        """Count one refused request (never raises)."""
        if self._switch.off:
            return
        try:
            value = self._reasons(str(reason))
            attrs = self._attrs.get(value)
            if attrs is None:
                attrs = self._attrs.setdefault(value, {**self._attributes, Attr.REASON: value})
            self._counter.add(1, attrs)
        except Exception as exc:
            internal_error("outcomes.rejected", exc)
