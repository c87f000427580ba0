"""The challenger's CPU budget: a shadow takes at most ``max_share`` of the champion's time.

A challenger runs on a worker thread of the caller's process, so every millisecond of Python it
runs while a champion call is running is a millisecond that call waits for the GIL (on a
saturated server: the champion's latency grows by the challenger's share of the time).
:class:`CpuBudget` caps that share with a token bucket of CPU seconds: a credit refilled at
``max_share`` seconds per second of wall time, holding at most ``max_share * window_s`` (the
burst a quiet server may spend at once).

After each job the worker measures the CPU time its thread used (``time.thread_time``: the
challenger, its monitor and the comparison; time spent waiting, sleeping or in I/O costs
nothing). The job is charged that time when it competed with the champion: a champion call
was running when it started or ended, or one started meanwhile. A job run while the champion
was idle costs the caller nothing and is not charged: paced traffic, whose challenger work fits
between requests, is never throttled and every pair is compared. (A request that waits for the
GIL before its call has started is not seen: a lightly loaded server whose challenger is far
slower than its champion may be throttled later than it should.) While the credit is negative
the worker rests (sleeps, holding no GIL) until it is back at zero; the jobs waiting are
discarded and the callers drop the pairs they would have queued (counted as
``ml.reason="over_budget"``) instead of copying their inputs, except one that waits for the
worker's return (so that it finds work without polling: each wake-up costs the caller a GIL
hand-over).

Over any stretch of ``T`` seconds the workers therefore spend at most
``max_share * (T + window_s)`` CPU seconds (plus one job each) competing with the champion: on a
saturated server, about ``max_share`` of its time.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

__all__ = ["CpuBudget", "DEFAULT_MAX_SHARE", "WINDOW_S", "check_max_share"]

#: ``shadow(max_share=...)`` by default: 3% of a core (its mean cost to a saturated champion, with
#: the GIL hand-overs around each job, measured at about 5-8%: benchmarks/versions.py).
DEFAULT_MAX_SHARE = 0.03

#: Seconds of credit the bucket holds at most (its burst is ``max_share * WINDOW_S``).
WINDOW_S = 1.0

#: A deficit smaller than this (CPU seconds) is rounding, not a reason to rest.
_EPSILON_S = 1e-9


def check_max_share(max_share: float | None) -> float | None:
    """``max_share`` validated: ``None`` (no budget) or a number in (0, 1].

    Raises:
        TypeError: Not a number.
        ValueError: Not finite, or outside (0, 1].
    """
    if max_share is None:
        return None
    if isinstance(max_share, bool) or not isinstance(max_share, (int, float)):
        raise TypeError(f"max_share must be a number in (0, 1] or None, got {max_share!r}")
    share = float(max_share)
    if not math.isfinite(share) or not 0.0 < share <= 1.0:
        raise ValueError(f"max_share must be within (0, 1] (the share of one CPU the "
                         f"challenger may use; None for no limit), got {max_share!r}")
    return share


class CpuBudget:
    """A token bucket of CPU seconds shared by the workers of one shadow pair.

    Args:
        max_share: CPU seconds the workers may use per second of wall time, in (0, 1].
        window_s: Seconds of refill the bucket holds at most (the burst).
        clock: Monotonic clock in seconds (``time.perf_counter``; tests pass a fake one).

    Attributes:
        max_share: The share.
        burst_s: Credit the bucket holds at most (``max_share * window_s``).
        charged_s: CPU seconds charged since start (jobs that competed with the champion).
        free_s: CPU seconds of jobs run while the champion was idle (not charged).
        resume_at: Clock time until which the workers rest (callers drop meanwhile).
        in_flight: One entry per champion call running (:meth:`call_started` and
            :meth:`call_ended`: list operations are atomic, no lock on the caller's path).
        last_call: Clock time the latest champion call started.
    """

    def __init__(self, max_share: float, window_s: float = WINDOW_S,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        share = check_max_share(max_share)
        if share is None:
            raise ValueError("a CpuBudget needs a max_share")
        if not window_s > 0:
            raise ValueError(f"window_s must be > 0, got {window_s!r}")
        self.max_share = share
        self.burst_s = share * float(window_s)
        self.charged_s = 0.0
        self.free_s = 0.0
        self.resume_at = -math.inf
        self.in_flight: list[None] = []
        self.last_call = -math.inf
        self._clock = clock
        self._credit = self.burst_s
        self._stamp = clock()
        self._lock = threading.Lock()

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            self._credit = min(self.burst_s, self._credit + (now - self._stamp) * self.max_share)
            self._stamp = now

    def charge(self, cpu_s: float) -> float:
        """Charge ``cpu_s`` CPU seconds a job used; returns the seconds to rest (0: none)."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            used = max(0.0, float(cpu_s))
            self._credit -= used
            self.charged_s += used
            if self._credit >= -_EPSILON_S:
                return 0.0
            rest = -self._credit / self.max_share
            self.resume_at = now + rest
            return rest

    def now(self) -> float:
        """The budget's clock."""
        return self._clock()

    def call_started(self) -> None:
        """A champion call starts: the challenger's work now competes with it."""
        self.in_flight.append(None)
        self.last_call = self._clock()

    def call_ended(self) -> None:
        """The champion call that :meth:`call_started` announced has returned or raised."""
        self.in_flight.pop()

    def contended(self, since: float) -> bool:
        """Whether a champion call is running, or one started at or after ``since``."""
        return bool(self.in_flight) or self.last_call >= since

    def settle(self, cpu_s: float, since: float, busy_at_start: bool = False) -> float:
        """Account for a job that started at clock time ``since`` and used ``cpu_s``: charged
        when it competed with the champion (a call ran when it started, ``busy_at_start``, or
        runs now or started since: :meth:`contended`), free otherwise. Returns the seconds to
        rest."""
        if busy_at_start or self.contended(since):
            return self.charge(cpu_s)
        with self._lock:
            self.free_s += max(0.0, float(cpu_s))
        return 0.0

    def rest_s(self) -> float:
        """Seconds a worker must rest before its next job (0: it may run one now)."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            return 0.0 if self._credit >= -_EPSILON_S else -self._credit / self.max_share

    def resting(self, now: float) -> bool:
        """Whether the workers rest at clock time ``now`` (the caller's cheap check)."""
        return now < self.resume_at
