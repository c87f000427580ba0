"""Run the real observability stack as plain processes on 127.0.0.1 for integration tests.

There is no container engine in CI, so every component of ``docker-compose.yml`` runs here as its
own program, on free loopback ports, with data in a temporary directory, fed the *same*
configuration files that ship in the repository:

* :class:`Jaeger` — Jaeger v2 with memory storage (config generated: OTLP in, query API out).
* :class:`Collector` — our Collector build running ``collector/config.yaml`` (endpoints set through
  the ``OTEL_ML_*`` variables that file reads), optionally with overlays such as
  ``collector/config.auth.yaml``.
* :class:`Prometheus` — ``prometheus/prometheus.yml`` loaded as YAML with only the targets, rule
  files and intervals replaced (scrape/eval interval 1s), ``--enable-feature=exemplar-storage``.
* :class:`Alertmanager` — ``alertmanager/alertmanager.yml`` with its webhook URLs pointed at a
  :class:`WebhookSink` (an in-process HTTP server recording every POSTed notification).

:func:`start_stack` starts all of them wired together and returns a :class:`Stack`; pytest
fixtures in ``tests/e2e/conftest.py`` wrap it. Every wait is a bounded loop; a component that
exits or does not become healthy raises :class:`StackError` with the tail of its log. Processes are
stopped by PID (SIGTERM, then SIGKILL after a bound).

Programs are found with :func:`binaries.find_binaries` (install them with
``python tools/stack.py install``); :func:`require_binaries` turns a missing one into
``pytest.skip`` — or ``pytest.fail`` when ``OTEL_ML_REQUIRE_STACK=1`` (CI).

Needs PyYAML (tests only). Everything else is the standard library.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, TypeVar

import yaml

from .binaries import REPO_ROOT, Binaries, find_binaries

__all__ = [
    "ALERTMANAGER_CONFIG",
    "COLLECTOR_AUTH_CONFIG",
    "COLLECTOR_CONFIG",
    "PROMETHEUS_CONFIG",
    "PROMETHEUS_RULES_DIR",
    "Alertmanager",
    "Collector",
    "Jaeger",
    "ManagedProcess",
    "Prometheus",
    "Stack",
    "StackError",
    "WebhookSink",
    "am_alerts",
    "default_rule_files",
    "free_port",
    "http_get_json",
    "jaeger_trace",
    "prom_exemplars",
    "prom_query",
    "prom_series",
    "require_binaries",
    "stack_skip_or_fail",
    "start_stack",
    "wait_for",
]

COLLECTOR_CONFIG = REPO_ROOT / "collector" / "config.yaml"
COLLECTOR_AUTH_CONFIG = REPO_ROOT / "collector" / "config.auth.yaml"
PROMETHEUS_CONFIG = REPO_ROOT / "prometheus" / "prometheus.yml"
PROMETHEUS_RULES_DIR = REPO_ROOT / "prometheus" / "rules"
ALERTMANAGER_CONFIG = REPO_ROOT / "alertmanager" / "alertmanager.yml"

REQUIRE_STACK_ENV = "OTEL_ML_REQUIRE_STACK"
LOOPBACK = "127.0.0.1"

T = TypeVar("T")


class StackError(RuntimeError):
    """A stack component failed to start, died, or did not become healthy in time."""


# --------------------------------------------------------------------------- skip / fail


def stack_skip_or_fail(reason: str) -> None:
    """``pytest.fail(reason)`` when ``OTEL_ML_REQUIRE_STACK=1`` (CI), else ``pytest.skip(reason)``."""
    import pytest

    if os.environ.get(REQUIRE_STACK_ENV, "").strip() == "1":
        pytest.fail(f"{reason} ({REQUIRE_STACK_ENV}=1 turns a missing component into a failure)",
                    pytrace=False)
    pytest.skip(reason)


def require_binaries(*names: str) -> Binaries:
    """Return :class:`Binaries`; skip/fail (see :func:`stack_skip_or_fail`) if any named is missing.

    ``names`` are fields of :class:`Binaries` (``otelcol``, ``jaeger``, ``prometheus``,
    ``promtool``, ``alertmanager``); none means all of them.
    """
    found = find_binaries()
    wanted = names or tuple(f.name for f in dataclasses.fields(Binaries))
    missing = [n for n in wanted if getattr(found, n) is None]
    if missing:
        stack_skip_or_fail(f"stack programs missing: {', '.join(missing)}; "
                           f"run `python tools/stack.py install`")
    return found


# --------------------------------------------------------------------------- small helpers


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], T], timeout: float = 30.0, interval: float = 0.25,
             description: str = "condition") -> T:
    """Call ``predicate`` until it returns a truthy value and return that value.

    Exceptions raised by ``predicate`` count as "not yet". After ``timeout`` seconds raise
    :class:`TimeoutError` naming ``description`` and the last value or exception seen.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last = value
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
            last = exc
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {description}; "
                               f"last result: {last!r}")
        time.sleep(interval)


