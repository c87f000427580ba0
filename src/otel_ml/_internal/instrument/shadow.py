"""``otel_ml.shadow``: run a challenger on the champion's inputs, off the caller's path.

The caller gets the champion's result, computed and monitored as usual (its monitor's version,
span role ``champion``). After the champion returned, the call's inputs and result are handed
to a :class:`~otel_ml._internal.instrument.shadow_executor.BoundedExecutor` without waiting:
when its queue is full the pair is dropped and counted (``ml.model.comparison.skipped``,
reason ``queue_full``). A worker thread runs the challenger under its own monitor (span role
``challenger``, a new trace whose span links to the champion's span, the champion's prediction
id so that labels join to both), then compares the two results
(:func:`~otel_ml._internal.stats.comparison.compare_outputs`) into the pair's counters.
Whatever the challenger does (raise, hang, return another shape, run slowly) is counted there
and never reaches the caller.

The workers share a :class:`~otel_ml._internal.instrument.shadow_budget.CpuBudget`
(``max_share`` of a core by default): while it is spent they rest and the caller drops its pairs
(reason ``over_budget``) before copying anything, so a saturated server pays for the
challenger with at most that share of its time.

Inputs and results that are numpy arrays, pandas or polars objects, lists or dicts are copied
(shallowly for lists and dicts) before they are queued, so a caller that reuses its buffers
and a challenger that writes into its input do not disturb each other.
"""

from __future__ import annotations

import copy
import inspect
import random
import threading
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from timeit import default_timer
from typing import Any

import numpy as np
import wrapt
from opentelemetry import trace

from otel_ml._internal.core.log import internal_error
from otel_ml._internal.instrument.comparisons import Comparison, ComparisonReport
from otel_ml._internal.instrument.model_monitor import ModelMonitor
from otel_ml._internal.instrument.proxy import ModelProxy
from otel_ml._internal.instrument.recorder import Target
from otel_ml._internal.instrument.shadow_budget import (
    DEFAULT_MAX_SHARE,
    CpuBudget,
    check_max_share,
)
from otel_ml._internal.instrument.shadow_executor import BoundedExecutor, run_coroutine
from otel_ml._internal.instrument.wrappers import declares_parameter
from otel_ml._internal.stats.comparison import compare_outputs
from otel_ml.contract import Attr, Role, Skip

__all__ = ["Shadow", "ShadowFunction", "ShadowModel", "shadow"]


def _snapshot(value: Any) -> Any:
    """A copy that later writes by the caller or the challenger cannot reach."""
    kind = type(value)
    if kind is np.ndarray or isinstance(value, np.ndarray):
        return value.copy()
    if kind in _IMMUTABLE:
        return value
    if isinstance(value, (list, dict)):
        return copy.copy(value)
    module = type(value).__module__
    if module.startswith(("pandas.", "polars.")) and hasattr(value, "copy"):
        return value.copy()
    return value


#: Prediction ids of calls the challenger predicted on, remembered for their labels.
MAX_CHALLENGED_IDS = 100_000

_IMMUTABLE = frozenset({str, int, float, bool, bytes, type(None), tuple})


