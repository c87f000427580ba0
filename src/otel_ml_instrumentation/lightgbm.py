"""``LightGBMInstrumentor``: LightGBM models observed by otel_ml, with no code change.

Patched when the application imports ``lightgbm``, public methods only: ``Booster.predict``
and the scikit-learn API's ``predict`` and ``predict_proba`` of ``LGBMModel`` and its
subclasses in ``lightgbm``. The outermost call is recorded (``LGBMClassifier.predict`` is one
call, not also the ``predict_proba`` and ``Booster.predict`` inside); ``fit`` records nothing.

Entry point name: ``lightgbm``.
"""

from __future__ import annotations

from typing import Any

from otel_ml_instrumentation._library import LibraryInstrumentor

__all__ = ["LightGBMInstrumentor"]

_MODEL = {"predict": "auto", "predict_proba": "proba"}
_TRAINING = ("fit",)


class LightGBMInstrumentor(LibraryInstrumentor):
    """Instrumentor for LightGBM (``LightGBMInstrumentor().instrument()``)."""

    library = "lightgbm"
    requirements = ("lightgbm >= 3.3",)

    @staticmethod
    def patch(module: Any, calls: Any, patcher: Any) -> None:
        """Patch ``lightgbm.Booster`` and ``lightgbm.LGBMModel`` with its subclasses."""
        from otel_ml._internal.instrument.auto_patch import subclasses

        patcher.wrap(module.Booster, "predict", calls.predict_wrapper("predict", "auto"))
        for cls in list(subclasses(module.LGBMModel)):
            if not cls.__module__.startswith("lightgbm"):
                continue
            for method, output in _MODEL.items():
                patcher.wrap(cls, method, calls.predict_wrapper(method, output))
            for method in _TRAINING:
                patcher.wrap(cls, method, calls.training_wrapper)
