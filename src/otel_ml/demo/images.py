"""``otel-ml demo --images``: the new-hospital scenario on images, with plain live lines.

scikit-learn's bundled digits (8x8 grey images) stand in for scans; a classifier (scaler, PCA
to 20 dimensions, logistic regression) is served through otel_ml with the hospital as the
call's segment and the PCA layer as embeddings. Phase "normal": hospitals A and B send images
like the training ones. Phase "new-scanner": hospital C joins, its scanner giving lower
contrast and a blur. Each second a line shows, per hospital, the drifted image properties, the
multivariate verdict (image properties and embeddings) and the accuracy of the labelled
predictions; the image properties drift in C only.
"""

from __future__ import annotations

import os
import sys
import time
from typing import IO, Any

import numpy as np

from otel_ml import ModelMonitor, Reference, reference_performance

__all__ = ["ImageScenario", "run_image_demo", "scanner_c"]

MODEL_NAME = "xray-triage"
MODEL_VERSION = "3"


def scanner_c(images: np.ndarray) -> np.ndarray:
    """Hospital C's scanner: 60% of the contrast (around each image's mean), then a soft blur
    (half the image, half its 3x3 box blur)."""
    x = images.astype(np.float64)
    x = x.mean(axis=(1, 2), keepdims=True) + 0.6 * (x - x.mean(axis=(1, 2), keepdims=True))
    pad = np.pad(x, ((0, 0), (1, 1), (1, 1)), mode="edge")
    h, w = images.shape[1:]
    blur = sum(pad[:, i:i + h, j:j + w] for i in range(3) for j in range(3)) / 9
    return np.rint(0.5 * x + 0.5 * blur).astype(np.uint8)


class ImageScenario:
    """The model, its reference and each hospital's images.

    Args:
        seed: Seed of the split and of the traffic.
    """

    def __init__(self, seed: int = 0) -> None:
        from sklearn.datasets import load_digits
        from sklearn.decomposition import PCA
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import train_test_split
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        digits = load_digits()
        images = np.rint(digits.images / 16 * 255).astype(np.uint8)
        self.train_x, self.pool_x, self.train_y, self.pool_y = train_test_split(
            images, digits.target, test_size=0.4, random_state=seed, stratify=digits.target)
        self.model = make_pipeline(StandardScaler(), PCA(20, random_state=seed),
                                   LogisticRegression(max_iter=2000))
        self.model.fit(_flat(self.train_x), self.train_y)
        self.rng = np.random.default_rng(seed)

    def embeddings(self, images: np.ndarray) -> np.ndarray:
        """The model's penultimate layer (the PCA's 20 dimensions)."""
        return self.model[:-1].transform(_flat(images))

    def monitor(self, **options: Any) -> ModelMonitor:
        predicted = self.model.predict(_flat(self.train_x))
        reference = Reference.from_data(
            self.train_x, predictions=predicted, embeddings=self.embeddings(self.train_x),
            performance=reference_performance(self.train_y, predicted, task="classification"))
        return ModelMonitor(MODEL_NAME, MODEL_VERSION, task="classification",
                            reference=reference,
                            segment_by=lambda args, kwargs: kwargs.get("hospital"),
                            embeddings=lambda args, kwargs, result: self.embeddings(args[0]),
                            **options)

    def predict(self, images: np.ndarray, *, hospital: str,
                prediction_id: str | None = None) -> np.ndarray:
        """The served function."""
        return self.model.predict(_flat(images))

    def batch(self, hospital: str, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """``rows`` images of one hospital and their labels."""
        idx = self.rng.integers(0, len(self.pool_x), rows)
        images = self.pool_x[idx]
        return (scanner_c(images) if hospital == "C" else images), self.pool_y[idx]


def _flat(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1).astype(np.float64)


def status_line(monitor: ModelMonitor, phase: str, calls: int) -> str:
    """One line: per hospital, drifted image properties, multivariate verdict, accuracy."""
    report = monitor.drift_report()
    perf = monitor.performance_report()
    parts = []
    for hospital, seg in sorted(report.segments.items()):
        drifted = [f.removeprefix("image.") for f in seg.drifted_features
                   if f.startswith("image.")]
        mv = seg.multivariate.get("spaces", {})
        joint = [s for s, q in mv.items() if q["reconstruction_error"]["drifted"]]
        accuracy = perf.by_segment.get(hospital, {}).get("accuracy")
        acc = f" acc {accuracy:.2f}" if accuracy is not None else ""
        parts.append(f"{hospital}: drift {','.join(drifted) or 'none'}; "
                     f"joint {','.join(joint) or 'ok'}{acc}")
    return f"[{phase:<11}] {calls:>5} calls | " + " | ".join(parts)


def run_image_demo(duration_s: float = 30.0, rate: float = 20.0, seed: int = 0,
                   otlp: str | None = None, out: IO[str] | None = None,
                   rows: int = 32) -> ModelMonitor:
    """Run the image scenario for ``duration_s`` seconds (half normal, half with hospital C)
    at ``rate`` calls a second, printing a status line each second; return the monitor."""
    out = out or sys.stdout
    endpoint = otlp or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    options: dict[str, Any] = {"drift_window_s": max(30.0, duration_s), "slot_s": 1.0}
    if endpoint:
        from otel_ml._internal.core.config import configure

        telemetry = configure("otel-ml-demo-images", endpoint=otlp, export_interval_ms=5000,
                              force=True)
        options.update(meter_provider=telemetry.meter_provider,
                       tracer_provider=telemetry.tracer_provider)
    scenario = ImageScenario(seed)
    monitor = scenario.monitor(**options)
    predict = monitor(scenario.predict)
    print(f"otel-ml demo --images: {MODEL_NAME} on scikit-learn's digits; hospitals A and B, "
          f"then C joins with another scanner; telemetry "
          f"{'exported over OTLP to ' + endpoint if endpoint else 'in process'}", file=out)
    start = time.monotonic()
    calls = 0
    next_line = start + 1.0
    while True:
        now = time.monotonic()
        if now - start >= duration_s:
            break
        phase = "normal" if now - start < duration_s / 2 else "new-scanner"
        hospitals = ("A", "B") if phase == "normal" else ("A", "B", "C")
        hospital = hospitals[calls % len(hospitals)]
        images, labels = scenario.batch(hospital, rows)
        pid = f"{hospital}-{calls}"
        predict(images, hospital=hospital, prediction_id=pid)
        monitor.record_outcome(pid, labels)
        calls += 1
        if now >= next_line:
            print(status_line(monitor, phase, calls), file=out, flush=True)
            next_line = now + 1.0
        time.sleep(max(0.0, start + calls / rate - time.monotonic()))
    print(status_line(monitor, "end", calls), file=out, flush=True)
    return monitor
