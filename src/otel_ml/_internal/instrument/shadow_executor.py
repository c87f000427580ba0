"""A bounded background executor for shadow work: never blocks, never grows.

``submit`` puts a job on a bounded queue without waiting: when the queue is full the job is
refused (the caller counts it as dropped). Worker threads (daemons, started at the first
submit and again in a forked child) run the jobs; each keeps its own event loop for
coroutine jobs, so an async challenger never runs on the caller's loop. A job that hangs holds
one worker: the queue fills and further jobs are dropped, which bounds memory whatever the
traffic.
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from otel_ml._internal.core.log import internal_error

__all__ = ["BoundedExecutor", "run_coroutine"]

_local = threading.local()


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
    """

    def __init__(self, max_queue: int, workers: int = 1, name: str = "otel-ml-shadow") -> None:
        if not isinstance(max_queue, int) or max_queue < 1:
            raise ValueError(f"max_queue must be an integer >= 1, got {max_queue!r}")
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
        self.max_queue = max_queue
        self.workers = workers
        self._name = name
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue(max_queue)
        self._lock = threading.Lock()
        self._pid = -1  # threads started in this process (none yet)
        self._threads: list[threading.Thread] = []
        self._closed = False

    @property
    def pending(self) -> int:
        """Jobs queued or running."""
        return self._queue.unfinished_tasks

    def submit(self, job: Callable[[], None]) -> bool:
        """Queue ``job`` unless the queue is full or the executor closed; never waits."""
        if self._closed:
            return False
        if self._pid != os.getpid():
            self._start()
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            return False
        return True

    def _start(self) -> None:
        with self._lock:
            pid = os.getpid()
            if self._pid == pid:
                return
            if self._pid != -1:  # a forked child: the parent's threads and jobs are gone
                self._queue = queue.Queue(self.max_queue)
            self._threads = [threading.Thread(target=self._work, name=f"{self._name}-{i}",
                                              daemon=True) for i in range(self.workers)]
            for thread in self._threads:
                thread.start()
            self._pid = pid

    def _work(self) -> None:
        q = self._queue
        while True:
            job = q.get()
            try:
                if job is None:
                    return
                job()
            except BaseException as exc:  # a job is guarded; this is the last line
                internal_error("shadow", exc if isinstance(exc, Exception) else None)
            finally:
                q.task_done()

    def drain(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued job ran (tests, shutdown); True when drained in time."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.002)
        return True

    def close(self) -> None:
        """Refuse new jobs; workers stop after the queued ones (without waiting for them)."""
        self._closed = True
        if self._pid == os.getpid():
            for _ in self._threads:
                try:
                    self._queue.put_nowait(None)
                except queue.Full:
                    break
