"""A bounded background executor for shadow work: never blocks, never grows.

``submit`` appends a job to a deque without waiting and without waking anyone: when
``max_queue`` jobs wait already the job is refused (the caller counts it as dropped; with
several caller threads the queue may exceed the bound by at most their number). Worker threads
(daemons, started at the first submit and again in a forked child) poll the deque: every
millisecond while there is work, backing off to every 20 ms when idle. Not waking a worker per
job keeps the caller's call free of the wake-up (a futex call, and on a busy machine the woken
thread preempting the caller on its core: measured at tens of microseconds a call); the
challenger starts up to one poll interval later, which nobody waits for. Each worker keeps its
own event loop for coroutine jobs, so an async challenger never runs on the caller's loop. A
job that hangs holds one worker: the queue fills and further jobs are dropped, which bounds
memory whatever the traffic.

With a :class:`~otel_ml._internal.instrument.shadow_budget.CpuBudget`, each job's CPU time
(``time.thread_time`` of the worker) is settled with it (charged when the job competed with a
champion call), and a worker whose budget is spent rests
(sleeps, releasing the GIL) before it takes the next job; the jobs waiting then are discarded
and reported to ``on_discard`` (work the budget cannot serve does not pile up to run later).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from otel_ml._internal.core.log import internal_error
from otel_ml._internal.instrument.shadow_budget import CpuBudget

__all__ = ["BoundedExecutor", "run_coroutine"]

_local = threading.local()

#: Poll interval of a worker while jobs arrive, and the longest one when idle (seconds).
POLL_S = 0.001
IDLE_POLL_S = 0.02


def run_coroutine(coro: Coroutine[Any, Any, Any], timeout_s: float | None) -> Any:
    """Run ``coro`` to completion on this thread's own event loop (made once per thread),
    cancelling it after ``timeout_s`` (``TimeoutError``)."""
    loop = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = _local.loop = asyncio.new_event_loop()
    return loop.run_until_complete(asyncio.wait_for(coro, timeout_s))


class BoundedExecutor:
    """Runs jobs on background threads from a queue of at most ``max_queue`` jobs.

    Args:
        max_queue: Jobs waiting at most (beyond it ``submit`` refuses).
        workers: Worker threads.
        name: Thread name prefix.
        budget: The CPU budget the workers' jobs are charged to, or ``None`` (no limit).
        on_discard: Called with the number of waiting jobs discarded when the budget is spent.
    """

    def __init__(self, max_queue: int, workers: int = 1, name: str = "otel-ml-shadow",
                 budget: CpuBudget | None = None,
                 on_discard: Callable[[int], None] | None = None) -> None:
        if not isinstance(max_queue, int) or max_queue < 1:
            raise ValueError(f"max_queue must be an integer >= 1, got {max_queue!r}")
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
        self.max_queue = max_queue
        self.workers = workers
        self._name = name
        self.budget = budget
        self._on_discard = on_discard
        self._jobs: deque[Callable[[], None]] = deque()
        self._lock = threading.Lock()  # workers only: popping a job and counting it running
        self._running = 0
        self._pid = -1  # threads started in this process (none yet)
        self._threads: list[threading.Thread] = []
        self._closed = False

    @property
    def pending(self) -> int:
        """Jobs queued or running."""
        with self._lock:
            return len(self._jobs) + self._running

    @property
    def waiting(self) -> int:
        """Jobs queued, not yet running."""
        return len(self._jobs)

    @property
    def full(self) -> bool:
        """Whether ``submit`` would refuse now (a cheap check before building a job)."""
        return self._closed or len(self._jobs) >= self.max_queue

    def submit(self, job: Callable[[], None]) -> bool:
        """Queue ``job`` unless the queue is full or the executor closed; never waits."""
        if self._closed:
            return False
        if self._pid != os.getpid():
            self._start()
        jobs = self._jobs
        if len(jobs) >= self.max_queue:
            return False
        jobs.append(job)  # atomic; no lock and no wake-up on the caller's path
        return True

    def _start(self) -> None:
        with self._lock:
            pid = os.getpid()
            if self._pid == pid:
                return
            if self._pid != -1:  # a forked child: the parent's threads and jobs are gone
                self._jobs = deque()
                self._running = 0
            self._threads = [threading.Thread(target=self._work, name=f"{self._name}-{i}",
                                              daemon=True) for i in range(self.workers)]
            for thread in self._threads:
                thread.start()
            self._pid = pid

    def _take(self) -> Callable[[], None] | None:
        with self._lock:
            try:
                job = self._jobs.popleft()
            except IndexError:
                return None
            self._running += 1
            return job

    def _work(self) -> None:
        idle = POLL_S
        budget = self.budget
        while True:
            if budget is not None:
                rest = budget.rest_s()
                if rest > 0.0:
                    self._discard()
                    time.sleep(rest)  # over budget: the GIL is the caller's meanwhile
                    continue
            job = self._take()
            if job is None:
                if self._closed:
                    return
                time.sleep(idle)
                idle = min(idle * 2, IDLE_POLL_S)
                continue
            idle = POLL_S
            cpu = time.thread_time()
            since = budget.now() if budget is not None else 0.0
            busy = budget is not None and budget.contended(since)  # a call runs already
            try:
                job()
            except BaseException as exc:  # a job is guarded; this is the last line
                internal_error("shadow", exc if isinstance(exc, Exception) else None)
            finally:
                with self._lock:
                    self._running -= 1
                if budget is not None:
                    budget.settle(time.thread_time() - cpu, since, busy)

    def _discard(self) -> None:
        """Drop the waiting jobs (the budget is spent) and report how many."""
        dropped = 0
        with self._lock:
            jobs = self._jobs
            while True:
                try:
                    jobs.popleft()
                except IndexError:
                    break
                dropped += 1
        if dropped and self._on_discard is not None:
            try:
                self._on_discard(dropped)
            except Exception as exc:
                internal_error("shadow", exc)

    def drain(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued job ran (tests, shutdown); True when drained in time."""
        deadline = time.monotonic() + timeout_s
        while self.pending:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.002)
        return True

    def close(self) -> None:
        """Refuse new jobs; workers stop once the queued ones ran (nobody waits for them)."""
        self._closed = True
