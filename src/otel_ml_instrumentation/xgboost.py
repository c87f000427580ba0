"""``XGBoostInstrumentor``: XGBoost models observed by otel_ml, with no code change.

Patched when the application imports ``xgboost``, public methods only: ``Booster.predict``,
``Booster.inplace_predict`` and the scikit-learn API's ``predict`` and ``predict_proba`` of
``XGBModel`` and its subclasses in ``xgboost``. The
outermost call is recorded (``XGBClassifier.predict_proba`` is one call, not also the
``Booster`` call inside); ``fit`` records nothing.

Entry point name: ``xgboost``.
"""

from __future__ import annotations

from typing import Any

from otel_ml_instrumentation._library import LibraryInstrumentor

__all__ = ["XGBoostInstrumentor"]

_BOOSTER = {"predict": "auto", "inplace_predict": "auto"}
_MODEL = {"predict": "auto", "predict_proba": "proba"}
_TRAINING = ("fit",)


class XGBoostInstrumentor(LibraryInstrumentor):
    """Instrumentor for XGBoost (``XGBoostInstrumentor().instrument()``)."""

    library = "xgboost"
    requirements = ("xgboost >= 1.7",)

    @staticmethod
    def patch(module: Any, calls: Any, patcher: Any) -> None:
        """Patch ``xgboost.Booster`` and ``xgboost.XGBModel`` with its subclasses."""
        from otel_ml._internal.instrument.auto_patch import subclasses

        for method, output in _BOOSTER.items():
            patcher.wrap(module.Booster, method, calls.predict_wrapper(method, output))
        for cls in list(subclasses(module.XGBModel)):
            if not cls.__module__.startswith("xgboost"):
                continue
            for method, output in _MODEL.items():
                patcher.wrap(cls, method, calls.predict_wrapper(method, output))
            for method in _TRAINING:
                patcher.wrap(cls, method, calls.training_wrapper)
