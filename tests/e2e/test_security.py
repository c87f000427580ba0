"""OTLP over TLS with a bearer token, configured only through the standard variables, against the
real Collector (our build) running the shipped ``collector/config.yaml`` + ``config.auth.yaml``
(the ``bearertokenauth`` extension) + a TLS overlay written here with a self-signed certificate.

* the right token over TLS: metrics reach the Collector's Prometheus exporter and spans are
  accepted (its own ``otelcol_receiver_accepted_spans`` counter), over gRPC and HTTP;
* a wrong token, no token, or a client that does not trust the certificate: nothing is
  accepted, and the application still runs to completion with its results unchanged.

Each client is a fresh Python process, so ``OTEL_*`` variables are read exactly as a service
would read them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from stack import harness

pytestmark = pytest.mark.e2e

TOKEN = "s3cret-" + uuid.uuid4().hex
CALLS = 25

CLIENT = textwrap.dedent("""
    import sys
    import otel_ml

    name = sys.argv[1]
    otel_ml.configure("secure-svc", export_interval_ms=200, system_metrics=False)
    predict = otel_ml.instrument_model(name=name, version="1")(lambda X: [r[0] * 2 for r in X])
    for i in range(CALLS):
        assert predict([[float(i)], [1.0]]) == [2.0 * i, 2.0]
    otel_ml.shutdown(timeout_s=5)
    print("client ok")
""").replace("CALLS", str(CALLS))


def make_certificate(directory: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        harness.stack_skip_or_fail("openssl is needed to make a test certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
                    "-days", "1", "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert),
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture(scope="module")
def secure_collector(tmp_path_factory):
    binaries = harness.require_binaries("otelcol")
    workdir = tmp_path_factory.mktemp("otelcol-secure")
    cert, key = make_certificate(workdir)
    overlay = workdir / "tls.yaml"
    tls = {"tls": {"cert_file": str(cert), "key_file": str(key)}}
    overlay.write_text(json.dumps({"receivers": {"otlp": {"protocols": {"grpc": tls,
                                                                         "http": tls}}}}))
    collector = harness.Collector(
        binaries.otelcol, workdir,
        jaeger_otlp_endpoint=f"127.0.0.1:{harness.free_port()}",  # traces go nowhere further
        configs=[harness.COLLECTOR_CONFIG, harness.COLLECTOR_AUTH_CONFIG, overlay],
        env={"OTEL_ML_COLLECTOR_BEARER_TOKEN": TOKEN})
    collector.start()
    try:
        yield collector, cert
    finally:
        collector.stop()


def run_client(model: str, protocol: str, endpoint: str, *, token: str | None,
               certificate: Path | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's CA file, so with
    # either set the HTTP exporter would ignore OTEL_EXPORTER_OTLP_CERTIFICATE.
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        env.pop(variable, None)
    env.update(OTEL_EXPORTER_OTLP_PROTOCOL=protocol, OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
               OTEL_EXPORTER_OTLP_TIMEOUT="3")
    if token is not None:
        env["OTEL_EXPORTER_OTLP_HEADERS"] = f"authorization=Bearer%20{token}"
    if certificate is not None:
        env["OTEL_EXPORTER_OTLP_CERTIFICATE"] = str(certificate)
    out = subprocess.run([sys.executable, "-c", CLIENT, model], env=env, capture_output=True,
                         text=True, timeout=90, check=False)
    assert out.returncode == 0 and "client ok" in out.stdout, out.stderr[-3000:]
    return out


def calls_exported(collector: harness.Collector, model: str) -> float | None:
    labels = r'[^}]*ml_model_name="' + re.escape(model) + r'"[^}]*'
    pattern = re.compile(r"^ml_model_predict_calls_total\{" + labels + r"\}\s+(\S+)", re.MULTILINE)
    match = pattern.search(collector.scrape())
    return float(match.group(1)) if match else None


def accepted_spans(collector: harness.Collector, transport: str) -> float:
    status, body = harness.http_get(f"http://{collector.telemetry_endpoint}/metrics")
    assert status == 200
    text = body.decode() if isinstance(body, bytes) else body
    total = 0.0
    for line in text.splitlines():
        if line.startswith("otelcol_receiver_accepted_spans") and f'transport="{transport}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def https(endpoint: str) -> str:
    return "https://" + endpoint


PROTOCOLS = [("grpc", "grpc", "grpc_endpoint"), ("http/protobuf", "http", "http_endpoint")]


@pytest.mark.parametrize(("protocol", "transport", "attr"), PROTOCOLS)
def test_tls_and_bearer_token_from_the_standard_variables(secure_collector, protocol, transport,
                                                         attr):
    collector, cert = secure_collector
    model = f"secure-{transport}-{uuid.uuid4().hex[:8]}"
    spans_before = accepted_spans(collector, transport)
    run_client(model, protocol, https(getattr(collector, attr)), token=TOKEN, certificate=cert)
    value = harness.wait_for(lambda: calls_exported(collector, model), timeout=20,
                             description=f"{model} calls in the collector's exporter")
    assert value == CALLS
    assert accepted_spans(collector, transport) - spans_before >= CALLS


@pytest.mark.parametrize(("protocol", "transport", "attr"), PROTOCOLS)
@pytest.mark.parametrize("case", ["wrong token", "no token", "untrusted certificate"])
def test_refused_clients_deliver_nothing_and_still_run(secure_collector, protocol, transport,
                                                       attr, case):
    collector, cert = secure_collector
    model = f"refused-{transport}-{uuid.uuid4().hex[:8]}"
    spans_before = accepted_spans(collector, transport)
    token = {"wrong token": "not-the-token", "no token": None}.get(case, TOKEN)
    certificate = None if case == "untrusted certificate" else cert
    start = time.monotonic()
    run_client(model, protocol, https(getattr(collector, attr)), token=token,
               certificate=certificate)
    assert time.monotonic() - start < 60  # shutdown stays bounded while every export fails
    time.sleep(1.5)  # longer than the collector's batch timeout: anything accepted would show
    assert calls_exported(collector, model) is None
    assert accepted_spans(collector, transport) == spans_before
