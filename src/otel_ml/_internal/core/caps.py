"""Caps on user-supplied attribute values (the SDK does not cap cardinality)."""

from __future__ import annotations

import threading
import weakref

from otel_ml._internal.core.log import log_limited
from otel_ml.contract import OTHER

__all__ = ["CappedValues", "renew_locks_after_fork"]

_instances: weakref.WeakSet[CappedValues] = weakref.WeakSet()


class CappedValues:
    """Maps user values to attribute strings, keeping at most ``limit`` distinct ones.

    Values declared up front always pass; after ``limit`` distinct values every new one
    becomes :data:`otel_ml.contract.OTHER`, with one log line.

    Args:
        what: What the values are, for the log line (e.g. ``"segment"``).
        limit: Most distinct values kept.
        declared: Values always kept, counted in the limit.
        max_length: Longer strings are truncated.
    """

    def __init__(self, what: str, limit: int, declared: tuple[str, ...] = (),
                 max_length: int = 64) -> None:
        if limit < 1:
            raise ValueError(f"the {what} cap must be at least 1, got {limit}")
        self.what = what
        self.limit = max(limit, len(declared))
        self._max_length = max_length
        self._known: dict[object, str] = {}
        self._lock = threading.Lock()
        _instances.add(self)
        self._closed = bool(declared)
        for value in declared:
            self._known[value] = str(value)[:max_length]

    def __len__(self) -> int:
        return len(self._known)

    def __call__(self, value: object) -> str:
        try:
            return self._known[value]
        except KeyError:
            pass
        except TypeError:  # unhashable
            value = repr(value)
            if value in self._known:
                return self._known[value]
        with self._lock:
            if value in self._known:
                return self._known[value]
            if self._closed or len(self._known) >= self.limit:
                log_limited(f"cap:{self.what}", "otel_ml: more than %d distinct %s values; "
                            "new ones are reported as %r", self.limit, self.what, OTHER)
                return OTHER
            text = str(value)[: self._max_length]
            self._known[value] = text
            return text


def renew_locks_after_fork() -> None:
    """In a forked child: new locks, in case a parent thread held one at the fork."""
    for capped in list(_instances):
        capped._lock = threading.Lock()