class Shadow:
    """The machinery of one shadow pair (see the module docstring).

    Attributes:
        monitor: The champion's monitor.
        challenger_monitor: The challenger's monitor.
        comparison: The pair (its ``tally`` holds the counters).
        executor: The bounded executor running the challenger.
        budget: The workers' CPU budget, or ``None`` (no limit).
    """

    def __init__(self, champion: Callable[..., Any], challenger: Callable[..., Any], *,
                 monitor: ModelMonitor, challenger_monitor: ModelMonitor, method: str,
                 sample: float, max_queue: int, workers: int, timeout_s: float,
                 max_share: float | None = DEFAULT_MAX_SHARE,
                 meter_provider: Any = None) -> None:
        if not 0.0 <= float(sample) <= 1.0:
            raise ValueError(f"sample must be within [0, 1], got {sample!r}")
        if not float(timeout_s) > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
        self._champion = champion
        self._challenger = challenger
        self._challenger_async = inspect.iscoroutinefunction(challenger)
        self.monitor = monitor
        self.challenger_monitor = challenger_monitor
        self.sample = float(sample)
        self.timeout_s = float(timeout_s)
        share = check_max_share(max_share)
        self.budget = None if share is None else CpuBudget(share)
        self.comparison = Comparison(monitor, challenger_monitor, "shadow", meter_provider)
        self._tally = self.comparison.tally
        self.executor = BoundedExecutor(max_queue, workers, budget=self.budget,
                                        on_discard=self._over_budget)
        self._target = Target(f"ml.{method} {monitor.name}", "auto")
        self._challenger_target = Target(f"ml.{method} {challenger_monitor.name}", "auto")
        id_arg = monitor.settings.prediction_id_arg
        self._id_arg = id_arg
        self._consume_id = id_arg is not None and not declares_parameter(champion, id_arg)
        # Prediction ids the challenger predicted on (bounded): a label goes to it only for
        # those, not for calls it never saw (sampled out, dropped, failed).
        self._challenged: OrderedDict[str, None] = OrderedDict()
        self._ids_lock = threading.Lock()

    # ------------------------------------------------------------------ the caller's path
    def _user_id(self, kwargs: dict) -> Any:
        if self._id_arg is None or not kwargs:
            return None
        if self._consume_id:
            return kwargs.pop(self._id_arg, None)
        return kwargs.get(self._id_arg)

    def call(self, args: tuple, kwargs: dict) -> Any:
        """Run the champion (monitored) and queue the challenger; returns the champion's result."""
        user_id = self._user_id(kwargs)
        recorder = self.monitor.recorder
        if recorder.switch.off:
            return self._champion(*args, **kwargs)
        budget = self.budget
        if budget is not None:
            budget.call_started()
        try:
            call = recorder.begin(self._target, args, kwargs, user_id, cpu=True)
            start = default_timer()
            try:
                result = self._champion(*args, **kwargs)
            except BaseException as exc:
                recorder.end(call, None, exc)
                raise
            end = default_timer()
            self._mark(call, Role.CHAMPION)
            recorder.end(call, result, None)
            self._submit(call, args, kwargs, result, end - start, end)
            return result
        finally:
            if budget is not None:
                budget.call_ended()

    async def call_async(self, args: tuple, kwargs: dict) -> Any:
        """:meth:`call` for a coroutine function champion."""
        user_id = self._user_id(kwargs)
        recorder = self.monitor.recorder
        if recorder.switch.off:
            return await self._champion(*args, **kwargs)
        budget = self.budget
        if budget is not None:
            budget.call_started()
        try:
            call = recorder.begin(self._target, args, kwargs, user_id, cpu=False)
            start = default_timer()
            try:
                result = await self._champion(*args, **kwargs)
            except BaseException as exc:
                recorder.end(call, None, exc)
                raise
            end = default_timer()
            self._mark(call, Role.CHAMPION)
            recorder.end(call, result, None)
            self._submit(call, args, kwargs, result, end - start, end)
            return result
        finally:
            if budget is not None:
                budget.call_ended()

    @staticmethod
    def _mark(call: Any, role: str) -> None:
        if call is None:
            return
        try:
            call.span.set_attribute(Attr.MODEL_ROLE, role)
        except Exception as exc:
            internal_error("shadow", exc)

    def _submit(self, call: Any, args: tuple, kwargs: dict, result: Any, elapsed: float,
                now: float) -> None:
        try:
            if self.sample < 1.0 and random.random() >= self.sample:
                return
            # Dropped before anything is copied: the budget is spent (one pair may wait for
            # the worker's return, so that it has work without polling), or the queue is full.
            budget = self.budget
            if budget is not None and budget.resting(now) and self.executor.waiting:
                self._tally.skip(Skip.OVER_BUDGET)
                return
            if self.executor.full:
                self._tally.skip(Skip.QUEUE_FULL)
                return
            args = tuple([_snapshot(a) for a in args])
            kwargs = {k: _snapshot(v) for k, v in kwargs.items()} if kwargs else kwargs
            if call is None:
                job = partial(self._run, args, kwargs, _snapshot(result), None, None, elapsed)
            else:
                job = partial(self._run, args, kwargs, _snapshot(result), call.span_context,
                              call.prediction_id, elapsed)
            if not self.executor.submit(job):
                self._tally.skip(Skip.QUEUE_FULL)
        except Exception as exc:
            internal_error("shadow", exc)

    # ------------------------------------------------------------------ the worker
    def _over_budget(self, dropped: int) -> None:
        for _ in range(dropped):
            self._tally.skip(Skip.OVER_BUDGET)

    def _run(self, args: tuple, kwargs: dict, result: Any, champion_ctx: Any,
             prediction_id: str | None, champion_s: float) -> None:
        recorder = self.challenger_monitor.recorder
        call = recorder.begin(self._challenger_target, args, kwargs, prediction_id, cpu=True)
        if call is not None:
            self._mark(call, Role.CHALLENGER)
            if champion_ctx is not None and champion_ctx.is_valid:
                try:
                    call.span.add_link(champion_ctx, {Attr.MODEL_ROLE: Role.CHAMPION})
                except Exception as exc:
                    internal_error("shadow", exc)
        start = default_timer()
        try:
            if self._challenger_async:
                out = run_coroutine(self._challenger(*args, **kwargs), self.timeout_s)
            else:
                out = self._challenger(*args, **kwargs)
        except BaseException as exc:  # the challenger's failure is counted, never raised
            recorder.end(call, None, exc)
            timed_out = self._challenger_async and isinstance(exc, TimeoutError)
            self._tally.skip(Skip.TIMEOUT if timed_out else Skip.CHALLENGER_ERROR)
            return
        elapsed = default_timer() - start
        recorder.end(call, out, None)
        if prediction_id is not None:
            with self._ids_lock:
                self._challenged[prediction_id] = None
                if len(self._challenged) > MAX_CHALLENGED_IDS:
                    self._challenged.popitem(last=False)
        try:
            if elapsed > self.timeout_s:  # a sync challenger cannot be cancelled: counted late
                self._tally.skip(Skip.TIMEOUT)
                return
            compared = compare_outputs(result, out, self.monitor.resolved_task)
            if isinstance(compared, str):
                self._tally.skip(compared)
            else:
                self._tally.add(compared, champion_s, elapsed)
        except Exception as exc:
            internal_error("shadow", exc)

    # ------------------------------------------------------------------ public API
    def record_outcome(self, prediction_id: str, actual: Any) -> None:
        """Join a label to the champion's prediction, and to the challenger's when it predicted
        on that call (a label that arrives before the challenger ran joins the champion only).
        Never raises."""
        self.monitor.record_outcome(prediction_id, actual)
        try:
            with self._ids_lock:
                seen = self._challenged.pop(str(prediction_id), False) is None
        except Exception as exc:
            internal_error("shadow", exc)
            return
        if seen:
            self.challenger_monitor.record_outcome(prediction_id, actual)

    def comparison_report(self) -> ComparisonReport:
        """Counters, prediction distance, performance and tests of the pair, in process."""
        return self.comparison.report()

    def drain(self, timeout_s: float = 10.0) -> bool:
        """Wait until queued challenger calls ran (tests, shutdown). True when drained."""
        return self.executor.drain(timeout_s)

    def close(self) -> None:
        """Stop running the challenger and reporting the pair (the champion keeps working)."""
        self.executor.close()
        self.comparison.close()