def http_get(url: str, timeout: float = 5.0, headers: Optional[Mapping[str, str]] = None
             ) -> tuple[int, bytes]:
    """GET ``url``; return (status, body) for any HTTP status (no exception on 4xx/5xx)."""
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, exc.read()
        finally:
            exc.close()


def http_get_json(url: str, params: Optional[Mapping[str, Any]] = None,
                  timeout: float = 5.0) -> Any:
    """GET ``url`` (with query ``params``) and decode JSON; raise StackError on non-2xx."""
    if params:
        url = f"{url}?{urllib.parse.urlencode(params, doseq=True)}"
    status, body = http_get(url, timeout=timeout)
    if not 200 <= status < 300:
        raise StackError(f"GET {url} -> HTTP {status}: {body[:500]!r}")
    return json.loads(body)


def _prom_api(base_url: str, path: str, params: Mapping[str, Any]) -> Any:
    payload = http_get_json(f"{base_url}{path}", params)
    if payload.get("status") != "success":
        raise StackError(f"Prometheus {path} {dict(params)} failed: {payload}")
    return payload["data"]


def prom_query(base_url: str, expr: str, at: Optional[float] = None) -> list[dict]:
    """Instant query; returns ``data.result`` (for a vector: ``[{"metric": {...}, "value": [t, "v"]}]``)."""
    params: dict[str, Any] = {"query": expr}
    if at is not None:
        params["time"] = f"{at:.3f}"
    return _prom_api(base_url, "/api/v1/query", params)["result"]


def prom_series(base_url: str, match: str | Sequence[str], start: Optional[float] = None,
                end: Optional[float] = None) -> list[dict[str, str]]:
    """``/api/v1/series``: label sets of every series matching the selector(s)."""
    params: dict[str, Any] = {"match[]": [match] if isinstance(match, str) else list(match)}
    params["start"] = f"{start if start is not None else time.time() - 3600:.3f}"
    params["end"] = f"{end if end is not None else time.time() + 60:.3f}"
    return _prom_api(base_url, "/api/v1/series", params)


def prom_exemplars(base_url: str, expr: str, start: Optional[float] = None,
                   end: Optional[float] = None) -> list[dict]:
    """``/api/v1/query_exemplars``: ``[{"seriesLabels": {...}, "exemplars": [{"labels": {"trace_id": ...}, ...}]}]``."""
    params = {
        "query": expr,
        "start": f"{start if start is not None else time.time() - 3600:.3f}",
        "end": f"{end if end is not None else time.time() + 60:.3f}",
    }
    return _prom_api(base_url, "/api/v1/query_exemplars", params)


