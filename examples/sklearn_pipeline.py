"""A scikit-learn Pipeline wrapped with otel_ml.wrap_model: every step becomes a traced stage.

    pip install 'otel-ml[demo]'
    python examples/sklearn_pipeline.py            # telemetry stays in process; a summary is printed
    OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 python examples/sklearn_pipeline.py

It trains on the breast-cancer data bundled with scikit-learn (no download), saves a reference
profile of the training data, scores the test set in small batches, then a batch whose
``mean radius`` was measured 30% high, and prints what the telemetry says.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from sklearn.datasets import load_breast_cancer
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import otel_ml


def main() -> None:
    # 1. Telemetry: OTLP when an endpoint is set, otherwise only the in-process reader below.
    reader = InMemoryMetricReader()
    exporting = bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    otel_ml.configure("sklearn-example", exporter=None if exporting else "none",
                      metric_readers=[reader])

    # 2. Train a three-step pipeline.
    data = load_breast_cancer(as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.3, random_state=0, stratify=data.target)
    pipeline = Pipeline([("scale", StandardScaler()), ("reduce", PCA(n_components=10)),
                         ("classify", LogisticRegression(max_iter=1000))])
    pipeline.fit(X_train, y_train)

    # 3. Reference profile of the training data (saved as JSON: bins and frequencies, no rows).
    reference = otel_ml.Reference.from_data(X_train, predictions=pipeline.predict(X_train))
    path = os.path.join(tempfile.mkdtemp(), "reference.json")
    reference.save(path)

    # 4. Wrap: predict and predict_proba are instrumented, each pipeline step is a stage span.
    model = otel_ml.wrap_model(pipeline, "breast-cancer", "1.0.0", reference=path,
                               task="classification")
    predictions = [model.predict(X_test.iloc[i:i + 16]) for i in range(0, len(X_test), 16)]
    model.predict_proba(X_test.iloc[:8])
    print(f"scored {len(X_test)} rows in {len(predictions)} calls; "
          f"drifted so far: {model.monitor.drift_report().drifted_features or 'none'}")

    # 5. A batch from a miscalibrated instrument: 'mean radius' reads 30% high.
    shifted = X_test.copy()
    shifted["mean radius"] = shifted["mean radius"] * 1.3
    for _ in range(5):
        model.predict(shifted)
    report = model.monitor.drift_report()
    print(f"after the miscalibrated batches, drifted: {', '.join(report.drifted_features)}")

    # 6. Labels: the test set's truth, joined with the predictions made for it.
    model.monitor.record_outcomes(y_test.to_numpy(), np.concatenate(predictions))
    accuracy = model.monitor.performance_report().metrics["accuracy"]
    print(f"accuracy on labelled predictions: {accuracy:.3f}")

    # 7. What an exporter sends: stage spans became metrics too.
    stages = set()
    data_points = reader.get_metrics_data()
    for rm in data_points.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == "ml.pipeline.stage.duration":
                    stages.update(p.attributes["ml.stage.name"] for p in metric.data.data_points)
    print(f"traced stages: {', '.join(sorted(stages))}")
    otel_ml.shutdown()


if __name__ == "__main__":
    main()
