"""Wrapper factories: sync, async, generator and async generator.

The outer function captures the call recorder, the call target and how the caller's prediction
id is read; the inner one starts the call, runs the user's function, and ends the call.
``raise`` re-raises the user's exception object with its traceback unchanged; everything
otel_ml does around it is guarded inside the recorder.

The prediction id keyword (``prediction_id_arg``, default ``"prediction_id"``) belongs to
otel_ml: it is taken out of the call's keyword arguments unless the function declares a
parameter of that name, in which case it is passed through as well. A function that only takes
``**kwargs`` does not receive it (a model's ``predict(X, **params)`` would reject it). The
signature is inspected once, when the function is wrapped.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import wrapt
from opentelemetry import context as otel_context

from otel_ml._internal.core.context import STREAMED
from otel_ml._internal.instrument.recorder import Call, CallRecorder, Target

if TYPE_CHECKING:
    from otel_ml._internal.instrument.model_monitor import ModelMonitor

__all__ = ["Hooks", "MonitoredFunction", "OnEnd", "declares_parameter", "traced_async_generator",
           "traced_generator", "wrap_callable"]


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


class _IdKeyword:
    """How a wrapped function's calls carry the caller's prediction id (decided at wrap time).

    Attributes:
        name: The keyword (``prediction_id_arg``), or ``None``: no caller ids.
        consume: Take it out of the keyword arguments (the function does not declare it).
    """

    __slots__ = ("name", "consume")

    def __init__(self, func: Callable[..., Any], name: str | None) -> None:
        self.name = name
        self.consume = name is not None and not declares_parameter(func, name)

    def take(self, kwargs: dict) -> Any:
        """The caller's id in ``kwargs`` (removed when consumed), or ``None``."""
        if self.consume:
            return kwargs.pop(self.name, None)  # type: ignore[arg-type]
        return kwargs.get(self.name) if self.name is not None else None


def declares_parameter(func: Callable[..., Any], name: str) -> bool:
    """Whether ``func`` takes a parameter called ``name`` by keyword (``**kwargs`` is not
    enough). A callable whose signature cannot be read declares nothing."""
    try:
        parameter = inspect.signature(func).parameters.get(name)
    except (TypeError, ValueError):
        return False
    return parameter is not None and parameter.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _sync(recorder: CallRecorder, target: Target, ids: _IdKeyword) -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
        user_id = ids.take(kwargs) if kwargs else None
        if recorder.switch.off:
            return wrapped(*args, **kwargs)
        call = recorder.begin(target, args, kwargs, user_id, cpu=True)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            recorder.end(call, None, exc)
            raise
        recorder.end(call, result, None)
        return result

    return wrapper


def _async(recorder: CallRecorder, target: Target, ids: _IdKeyword) -> Callable[..., Any]:
    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
        user_id = ids.take(kwargs) if kwargs else None
        if recorder.switch.off:
            return await wrapped(*args, **kwargs)
        # Thread CPU time is meaningless across awaits (other tasks run on the same thread).
        call = recorder.begin(target, args, kwargs, user_id, cpu=False)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            recorder.end(call, None, exc)
            raise
        recorder.end(call, result, None)
        return result

    return wrapper