def jaeger_trace(base_url: str, trace_id: str | int) -> Optional[dict]:
    """Jaeger query API ``/api/traces/{id}``: the trace as Jaeger JSON, or None if not (yet) stored.

    ``trace_id`` is the 32-hex-digit id or the SDK's integer id.
    """
    if isinstance(trace_id, int):
        trace_id = f"{trace_id:032x}"
    status, body = http_get(f"{base_url}/api/traces/{trace_id}")
    if status == 404:
        return None
    if status != 200:
        raise StackError(f"Jaeger /api/traces/{trace_id} -> HTTP {status}: {body[:300]!r}")
    data = json.loads(body).get("data") or []
    return data[0] if data else None


def am_alerts(base_url: str, active_only: bool = False) -> list[dict]:
    """Alertmanager ``/api/v2/alerts`` (each has ``labels``, ``annotations``, ``status.state``)."""
    params = {"active": "true", "silenced": "false", "inhibited": "false"} if active_only else None
    return http_get_json(f"{base_url}/api/v2/alerts", params)


# --------------------------------------------------------------------------- processes


class ManagedProcess:
    """One program run in the background, its output in ``<workdir>/<name>.log``.

    Subclasses set ``name`` and implement :meth:`command` and :meth:`is_healthy`. Use as a context
    manager or call :meth:`start` / :meth:`stop`. ``stop`` is safe to call more than once.
    """

    name = "process"
    start_timeout = 60.0

    def __init__(self, binary: str, workdir: Path, env: Optional[Mapping[str, str]] = None):
        self.binary = str(binary)
        self.workdir = Path(workdir) / self.name
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"{self.name}.log"
        self.extra_env = dict(env or {})
        self.proc: Optional[subprocess.Popen] = None
        self._log_file = None

    # -- to override
    def command(self) -> list[str]:
        raise NotImplementedError

    def is_healthy(self) -> bool:
        raise NotImplementedError

    def prepare(self) -> None:
        """Write config files before start (default: nothing)."""

    # -- lifecycle
    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: Optional[float] = None) -> "ManagedProcess":
        if self.proc is not None:
            raise StackError(f"{self.name} already started (pid {self.proc.pid})")
        self.prepare()
        argv = self.command()
        env = dict(os.environ, **self.extra_env)
        self._log_file = open(self.log_path, "ab")
        self._log_file.write(f"$ {' '.join(argv)}\n".encode())
        self._log_file.flush()
        try:
            self.proc = subprocess.Popen(argv, cwd=self.workdir, env=env, stdin=subprocess.DEVNULL,
                                         stdout=self._log_file, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        except OSError as exc:
            self._close_log()
            raise StackError(f"cannot start {self.name} ({argv[0]}): {exc}") from exc
        self.wait_healthy(timeout if timeout is not None else self.start_timeout)
        return self

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_error: Any = None
        while time.monotonic() < deadline:
            if not self.running():
                code = self.proc.returncode if self.proc else None
                self.stop()
                raise StackError(f"{self.name} exited with code {code} before becoming healthy\n"
                                 f"--- last lines of {self.log_path} ---\n{self.log_tail()}")
            try:
                if self.is_healthy():
                    return
            except Exception as exc:  # noqa: BLE001 - connection refused etc.
                last_error = exc
            time.sleep(0.2)
        self.stop()
        raise StackError(f"{self.name} not healthy after {timeout:.0f}s (last error: "
                         f"{last_error!r})\n--- last lines of {self.log_path} ---\n"
                         f"{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> Optional[int]:
        """SIGTERM, wait up to ``timeout`` s, then SIGKILL. Returns the exit code."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        try:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=timeout)
            return proc.returncode
        finally:
            self._close_log()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "<no log>"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} pid={self.pid} log={self.log_path}>"


def _http_ok(url: str) -> bool:
    status, _ = http_get(url, timeout=2.0)
    return status == 200


class Jaeger(ManagedProcess):
    """Jaeger v2 (``jaeger --config FILE``) with in-memory storage.

    Attributes: ``otlp_grpc_endpoint`` / ``otlp_http_endpoint`` (``127.0.0.1:port``, where a
    Collector sends traces), ``query_url`` (``http://127.0.0.1:port``, the HTTP query API and UI).
    """

    name = "jaeger"

    def __init__(self, binary: str, workdir: Path, *, max_traces: int = 100_000,
                 env: Optional[Mapping[str, str]] = None):
        super().__init__(binary, workdir, env)
        self.max_traces = max_traces
        self.otlp_grpc_endpoint = f"{LOOPBACK}:{free_port()}"
        self.otlp_http_endpoint = f"{LOOPBACK}:{free_port()}"
        self.query_http_endpoint = f"{LOOPBACK}:{free_port()}"
        self.query_grpc_endpoint = f"{LOOPBACK}:{free_port()}"
        self.query_url = f"http://{self.query_http_endpoint}"
        self.config_path = self.workdir / "jaeger.yaml"

    def render_config(self) -> dict:
        return {
            "service": {
                "extensions": ["jaeger_storage", "jaeger_query"],
                "pipelines": {"traces": {"receivers": ["otlp"],
                                         "exporters": ["jaeger_storage_exporter"]}},
                # No self-metrics server: it would claim the default port 8888.
                "telemetry": {"metrics": {"level": "none"}, "logs": {"level": "info"}},
            },
            "extensions": {
                "jaeger_storage": {"backends": {"memstore": {"memory": {
                    "max_traces": self.max_traces}}}},
                "jaeger_query": {
                    "storage": {"traces": "memstore"},
                    # Default true: Jaeger would export its own traces to 127.0.0.1:4317 and
                    # hang 10s+ on shutdown retrying when nothing listens there.
                    "enable_tracing": False,
                    "http": {"endpoint": self.query_http_endpoint},
                    "grpc": {"endpoint": self.query_grpc_endpoint},
                },
            },
            "receivers": {"otlp": {"protocols": {
                "grpc": {"endpoint": self.otlp_grpc_endpoint},
                "http": {"endpoint": self.otlp_http_endpoint},
            }}},
            "exporters": {"jaeger_storage_exporter": {"trace_storage": "memstore"}},
        }

    def prepare(self) -> None:
        self.config_path.write_text(yaml.safe_dump(self.render_config(), sort_keys=False))

    def command(self) -> list[str]:
        return [self.binary, "--config", str(self.config_path)]

    def is_healthy(self) -> bool:
        return _http_ok(f"{self.query_url}/api/services")

    def trace(self, trace_id: str | int) -> Optional[dict]:
        return jaeger_trace(self.query_url, trace_id)


class Collector(ManagedProcess):
    """Our Collector build running the shipped ``collector/config.yaml``.

    Every listen address comes from the ``OTEL_ML_COLLECTOR_*`` variables the config reads, set to
    free loopback ports. Attributes: ``grpc_endpoint``, ``http_endpoint`` (``127.0.0.1:port``),
    ``otlp_grpc_url`` / ``otlp_http_url`` (``http://...`` for SDK exporters),
    ``prometheus_endpoint`` (the exporter Prometheus scrapes), ``telemetry_endpoint`` (self-metrics),
    ``health_url``. ``configs`` are passed as repeated ``--config`` (later files merge over earlier
    ones, e.g. ``[COLLECTOR_CONFIG, COLLECTOR_AUTH_CONFIG]``). ``env`` adds/overrides variables
    (e.g. ``OTEL_ML_COLLECTOR_BEARER_TOKEN``).
    """

    name = "otelcol"

    def __init__(self, binary: str, workdir: Path, *, jaeger_otlp_endpoint: str,
                 configs: Sequence[Path | str] = (COLLECTOR_CONFIG,),
                 env: Optional[Mapping[str, str]] = None):
        self.configs = [Path(c) for c in configs]
        self.grpc_endpoint = f"{LOOPBACK}:{free_port()}"
        self.http_endpoint = f"{LOOPBACK}:{free_port()}"
        self.prometheus_endpoint = f"{LOOPBACK}:{free_port()}"
        self.health_endpoint = f"{LOOPBACK}:{free_port()}"
        self.telemetry_port = free_port()
        self.telemetry_endpoint = f"{LOOPBACK}:{self.telemetry_port}"
        self.jaeger_otlp_endpoint = jaeger_otlp_endpoint
        base_env = {
            "OTEL_ML_COLLECTOR_GRPC_ENDPOINT": self.grpc_endpoint,
            "OTEL_ML_COLLECTOR_HTTP_ENDPOINT": self.http_endpoint,
            "OTEL_ML_COLLECTOR_PROMETHEUS_ENDPOINT": self.prometheus_endpoint,
            "OTEL_ML_COLLECTOR_HEALTH_ENDPOINT": self.health_endpoint,
            "OTEL_ML_COLLECTOR_TELEMETRY_HOST": LOOPBACK,
            "OTEL_ML_COLLECTOR_TELEMETRY_PORT": str(self.telemetry_port),
            "OTEL_ML_JAEGER_OTLP_ENDPOINT": jaeger_otlp_endpoint,
        }
        base_env.update(env or {})
        super().__init__(binary, workdir, base_env)

    @property
    def otlp_grpc_url(self) -> str:
        return f"http://{self.grpc_endpoint}"

    @property
    def otlp_http_url(self) -> str:
        return f"http://{self.http_endpoint}"

    @property
    def health_url(self) -> str:
        return f"http://{self.health_endpoint}/"

    @property
    def metrics_url(self) -> str:
        """The prometheus exporter's page (what Prometheus scrapes)."""
        return f"http://{self.prometheus_endpoint}/metrics"

    def _config_args(self) -> list[str]:
        args: list[str] = []
        for config in self.configs:
            args += ["--config", str(config)]
        return args

    def command(self) -> list[str]:
        return [self.binary, *self._config_args()]

    def is_healthy(self) -> bool:
        return _http_ok(self.health_url)

    def validate(self) -> subprocess.CompletedProcess:
        """``otelcol validate`` of the configs with this instance's environment (does not start)."""
        env = dict(os.environ, **self.extra_env)
        return subprocess.run([self.binary, "validate", *self._config_args()], env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=60)

    def scrape(self) -> str:
        """The exporter's page in OpenMetrics format (as Prometheus negotiates it)."""
        status, body = http_get(self.metrics_url, headers={
            "Accept": "application/openmetrics-text;version=1.0.0"})
        if status != 200:
            raise StackError(f"GET {self.metrics_url} -> HTTP {status}")
        return body.decode()


def default_rule_files() -> list[Path]:
    """``prometheus/rules/*.yml`` (sorted), or [] if there are none yet."""
    return sorted(PROMETHEUS_RULES_DIR.glob("*.yml")) if PROMETHEUS_RULES_DIR.is_dir() else []


class Prometheus(ManagedProcess):
    """Prometheus running the shipped ``prometheus/prometheus.yml`` with test targets.

    :meth:`render_config` loads the shipped file and replaces only: the targets of job
    ``otel-collector`` (``collector_target``) and ``otel-collector-self`` (``collector_self_target``;
    the job is dropped when None), ``rule_files`` (absolute paths; default
    :func:`default_rule_files`), the Alertmanager targets (dropped when None), and the global
    scrape/evaluation intervals (1s). ``honor_labels`` and everything else stay as shipped.

    Attributes: ``url`` (``http://127.0.0.1:port``), ``config_path``. Query helpers:
    :meth:`query`, :meth:`series`, :meth:`exemplars`, :meth:`rules`, :meth:`alerts`, :meth:`targets`.
    """

    name = "prometheus"

    def __init__(self, binary: str, workdir: Path, *, collector_target: str,
                 collector_self_target: Optional[str] = None,
                 alertmanager_target: Optional[str] = None,
                 rule_files: Optional[Iterable[Path | str]] = None,
                 scrape_interval: str = "1s", evaluation_interval: str = "1s",
                 template: Path = PROMETHEUS_CONFIG, extra_args: Sequence[str] = (),
                 env: Optional[Mapping[str, str]] = None):
        super().__init__(binary, workdir, env)
        self.collector_target = collector_target
        self.collector_self_target = collector_self_target
        self.alertmanager_target = alertmanager_target
        self.rule_files = [Path(p).resolve() for p in
                           (default_rule_files() if rule_files is None else rule_files)]
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.template = Path(template)
        self.extra_args = list(extra_args)
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.config_path = self.workdir / "prometheus.yml"
        self.data_dir = self.workdir / "data"

    def render_config(self) -> dict:
        config = yaml.safe_load(self.template.read_text())
        config.setdefault("global", {})
        config["global"]["scrape_interval"] = self.scrape_interval
        config["global"]["evaluation_interval"] = self.evaluation_interval
        config["rule_files"] = [str(p) for p in self.rule_files]
        if self.alertmanager_target:
            config["alerting"] = {"alertmanagers": [
                {"static_configs": [{"targets": [self.alertmanager_target]}]}]}
        else:
            config.pop("alerting", None)
        jobs = {job["job_name"]: job for job in config.get("scrape_configs", [])}
        if "otel-collector" not in jobs:
            raise StackError(f"{self.template} has no scrape job 'otel-collector'")
        targets = {"otel-collector": self.collector_target,
                   "otel-collector-self": self.collector_self_target}
        kept = []
        for job_name, job in jobs.items():
            if job_name in targets:
                if targets[job_name] is None:
                    continue
                job["static_configs"] = [{"targets": [targets[job_name]]}]
            kept.append(job)
        config["scrape_configs"] = kept
        return config

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.render_config(), sort_keys=False))

    def command(self) -> list[str]:
        return [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--web.listen-address={LOOPBACK}:{self.port}",
            f"--web.external-url={self.url}/",
            "--enable-feature=exemplar-storage",
            "--log.level=info",
            *self.extra_args,
        ]

    def is_healthy(self) -> bool:
        return _http_ok(f"{self.url}/-/ready")

    def query(self, expr: str, at: Optional[float] = None) -> list[dict]:
        return prom_query(self.url, expr, at)

    def series(self, match: str | Sequence[str]) -> list[dict[str, str]]:
        return prom_series(self.url, match)

    def exemplars(self, expr: str) -> list[dict]:
        return prom_exemplars(self.url, expr)

    def rules(self) -> list[dict]:
        """``/api/v1/rules`` groups (each with ``rules`` carrying ``health``/``lastError``)."""
        return _prom_api(self.url, "/api/v1/rules", {})["groups"]

    def alerts(self) -> list[dict]:
        """``/api/v1/alerts``: pending and firing alerts."""
        return _prom_api(self.url, "/api/v1/alerts", {})["alerts"]

    def targets(self) -> list[dict]:
        """``/api/v1/targets`` active targets (``labels``, ``health``, ``lastError``)."""
        return _prom_api(self.url, "/api/v1/targets", {})["activeTargets"]


class Alertmanager(ManagedProcess):
    """Alertmanager running the shipped ``alertmanager/alertmanager.yml``.

    :meth:`render_config` rewrites every ``webhook_configs[].url`` to ``webhook_url`` (when given)
    and, with ``fast=True`` (default), shortens ``group_wait``/``group_interval`` on every route to
    1s so notifications arrive within seconds; routing, grouping and inhibition stay as shipped.
    No clustering (``--cluster.listen-address=``). Attributes: ``url``, ``config_path``.
    """

    name = "alertmanager"

    def __init__(self, binary: str, workdir: Path, *, webhook_url: Optional[str] = None,
                 config: Path = ALERTMANAGER_CONFIG, fast: bool = True,
                 env: Optional[Mapping[str, str]] = None):
        super().__init__(binary, workdir, env)
        self.webhook_url = webhook_url
        self.template = Path(config)
        self.fast = fast
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.target = f"{LOOPBACK}:{self.port}"
        self.config_path = self.workdir / "alertmanager.yml"
        self.data_dir = self.workdir / "data"

    def render_config(self) -> dict:
        config = yaml.safe_load(self.template.read_text())
        if self.webhook_url:
            for receiver in config.get("receivers", []):
                for hook in receiver.get("webhook_configs", []) or []:
                    hook["url"] = self.webhook_url
        if self.fast:
            def shorten(route: dict) -> None:
                for key in ("group_wait", "group_interval"):
                    if key in route or route is config.get("route"):
                        route[key] = "1s"
                for child in route.get("routes", []) or []:
                    shorten(child)
            shorten(config["route"])
        return config

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.render_config(), sort_keys=False))

    def command(self) -> list[str]:
        return [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.path={self.data_dir}",
            f"--web.listen-address={LOOPBACK}:{self.port}",
            f"--web.external-url={self.url}/",
            "--cluster.listen-address=",
            "--log.level=info",
        ]

    def is_healthy(self) -> bool:
        return _http_ok(f"{self.url}/-/ready")

    def alerts(self, active_only: bool = False) -> list[dict]:
        return am_alerts(self.url, active_only)


