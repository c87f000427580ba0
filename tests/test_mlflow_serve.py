"""MLflow: a model saved with ``otel_ml.integrations.mlflow.save_model`` and served by the real
``mlflow models serve`` (a subprocess on 127.0.0.1) exports its calls, spans and drift to the
OTLP test receiver; the scoring server itself is unchanged."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from otlp_receiver import OTLPReceiver, free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CALLS, ROWS = 12, 20


def _post(url: str, frame) -> dict:
    body = json.dumps({"dataframe_split": frame.to_dict(orient="split")}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"mlflow models serve exited {proc.returncode}:\n"
                                 + log.read_text()[-3000:])
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError("mlflow models serve did not answer /ping:\n" + log.read_text()[-3000:])


def test_mlflow_models_serve_exports_calls_spans_and_drift(tmp_path):
    pytest.importorskip("mlflow")
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import otel_ml
    from otel_ml.integrations import mlflow as otel_mlflow

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    reference = otel_ml.Reference.from_data(X, predictions=model.predict(X))
    saved = tmp_path / "model"
    otel_mlflow.save_model(saved, model, model_name="cancer-mlflow", model_version="4",
                           reference=reference)

    port = free_port()
    with OTLPReceiver("http") as receiver:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env.update({"PYTHONPATH": str(ROOT / "src"), "OTEL_SERVICE_NAME": "mlflow-test",
                    "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                    "OTEL_METRIC_EXPORT_INTERVAL": "500", "OTEL_BSP_SCHEDULE_DELAY": "200",
                    "OTEL_ML_SYSTEM_METRICS": "false",
                    # mlflow runs `uvicorn` by name: the venv's bin as an activated venv has it
                    "PATH": os.pathsep.join([str(Path(sys.executable).parent),
                                             env.get("PATH", "")])})
        log = tmp_path / "serve.log"
        mlflow_cmd = str(Path(sys.executable).parent / "mlflow")
        with open(log, "w") as out:
            proc = subprocess.Popen([mlflow_cmd, "models", "serve", "-m", str(saved),
                                     "--env-manager", "local", "-h", "127.0.0.1",
                                     "-p", str(port)], env=env, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_ready(f"{base}/ping", proc, log)
            shifted = X.assign(**{"mean radius": X["mean radius"] * 1.6})
            answers = [_post(f"{base}/invocations", shifted.iloc[i * ROWS:(i + 1) * ROWS])
                       for i in range(CALLS)]
            assert all(len(a["predictions"]) == ROWS for a in answers)
            expected = model.predict(shifted.iloc[:ROWS]).tolist()
            assert answers[0]["predictions"] == expected  # the result is the model's, unchanged

            def calls():
                points = receiver.metric_points("ml.model.predict.calls")
                return sum(p.value for p in points[-5:]
                           if p.attributes.get("ml.model.name") == "cancer-mlflow") >= CALLS
            receiver.wait_for(calls, timeout=30)
            receiver.wait_for(lambda: len([s for _, s in receiver.spans()
                                           if s.name == "ml.predict cancer-mlflow"]) >= CALLS,
                              timeout=30)

            def drifted():
                last = {}
                for p in receiver.metric_points("ml.feature.drifted"):
                    if p.attributes.get("ml.model.name") == "cancer-mlflow":
                        last[p.attributes["ml.feature.name"]] = p.value
                return last if last.get("mean radius") == 1 else None
            last = receiver.wait_for(drifted, timeout=30)
            assert last["mean texture"] == 0
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
