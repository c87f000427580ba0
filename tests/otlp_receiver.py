"""A real OTLP receiver on 127.0.0.1 whose behaviour the tests control.

It speaks OTLP/HTTP (protobuf over ``http.server`` in a thread) or OTLP/gRPC (the services of
``opentelemetry-proto`` on a ``grpc`` server), decodes every ``ExportMetricsServiceRequest`` and
``ExportTraceServiceRequest`` it accepts, and records them. Modes, switchable at any time:

* ``"normal"``: answer 200 / OK at once;
* ``"delay"``: hold every request ``delay_s`` seconds, then answer (released early by ``stop()``);
* ``"unavailable"``: answer HTTP 503 / gRPC ``UNAVAILABLE`` (what a collector under memory
  pressure does; exporters retry it);
* ``down()`` / ``up()``: stop listening (connections are refused) and listen again on the same
  port, so exporters configured with the endpoint recover by themselves.

A port nobody listens on is :func:`closed_endpoint`; a socket that completes TCP handshakes but
never reads a byte is :class:`Blackhole`.

Example::

    with OTLPReceiver("http") as receiver:
        telemetry = otel_ml.configure(endpoint=receiver.endpoint, protocol="http/protobuf", ...)
        ...
        receiver.wait_for(lambda: receiver.metric_points("ml.model.predict.calls"))
"""

from __future__ import annotations

import gzip
import socket
import threading
import time
import zlib
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

__all__ = ["Blackhole", "MetricPoint", "OTLPReceiver", "closed_endpoint", "free_port"]

MODES = ("normal", "delay", "unavailable")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def closed_endpoint() -> str:
    """An endpoint whose connections are refused (nothing listens there)."""
    return f"http://127.0.0.1:{free_port()}"


def _any_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    raw = getattr(value, kind)
    if kind == "array_value":
        return tuple(_any_value(v) for v in raw.values)
    if kind == "kvlist_value":
        return {kv.key: _any_value(kv.value) for kv in raw.values}
    return raw


def attributes(key_values: Any) -> dict[str, Any]:
    """OTLP ``KeyValue`` list -> dict."""
    return {kv.key: _any_value(kv.value) for kv in key_values}


@dataclass
class MetricPoint:
    """One decoded data point with where it came from."""

    name: str
    resource: dict[str, Any]
    attributes: dict[str, Any]
    value: float  # sum/gauge value; histogram count
    point: Any = field(repr=False)  # the protobuf data point (exemplars, buckets, sum)


@dataclass
class Received:
    """One accepted export request."""

    signal: str  # "metrics" | "traces"
    request: Any
    headers: dict[str, str]
    at: float


