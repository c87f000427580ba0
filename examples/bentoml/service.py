"""A BentoML service whose bentoml.monitor records go to otel_ml (no otel_ml import here).

    cd examples/bentoml
    OTEL_ML_REFERENCE=reference.json OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 \\
    OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf bentoml serve service:Cancer

The service's ``monitoring`` configuration names the monitor class
(``otel_ml.integrations.bentoml.OtelMLMonitor``) and its options; ``/predict`` logs the
features and the predictions, ``/feedback`` the labels with the predictions they belong to.
"""

from __future__ import annotations

import os

import bentoml
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

MONITOR = "breast-cancer"

#: BentoML's monitoring configuration (the same keys work under ``monitoring:`` in a
#: service's configuration). ``reference``: a profile saved with ``otel_ml.Reference.save``.
MONITORING = {
    "enabled": True,
    "type": "otel_ml.integrations.bentoml.OtelMLMonitor",
    "options": {"model_name": "breast-cancer", "model_version": "1.0.0",
                "reference": os.environ.get("OTEL_ML_REFERENCE")},
}


@bentoml.service(monitoring=MONITORING)
class Cancer:
    """A classifier trained at start-up on scikit-learn's bundled breast cancer data."""

    def __init__(self) -> None:
        X, y = load_breast_cancer(return_X_y=True, as_frame=True)
        self.features = list(X.columns)
        self.model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)

    @bentoml.api
    def predict(self, rows: list[dict[str, float]]) -> list[int]:
        """Predict a batch of rows (feature name -> value) and log them to the monitor."""
        frame = pd.DataFrame(rows, columns=self.features)
        predictions = self.model.predict(frame).tolist()
        with bentoml.monitor(MONITOR) as mon:
            for name in self.features:
                mon.log_batch(frame[name].tolist(), name=name, role="feature",
                              data_type="numerical")
            mon.log_batch(predictions, name="diagnosis", role="prediction",
                          data_type="categorical")
        return predictions

    @bentoml.api
    def feedback(self, predictions: list[int], labels: list[int]) -> int:
        """Labels that arrived later, with the predictions they belong to."""
        with bentoml.monitor(MONITOR) as mon:
            mon.log_batch(predictions, name="diagnosis", role="prediction",
                          data_type="categorical")
            mon.log_batch(labels, name="label", role="target", data_type="categorical")
        return len(labels)