# --------------------------------------------------------------------------- webhook sink


class WebhookSink:
    """A tiny HTTP server on 127.0.0.1 that records every POSTed JSON body (Alertmanager webhooks).

    ``url`` is what to configure; ``received`` is the list of decoded payloads (Alertmanager's
    webhook format: ``{"status": ..., "alerts": [{"labels": {...}, ...}], "groupLabels": ...}``).
    Use as a context manager or call :meth:`close`.
    """

    def __init__(self) -> None:
        self.received: list[dict] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    payload = json.loads(raw or b"null")
                except ValueError:
                    payload = {"_raw": raw.decode(errors="replace")}
                with sink._lock:
                    sink.received.append(payload)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

        self._server = http.server.ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://{LOOPBACK}:{self.port}/"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True,
                                        name="webhook-sink")
        self._thread.start()

    def payloads(self) -> list[dict]:
        with self._lock:
            return list(self.received)

    def alerts(self) -> list[dict]:
        """Every alert of every notification received so far, in arrival order."""
        return [alert for payload in self.payloads() for alert in payload.get("alerts", [])]

    def wait_for_alert(self, predicate: Callable[[dict], bool], timeout: float = 30.0) -> dict:
        """First received alert for which ``predicate(alert)`` is true (bounded wait)."""
        return wait_for(lambda: next((a for a in self.alerts() if predicate(a)), None),
                        timeout=timeout, description="a matching webhook alert")

    def clear(self) -> None:
        with self._lock:
            self.received.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "WebhookSink":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


