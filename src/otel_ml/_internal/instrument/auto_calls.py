"""The calls of models patched by the zero-code instrumentors (``otel_ml_instrumentation``).

A patched method (``predict``, ``predict_proba``, ... of a library's model classes) runs
through :meth:`AutoCalls.predict_wrapper`. Only the outermost model call is recorded:

* outside any instrumented call, it is a predict call of the model's monitor (the same span,
  metrics and statistics as :func:`otel_ml.wrap_model` gives), a scikit-learn ``Pipeline``'s
  steps traced as stages;
* inside a call the user instrumented (``@ModelMonitor``, ``wrap_model``), directly under its
  span and on other data than the call's input, it is a stage of that call;
* inside another patched model call (a Pipeline's steps, an ensemble's sub-estimators and
  trees), inside a stage, or inside training (``fit``), it records nothing.

Nothing here raises into the caller: a failure costs the signal (counted in
``ml.telemetry.errors``) and the model's method runs unchanged.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry import metrics, trace

from otel_ml._internal.core.context import CURRENT_CALL
from otel_ml._internal.core.log import internal_error
from otel_ml._internal.data.inputs import count_items
from otel_ml._internal.instrument.model_info import model_info
from otel_ml._internal.instrument.model_monitor import ModelMonitor
from otel_ml._internal.instrument.proxy import pipeline_steps, staged_pipeline_method
from otel_ml._internal.instrument.recorder import Target
from otel_ml._internal.instrument.stages import trace_stage

__all__ = ["IN_LIBRARY_CALL", "AutoCalls", "Defaults", "Wrapper"]

_logger = logging.getLogger("otel_ml.instrumentation")

#: True while a patched model method (or training) runs in this context: calls below it
#: record nothing. Carried into joblib workers (``instrument.joblib_context``).
IN_LIBRARY_CALL: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "otel_ml_in_library_call", default=False)

#: Methods whose Pipeline form is traced step by step (as ``wrap_model`` does).
_STAGED = frozenset({"predict", "predict_proba", "decision_function"})

#: wrapt's wrapper signature.
Wrapper = Callable[[Callable[..., Any], Any, tuple, dict], Any]


@dataclass(frozen=True)
class Defaults:
    """The identity of models :func:`otel_ml.set_model_info` does not name (from the
    environment when ``instrument()`` ran).

    Attributes:
        name: Model name, or ``None``: the model's class name.
        version: Model version.
        reference: Path of the reference profile, or ``None``.
    """

    name: str | None = None
    version: str = "unknown"
    reference: str | None = None


#: The identity of a standalone ``transform`` not named with ``set_model_info``.
_TRANSFORM_DEFAULTS = Defaults()


class AutoCalls:
    """Monitors of the models one instrumentor observes, and the wrappers of their methods.

    Args:
        defaults: Identity of models not named with ``set_model_info``.
        tracer_provider: Provider to use instead of the global one.
        meter_provider: Provider to use instead of the global one.

    Attributes:
        active: False after :meth:`close`: the wrappers call the originals only.
    """

    def __init__(self, defaults: Defaults, *, tracer_provider: trace.TracerProvider | None = None,
                 meter_provider: metrics.MeterProvider | None = None) -> None:
        self.defaults = defaults
        self.active = True
        self._providers = {"tracer_provider": tracer_provider, "meter_provider": meter_provider}
        self._lock = threading.Lock()
        self._monitors: dict[tuple[str, str], ModelMonitor | None] = {}
        self._targets: dict[tuple[int, str], Target] = {}
        self._wrappers: dict[str, Wrapper] = {}

    # ------------------------------------------------------------------ identity
    def identity(self, model: Any, method: str = "predict") -> tuple[str, str, str | None]:
        """``(name, version, reference path)`` of ``model`` called through ``method``.

        The defaults (``OTEL_ML_MODEL_*``) name the served model: a transformer's standalone
        ``transform`` (preprocessing next to the model) is named after its class and compared
        with no reference, unless :func:`otel_ml.set_model_info` names it.
        """
        info = model_info(model)
        defaults = self.defaults if method != "transform" else _TRANSFORM_DEFAULTS
        name = (info and info.name) or defaults.name or type(model).__name__
        version = (info and info.version) or defaults.version
        reference = (info and info.reference) or defaults.reference
        return name, version, reference

    def monitor_for(self, model: Any, method: str = "predict") -> ModelMonitor | None:
        """The monitor of ``model`` (one per name and version, made at its first call), or
        ``None`` when it could not be made (logged once)."""
        name, version, reference = self.identity(model, method)
        key = (name, version)
        monitors = self._monitors
        if key in monitors:
            return monitors[key]
        with self._lock:
            if key not in monitors:
                monitors[key] = self._make_monitor(name, version, reference)
            return monitors[key]

    def _make_monitor(self, name: str, version: str, reference: str | None) -> ModelMonitor | None:
        try:
            return ModelMonitor(name, version, reference=reference, **self._providers)
        except Exception as exc:
            if reference is None:
                _logger.warning("otel_ml: model %r is not observed: %s", name, exc)
                internal_error("instrumentor", exc)
                return None
            _logger.warning("otel_ml: reference %r of model %r not used: %s",
                            reference, name, exc)
        try:
            return ModelMonitor(name, version, **self._providers)
        except Exception as exc:
            _logger.warning("otel_ml: model %r is not observed: %s", name, exc)
            internal_error("instrumentor", exc)
            return None

    def monitors(self) -> list[ModelMonitor]:
        """The monitors made so far."""
        return [m for m in list(self._monitors.values()) if m is not None]

    def close(self) -> None:
        """Stop recording: the wrappers call the originals, the monitors stop reporting."""
        self.active = False
        for monitor in self.monitors():
            monitor.close()

    # ------------------------------------------------------------------ wrappers
    def predict_wrapper(self, method: str, output: str) -> Wrapper:
        """The wrapper of a predict method (one per method name: shared by every class)."""
        wrapper = self._wrappers.get(method)
        if wrapper is None:
            wrapper = self._wrappers[method] = self._make_predict_wrapper(method, output)
        return wrapper

    def _make_predict_wrapper(self, method: str, output: str) -> Wrapper:
        staged = method in _STAGED

        def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
            if instance is None or not self.active or IN_LIBRARY_CALL.get():
                return wrapped(*args, **kwargs)
            token = IN_LIBRARY_CALL.set(True)
            try:
                return self._run(wrapped, instance, method, output, staged, args, kwargs)
            finally:
                IN_LIBRARY_CALL.reset(token)

        return wrapper

    @staticmethod
    def training_wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple,
                         kwargs: dict) -> Any:
        """The wrapper of ``fit`` and its kin: the predictions training makes record nothing."""
        if IN_LIBRARY_CALL.get():
            return wrapped(*args, **kwargs)
        token = IN_LIBRARY_CALL.set(True)
        try:
            return wrapped(*args, **kwargs)
        finally:
            IN_LIBRARY_CALL.reset(token)

    # ------------------------------------------------------------------ one call
    def _run(self, wrapped: Callable[..., Any], instance: Any, method: str, output: str,
             staged: bool, args: tuple, kwargs: dict) -> Any:
        outer = CURRENT_CALL.get()
        if outer is not None:
            return self._nested(outer, wrapped, instance, args, kwargs)
        try:
            monitor = self.monitor_for(instance, method)
            if monitor is None or monitor.switch.off:
                return wrapped(*args, **kwargs)
            target = self._target(monitor, method, output)
            run = wrapped
            if staged and pipeline_steps(instance) is not None:
                run = staged_pipeline_method(instance, method, wrapped)
        except Exception as exc:
            internal_error("instrumentor", exc)
            return wrapped(*args, **kwargs)
        recorder = monitor.recorder
        call = recorder.begin(target, args, kwargs, None, cpu=True)
        try:
            result = run(*args, **kwargs)
        except BaseException as exc:
            recorder.end(call, None, exc)
            raise
        recorder.end(call, result, None)
        return result

    def _target(self, monitor: ModelMonitor, method: str, output: str) -> Target:
        key = (id(monitor), method)
        target = self._targets.get(key)
        if target is None:
            target = self._targets[key] = Target(f"ml.{method} {monitor.name}", output)
        return target

    def _nested(self, outer: Any, wrapped: Callable[..., Any], instance: Any, args: tuple,
                kwargs: dict) -> Any:
        """A model called inside a call the user instrumented: a stage when it is a step of
        that call's own code (directly under its span, on other data), else nothing."""
        try:
            direct = trace.get_current_span() is outer.span and not (args and args[0] is outer.x)
            stage = trace_stage(self._stage_name(instance)) if direct else None
        except Exception as exc:
            internal_error("instrumentor", exc)
            stage = None
        if stage is None:
            return wrapped(*args, **kwargs)
        with stage as run:
            run.rows_in = count_items(args[0]) if args else None
            result = wrapped(*args, **kwargs)
            run.rows_out = count_items(result)
        return result

    @staticmethod
    def _stage_name(model: Any) -> str:
        info = model_info(model)
        return (info and info.name) or type(model).__name__