def _generator(recorder: CallRecorder, target: Target, ids: _IdKeyword) -> Callable[..., Any]:
    """The span covers the whole iteration, from the first step (a generator never iterated
    opens no span); the context is attached only while the body runs."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
        user_id = ids.take(kwargs) if kwargs else None
        gen = wrapped(*args, **kwargs)
        if recorder.switch.off:
            return gen
        # CPU time is not measured: the consumer's work between yields is not the model's,
        # and the steps may run on other threads.
        return traced_generator(gen, functools.partial(
            _start_call, recorder, target, args, kwargs, user_id))

    return wrapper


def _async_generator(recorder: CallRecorder, target: Target, ids: _IdKeyword
                     ) -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
        user_id = ids.take(kwargs) if kwargs else None
        agen = wrapped(*args, **kwargs)
        if recorder.switch.off:
            return agen
        return traced_async_generator(agen, functools.partial(
            _start_call, recorder, target, args, kwargs, user_id))

    return wrapper


def _start_call(recorder: CallRecorder, target: Target, args: tuple, kwargs: dict,
                user_id: str | None) -> Hooks | None:
    call = recorder.begin(target, args, kwargs, user_id, cpu=False, attach=False)
    if call is None:
        return None
    return (call.context, functools.partial(recorder.collect_item, call),
            functools.partial(_end_call, recorder, call))


def _end_call(recorder: CallRecorder, call: Call, result: Any, exc: BaseException | None,
              token: Any) -> None:
    recorder.end(call, result, exc, resume=token)


#: ``on_end(result, exc, token)``: the iteration finished (``result`` is ``STREAMED``) or raised;
#: ``token`` is the context token attached for the last step, to detach. Never raises.
OnEnd = Callable[[Any, "BaseException | None", Any], None]

#: What a traced iteration needs, made at its first step: the context to attach while the body
#: runs, ``on_item(item)`` and ``on_end``. ``None``: trace nothing (the telemetry failed).
Hooks = tuple[Any, Callable[[Any], None], OnEnd]


def _untraced() -> Hooks:
    return otel_context.get_current(), _ignore, _detach_only


def _ignore(item: Any) -> None:
    return None


def _detach_only(result: Any, exc: BaseException | None, token: Any) -> None:
    otel_context.detach(token)


def traced_generator(gen: Any, start: Callable[[], Hooks | None]) -> Any:
    """Iterate ``gen`` with the hooks ``start()`` makes at the first step: their context is
    current while the body runs (never across a ``yield``), each item goes to ``on_item``, and
    ``on_end`` is called once when the generator returns, raises or is closed. ``send``,
    ``throw`` and ``close`` reach the body; its return value and exceptions reach the consumer
    unchanged."""
    context, on_item, on_end = start() or _untraced()
    method, value = gen.send, None
    while True:
        token = otel_context.attach(context)
        try:
            item = method(value)
        except StopIteration as stop:
            on_end(STREAMED, None, token)
            return stop.value
        except BaseException as exc:
            on_end(None, exc, token)
            raise
        otel_context.detach(token)
        on_item(item)
        try:
            value, method = (yield item), gen.send
        except GeneratorExit:
            token = otel_context.attach(context)
            try:
                gen.close()
            except BaseException as exc:  # the body's cleanup failed: the call failed
                on_end(None, exc, token)
                raise
            on_end(STREAMED, None, token)
            raise
        except BaseException as exc:  # thrown in by the consumer: forward it to the body
            value, method = exc, _thrower(gen)


async def traced_async_generator(agen: Any, start: Callable[[], Hooks | None]) -> Any:
    """:func:`traced_generator` for an async generator."""
    context, on_item, on_end = start() or _untraced()
    method, value = agen.asend, None
    while True:
        token = otel_context.attach(context)
        try:
            item = await method(value)
        except StopAsyncIteration:
            on_end(STREAMED, None, token)
            return
        except BaseException as exc:
            on_end(None, exc, token)
            raise
        otel_context.detach(token)
        on_item(item)
        try:
            value, method = (yield item), agen.asend
        except GeneratorExit:
            token = otel_context.attach(context)
            try:
                await agen.aclose()
            except BaseException as exc:  # the body's cleanup failed: the call failed
                on_end(None, exc, token)
                raise
            on_end(STREAMED, None, token)
            raise
        except BaseException as exc:
            value, method = exc, _async_thrower(agen)


def _thrower(gen: Any) -> Callable[[BaseException], Any]:
    return lambda exc: gen.throw(exc)


def _async_thrower(agen: Any) -> Callable[[BaseException], Any]:
    return lambda exc: agen.athrow(exc)


def wrap_callable(func: Callable[..., Any], monitor: ModelMonitor, target: Target,
                  prediction_id_arg: str | None = None) -> Any:
    """Instrument ``func`` (function, method, classmethod, coroutine or generator function).

    Args:
        func: The callable.
        monitor: Its monitor (``.monitor`` of the result); its ``recorder`` records the calls.
        target: The span name and how results are read.
        prediction_id_arg: The keyword carrying the caller's prediction id, or ``None``.
    """
    if inspect.isasyncgenfunction(func):
        factory = _async_generator
    elif inspect.iscoroutinefunction(func):
        factory = _async
    elif inspect.isgeneratorfunction(func):
        factory = _generator
    else:
        factory = _sync
    wrapper = MonitoredFunction(func, factory(monitor.recorder, target,
                                              _IdKeyword(func, prediction_id_arg)))
    wrapper._self_binding_monitor = monitor
    return wrapper