class ShadowFunction(wrapt.FunctionWrapper):
    """The champion function with a challenger in shadow: same signature, same result.

    ``.shadow`` is the :class:`Shadow`; ``.monitor`` the champion's monitor.
    """

    @property
    def shadow(self) -> Shadow:
        """The shadow pair."""
        return self._self_shadow  # type: ignore[no-any-return]

    @property
    def monitor(self) -> ModelMonitor:
        """The champion's monitor."""
        return self._self_shadow.monitor  # type: ignore[no-any-return]

    def record_outcome(self, prediction_id: str, actual: Any) -> None:
        """Join a label to both versions' predictions. Never raises."""
        self._self_shadow.record_outcome(prediction_id, actual)

    def comparison_report(self) -> ComparisonReport:
        """The pair's in-process report."""
        return self._self_shadow.comparison_report()


class ShadowModel(ModelProxy):
    """A model object whose ``predict`` runs a challenger in shadow; every other attribute
    and method is the champion's (instrumented as :func:`otel_ml.wrap_model` does)."""

    def __init__(self, model: Any, shadow_: Shadow) -> None:
        super().__init__(model, shadow_.monitor)
        self._self_shadow = shadow_
        predict = ShadowFunction(model.predict, _wrapper(shadow_, inspect.iscoroutinefunction(
            model.predict)))
        predict._self_shadow = shadow_
        self._self_methods["predict"] = predict

    @property
    def shadow(self) -> Shadow:
        """The shadow pair."""
        return self._self_shadow  # type: ignore[no-any-return]

    def record_outcome(self, prediction_id: str, actual: Any) -> None:
        """Join a label to both versions' predictions. Never raises."""
        self._self_shadow.record_outcome(prediction_id, actual)

    def comparison_report(self) -> ComparisonReport:
        """The pair's in-process report."""
        return self._self_shadow.comparison_report()