# --------------------------------------------------------------------------- the whole stack


@dataclasses.dataclass
class Stack:
    """A running stack: Jaeger <- Collector -> (scraped by) Prometheus -> Alertmanager -> webhook.

    Convenience methods wrap the module-level helpers with this stack's URLs.
    """

    workdir: Path
    jaeger: Jaeger
    collector: Collector
    prometheus: Prometheus
    alertmanager: Optional[Alertmanager]
    webhook: Optional[WebhookSink]

    @property
    def otlp_grpc_url(self) -> str:
        """``http://127.0.0.1:port``: the Collector's OTLP/gRPC receiver (pass to SDK exporters)."""
        return self.collector.otlp_grpc_url

    @property
    def otlp_http_url(self) -> str:
        return self.collector.otlp_http_url

    def prom_query(self, expr: str, at: Optional[float] = None) -> list[dict]:
        return prom_query(self.prometheus.url, expr, at)

    def prom_series(self, match: str | Sequence[str]) -> list[dict[str, str]]:
        return prom_series(self.prometheus.url, match)

    def prom_exemplars(self, expr: str) -> list[dict]:
        return prom_exemplars(self.prometheus.url, expr)

    def jaeger_trace(self, trace_id: str | int) -> Optional[dict]:
        return jaeger_trace(self.jaeger.query_url, trace_id)

    def am_alerts(self, active_only: bool = False) -> list[dict]:
        if self.alertmanager is None:
            raise StackError("this stack was started without Alertmanager")
        return am_alerts(self.alertmanager.url, active_only)

    def wait_for(self, predicate: Callable[[], T], timeout: float = 30.0,
                 description: str = "condition") -> T:
        return wait_for(predicate, timeout=timeout, description=description)

    def wait_for_series(self, match: str, timeout: float = 30.0) -> list[dict[str, str]]:
        """Wait until ``/api/v1/series`` returns at least one series for ``match``."""
        return wait_for(lambda: self.prom_series(match), timeout=timeout,
                        description=f"series {match} in Prometheus")

    def logs(self) -> str:
        """Last lines of every component's log (attach to assertion messages)."""
        parts = [self.jaeger, self.collector, self.prometheus]
        if self.alertmanager:
            parts.append(self.alertmanager)
        return "\n".join(f"--- {p.name} ({p.log_path}) ---\n{p.log_tail(20)}" for p in parts)

    def stop(self) -> None:
        """Stop everything (reverse start order); safe to call twice."""
        for component in (self.prometheus, self.alertmanager, self.collector, self.jaeger):
            if component is not None:
                with contextlib.suppress(Exception):
                    component.stop()
        if self.webhook is not None:
            with contextlib.suppress(Exception):
                self.webhook.close()


