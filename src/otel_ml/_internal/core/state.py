"""Process-wide state: the disabled switch and the live monitors (for fork handling)."""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

__all__ = ["Switch", "disabled", "live_monitors", "register_monitor", "set_disabled"]

#: Set by :func:`otel_ml.configure` when ``OTEL_SDK_DISABLED=true``.
disabled = False



class Switch:
    """A monitor's on/off state, shared with its components (read on every call).

    Attributes:
        off: True when telemetry is disabled (``OTEL_SDK_DISABLED`` or ``configure``).
    """

    __slots__ = ("off",)

    def __init__(self, off: bool = False) -> None:
        self.off = off


_monitors: weakref.WeakSet[Any] = weakref.WeakSet()
_lock = threading.Lock()
_fork_hook_installed = False


def register_monitor(monitor: Any) -> None:
    """Track ``monitor`` (weakly) so that disabling and forking reach it.

    The monitor has a ``switch`` (:class:`Switch`) and an ``after_fork()`` method.
    """
    global _fork_hook_installed
    with _lock:
        _monitors.add(monitor)
        if disabled:
            monitor.switch.off = True
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
            monitor.switch.off = value


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()
    from otel_ml._internal.core import caps, instruments, log

    log.renew_locks_after_fork()
    caps.renew_locks_after_fork()
    instruments.renew_locks_after_fork()
    for monitor in list(_monitors):
        try:
            monitor.after_fork()
        except Exception as exc:  # the child goes on; this monitor's counts may be the parent's
            log.internal_error("fork", exc)
