"""Zero-code instrumentation of scikit-learn, XGBoost and LightGBM for ``opentelemetry-instrument``.

Each module holds one ``BaseInstrumentor`` registered under the ``opentelemetry_instrumentor``
entry point group (``sklearn``, ``xgboost``, ``lightgbm``)::

    pip install 'otel-ml[auto,sklearn]'
    OTEL_ML_MODEL_NAME=churn OTEL_ML_MODEL_VERSION=2.1.0 OTEL_ML_REFERENCE=ref.json \\
        opentelemetry-instrument python serve.py

This package is separate from ``otel_ml`` so that starting a process costs almost nothing:
``opentelemetry-instrument`` loads every installed instrumentor, and importing ``otel_ml``
(numpy, scipy) takes most of a second. Here ``instrument()`` reads the environment and
registers an import hook; the library is patched, and ``otel_ml`` imported, only when the
application imports the library. Nothing is imported that the application does not import.
"""

__all__: list[str] = []
