"""MLflow: a pyfunc model observed by otel_ml, served with ``mlflow models serve`` unchanged.

``log_model``/``save_model`` store an :class:`ObservedModel`: an MLflow ``PythonModel`` that
holds the user's model (any object with ``predict``, or an MLflow model URI loaded at serving
time) and a reference profile as an artifact. When the scoring server loads it, it configures
OpenTelemetry from the standard ``OTEL_*`` variables (unless the process already has an SDK,
e.g. under ``opentelemetry-instrument``) and makes a :class:`otel_ml.ModelMonitor`; every
``/invocations`` request is then a predict call with its spans, metrics, feature statistics
and drift::

    from otel_ml.integrations import mlflow as otel_mlflow
    otel_mlflow.log_model(pipeline, name="model", model_name="churn", model_version="2.1.0",
                          reference="reference.json")
    # then, unchanged:
    OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf \\
        mlflow models serve -m runs:/<run>/model --env-manager local

Needs ``pip install 'otel-ml[mlflow]'`` (``mlflow-skinny`` is enough).
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

try:
    import mlflow.pyfunc
except ImportError as exc:  # a setup error: say what to install
    raise ImportError("otel_ml.integrations.mlflow needs MLflow: "
                      "pip install 'otel-ml[mlflow]'") from exc

from otel_ml._internal.core.config import configure
from otel_ml._internal.instrument.model_monitor import ModelMonitor
from otel_ml._internal.reference.profile import Reference

__all__ = ["ObservedModel", "log_model", "save_model"]

_MODEL = "model"
_REFERENCE = "reference"


class ObservedModel(mlflow.pyfunc.PythonModel):
    """An MLflow ``PythonModel`` whose ``predict`` is a predict call of an otel_ml monitor.

    Args:
        model: The model object (pickled with this one), or ``None`` when it is the
            ``"model"`` artifact (an MLflow model URI, loaded with ``mlflow.pyfunc.load_model``).
        model_name: Model name (``ml.model.name``).
        model_version: Model version (``ml.model.version``).
        method: The model's method to call (``predict``, ``predict_proba``, ...).
        monitor_options: Further :class:`otel_ml.ModelMonitor` options (``task=``, ...).
    """

    def __init__(self, model: Any, model_name: str, model_version: str = "unknown",
                 method: str = "predict", **monitor_options: Any) -> None:
        if not model_name:
            raise ValueError("model_name must not be empty")
        self.model = model
        self.model_name = model_name
        self.model_version = model_version
        self.method = method
        self.monitor_options = monitor_options
        self._predict: Any = None

    def load_context(self, context: Any) -> None:
        """Load the model, set up OpenTelemetry (once per process) and the monitor."""
        artifacts = dict(getattr(context, "artifacts", None) or {})
        model = self.model
        if model is None:
            model = mlflow.pyfunc.load_model(artifacts[_MODEL])
        configure(service_name=f"mlflow-{self.model_name}")
        monitor = ModelMonitor(self.model_name, self.model_version,
                               reference=artifacts.get(_REFERENCE), **self.monitor_options)
        output = "proba" if self.method == "predict_proba" else "auto"
        self._predict = monitor.instrument_method(getattr(model, self.method), self.method, output)
        self.monitor = monitor

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        # No type hints: MLflow 3 would derive the model's input schema from them.
        """The model's prediction (the call is recorded; its exceptions propagate unchanged)."""
        if self._predict is None:
            self.load_context(context)
        return self._predict(model_input)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_predict"] = None  # made again by load_context in the serving process
        state.pop("monitor", None)
        return state


def _observed(model: Any, model_name: str, model_version: str, reference: Any, method: str,
              options: dict, tmp: str) -> tuple[Any, dict[str, str]]:
    artifacts: dict[str, str] = {}
    if isinstance(model, (str, os.PathLike)):
        artifacts[_MODEL] = os.fspath(model)
        model = None
    if reference is not None:
        if isinstance(reference, Reference):
            path = os.path.join(tmp, "reference.json")
            reference.save(path)
            reference = path
        artifacts[_REFERENCE] = os.fspath(reference)
    return ObservedModel(model, model_name, model_version, method, **options), artifacts


def log_model(model: Any, *, name: str = "model", model_name: str, model_version: str = "unknown",
              reference: Reference | str | os.PathLike[str] | None = None,
              method: str = "predict", monitor_options: dict | None = None,
              **log_kwargs: Any) -> Any:
    """Log ``model`` as an MLflow pyfunc model observed by otel_ml when served.

    Args:
        model: The model object (anything with ``method``), or an MLflow model URI.
        name: The logged model's name in the run (``mlflow.pyfunc.log_model(name=)``).
        model_name: ``ml.model.name`` of the served model.
        model_version: ``ml.model.version``.
        reference: A :class:`otel_ml.Reference` or a path to one: stored as an artifact.
        method: The method each request calls.
        monitor_options: Further :class:`otel_ml.ModelMonitor` options.
        **log_kwargs: Passed to ``mlflow.pyfunc.log_model`` (``input_example=``, ...).

    Returns:
        What ``mlflow.pyfunc.log_model`` returns (its ``model_uri`` serves it).
    """
    with tempfile.TemporaryDirectory() as tmp:
        python_model, artifacts = _observed(model, model_name, model_version, reference, method,
                                            monitor_options or {}, tmp)
        return mlflow.pyfunc.log_model(name=name, python_model=python_model,
                                       artifacts=artifacts or None, **log_kwargs)


def save_model(path: str | os.PathLike[str], model: Any, *, model_name: str,
               model_version: str = "unknown",
               reference: Reference | str | os.PathLike[str] | None = None,
               method: str = "predict", monitor_options: dict | None = None,
               **save_kwargs: Any) -> None:
    """:func:`log_model` into a local directory (``mlflow models serve -m <path>``)."""
    with tempfile.TemporaryDirectory() as tmp:
        python_model, artifacts = _observed(model, model_name, model_version, reference, method,
                                            monitor_options or {}, tmp)
        mlflow.pyfunc.save_model(os.fspath(path), python_model=python_model,
                                 artifacts=artifacts or None, **save_kwargs)
