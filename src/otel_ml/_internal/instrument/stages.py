"""trace_stage: spans and metrics for pipeline stages (load, preprocess, features, predict)."""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable
from timeit import default_timer
from typing import Any, TypeVar

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import Status, StatusCode

from otel_ml._internal.core.caps import CappedValues
from otel_ml._internal.core.context import CURRENT_CALL
from otel_ml._internal.core.instruments import instruments_for, tracer_for
from otel_ml._internal.core.log import internal_error
from otel_ml._internal.data.inputs import count_items
from otel_ml._internal.instrument.wrappers import Hooks, traced_async_generator, traced_generator
from otel_ml.contract import Attr

__all__ = ["StageRun", "trace_stage"]

F = TypeVar("F", bound=Callable[..., Any])

#: Cap on stage names of stages that run outside any model (each monitor has its own cap).
_STAGE_NAMES = CappedValues("stage name", 100)


class StageRun:
    """One run of a stage; ``with trace_stage("load") as run: run.rows_out = len(df)``.

    Attributes:
        rows_in: Rows that entered the stage (set it when the decorator cannot tell).
        rows_out: Rows that left the stage.
        span: The stage's span.
    """

    __slots__ = ("rows_in", "rows_out", "span", "context", "_start", "_token", "_attrs",
                 "_instruments")

    def __init__(self) -> None:
        self.rows_in: int | None = None
        self.rows_out: int | None = None


#: Runs of context-manager stages in progress in this context, innermost last. One variable for
#: every stage object: a variable per object would leave an entry in the context per object.
_OPEN_RUNS: contextvars.ContextVar[tuple[tuple[Any, StageRun], ...]] = contextvars.ContextVar(
    "otel_ml_stage_runs", default=())


