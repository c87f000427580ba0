"""joblib workers run in the context of the instrumented call that started them.

``joblib.Parallel`` runs tasks in worker threads (or processes) that do not inherit the
caller's :mod:`contextvars`: a forest's trees predicting in two threads would each look like an
outermost call, and stage spans would start new traces. Inside an instrumented call, the
patched ``Parallel.__call__`` hands every task over in a :class:`ContextCarrier`: in a thread
the task runs in a copy of the caller's context; in a process (the carrier is pickled) it runs
under the caller's trace context (W3C propagation) and records no model call of its own.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate

from otel_ml._internal.core.context import CURRENT_CALL
from otel_ml._internal.core.log import internal_error
from otel_ml._internal.instrument.auto_calls import IN_LIBRARY_CALL

__all__ = ["ContextCarrier", "parallel_call_wrapper"]


class ContextCarrier:
    """A joblib task that runs in its caller's context.

    Args:
        func: The task (joblib's delayed function).
        context: The caller's context (threads), or ``None`` (unpickled in a process).
        carrier: The caller's trace context as W3C headers.
        in_library_call: The caller is inside a patched model call: the task records nothing.
    """

    __slots__ = ("func", "context", "carrier", "in_library_call")

    def __init__(self, func: Callable[..., Any], context: contextvars.Context | None,
                 carrier: dict[str, str], in_library_call: bool) -> None:
        self.func = func
        self.context = context
        self.carrier = carrier
        self.in_library_call = in_library_call

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.context is not None:
            return self.context.copy().run(self.func, *args, **kwargs)
        token = otel_context.attach(propagate.extract(self.carrier)) if self.carrier else None
        flag = IN_LIBRARY_CALL.set(True) if self.in_library_call else None
        try:
            return self.func(*args, **kwargs)
        finally:
            if flag is not None:
                IN_LIBRARY_CALL.reset(flag)
            if token is not None:
                otel_context.detach(token)

    def __reduce__(self) -> tuple[Any, tuple]:
        # A context cannot be pickled: a process gets the trace context and the flag.
        return (ContextCarrier, (self.func, None, self.carrier, self.in_library_call))

    def __getattr__(self, name: str) -> Any:  # joblib reads e.g. __name__ of the task
        if name in ContextCarrier.__slots__:
            raise AttributeError(name)
        return getattr(self.func, name)


def _carried(tasks: Iterable[Any], context: contextvars.Context, carrier: dict[str, str],
             in_library_call: bool) -> Iterable[Any]:
    for task in tasks:
        if isinstance(task, tuple) and len(task) == 3 and callable(task[0]):
            yield (ContextCarrier(task[0], context, carrier, in_library_call), task[1], task[2])
        else:
            yield task


def parallel_call_wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple,
                          kwargs: dict) -> Any:
    """The wrapper of ``joblib.Parallel.__call__``: outside instrumented calls it changes
    nothing; inside one, the tasks carry the context."""
    in_library_call = IN_LIBRARY_CALL.get()
    if not args or not (in_library_call or CURRENT_CALL.get() is not None):
        return wrapped(*args, **kwargs)
    try:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        tasks = _carried(args[0], contextvars.copy_context(), carrier, in_library_call)
    except Exception as exc:
        internal_error("instrumentor", exc)
        return wrapped(*args, **kwargs)
    return wrapped(tasks, *args[1:], **kwargs)
