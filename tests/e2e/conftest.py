"""Session fixtures that run the real observability stack for end-to-end tests.

``stack`` starts, once per test session and wired together on 127.0.0.1 free ports:

* Jaeger v2 (memory storage) receiving traces from
* the Collector (our build, running the shipped ``collector/config.yaml``), whose prometheus
  exporter is scraped every 1s (``honor_labels: true``) by
* Prometheus (the shipped ``prometheus/prometheus.yml`` with test targets, the rule files
  ``prometheus/rules/*.yml``, exemplar storage on), which alerts to
* Alertmanager (the shipped ``alertmanager/alertmanager.yml``, group timings shortened to 1s,
  webhooks delivered to an in-process :class:`stack.harness.WebhookSink`).

It yields a :class:`stack.harness.Stack`; the useful parts:

* ``stack.otlp_grpc_url`` / ``stack.otlp_http_url`` — where SDK exporters send (``http://127.0.0.1:N``)
* ``stack.prom_query(expr)``, ``stack.prom_series(match)``, ``stack.prom_exemplars(expr)``,
  ``stack.wait_for_series(match, timeout)``, ``stack.prometheus.rules()/alerts()/targets()``
* ``stack.jaeger_trace(trace_id)`` (hex string or int; None until stored)
* ``stack.am_alerts()``, ``stack.webhook.alerts()``, ``stack.webhook.wait_for_alert(pred)``
* ``stack.wait_for(predicate, timeout, description)`` — bounded polling; ``stack.logs()`` for messages

Exemplars: the Python SDK attaches an exemplar only to the export of the collection interval in
which it was measured, and the Collector's prometheus exporter serves the latest point of a series,
so the next export without new measurements removes the exemplar from ``/metrics``. To assert on
exemplars, use a long ``export_interval_millis`` and ``force_flush()`` once after recording.

Programs come from ``python tools/stack.py install``. When one is missing the tests are skipped,
or fail when ``OTEL_ML_REQUIRE_STACK=1`` (CI). Tests sharing the session stack should label their
data uniquely (e.g. a random model name) instead of relying on an empty Prometheus.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_TESTS_DIR = str(Path(__file__).resolve().parents[1])
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

from stack import harness  # noqa: E402


@pytest.fixture(scope="session")
def stack_binaries() -> harness.Binaries:
    """Paths of every stack program (skips/fails via ``stack_skip_or_fail`` if one is missing)."""
    return harness.require_binaries()


@pytest.fixture(scope="session")
def stack(stack_binaries, tmp_path_factory) -> harness.Stack:
    """The running stack (see the module docstring); stopped at the end of the session."""
    workdir = tmp_path_factory.mktemp("otel-ml-stack")
    # Programs present but failing to start is a real error (StackError with the log tail).
    running = harness.start_stack(workdir, binaries=stack_binaries)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def webhook(stack) -> harness.WebhookSink:
    """The stack's Alertmanager webhook sink, emptied before the test."""
    assert stack.webhook is not None
    stack.webhook.clear()
    return stack.webhook
