"""Rate-limited logging for failures inside otel_ml (never raised to the caller)."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

__all__ = ["internal_error", "log_limited", "logger", "renew_locks_after_fork"]

logger = logging.getLogger("otel_ml")

_INTERVAL_S = 60.0
_MAX_KEYS = 1024


class _RateLimiter:
    """Logs each cause at most once per interval; counts every occurrence by cause."""

    def __init__(self, interval_s: float = _INTERVAL_S) -> None:
        self._interval = interval_s
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def renew_lock(self) -> None:
        """A new lock (in a forked child, in case a parent thread held the old one)."""
        self._lock = threading.Lock()

    def __call__(self, cause: str, msg: str, *args: object, level: int = logging.WARNING,
                 exc_info: bool = False, count: bool = True) -> None:
        """Log ``msg`` unless ``cause`` was logged within the interval; ``count=False`` for
        what is not a failure inside otel_ml (the user's data, a late label): logged, not
        counted in ``ml.telemetry.errors``."""
        now = time.monotonic()
        with self._lock:
            if count and (len(self.counts) < _MAX_KEYS or cause in self.counts):
                self.counts[cause] += 1
            last = self._last.get(cause)
            if last is not None and now - last < self._interval:
                return
            if len(self._last) >= _MAX_KEYS:
                self._last.clear()
            self._last[cause] = now
        try:
            logger.log(level, msg, *args, exc_info=exc_info)
        except Exception:  # a broken handler must not break the host either
            pass


#: The process-wide limiter; ``counts`` feeds the ``ml.telemetry.errors`` metric.
log_limited = _RateLimiter()


def internal_error(cause: str, exc: BaseException | None = None) -> None:
    """Record a failure inside otel_ml: count it, log it once per interval with its traceback."""
    log_limited(cause, "otel_ml: %s failed (%s); telemetry for this call is incomplete",
                cause, type(exc).__qualname__ if exc else "error", exc_info=exc is not None)


def renew_locks_after_fork() -> None:
    """In a forked child: a new lock for the limiter, in case a parent thread held it."""
    log_limited.renew_lock()
