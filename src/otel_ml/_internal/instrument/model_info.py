"""set_model_info: the identity of a model object the zero-code instrumentors observe.

The instrumentors (``opentelemetry-instrument`` with the ``sklearn``, ``xgboost`` and
``lightgbm`` entry points) name every model from ``OTEL_ML_MODEL_NAME`` (or its class) and
``OTEL_ML_MODEL_VERSION``. A process that serves several models names each one here; the
identity is kept with the object (weakly: it goes when the model goes).
"""

from __future__ import annotations

import os
import threading
import weakref
from dataclasses import dataclass
from typing import Any

__all__ = ["ModelInfo", "model_info", "set_model_info"]


@dataclass(frozen=True)
class ModelInfo:
    """Who a model object is.

    Attributes:
        name: Model name (``ml.model.name``), or ``None``: the default.
        version: Model version (``ml.model.version``), or ``None``: the default.
        reference: Path of its reference profile, or ``None``: the default.
    """

    name: str | None = None
    version: str | None = None
    reference: str | None = None


_lock = threading.Lock()
_by_object: weakref.WeakKeyDictionary[Any, ModelInfo] = weakref.WeakKeyDictionary()
#: Models that cannot be weakly referenced: by id, with the object kept alive alongside.
_by_id: dict[int, tuple[Any, ModelInfo]] = {}


def _text(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{what} must not be empty")
    return value


def set_model_info(model: Any, *, name: str | None = None, version: str | None = None,
                   reference: str | os.PathLike[str] | None = None) -> None:
    """Name a model object for the zero-code instrumentors.

    Calls of this object's predict methods are recorded under this name and version, and
    compared with this reference, instead of ``OTEL_ML_MODEL_NAME``, ``OTEL_ML_MODEL_VERSION``
    and ``OTEL_ML_REFERENCE``. Call it before the model's first prediction: the model's
    monitor is made at its first call.

    Args:
        model: The model object (estimator, Pipeline, Booster).
        name: Model name; ``None`` keeps the default.
        version: Model version; ``None`` keeps the default.
        reference: Path of a reference profile saved with ``Reference.save``; ``None`` keeps
            the default.

    Raises:
        TypeError: ``model`` is ``None`` or an argument is not a string.
        ValueError: An argument is empty, or the reference file does not exist.
    """
    if model is None:
        raise TypeError("set_model_info needs a model object, got None")
    info = ModelInfo(_text(name, "name"), _text(version, "version"),
                     _text(reference, "reference"))
    if info.reference is not None and not os.path.isfile(info.reference):
        raise ValueError(f"reference file {info.reference!r} does not exist")
    with _lock:
        try:
            _by_object[model] = info
        except TypeError:  # not weakly referenceable
            _by_id[id(model)] = (model, info)


def model_info(model: Any) -> ModelInfo | None:
    """The identity given to ``model`` with :func:`set_model_info`, or ``None``. Never raises."""
    try:
        info = _by_object.get(model)
    except TypeError:
        entry = _by_id.get(id(model))
        info = entry[1] if entry is not None and entry[0] is model else None
    return info