class OTLPReceiver:
    """A controllable OTLP receiver (see the module docstring).

    Args:
        protocol: ``"http"`` or ``"grpc"``.
        mode: Initial mode (one of :data:`MODES`).
        delay_s: How long ``"delay"`` holds each request.
        port: Port to listen on (default: a free one).
        tls: ``(certfile, keyfile)`` to serve HTTPS / gRPC with TLS.
    """

    def __init__(self, protocol: str = "http", *, mode: str = "normal", delay_s: float = 5.0,
                 port: int | None = None, tls: tuple[str, str] | None = None) -> None:
        if protocol not in ("http", "grpc"):
            raise ValueError(f"protocol must be http or grpc, got {protocol!r}")
        self.protocol = protocol
        self.mode = mode
        self.delay_s = delay_s
        self.port = port or free_port()
        self.tls = tls
        self.received: list[Received] = []
        self.attempts = 0  # every request that reached the receiver, whatever the answer
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def endpoint(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {value!r}")
        self._mode = value

    def up(self) -> OTLPReceiver:
        """Start listening (again, on the same port)."""
        if self._server is not None:
            return self
        self._release.clear()
        if self.protocol == "http":
            self._start_http()
        else:
            self._start_grpc()
        return self

    start = up

    def down(self) -> None:
        """Stop listening: new connections are refused; requests held by ``delay`` are released."""
        server, self._server = self._server, None
        self._release.set()
        if server is None:
            return
        if self.protocol == "http":
            server.shutdown()
            server.server_close()
            if self._thread is not None:
                self._thread.join(5)
        else:
            server.stop(grace=None).wait(5)

    stop = down

    def __enter__(self) -> Self:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    # ------------------------------------------------------------------ serving
    def _record(self, signal: str, body: bytes, headers: dict[str, str]) -> None:
        cls = ExportMetricsServiceRequest if signal == "metrics" else ExportTraceServiceRequest
        request = cls.FromString(body)
        with self._lock:
            self.received.append(Received(signal, request, headers, time.monotonic()))

    def _behave(self) -> str:
        """Apply the current mode before answering; returns the mode applied."""
        with self._lock:
            self.attempts += 1
        mode = self._mode
        if mode == "delay":
            self._release.wait(self.delay_s)
        return mode

    def _start_http(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                encoding = (self.headers.get("Content-Encoding") or "").lower()
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                signal = {"/v1/metrics": "metrics", "/v1/traces": "traces"}.get(self.path)
                mode = receiver._behave()
                if signal is None:
                    self._answer(404, b"")
                    return
                if mode == "unavailable":
                    self._answer(503, b"")
                    return
                try:
                    receiver._record(signal, body, {k.lower(): v for k, v in self.headers.items()})
                except Exception:  # noqa: BLE001 - undecodable body: answer like a collector
                    self._answer(400, b"")
                    return
                response = (ExportMetricsServiceResponse() if signal == "metrics"
                            else ExportTraceServiceResponse())
                self._answer(200, response.SerializeToString())

            def _answer(self, status: int, body: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/x-protobuf")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up (timeout)
                    pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False
            allow_reuse_address = True

        server = Server(("127.0.0.1", self.port), Handler)
        if self.tls:
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"otlp-receiver-{self.port}", daemon=True)
        self._thread.start()

    def _start_grpc(self) -> None:
        import grpc
        from opentelemetry.proto.collector.metrics.v1 import (
            metrics_service_pb2_grpc as mgrpc,
        )
        from opentelemetry.proto.collector.trace.v1 import (
            trace_service_pb2_grpc as tgrpc,
        )

        receiver = self

        def handle(signal: str, request: Any, context: Any, response: Any) -> Any:
            mode = receiver._behave()
            if mode == "unavailable":
                context.abort(grpc.StatusCode.UNAVAILABLE, "receiver says: unavailable")
            receiver._record(signal, request.SerializeToString(),
                             {k.lower(): v for k, v in context.invocation_metadata()})
            return response

        class Metrics(mgrpc.MetricsServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                return handle("metrics", request, context, ExportMetricsServiceResponse())

        class Traces(tgrpc.TraceServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                return handle("traces", request, context, ExportTraceServiceResponse())

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="otlp-receiver"),
                             options=[("grpc.so_reuseport", 0)])
        mgrpc.add_MetricsServiceServicer_to_server(Metrics(), server)
        tgrpc.add_TraceServiceServicer_to_server(Traces(), server)
        address = f"127.0.0.1:{self.port}"
        if self.tls:
            with open(self.tls[0], "rb") as cert, open(self.tls[1], "rb") as key:
                credentials = grpc.ssl_server_credentials([(key.read(), cert.read())])
            bound = server.add_secure_port(address, credentials)
        else:
            bound = server.add_insecure_port(address)
        if bound != self.port:
            raise RuntimeError(f"gRPC receiver could not bind {address}")
        server.start()
        self._server = server

    # ------------------------------------------------------------------ reading
    def requests(self, signal: str) -> list[Any]:
        """Decoded requests of ``signal`` (``"metrics"`` or ``"traces"``) accepted so far."""
        with self._lock:
            return [r.request for r in self.received if r.signal == signal]

    def clear(self) -> None:
        with self._lock:
            self.received.clear()
            self.attempts = 0

    def metric_points(self, name: str | None = None) -> list[MetricPoint]:
        """Every data point received (of metric ``name``), in arrival order."""
        out = []
        for request in self.requests("metrics"):
            for rm in request.resource_metrics:
                resource = attributes(rm.resource.attributes)
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        if name is not None and metric.name != name:
                            continue
                        kind = metric.WhichOneof("data")
                        for p in getattr(metric, kind).data_points:
                            if kind in ("histogram", "exponential_histogram"):
                                value = float(p.count)
                            else:
                                value = p.as_double if p.WhichOneof("value") == "as_double" \
                                    else float(p.as_int)
                            out.append(MetricPoint(metric.name, resource,
                                                   attributes(p.attributes), value, p))
        return out

    def spans(self) -> list[tuple[dict[str, Any], Any]]:
        """``(resource attributes, span)`` for every span received."""
        out = []
        for request in self.requests("traces"):
            for rs in request.resource_spans:
                resource = attributes(rs.resource.attributes)
                for ss in rs.scope_spans:
                    out.extend((resource, span) for span in ss.spans)
        return out

    def latest(self, name: str, **match: Any) -> dict[str, float]:
        """Last value of ``name`` per ``service.instance.id`` (cumulative metrics)."""
        last: dict[str, float] = {}
        for p in self.metric_points(name):
            if all(p.attributes.get(k) == v for k, v in match.items()):
                last[p.resource.get("service.instance.id", "")] = p.value
        return last

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0,
                 interval: float = 0.05) -> Any:
        """Poll ``predicate`` until truthy (returned) or raise ``TimeoutError``."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"receiver: condition not met within {timeout}s "
                                   f"({len(self.received)} requests, {self.attempts} attempts)")
            time.sleep(interval)


class Blackhole:
    """A listening socket that completes handshakes (kernel backlog) but never reads or answers."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
