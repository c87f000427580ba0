"""Helpers that run the real observability stack (Collector, Prometheus, Alertmanager, Jaeger v2)
as plain processes on 127.0.0.1 for integration tests. See :mod:`.harness` and :mod:`.binaries`.

Import it with ``tests/`` on ``sys.path`` as ``stack`` (``tests/e2e/conftest.py`` does this):
``from stack import harness``.
"""

from .binaries import Binaries, find_binaries
from .harness import (
    Alertmanager,
    Collector,
    Jaeger,
    Prometheus,
    Stack,
    StackError,
    WebhookSink,
    require_binaries,
    stack_skip_or_fail,
    start_stack,
    wait_for,
)

__all__ = [
    "Alertmanager",
    "Binaries",
    "Collector",
    "Jaeger",
    "Prometheus",
    "Stack",
    "StackError",
    "WebhookSink",
    "find_binaries",
    "require_binaries",
    "stack_skip_or_fail",
    "start_stack",
    "wait_for",
]
