"""Wrapper factories: sync, async, generator and async generator.

The outer function captures the monitor and the call target; the inner one starts the call,
runs the user's function, and ends the call. ``raise`` re-raises the user's exception object
with its traceback unchanged; everything otel_ml does around it is guarded inside the monitor.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import wrapt
from opentelemetry import context as otel_context

from otel_ml._internal.core.context import STREAMED

if TYPE_CHECKING:
    from otel_ml._internal.instrument.model_monitor import ModelMonitor, _Target

__all__ = ["MonitoredFunction", "wrap_callable"]


class MonitoredFunction(wrapt.FunctionWrapper):
    """A function instrumented by a :class:`~otel_ml.ModelMonitor`; ``.monitor`` is that monitor."""

    @property
    def monitor(self) -> ModelMonitor:
        """The monitor recording this function's calls."""
        return self._self_binding_monitor  # type: ignore[no-any-return]


class _BoundMonitoredFunction(wrapt.BoundFunctionWrapper):
    @property
    def monitor(self) -> ModelMonitor:
        return self._self_parent._self_binding_monitor  # type: ignore[no-any-return]


MonitoredFunction.__bound_function_wrapper__ = _BoundMonitoredFunction


def _sync(monitor: ModelMonitor, target: _Target) -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
        if monitor._disabled:
            return wrapped(*args, **kwargs)
        call = monitor._begin(target, args, kwargs, cpu=True)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            monitor._end(call, None, exc)
            raise
        monitor._end(call, result, None)
        return result

    return wrapper


def _async(monitor: ModelMonitor, target: _Target) -> Callable[..., Any]:
    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
        if monitor._disabled:
            return await wrapped(*args, **kwargs)
        # Thread CPU time is meaningless across awaits (other tasks run on the same thread).
        call = monitor._begin(target, args, kwargs, cpu=False)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            monitor._end(call, None, exc)
            raise
        monitor._end(call, result, None)
        return result

    return wrapper


def _generator(monitor: ModelMonitor, target: _Target) -> Callable[..., Any]:
    """The span covers the whole iteration; the context is attached only while the body runs."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
        gen = wrapped(*args, **kwargs)
        if monitor._disabled:
            return gen
        return _traced_generator(monitor, target, gen, args, kwargs)

    return wrapper


def _traced_generator(monitor: ModelMonitor, target: _Target, gen: Any, args: tuple,
                      kwargs: dict) -> Any:
    call = monitor._begin(target, args, kwargs, cpu=True, attach=False)
    method, value = gen.send, None
    while True:
        token = _attach(call)
        try:
            item = method(value)
        except StopIteration as stop:
            monitor._end(call, STREAMED, None, resume=token)
            return stop.value
        except BaseException as exc:
            monitor._end(call, None, exc, resume=token)
            raise
        _detach(call, token)
        monitor._collect_item(call, item)
        try:
            value, method = (yield item), gen.send
        except GeneratorExit:
            token = _attach(call)
            try:
                gen.close()
            finally:
                monitor._end(call, STREAMED, None, resume=token)
            raise
        except BaseException as exc:  # thrown in by the consumer: forward it to the body
            value, method = exc, _thrower(gen)


def _async_generator(monitor: ModelMonitor, target: _Target) -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
        agen = wrapped(*args, **kwargs)
        if monitor._disabled:
            return agen
        return _traced_async_generator(monitor, target, agen, args, kwargs)

    return wrapper


async def _traced_async_generator(monitor: ModelMonitor, target: _Target, agen: Any,
                                  args: tuple, kwargs: dict) -> Any:
    call = monitor._begin(target, args, kwargs, cpu=False, attach=False)
    method, value = agen.asend, None
    while True:
        token = _attach(call)
        try:
            item = await method(value)
        except StopAsyncIteration:
            monitor._end(call, STREAMED, None, resume=token)
            return
        except BaseException as exc:
            monitor._end(call, None, exc, resume=token)
            raise
        _detach(call, token)
        monitor._collect_item(call, item)
        try:
            value, method = (yield item), agen.asend
        except GeneratorExit:
            token = _attach(call)
            try:
                await agen.aclose()
            finally:
                monitor._end(call, STREAMED, None, resume=token)
            raise
        except BaseException as exc:
            value, method = exc, _async_thrower(agen)


def _thrower(gen: Any) -> Callable[[BaseException], Any]:
    return lambda exc: gen.throw(exc)


def _async_thrower(agen: Any) -> Callable[[BaseException], Any]:
    return lambda exc: agen.athrow(exc)


def _attach(call: Any) -> Any:
    if call is None:
        return None
    return otel_context.attach(call.context)


def _detach(call: Any, token: Any) -> None:
    if token is not None:
        otel_context.detach(token)


def wrap_callable(func: Callable[..., Any], monitor: ModelMonitor, target: _Target) -> Any:
    """Instrument ``func`` (function, method, classmethod, coroutine or generator function)."""
    if inspect.isasyncgenfunction(func):
        factory = _async_generator
    elif inspect.iscoroutinefunction(func):
        factory = _async
    elif inspect.isgeneratorfunction(func):
        factory = _generator
    else:
        factory = _sync
    wrapper = MonitoredFunction(func, factory(monitor, target))
    wrapper._self_binding_monitor = monitor
    return wrapper
