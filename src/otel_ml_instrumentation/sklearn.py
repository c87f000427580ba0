"""``SklearnInstrumentor``: scikit-learn models observed by otel_ml, with no code change.

Patched when the application imports scikit-learn (``sklearn.base``), public methods only:
``predict``, ``predict_proba``, ``predict_log_proba``, ``decision_function`` and ``transform``
of every estimator class scikit-learn defines (classes of modules the application imports
later are patched as they are defined). The outermost call is a predict call of the model's
monitor; a ``Pipeline``'s steps are its stages; an ensemble's sub-estimators and trees, and
the predictions ``fit``, ``fit_transform``, ``fit_predict``, ``partial_fit`` and ``score`` make,
record nothing. ``joblib.Parallel`` tasks started inside a call run in its context (worker
threads and processes of ``n_jobs=2`` keep the trace and record no calls of their own).

Entry point name: ``sklearn`` (``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=sklearn`` turns it off).
"""

from __future__ import annotations

from typing import Any

from otel_ml_instrumentation._library import LibraryInstrumentor

__all__ = ["SklearnInstrumentor"]

#: Methods that train or evaluate: the predictions they make inside are not served ones.
TRAINING = ("fit", "partial_fit", "fit_transform", "fit_predict", "score")


class SklearnInstrumentor(LibraryInstrumentor):
    """Instrumentor for scikit-learn (``SklearnInstrumentor().instrument()``)."""

    library = "sklearn.base"
    requirements = ("scikit-learn >= 1.3",)

    @staticmethod
    def patch(module: Any, calls: Any, patcher: Any) -> None:
        """Patch the estimator classes defined so far and from now on, and ``joblib``."""
        import joblib  # scikit-learn's own dependency, imported by sklearn.base's imports

        from otel_ml._internal.instrument.auto_patch import subclasses
        from otel_ml._internal.instrument.joblib_context import parallel_call_wrapper
        from otel_ml._internal.instrument.proxy import METHODS

        predict = {m: calls.predict_wrapper(m, output) for m, output in METHODS.items()}

        done: set[type] = set()

        def patch_class(cls: type) -> None:
            # The class and its bases: predict methods often live on mixins
            # (``LinearClassifierMixin.predict``) that do not derive from BaseEstimator.
            for klass in cls.__mro__:
                # Only scikit-learn's own classes: xgboost's, lightgbm's and the user's are not.
                if klass in done or not klass.__module__.startswith("sklearn."):
                    continue
                done.add(klass)
                for method, wrapper in predict.items():
                    patcher.wrap(klass, method, wrapper)
                for method in TRAINING:
                    patcher.wrap(klass, method, calls.training_wrapper)

        for value in list(vars(module).values()):  # the mixins: fit_transform, score, ...
            if isinstance(value, type):
                patch_class(value)
        for cls in list(subclasses(module.BaseEstimator)):
            patch_class(cls)
        patcher.on_subclass(module.BaseEstimator, patch_class)
        patcher.wrap(joblib.Parallel, "__call__", parallel_call_wrapper)
