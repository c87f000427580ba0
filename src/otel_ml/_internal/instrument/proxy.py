"""wrap_model: a transparent proxy that instruments a model object's predict methods."""

from __future__ import annotations

from typing import Any, TypeVar

import wrapt

from otel_ml._internal.data.inputs import count_items
from otel_ml._internal.instrument.model_monitor import ModelMonitor
from otel_ml._internal.instrument.stages import trace_stage

__all__ = ["METHODS", "ModelProxy", "pipeline_steps", "staged_pipeline_method", "wrap_model"]

T = TypeVar("T")

#: Method name -> how its result is read.
METHODS = {
    "predict": "auto",
    "predict_proba": "proba",
    "predict_log_proba": "score",
    "decision_function": "score",
    "transform": "score",
}


class ModelProxy(wrapt.ObjectProxy):
    """Behaves as the wrapped model; its predict methods are instrumented by ``.monitor``.

    Every other attribute, ``isinstance`` checks and pickling-free use pass through to the
    model. Calling the proxy (``model(x)``, as for torch modules) is instrumented when the model
    has no ``predict``. A scikit-learn ``Pipeline``'s steps are traced as nested stages.
    """

    def __init__(self, model: Any, monitor: ModelMonitor) -> None:
        super().__init__(model)
        self._self_monitor = monitor
        self._self_methods: dict[str, Any] = {}
        steps = pipeline_steps(model)
        for method, output in METHODS.items():
            bound = getattr(model, method, None)
            if callable(bound):
                if steps is not None and method in ("predict", "predict_proba",
                                                     "decision_function"):
                    bound = staged_pipeline_method(model, method, bound)
                self._self_methods[method] = monitor.instrument_method(bound, method, output)
        if "predict" not in self._self_methods and callable(model):
            self._self_call = monitor.instrument_method(model, "predict", "auto")
        else:
            self._self_call = None

    @property
    def monitor(self) -> ModelMonitor:
        """The monitor recording this model's calls."""
        return self._self_monitor

    def __getattr__(self, name: str) -> Any:
        methods = object.__getattribute__(self, "_self_methods")
        if name in methods:
            return methods[name]
        return super().__getattr__(name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._self_call is not None:
            return self._self_call(*args, **kwargs)
        return self.__wrapped__(*args, **kwargs)


def pipeline_steps(model: Any) -> list | None:
    """The steps of a scikit-learn Pipeline (duck-typed: no import of scikit-learn)."""
    steps = getattr(model, "steps", None)
    if isinstance(steps, list) and steps and all(
            isinstance(s, tuple) and len(s) == 2 for s in steps) and hasattr(model, "_final_estimator"):
        return steps
    return None


def staged_pipeline_method(pipeline: Any, method: str, fallback: Any) -> Any:
    """Run a Pipeline method step by step, each step a traced stage.

    This is what ``Pipeline.predict`` does (each transformer's ``transform``, then the final
    estimator's method); calls with keyword arguments (metadata routing) use the pipeline's own
    method unchanged.
    """

    def run(x: Any, **kwargs: Any) -> Any:
        if kwargs:
            return fallback(x, **kwargs)
        steps = pipeline.steps
        for name, step in steps[:-1]:
            if step is None or step == "passthrough":
                continue
            with trace_stage(name) as stage:
                stage.rows_in = _rows(x)
                x = step.transform(x)
                stage.rows_out = _rows(x)
        name, final = steps[-1]
        with trace_stage(name) as stage:
            stage.rows_in = _rows(x)
            out = getattr(final, method)(x)
            stage.rows_out = _rows(out)
        return out

    run.__name__ = method
    run.__doc__ = getattr(fallback, "__doc__", None)
    return run


def _rows(x: Any) -> int:
    return count_items(x)


def wrap_model(model: T, name: str, version: str = "unknown", **options: Any) -> T:
    """Instrument a model object: ``predict``, ``predict_proba``, ``transform``, ... and calls.

    Args:
        model: The model (scikit-learn estimator or Pipeline, torch module, anything with
            ``predict``).
        name: Model name.
        version: Model version.
        **options: Any :class:`~otel_ml.ModelMonitor` option (``reference=``, ...).

    Returns:
        A proxy that behaves as ``model``; ``proxy.monitor`` is its monitor.
    """
    if model is None:
        raise TypeError("wrap_model needs a model object, got None")
    return ModelProxy(model, ModelMonitor(name, version, **options))  # type: ignore[return-value]