def _wrapper(s: Shadow, is_async: bool) -> Callable[..., Any]:
    if is_async:
        async def wrapper_async(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
            return await s.call_async(args, kwargs)

        return wrapper_async

    def wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        return s.call(args, kwargs)

    return wrapper


def shadow(champion: Any, challenger: Any, *, name: str, champion_version: str,
           challenger_version: str, sample: float = 1.0, max_queue: int = 1000,
           workers: int = 1, timeout_s: float = 30.0,
           max_share: float | None = DEFAULT_MAX_SHARE, monitor: ModelMonitor | None = None,
           tracer_provider: trace.TracerProvider | None = None,
           meter_provider: Any = None, **options: Any) -> Any:
    """Run ``challenger`` in shadow of ``champion``: the caller gets the champion's result.

    Args:
        champion: The version in production: a function (sync or ``async def``) or a model
            object with ``predict``.
        challenger: The version under test, of the same kind (its ``predict`` for objects;
            sync or async, whatever the champion is).
        name: Model name (``ml.model.name``) of both versions.
        champion_version: ``ml.model.version`` of the champion.
        challenger_version: ``ml.model.version`` of the challenger.
        sample: Share (0..1) of calls also sent to the challenger.
        max_queue: Calls waiting for the challenger at most; beyond it a pair is dropped and
            counted (``ml.model.comparison.skipped{ml_reason="queue_full"}``).
        workers: Background threads running the challenger.
        timeout_s: A challenger call longer than this is counted as ``timeout`` instead of
            compared (an async challenger is cancelled).
        max_share: CPU time the challenger's workers may spend competing with champion
            calls, as a share of wall time (default 0.03: 3% of one core), in (0, 1], or
            ``None`` for no limit. A token bucket refilled at ``max_share`` and holding
            ``max_share`` x 1 s; a job run while no champion call runs is free. While it
            is spent the workers rest and pairs are dropped and counted
            (``ml.model.comparison.skipped{ml_reason="over_budget"}``). Paced traffic, whose
            challenger work fits between calls, is never throttled; a saturated server loses
            about this share of its time to the challenger.
        monitor: The champion's monitor when it exists already (its name and version must be
            ``name`` and ``champion_version``); ``options`` then configure the challenger's.
        tracer_provider: Provider to use instead of the global one.
        meter_provider: Provider to use instead of the global one.
        **options: :class:`~otel_ml.ModelMonitor` options for both monitors (``reference=``,
            ``task=``...).

    Returns:
        For a function, a callable with its signature and result (``.shadow``,
        ``.monitor``, ``.record_outcome``, ``.comparison_report``); for a model object, a
        proxy of it whose ``predict`` runs the pair.

    Raises:
        TypeError: A side is not callable, the kinds differ (function and object), or
            ``max_share`` is not a number.
        ValueError: Equal versions, or an option out of range.
    """
    check_max_share(max_share)  # before any monitor exists
    if champion_version == challenger_version:
        raise ValueError(f"champion and challenger need different versions, both are "
                         f"{champion_version!r}")
    is_object = not callable(champion) or (hasattr(champion, "predict")
                                           and callable(getattr(champion, "predict")))
    champion_fn = champion.predict if is_object else champion
    challenger_fn = getattr(challenger, "predict", None) if is_object else challenger
    if not callable(champion_fn) or not callable(challenger_fn):
        raise TypeError("shadow needs two functions, or two model objects with predict(); got "
                        f"{type(champion).__name__} and {type(challenger).__name__}")
    providers = {"tracer_provider": tracer_provider, "meter_provider": meter_provider}
    if monitor is None:
        monitor = ModelMonitor(name, champion_version, **providers, **options)
    elif (monitor.name, monitor.version) != (name, champion_version):
        raise ValueError(f"monitor is {monitor.name!r} {monitor.version!r}, not the champion "
                         f"{name!r} {champion_version!r}")
    challenger_monitor = ModelMonitor(name, challenger_version, **providers, **options)
    pair = Shadow(champion_fn, challenger_fn, monitor=monitor,
                  challenger_monitor=challenger_monitor, method="predict", sample=sample,
                  max_queue=max_queue, workers=workers, timeout_s=timeout_s,
                  max_share=max_share, meter_provider=meter_provider)
    if is_object:
        return ShadowModel(champion, pair)
    wrapped = ShadowFunction(champion, _wrapper(pair, inspect.iscoroutinefunction(champion)))
    wrapped._self_shadow = pair
    return wrapped

