"""An async web service (Starlette) with an instrumented predict endpoint and a labels endpoint.

    pip install 'otel-ml[demo,web]'                        # starlette, httpx, uvicorn
    python examples/starlette_service.py                   # exercises the app in process
    python examples/starlette_service.py --serve --port 8000
    curl -s localhost:8000/predict -d '{"rows": [{"sepal length (cm)": 5.1, ...}]}'
    curl -s localhost:8000/labels -d '{"prediction_id": "...", "label": 0}'

POST /predict   {"rows": [{feature: value, ...}, ...]} -> {"prediction_id", "predictions"}
POST /labels    {"prediction_id": ..., "label": ...}   (ground truth, when it is known)
GET  /health

The predict coroutine is decorated with ``otel_ml.instrument_model``: its span covers the
awaited work (not just creating the coroutine), and the prediction id the response returns is
the one the label must quote. Malformed requests are counted with ``record_rejected``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os

import numpy as np
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import otel_ml

IRIS = load_iris(as_frame=True)
FEATURES = list(IRIS.feature_names)
MODEL = RandomForestClassifier(n_estimators=30, random_state=0).fit(IRIS.data.to_numpy(), IRIS.target)
REFERENCE = otel_ml.Reference.from_data(IRIS.data, predictions=MODEL.predict(IRIS.data.to_numpy()))


# Stage objects are made once and reused by every request.
FEATURES_STAGE = otel_ml.trace_stage("features")
MODEL_STAGE = otel_ml.trace_stage("model")


@otel_ml.instrument_model(name="iris", version="1.0.0", reference=REFERENCE,
                          task="classification")
async def predict(rows: list[dict], prediction_id: str | None = None) -> list[int]:
    """Predict the species of each row; the model runs in a worker thread.

    ``prediction_id`` is read by the monitor: the label endpoint quotes it.
    """
    with FEATURES_STAGE:
        matrix = np.array([[float(row[name]) for name in FEATURES] for row in rows])
    with MODEL_STAGE:
        labels = await asyncio.to_thread(MODEL.predict, matrix)
    return [int(v) for v in labels]


async def predict_endpoint(request: Request) -> JSONResponse:
    try:
        payload = await request.json()
        rows = payload["rows"]
        if not isinstance(rows, list) or not rows or not all(
                isinstance(r, dict) and set(FEATURES) <= set(r) for r in rows):
            raise ValueError("rows must be a non-empty list of objects with every feature")
    except (ValueError, KeyError, TypeError) as exc:
        predict.monitor.record_rejected("invalid_payload")
        return JSONResponse({"error": str(exc), "features": FEATURES}, status_code=422)
    prediction_id = f"{request.headers.get('x-request-id') or os.urandom(8).hex()}"
    predictions = await predict(rows, prediction_id=prediction_id)
    return JSONResponse({"prediction_id": prediction_id, "predictions": predictions})


async def labels_endpoint(request: Request) -> JSONResponse:
    try:
        payload = await request.json()
        prediction_id, label = str(payload["prediction_id"]), payload["label"]
    except (ValueError, KeyError, TypeError) as exc:
        return JSONResponse({"error": f"expected prediction_id and label ({exc})"}, status_code=422)
    predict.monitor.record_outcome(prediction_id, label)
    return JSONResponse({"accepted": True}, status_code=202)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


app = Starlette(routes=[
    Route("/predict", predict_endpoint, methods=["POST"]),
    Route("/labels", labels_endpoint, methods=["POST"]),
    Route("/health", health),
])


def exercise(requests: int) -> None:
    """Send traffic to the app in process (no server) and print what the telemetry says."""
    asyncio.run(_exercise(requests))
    report = predict.monitor.performance_report()
    print(f"accuracy of labelled predictions: {report.metrics['accuracy']:.3f}")
    print(f"drifted features: {predict.monitor.drift_report().drifted_features or 'none'}")


async def _exercise(requests: int) -> None:
    import httpx

    rng = np.random.default_rng(0)
    # httpx calls the ASGI app directly, on this event loop (what a server would do).
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://example") as client:
        for _ in range(requests):
            idx = rng.integers(0, len(IRIS.target), size=int(rng.integers(1, 5)))
            rows = IRIS.data.iloc[idx].to_dict(orient="records")
            response = await client.post("/predict", json={"rows": rows})
            response.raise_for_status()
            body = response.json()
            # Ground truth arrives (here: at once) for the rows of this request.
            label = IRIS.target.iloc[idx].tolist()
            await client.post("/labels", json={"prediction_id": body["prediction_id"],
                                               "label": label if len(label) > 1 else label[0]})
        rejected = await client.post("/predict", json={"rows": [{"petal width (cm)": 1.0}]})
        print(f"{requests} requests served; a malformed one got HTTP {rejected.status_code}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="run a server (needs uvicorn)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--requests", type=int, default=50, help="requests sent in process")
    args = parser.parse_args()
    if args.serve and importlib.util.find_spec("uvicorn") is None:
        parser.exit(2, f"{parser.prog}: --serve needs uvicorn: pip install 'otel-ml[web]' "
                       "(or pip install uvicorn)\n")
    reader = InMemoryMetricReader()
    exporting = bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    otel_ml.configure("starlette-example", exporter=None if exporting else "none",
                      metric_readers=[reader])
    try:
        if args.serve:
            import uvicorn

            uvicorn.run(app, host="127.0.0.1", port=args.port)
        else:
            exercise(args.requests)
    finally:
        otel_ml.shutdown()


if __name__ == "__main__":
    main()
