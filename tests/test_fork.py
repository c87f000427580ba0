"""Forked processes (os.fork, multiprocessing "fork", as gunicorn --preload does).

Each scenario runs a fresh Python process (pytest itself is never forked): it configures otel_ml
towards a receiver in this process, makes calls, forks, and every process makes its own calls.
The receiver then holds, per ``service.instance.id``, exactly each process's own calls: nothing
the parent counted before the fork comes back from a child, and no two processes share an id.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from otlp_receiver import OTLPReceiver

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

SCRIPT = textwrap.dedent("""
    import json, os, sys, threading, multiprocessing
    import otel_ml

    endpoint, protocol, start_method = sys.argv[1], sys.argv[2], sys.argv[3]
    PARENT_BEFORE, PARENT_AFTER, CHILD_CALLS, ROWS = 7, 3, (11, 5), 4

    telemetry = otel_ml.configure(
        "forky", endpoint=endpoint, protocol=protocol, insecure=True if protocol == "grpc" else None,
        export_interval_ms=100, system_metrics=False)
    predict = otel_ml.instrument_model(name="forky", version="1")(lambda X: [0] * len(X))

    def report(role, calls):
        # The spans' resource; the metrics' resource is checked by what the receiver got.
        instance_id = telemetry.tracer_provider.resource.attributes["service.instance.id"]
        line = json.dumps({"role": role, "pid": os.getpid(), "id": instance_id,
                           "calls": calls,
                           "threads": sorted(t.name for t in threading.enumerate())})
        # One write per line (under PIPE_BUF): processes sharing stdout never interleave.
        os.write(1, (line + "\\n").encode())

    def child(n):
        for _ in range(n):
            assert predict([[1.0, 2.0]] * ROWS) == [0] * ROWS
        report("child", n)
        otel_ml.shutdown(timeout_s=5)

    for _ in range(PARENT_BEFORE):
        predict([[1.0, 2.0]] * ROWS)
    # The parent's histogram and span queue hold data now; forking must not duplicate it.
    if start_method == "os.fork":
        pids = []
        for n in CHILD_CALLS:
            pid = os.fork()
            if pid == 0:
                try:
                    child(n)
                finally:
                    os._exit(0)
            pids.append(pid)
        codes = [os.waitpid(pid, 0)[1] for pid in pids]
    else:
        ctx = multiprocessing.get_context("fork")
        procs = [ctx.Process(target=child, args=(n,)) for n in CHILD_CALLS]
        for p in procs:
            p.start()
        for p in procs:
            p.join(30)
        codes = [p.exitcode for p in procs]
    assert codes == [0, 0], codes
    for _ in range(PARENT_AFTER):
        predict([[1.0, 2.0]] * ROWS)
    report("parent", PARENT_BEFORE + PARENT_AFTER)
    otel_ml.shutdown(timeout_s=5)