def start_stack(workdir: Path, *, binaries: Optional[Binaries] = None,
                rule_files: Optional[Iterable[Path | str]] = None,
                collector_configs: Sequence[Path | str] = (COLLECTOR_CONFIG,),
                collector_env: Optional[Mapping[str, str]] = None,
                with_alertmanager: bool = True,
                alertmanager_config: Path = ALERTMANAGER_CONFIG,
                scrape_interval: str = "1s", evaluation_interval: str = "1s") -> Stack:
    """Start Jaeger, the Collector (traces -> Jaeger), Alertmanager (webhooks -> a
    :class:`WebhookSink`) and Prometheus (scraping the Collector, alerting to Alertmanager).

    ``binaries`` defaults to :func:`require_binaries` (skip/fail when something is missing).
    ``rule_files`` defaults to ``prometheus/rules/*.yml``. On any start failure, whatever already
    runs is stopped and :class:`StackError` propagates.
    """
    if binaries is None:
        binaries = require_binaries("otelcol", "jaeger", "prometheus",
                                    *(("alertmanager",) if with_alertmanager else ()))
    workdir = Path(workdir)
    started: list[Any] = []
    try:
        jaeger = Jaeger(binaries.jaeger, workdir)
        jaeger.start()
        started.append(jaeger)
        collector = Collector(binaries.otelcol, workdir,
                              jaeger_otlp_endpoint=jaeger.otlp_grpc_endpoint,
                              configs=collector_configs, env=collector_env)
        collector.start()
        started.append(collector)
        webhook = alertmanager = None
        if with_alertmanager:
            webhook = WebhookSink()
            started.append(webhook)
            alertmanager = Alertmanager(binaries.alertmanager, workdir, webhook_url=webhook.url,
                                        config=alertmanager_config)
            alertmanager.start()
            started.append(alertmanager)
        prometheus = Prometheus(binaries.prometheus, workdir,
                                collector_target=collector.prometheus_endpoint,
                                collector_self_target=collector.telemetry_endpoint,
                                alertmanager_target=alertmanager.target if alertmanager else None,
                                rule_files=rule_files, scrape_interval=scrape_interval,
                                evaluation_interval=evaluation_interval)
        prometheus.start()
        started.append(prometheus)
    except BaseException:
        for component in reversed(started):
            with contextlib.suppress(Exception):
                component.stop() if hasattr(component, "stop") else component.close()
        raise
    return Stack(workdir=workdir, jaeger=jaeger, collector=collector, prometheus=prometheus,
                 alertmanager=alertmanager, webhook=webhook)