class trace_stage:  # noqa: N801 - used like a function: @trace_stage("features")
    """Trace a pipeline stage: as a decorator (bare or with a name) or a context manager.

    The span nests under the current one (contextvars: safe across threads and asyncio tasks
    that inherit the context) and carries the model of the enclosing instrumented predict
    call, or of ``monitor``. Stage duration, rows in/out (from ``len``/``shape`` of the first
    argument and of the result, when a decorator) and errors are recorded as metrics.

    Args:
        name: Stage name (``ml.stage.name``); defaults to the function name when bare.
        monitor: Monitor whose model attributes and providers the stage uses when it runs
            outside an instrumented predict call.
        tracer_provider: Provider to use instead of the global one.
        meter_provider: Provider to use instead of the global one.

    Raises:
        ValueError: ``name`` is empty.
        TypeError: ``name`` is not a string.
    """

    def __init__(self, name: str | Callable[..., Any] | None = None, *, monitor: Any = None,
                 tracer_provider: trace.TracerProvider | None = None,
                 meter_provider: metrics.MeterProvider | None = None) -> None:
        func = None
        if callable(name) and not isinstance(name, str):
            func, name = name, getattr(name, "__name__", "stage")
        if not isinstance(name, str):
            raise TypeError(f"stage name must be a string, got {type(name).__name__}")
        if not name.strip():
            raise ValueError("stage name must not be empty")
        self.name = name
        self._monitor = monitor
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self._wrapped_func = func

    # A bare ``@trace_stage`` received the function itself: behave as the wrapped function.
    def __new__(cls, name: Any = None, **kwargs: Any) -> Any:
        self = super().__new__(cls)
        if callable(name) and not isinstance(name, str):
            self.__init__(name, **kwargs)
            return self(name)
        return self

    def __call__(self, func: F) -> F:
        """Decorate ``func``: every call runs inside this stage. The stage of a generator
        function (sync or async) covers the iteration, not only the generator's creation."""
        if inspect.isasyncgenfunction(func) or inspect.isgeneratorfunction(func):
            traced = (traced_async_generator if inspect.isasyncgenfunction(func)
                      else traced_generator)

            def generator_wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
                # The stage starts at the first step: a generator never iterated opens no span.
                return traced(wrapped(*args, **kwargs), functools.partial(self._start_iteration, args))

            return wrapt.FunctionWrapper(func, generator_wrapper)  # type: ignore[return-value]

        if inspect.iscoroutinefunction(func):
            async def async_wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
                run = self._start(args)
                try:
                    result = await wrapped(*args, **kwargs)
                except BaseException as exc:
                    self._finish(run, exc)
                    raise
                self._set_rows_out(run, result)
                self._finish(run, None)
                return result

            return wrapt.FunctionWrapper(func, async_wrapper)  # type: ignore[return-value]

        def wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
            run = self._start(args)
            try:
                result = wrapped(*args, **kwargs)
            except BaseException as exc:
                self._finish(run, exc)
                raise
            self._set_rows_out(run, result)
            self._finish(run, None)
            return result

        return wrapt.FunctionWrapper(func, wrapper)  # type: ignore[return-value]

    def __enter__(self) -> StageRun:
        run = self._start(())
        if run is None:  # telemetry failed: hand back a run that records nothing
            run = StageRun()
            run._token = None
        _OPEN_RUNS.set((*_OPEN_RUNS.get(), (self, run)))
        return run

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        runs = _OPEN_RUNS.get()
        for i in range(len(runs) - 1, -1, -1):
            if runs[i][0] is self:
                run = runs[i][1]
                _OPEN_RUNS.set(runs[:i] + runs[i + 1:])
                if getattr(run, "_token", None) is not None:
                    self._finish(run, exc)
                return

    async def __aenter__(self) -> StageRun:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)

    # ------------------------------------------------------------------ internals
    def _resolve(self) -> tuple[Any, Any, dict[str, str]]:
        recorder = self._monitor.recorder if self._monitor is not None else None
        if recorder is None:
            call = CURRENT_CALL.get()
            recorder = call.recorder if call is not None else None
        if recorder is None:
            return (tracer_for(self._tracer_provider), instruments_for(self._meter_provider),
                    {Attr.STAGE: _STAGE_NAMES(self.name)})
        attrs = {**recorder.attributes, Attr.STAGE: recorder.stage_names(self.name)}
        if self._tracer_provider is None and self._meter_provider is None:
            return recorder.tracer, recorder.instruments, attrs
        return tracer_for(self._tracer_provider), instruments_for(self._meter_provider), attrs

    def _start(self, args: tuple, attach: bool = True) -> StageRun | None:
        try:
            tracer, instruments, attrs = self._resolve()
            run = StageRun()
            run._attrs = attrs
            run._instruments = instruments
            run.span = tracer.start_span(f"ml.stage {self.name}", attributes=attrs)
            run.context = trace.set_span_in_context(run.span)
            run._token = otel_context.attach(run.context) if attach else None
            if args:
                run.rows_in = count_items(args[0])
            run._start = default_timer()
            return run
        except Exception as exc:
            internal_error("stage", exc)
            return None

    def _start_iteration(self, args: tuple) -> Hooks | None:
        """The hooks of a generator stage, made at its first step (see ``traced_generator``)."""
        run = self._start(args, attach=False)
        if run is None:
            return None
        return run.context, functools.partial(_count_item, run), functools.partial(
            self._finish_iteration, run)

    @staticmethod
    def _finish_iteration(run: StageRun, result: Any, exc: BaseException | None,
                          token: Any) -> None:
        run._token = token  # the context attached for the generator's last step
        trace_stage._finish(run, exc)

    @staticmethod
    def _set_rows_out(run: StageRun | None, result: Any) -> None:
        if run is not None and run.rows_out is None and result is not None:
            run.rows_out = count_items(result)

    @staticmethod
    def _finish(run: StageRun | None, exc: BaseException | None) -> None:
        if run is None:
            return
        span = run.span
        try:
            elapsed = default_timer() - run._start
            attrs = run._attrs
            instruments = run._instruments
            if exc is not None:
                etype = type(exc).__qualname__
                instruments["ml.pipeline.stage.errors"].add(1, {**attrs, Attr.ERROR_TYPE: etype})
                instruments["ml.pipeline.stage.duration"].record(
                    elapsed, {**attrs, Attr.ERROR_TYPE: etype})
                if span.is_recording():
                    span.record_exception(exc)
                    span.set_status(Status(StatusCode.ERROR, etype))
                    span.set_attribute(Attr.ERROR_TYPE, etype)
            else:
                instruments["ml.pipeline.stage.duration"].record(elapsed, attrs)
            rows = instruments["ml.pipeline.stage.rows"]
            for direction, key, count in (("in", Attr.ROWS_IN, run.rows_in),
                                          ("out", Attr.ROWS_OUT, run.rows_out)):
                if count is not None:
                    rows.add(count, {**attrs, Attr.DIRECTION: direction})
                    if span.is_recording():
                        span.set_attribute(key, count)
        except Exception as internal:
            internal_error("stage", internal)
        finally:
            try:
                span.end()
                if run._token is not None:
                    otel_context.detach(run._token)
            except Exception as internal:
                internal_error("context", internal)


def _count_item(run: StageRun, item: Any) -> None:
    """Rows out of a generator stage: the items it yielded, counted as they pass."""
    try:
        run.rows_out = (run.rows_out or 0) + count_items(item)
    except Exception as exc:
        internal_error("stage", exc)
