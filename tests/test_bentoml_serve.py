"""BentoML: a real ``bentoml serve`` of ``examples/bentoml/service.py`` (a subprocess on
127.0.0.1) configured with ``otel_ml.integrations.bentoml.OtelMLMonitor``: its
``bentoml.monitor`` records become otel_ml's feature statistics and drift (against the
reference given in the monitor's options) and, with the labels of ``/feedback``, outcomes."""

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
SERVICE = ROOT / "examples" / "bentoml"
MODEL = "breast-cancer"
CALLS, ROWS = 10, 20


def _post(url: str, payload: dict) -> object:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"bentoml serve exited {proc.returncode}:\n"
                                 + log.read_text()[-3000:])
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError("bentoml serve not ready:\n" + log.read_text()[-3000:])


def test_bentoml_monitor_records_feed_statistics_drift_and_outcomes(tmp_path):
    pytest.importorskip("bentoml")
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import otel_ml

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    reference = tmp_path / "reference.json"
    otel_ml.Reference.from_data(X, predictions=model.predict(X)).save(reference)

    port = free_port()
    with OTLPReceiver("http") as receiver:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env.update({"PYTHONPATH": str(ROOT / "src"), "OTEL_ML_REFERENCE": str(reference),
                    "BENTOML_DO_NOT_TRACK": "true", "BENTOML_HOME": str(tmp_path / "bentoml"),
                    "OTEL_SERVICE_NAME": "bentoml-test",
                    "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                    "OTEL_METRIC_EXPORT_INTERVAL": "500", "OTEL_ML_SYSTEM_METRICS": "false",
                    "PATH": os.pathsep.join([str(Path(sys.executable).parent),
                                             env.get("PATH", "")])})
        log = tmp_path / "serve.log"
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [str(Path(sys.executable).parent / "bentoml"), "serve", "service:Cancer",
                 "--host", "127.0.0.1", "--port", str(port)], cwd=SERVICE, env=env,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_ready(f"{base}/readyz", proc, log)
            shifted = X.assign(**{"mean radius": X["mean radius"] * 1.6})
            for i in range(CALLS):
                rows = shifted.iloc[i * ROWS:(i + 1) * ROWS]
                answer = _post(f"{base}/predict", {"rows": rows.to_dict(orient="records")})
                assert answer == model.predict(rows).tolist()  # the service's own result
            served = shifted.iloc[:CALLS * ROWS]
            assert _post(f"{base}/feedback", {"predictions": model.predict(served).tolist(),
                                              "labels": y.iloc[:CALLS * ROWS].tolist()}) \
                == CALLS * ROWS

            def last(name: str) -> dict:
                out = {}
                for p in receiver.metric_points(name):
                    if p.attributes.get("ml.model.name") == MODEL:
                        out[tuple(sorted(p.attributes.items()))] = p.value
                return out

            def drifted():
                values = {dict(k)["ml.feature.name"]: v for k, v in
                          last("ml.feature.drifted").items()}
                return values if values.get("mean radius") == 1 else None
            values = receiver.wait_for(drifted, timeout=40)
            assert values["mean texture"] == 0

            def radius() -> float:  # every served row counted once, in its bin
                return sum(v for k, v in last("ml.feature.observations").items()
                           if dict(k)["ml.feature.name"] == "mean radius")
            receiver.wait_for(lambda: radius() >= CALLS * ROWS, timeout=20)
            assert radius() == CALLS * ROWS
            receiver.wait_for(lambda: sum(last("ml.model.outcomes").values()) >= CALLS * ROWS,
                              timeout=20)
            assert sum(last("ml.model.outcomes").values()) == CALLS * ROWS
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