""")


def run_scenario(receiver: OTLPReceiver, protocol: str, start_method: str) -> list[dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    out = subprocess.run([sys.executable, "-c", SCRIPT, receiver.endpoint, protocol, start_method],
                         capture_output=True, text=True, timeout=60, env=env, check=False)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


@pytest.mark.slow
@pytest.mark.parametrize(("protocol", "start_method"), [
    ("http/protobuf", "os.fork"),
    ("http/protobuf", "multiprocessing"),
    ("grpc", "os.fork"),
])
def test_each_process_reports_exactly_its_own_calls(protocol, start_method):
    with OTLPReceiver("grpc" if protocol == "grpc" else "http") as receiver:
        reports = run_scenario(receiver, protocol, start_method)
        by_id = {r["id"]: r for r in reports}
        assert sorted(r["role"] for r in reports) == ["child", "child", "parent"]
        # (a) every process has its own service.instance.id, on metrics and spans alike: the
        # receiver's metric points and spans below are keyed by these (span) ids.
        assert len(by_id) == 3
        # The SDK's export threads run in the children (they exported, below, too).
        for r in reports:
            assert "OtelPeriodicExportingMetricReader" in r["threads"], r
            assert "OtelBatchSpanRecordProcessor" in r["threads"], r
        expected = {i: r["calls"] for i, r in by_id.items()}
        rows = {i: 4 * n for i, n in expected.items()}

        def complete():
            return receiver.latest("ml.model.predict.calls") == expected

        receiver.wait_for(complete, timeout=30)  # loaded CI machines: late final exports
        # Observable counters (the monitor's own tallies) and the SDK's synchronous
        # histogram (b: the storage inherited from the parent was emptied) agree.
        assert receiver.latest("ml.model.predictions") == rows
        assert receiver.latest("ml.model.batches", **{"ml.batch.size.range": "2-4"}) == expected
        assert receiver.latest("ml.model.predict.duration") == expected
        spans: dict[str, int] = {}
        for resource, span in receiver.spans():
            spans[resource["service.instance.id"]] = spans.get(resource["service.instance.id"], 0) + 1
        assert spans == expected
        # Nothing arrives under an id that is not one of the three processes'.
        ids = {p.resource["service.instance.id"] for p in receiver.metric_points()}
        assert ids == set(expected)


def test_a_forked_child_has_a_new_identity_and_empty_metric_storage():
    """In a forked child (the at-fork hook, against the installed SDK version): a new
    ``service.instance.id`` on spans and metrics alike, and none of the parent's histogram."""
    import otel_ml
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    otel_ml.shutdown(timeout_s=2)
    telemetry = otel_ml_configure(reader)
    try:
        predict = _monitor(telemetry)(lambda X: X)
        predict([[1.0]])
        assert _histogram_counts(reader) == {"ml.model.predict.duration": 1}
        old = telemetry.tracer_provider.resource.attributes["service.instance.id"]
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report what it sees, then leave without pytest's teardown
            try:
                before = _histogram_counts(reader)
                predict([[1.0]])
                data = reader.get_metrics_data()
                report = {"span_id": telemetry.tracer_provider.resource.attributes[
                              "service.instance.id"],
                          "metric_ids": sorted({rm.resource.attributes["service.instance.id"]
                                                for rm in data.resource_metrics}),
                          "service": telemetry.tracer_provider.resource.attributes[
                              "service.name"],
                          "before": before, "after": _histogram_counts(reader)}
                os.write(write_end, json.dumps(report).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        import select

        ready, _, _ = select.select([read_end], [], [], 60)
        if not ready:  # a hung child must not hang the suite
            os.kill(pid, 9)
        os.waitpid(pid, 0)
        with os.fdopen(read_end) as pipe:
            report = pipe.read()
        assert report, "the forked child reported nothing within 60 s"
        child = json.loads(report)
        assert child["span_id"] != old and child["metric_ids"] == [child["span_id"]]
        assert child["service"] == "svc"
        assert child["before"] == {}  # the parent's call is not in the child's storage
        assert child["after"] == {"ml.model.predict.duration": 1}
        # The parent keeps its identity and its own count.
        assert telemetry.tracer_provider.resource.attributes["service.instance.id"] == old
        assert _histogram_counts(reader) == {"ml.model.predict.duration": 1}
    finally:
        otel_ml.shutdown(timeout_s=2)


def otel_ml_configure(reader):
    import otel_ml

    return otel_ml.configure("svc", exporter="none", metric_readers=[reader], set_global=False,
                             force=True, system_metrics=False)


def _monitor(telemetry):
    import otel_ml

    return otel_ml.ModelMonitor("fork-unit", statistics=False,
                                tracer_provider=telemetry.tracer_provider,
                                meter_provider=telemetry.meter_provider)


def _histogram_counts(reader) -> dict[str, int]:
    out = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for p in metric.data.data_points:
                    if hasattr(p, "bucket_counts"):
                        out[metric.name] = out.get(metric.name, 0) + p.count
    return out
