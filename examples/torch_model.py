"""A PyTorch model wrapped with otel_ml.wrap_model: calling the module is the instrumented predict.

    pip install 'otel-ml[demo]' torch
    python examples/torch_model.py

Trains a small network on the breast-cancer data bundled with scikit-learn, wraps the module
(``model(x)`` is instrumented, tensors are read through ``__array__``), and scores batches.
"""

from __future__ import annotations

import os
import sys

import numpy as np
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler

import otel_ml

try:
    import torch
    from torch import nn
except ImportError:
    sys.exit("this example needs PyTorch: pip install torch")


def main() -> None:
    reader = InMemoryMetricReader()
    exporting = bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    otel_ml.configure("torch-example", exporter=None if exporting else "none",
                      metric_readers=[reader])

    data = load_breast_cancer()
    X = StandardScaler().fit_transform(data.data).astype(np.float32)
    y = data.target.astype(np.float32)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(X.shape[1], 16), nn.ReLU(), nn.Linear(16, 1), nn.Sigmoid())
    optimiser = torch.optim.Adam(net.parameters(), lr=0.01)
    features, target = torch.from_numpy(X), torch.from_numpy(y)[:, None]
    for _ in range(200):
        optimiser.zero_grad()
        loss = nn.functional.binary_cross_entropy(net(features), target)
        loss.backward()
        optimiser.step()
    net.eval()

    with torch.no_grad():
        scores = net(features).numpy().ravel()
    reference = otel_ml.Reference.from_data(X, predictions=scores,
                                            feature_names=list(data.feature_names))
    model = otel_ml.wrap_model(net, "breast-cancer-net", "1.0.0", reference=reference,
                               task="classification")

    with torch.no_grad():
        for start in range(0, len(X), 32):
            model(features[start:start + 32])
    print(f"scored {len(X)} rows; drifted: "
          f"{model.monitor.drift_report().drifted_features or 'none'}")
    otel_ml.shutdown()


if __name__ == "__main__":
    main()
