"""Process-wide state: the disabled switch and the live monitors (for fork handling)."""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

#: Set by :func:`otel_ml.configure` when ``OTEL_SDK_DISABLED=true``.
disabled = False

_monitors: weakref.WeakSet[Any] = weakref.WeakSet()
_lock = threading.Lock()
_fork_hook_installed = False


def register_monitor(monitor: Any) -> None:
    """Track ``monitor`` (weakly) so that disabling and forking reach it."""
    global _fork_hook_installed
    with _lock:
        _monitors.add(monitor)
        if disabled:
            monitor._disabled = True
        if not _fork_hook_installed and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_after_fork_in_child)
            _fork_hook_installed = True


def live_monitors() -> list[Any]:
    """The monitors alive now."""
    with _lock:
        return list(_monitors)


def set_disabled(value: bool) -> None:
    """Switch every monitor, present and future, off (or back on)."""
    global disabled
    with _lock:
        disabled = value
        for monitor in _monitors:
            monitor._disabled = value


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()
    from otel_ml._internal.core import caps as _cap
    from otel_ml._internal.core import log as _log
    from otel_ml._internal.core import instruments

    _log.log_limited._lock = threading.Lock()
    _cap.renew_locks_after_fork()
    instruments.renew_locks_after_fork()
    for monitor in list(_monitors):
        reset = getattr(monitor, "_after_fork", None)
        if reset is not None:
            try:
                reset()
            except Exception:
                pass
