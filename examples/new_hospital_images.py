"""A new hospital joins with another scanner: image drift in its segment only.

    pip install 'otel-ml[demo]'
    python examples/new_hospital_images.py [--calls 60]

The handwritten digits bundled with scikit-learn (8x8 grey images) stand in for scans. A
classifier (scaler, PCA to 20 dimensions, logistic regression) is trained on part of them; its
reference profile holds the images' properties (``image.brightness``, ``image.contrast``,
``image.sharpness``...) and the PCA layer's output as embeddings. Hospitals A and B send
images like the training ones; hospital C's scanner gives lower contrast and a blur. The
monitor, segmented by hospital (a keyword argument of ``predict``), reports:

- drift of C's image properties, and none for A or B;
- multivariate drift (the image properties' joint distribution, and the embeddings) for C;
- accuracy per hospital once the labels arrive (C's falls).

With ``OTEL_EXPORTER_OTLP_ENDPOINT`` set, the metrics also go to that collector.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import numpy as np
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import otel_ml

HOSPITALS = ("A", "B", "C")


def scanner_c(images: np.ndarray) -> np.ndarray:
    """Hospital C's scanner: 60% of the contrast (around each image's mean), then a soft blur
    (half the image, half its 3x3 box blur)."""
    x = images.astype(np.float64)
    mean = x.mean(axis=(1, 2), keepdims=True)
    x = mean + 0.6 * (x - mean)
    pad = np.pad(x, ((0, 0), (1, 1), (1, 1)), mode="edge")
    h, w = images.shape[1:]
    blur = sum(pad[:, i:i + h, j:j + w] for i in range(3) for j in range(3)) / 9
    return np.rint(0.5 * x + 0.5 * blur).astype(np.uint8)


class Scenario:
    """The model, its reference, and traffic per hospital (also used by the e2e test).

    Args:
        seed: Seed of the split and of the traffic.
    """

    def __init__(self, seed: int = 0) -> None:
        digits = load_digits()
        images = np.rint(digits.images / 16 * 255).astype(np.uint8)
        self.train_x, self.pool_x, self.train_y, self.pool_y = train_test_split(
            images, digits.target, test_size=0.4, random_state=seed, stratify=digits.target)
        self.model = make_pipeline(StandardScaler(), PCA(20, random_state=seed),
                                   LogisticRegression(max_iter=2000))
        self.model.fit(self.flat(self.train_x), self.train_y)
        self.rng = np.random.default_rng(seed)

    @staticmethod
    def flat(images: np.ndarray) -> np.ndarray:
        return images.reshape(len(images), -1).astype(np.float64)

    def embeddings(self, images: np.ndarray) -> np.ndarray:
        """The model's penultimate layer: the PCA's 20 dimensions."""
        return self.model[:-1].transform(self.flat(images))

    def reference(self) -> otel_ml.Reference:
        predicted = self.model.predict(self.flat(self.train_x))
        return otel_ml.Reference.from_data(
            self.train_x, predictions=predicted, embeddings=self.embeddings(self.train_x),
            performance=otel_ml.reference_performance(self.train_y, predicted,
                                                      task="classification"))

    def monitor(self, **options: Any) -> otel_ml.ModelMonitor:
        return otel_ml.ModelMonitor(
            "xray-triage", "3", task="classification", reference=self.reference(),
            segment_by=lambda args, kwargs: kwargs.get("hospital"),
            embeddings=lambda args, kwargs, result: self.embeddings(args[0]), **options)

    def predict(self, images: np.ndarray, *, hospital: str,
                prediction_id: str | None = None) -> np.ndarray:
        """The served function (decorate it with the monitor)."""
        return self.model.predict(self.flat(images))

    def batch(self, hospital: str, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """``rows`` images of one hospital (drawn from the held-out pool) and their labels."""
        idx = self.rng.integers(0, len(self.pool_x), rows)
        images = self.pool_x[idx]
        return (scanner_c(images) if hospital == "C" else images), self.pool_y[idx]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=60, help="calls per hospital")
    parser.add_argument("--rows", type=int, default=32, help="images per call")
    args = parser.parse_args()

    reader = InMemoryMetricReader()
    exporting = bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    otel_ml.configure("new-hospital-example", exporter=None if exporting else "none",
                      metric_readers=[reader])
    scenario = Scenario()
    monitor = scenario.monitor()
    predict = monitor(scenario.predict)
    for call in range(args.calls):
        for hospital in HOSPITALS:
            images, labels = scenario.batch(hospital, args.rows)
            pid = f"{hospital}-{call}"
            predict(images, hospital=hospital, prediction_id=pid)
            monitor.record_outcome(pid, labels)  # labels arrive (here: at once)

    report = monitor.drift_report()
    print(f"{3 * args.calls} calls, {3 * args.calls * args.rows} images")
    for hospital in HOSPITALS:
        seg = report.segments[hospital]
        drifted = [f for f in seg.drifted_features if f.startswith("image.")]
        print(f"hospital {hospital}: drifted image properties: {', '.join(drifted) or 'none'}")
    for hospital in HOSPITALS:
        spaces = report.segments[hospital].multivariate["spaces"]
        parts = []
        for space in ("features", "embedding"):
            e = spaces[space]["reconstruction_error"]
            parts.append(f"{space} {'DRIFTED' if e['drifted'] else 'ok'} "
                         f"({e['value']:.2f} vs bound {e['upper']:.2f})")
        print(f"hospital {hospital}: multivariate: {'; '.join(parts)}")
    perf = monitor.performance_report()
    for hospital in HOSPITALS:
        print(f"hospital {hospital}: accuracy {perf.by_segment[hospital]['accuracy']:.3f}")
    otel_ml.shutdown()


if __name__ == "__main__":
    main()
