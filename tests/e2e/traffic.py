"""Instrumented traffic for the end-to-end test: two models served through otel_ml, exported over
OTLP to the real Collector.

:class:`Scenario` builds its own SDK providers (not the globals): resource ``service.name`` /
``service.namespace`` (so Prometheus' ``job`` is ``namespace/name``), OTLP/gRPC exporters,
metrics exported every second, spans batched with a short delay, and the system-metrics
instrumentation for the process CPU/memory panels. A background thread then sends:

* ``e2e-churn`` (classification): pipeline stages load → preprocess → features → predict, a
  reference with predictions, validation performance and attributions, ``segment_by="region"``
  (``eu``/``us``, then a new segment ``apac``), ``sensitive_attribute="gender"``, a few missing
  ``income`` values and unseen ``channel`` categories, batches of 1 to 32 rows, one call in
  :data:`BASELINE_ERROR_EVERY` failing, attributions, refused requests, a label for most
  predictions one to three seconds later, and now and then a label nobody predicted;
* ``e2e-house-price`` (regression): its own reference and validation MAE/RMSE, late labels;
* ``e2e-shadow`` (:data:`SHADOW`): a champion and a challenger in shadow (``otel_ml.shadow``)
  that disagree on a known share of rows (a higher decision threshold), labels for both;
* ``e2e-ab`` (:data:`SPLIT`) and ``e2e-ab-price`` (:data:`SPLIT_PRICE`): A/B splits
  (``otel_ml.split``) of a classifier and of a regressor by user id, labels per variant.

The scenario keeps its own tallies of what it sent to the versions (rows compared and
disagreements, labelled rows and correct ones per version): :meth:`Scenario.pause_versions`
stops that traffic so the test can compare them with Prometheus exactly.

Both references are fitted with labelled validation data too (``Reference.from_data(...,
labels=)``), so performance is also estimated before labels arrive: the classifier returns
the positive-class probability (its calibration is fitted on validation rows), one call in
:data:`BAD_PROBA_EVERY` ticks an extra call returns a NaN probability (left out of the
estimate, counted; no label), and a few labels of very confident predictions are flipped
(suspect labels). Both draw from their own generator: the rows are those of the run without
them.

Knobs the test turns while the traffic runs: :meth:`Scenario.set_failure_rate` (the error
burst) and :meth:`Scenario.start_drift` (shifts :data:`DRIFTED` only, by several standard
deviations).
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from typing import Any

import numpy as np
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import otel_ml
from otel_ml import ModelMonitor, Reference, reference_performance, trace_stage

__all__ = [
    "CLASSIFIER",
    "DRIFTED",
    "FEATURES",
    "JOB",
    "REGRESSOR",
    "SHADOW",
    "SPLIT",
    "SPLIT_PRICE",
    "SERVICE_NAME",
    "SERVICE_NAMESPACE",
    "STAGES",
    "Scenario",
]

SERVICE_NAMESPACE = "otel-ml-e2e"
SERVICE_NAME = "model-server"
JOB = f"{SERVICE_NAMESPACE}/{SERVICE_NAME}"
CLASSIFIER = "e2e-churn"
REGRESSOR = "e2e-house-price"
VERSION = "1.0.0"
#: Version comparison: a shadow pair, and two A/B splits (classification, regression).
SHADOW = "e2e-shadow"
SPLIT = "e2e-ab"
SPLIT_PRICE = "e2e-ab-price"
CHALLENGER = "1.1.0"
#: The challenger predicts 1 above this score (the champion above 0): they disagree on the
#: rows in between, about 7% of them.
CHALLENGER_THRESHOLD = 0.25
#: What the shadow pair's and the splits' classifiers read.
SHADOW_FEATURES = ("age", "income")

#: Input features of the classifier (``region`` is the segment, ``gender`` the sensitive
#: attribute: neither is a feature of the reference).
NUMERIC = ("age", "income", "tenure", "sessions")
FEATURES = (*NUMERIC, "channel")
CHANNELS = ("web", "app", "store")
#: The only feature :meth:`Scenario.start_drift` shifts (it does not enter the model).
DRIFTED = "tenure"
STAGES = ("load", "preprocess", "features", "predict")
REG_FEATURES = ("area", "rooms", "building_age")

#: One classifier call in this many fails even outside the error burst (so the error series
#: exist from the start, at a ratio far below the alert threshold).
BASELINE_ERROR_EVERY = 250
#: Every this many ticks, an extra classifier call returns a NaN probability (no label).
BAD_PROBA_EVERY = 50
#: Share of the labels of very confident predictions (probability above 0.97 or below 0.03)
#: that are flipped: suspect labels.
FLIP_CONFIDENT = 0.01
CALLS_PER_S = 20.0
LABEL_DELAY_S = (1.0, 3.0)
LABEL_SHARE = 0.8

_STAGE = {name: trace_stage(name) for name in STAGES}


class FeatureStoreTimeout(TimeoutError):
    """What the (simulated) feature store raises during the error burst."""


def _classifier_frame(rng: np.random.Generator, n: int, *, drift: bool = False,
                      regions: tuple[str, ...] = ("eu", "us"), missing: float = 0.0,
                      unseen: float = 0.0) -> dict[str, np.ndarray]:
    tenure = rng.normal(24.0, 6.0, n)
    if drift:
        tenure = tenure + 30.0  # five standard deviations: PSI far above the critical level
    channel = rng.choice(np.array(CHANNELS, dtype=object), n, p=[0.5, 0.3, 0.2])
    if unseen:
        channel[rng.random(n) < unseen] = "kiosk"
    income = rng.lognormal(10.5, 0.4, n)
    if missing:
        income[rng.random(n) < missing] = np.nan
    return {
        "age": rng.normal(40.0, 10.0, n),
        "income": income,
        "tenure": tenure,
        "sessions": rng.poisson(6.0, n).astype(np.float64),
        "channel": channel,
        "region": rng.choice(np.array(regions, dtype=object), n),
        "gender": rng.choice(np.array(["f", "m"], dtype=object), n),
    }


def _classifier_scores(frame: dict[str, np.ndarray]) -> np.ndarray:
    income = np.where(np.isnan(frame["income"]), np.exp(10.5), frame["income"])
    return (frame["age"] - 40.0) / 10.0 + (np.log(income) - 10.5) / 0.4 \
        + 0.3 * (frame["gender"] == "f")


def _probability(scores: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-scores))


def _classifier_truth(rng: np.random.Generator, frame: dict[str, np.ndarray]) -> np.ndarray:
    return (_classifier_scores(frame) + rng.normal(0.0, 0.7, len(frame["age"])) > 0).astype(
        np.int64)


def _regressor_frame(rng: np.random.Generator, n: int,
                     regions: tuple[str, ...] = ("eu", "us")) -> dict[str, np.ndarray]:
    return {
        "area": rng.normal(100.0, 30.0, n),
        "rooms": rng.integers(1, 7, n).astype(np.float64),
        "building_age": rng.uniform(0.0, 80.0, n),
        "region": rng.choice(np.array(regions, dtype=object), n),
    }


def _regressor_values(frame: dict[str, np.ndarray]) -> np.ndarray:
    return 3.0 * frame["area"] + 10.0 * frame["rooms"] - 0.5 * frame["building_age"]


def _features_only(frame: dict[str, np.ndarray], names: tuple[str, ...]) -> dict[str, np.ndarray]:
    return {k: frame[k] for k in names}


class Scenario:
    """Two instrumented models and the thread that sends them traffic (see the module docs).

    Args:
        otlp_grpc_url: The Collector's OTLP/gRPC endpoint (``http://127.0.0.1:port``).
        seed: Random seed.
    """

    def __init__(self, otlp_grpc_url: str, seed: int = 7) -> None:
        self.rng = np.random.default_rng(seed)
        resource = Resource.create({
            "service.name": SERVICE_NAME,
            "service.namespace": SERVICE_NAMESPACE,
            "service.instance.id": f"e2e-{seed}",
        })
        self.tracer_provider = TracerProvider(resource=resource)
        self.tracer_provider.add_span_processor(BatchSpanProcessor(
            OTLPSpanExporter(endpoint=otlp_grpc_url, insecure=True),
            schedule_delay_millis=200, max_queue_size=20_000, max_export_batch_size=2_000))
        self.reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=otlp_grpc_url, insecure=True),
            export_interval_millis=1000)
        self.meter_provider = MeterProvider(resource=resource, metric_readers=[self.reader])
        from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor

        self._system = SystemMetricsInstrumentor(config={
            "process.cpu.time": ["user", "system"], "process.memory.usage": None})
        if self._system.is_instrumented_by_opentelemetry:
            # The instrumentor is a process-wide singleton: an earlier test in this process
            # (e.g. configure() without shutdown()) still holds it, and instrument() would
            # silently do nothing. Take it over for our provider.
            self._system.uninstrument()
        self._system.instrument(meter_provider=self.meter_provider)

        # --- classifier: reference with predictions, validation performance, attributions
        ref = _classifier_frame(self.rng, 20_000)
        ref_pred = _probability(_classifier_scores(ref))
        val = _classifier_frame(self.rng, 5_000)
        val_proba = _probability(_classifier_scores(val))
        val_pred = (val_proba >= 0.5).astype(np.int64)
        val_truth = _classifier_truth(self.rng, val)
        self.classifier_reference = Reference.from_data(
            _features_only(ref, FEATURES), predictions=ref_pred, categorical=["channel"],
            performance=reference_performance(val_truth, val_pred, task="classification"),
            attributions={"age": 0.8, "income": 0.8, "tenure": 0.05, "sessions": 0.05})
        # Performance without labels: the calibration fitted on the validation rows.
        self.classifier_reference.estimation = Reference.from_data(
            _features_only(val, FEATURES), predictions=val_proba, labels=val_truth,
            categorical=["channel"]).estimation
        self.classifier = ModelMonitor(
            CLASSIFIER, VERSION, task="classification", reference=self.classifier_reference,
            segment_by="region", sensitive_attribute="gender", positive_class=1,
            drift_window_s=120.0, slot_s=10.0,
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider)
        self.predict = self.classifier(self._classify)

        # --- regressor
        rref = _regressor_frame(self.rng, 20_000)
        rval = _regressor_frame(self.rng, 5_000)
        rval_pred = _regressor_values(rval)
        rval_truth = rval_pred + self.rng.normal(0, 15.0, 5_000)
        self.regressor_reference = Reference.from_data(
            _features_only(rref, REG_FEATURES), predictions=_regressor_values(rref),
            performance=reference_performance(rval_truth, rval_pred, task="regression"))
        self.regressor_reference.estimation = Reference.from_data(
            _features_only(rval, REG_FEATURES), predictions=rval_pred,
            labels=rval_truth).estimation
        self.regressor = ModelMonitor(
            REGRESSOR, VERSION, task="regression", reference=self.regressor_reference,
            segment_by="region", drift_window_s=120.0, slot_s=10.0,
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider)
        self.estimate = self.regressor(self._estimate)

        # --- versions: a shadow pair and two A/B splits
        providers = {"tracer_provider": self.tracer_provider,
                     "meter_provider": self.meter_provider}
        # The shadow pair's reference holds the two features its models read (drift is
        # evaluated at every export: the pair should not slow the exports down).
        shadow_ref = _features_only(ref, SHADOW_FEATURES)
        self.shadow = otel_ml.shadow(
            _shadow_champion, _shadow_challenger, name=SHADOW, champion_version=VERSION,
            challenger_version=CHALLENGER, task="classification",
            reference=Reference.from_data(
                shadow_ref, predictions=_shadow_champion(shadow_ref),
                performance=reference_performance(
                    _classifier_truth(self.rng, val),
                    _shadow_champion(_features_only(val, SHADOW_FEATURES)),
                    task="classification")),
            drift_window_s=120.0, slot_s=10.0,
            max_share=None,  # the test counts every pair: no CPU budget may drop one
            **providers)
        self.split = otel_ml.split({"a": _shadow_champion, "b": _shadow_challenger}, name=SPLIT,
                                   key="user_id", task="classification", drift_window_s=120.0,
                                   slot_s=10.0, **providers)
        self.split_price = otel_ml.split({"a": _price_a, "b": _price_b}, name=SPLIT_PRICE,
                                         key="user_id", task="regression", drift_window_s=120.0,
                                         slot_s=10.0, **providers)
        #: What the scenario sent: rows compared and disagreements of the shadow pair; per
        #: (model, version): [labelled rows, correct ones] once their labels are sent.
        self.shadow_rows = 0
        self.shadow_disagreements = 0
        self.version_outcomes: dict[tuple[str, str], list[int]] = {}
        self._versions_paused = threading.Event()

        # --- knobs and bookkeeping
        self._lock = threading.Lock()
        self.failure_rate = 0.0
        self.drift = False
        self.new_segment = False
        self.calls = 0
        self.errors = 0
        self.labels_sent = 0
        self.drift_started: float | None = None
        #: Trace ids (hex) of recent classifier calls, recorded inside the predict span.
        self.trace_ids: deque[str] = deque(maxlen=200)
        self._labels: list[tuple[float, int, Any, str, Any]] = []
        self._label_seq = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="e2e-traffic", daemon=True)
        self.failure: BaseException | None = None
        self._bad_proba = False
        self._extra_rng = np.random.default_rng(seed + 1)

    # ------------------------------------------------------------------ the served models
    def _classify(self, frame: dict[str, np.ndarray], prediction_id: str | None = None
                  ) -> np.ndarray:
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            self.trace_ids.append(f"{ctx.trace_id:032x}")
        n = len(frame["age"])
        with _STAGE["load"] as stage:
            stage.rows_in = n
            if not self._bad_proba and self._fail_now():
                raise FeatureStoreTimeout("feature store did not answer within 50 ms")
            stage.rows_out = n
        with _STAGE["preprocess"] as stage:
            stage.rows_in = n
            kept = dict(frame)
            stage.rows_out = n
        with _STAGE["features"] as stage:
            stage.rows_in = n
            scores = _classifier_scores(kept)
            stage.rows_out = n
        with _STAGE["predict"] as stage:
            stage.rows_in = n
            proba = _probability(scores)
            if self._bad_proba:
                proba[0] = np.nan  # a model that sometimes outputs NaN: left out, counted
            stage.rows_out = n
        return proba

    def _estimate(self, frame: dict[str, np.ndarray], prediction_id: str | None = None
                  ) -> np.ndarray:
        with _STAGE["predict"] as stage:
            stage.rows_in = len(frame["area"])
            values = _regressor_values(frame)
            stage.rows_out = len(values)
        return values

    def _fail_now(self) -> bool:
        with self._lock:
            self.calls += 1
            baseline = self.calls % BASELINE_ERROR_EVERY == 0
            rate = self.failure_rate
        return baseline or (rate > 0 and self.rng.random() < rate)

    # ------------------------------------------------------------------ knobs
    def set_failure_rate(self, rate: float) -> None:
        """Share of classifier calls that raise :class:`FeatureStoreTimeout` (error burst)."""
        with self._lock:
            self.failure_rate = rate

    def pause_versions(self) -> None:
        """Stop sending to the shadow pair and the splits (their pending labels still go)."""
        self._versions_paused.set()

    def start_drift(self) -> None:
        """Shift :data:`DRIFTED` of every classifier request from now on."""
        with self._lock:
            self.drift = True
            self.drift_started = time.monotonic()

    # ------------------------------------------------------------------ the loop
    def start(self) -> "Scenario":
        self._thread.start()
        return self

    def check(self) -> None:
        """Raise if the traffic thread died (with its exception)."""
        if self.failure is not None:
            raise AssertionError(f"traffic thread failed: {self.failure!r}") from self.failure
        if not self._thread.is_alive() and not self._stop.is_set():
            raise AssertionError("traffic thread is not running")

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # surfaced by check()
            self.failure = exc

    def _loop(self) -> None:
        rng = self.rng
        tick = 0
        started = time.monotonic()
        next_at = started
        while not self._stop.is_set():
            now = time.monotonic()
            if now < next_at:
                self._stop.wait(next_at - now)
                continue
            next_at = max(next_at + 1.0 / CALLS_PER_S, now - 0.5)  # never burst to catch up
            tick += 1
            if not self.new_segment and now - started > 10.0:
                self.new_segment = True  # a segment the monitor has not seen yet
            regions = ("eu", "us", "apac") if self.new_segment else ("eu", "us")
            with self._lock:
                drift = self.drift
            rows = int(rng.choice([1, 4, 16, 32]))
            frame = _classifier_frame(rng, rows, drift=drift, regions=regions, missing=0.03,
                                      unseen=0.004)
            truth = _classifier_truth(rng, frame)
            # Suspect labels and bad probabilities draw from their own generator, so the
            # traffic above is the same stream of rows as without them.
            proba = _probability(_classifier_scores(frame))
            flip = ((proba > 0.97) | (proba < 0.03)) & (self._extra_rng.random(rows)
                                                        < FLIP_CONFIDENT)
            truth = np.where(flip, 1 - truth, truth)
            pid = f"c-{tick}"
            try:
                self.predict(frame, prediction_id=pid)
            except FeatureStoreTimeout:
                with self._lock:
                    self.errors += 1
            else:
                self._schedule(now, self.classifier, pid, truth)
            if tick % BAD_PROBA_EVERY == 0:  # an extra call with a NaN probability, no label
                self._bad_proba = True
                try:
                    self.predict(_classifier_frame(self._extra_rng, 2, regions=regions),
                                 prediction_id=f"nan-{tick}")
                finally:
                    self._bad_proba = False
            if tick % 4 == 0:
                rframe = _regressor_frame(rng, 8, regions=regions)
                rpid = f"r-{tick}"
                rtruth = _regressor_values(rframe) + rng.normal(0.0, 15.0, 8)
                self.estimate(rframe, prediction_id=rpid)
                self._schedule(now, self.regressor, rpid, rtruth)
            if tick % 5 == 0:
                attributions = np.abs(np.column_stack([
                    (frame["age"] - 40.0) / 10.0, (np.nan_to_num(np.log(frame["income"]),
                                                                 nan=10.5) - 10.5) / 0.4,
                    np.zeros(rows), np.zeros(rows)]))
                self.classifier.record_attributions(attributions, list(NUMERIC))
            if tick % 20 == 0:
                self.classifier.record_rejected("rate_limited")
            if tick % 97 == 0:
                self.classifier.record_outcome(f"never-predicted-{tick}", 1)  # unknown id
            if tick % 89 == 0:  # a caller's id object that cannot be read: an ml.telemetry.errors
                self.estimate(_regressor_frame(rng, 1, regions=regions),  # point, the call runs
                              prediction_id=_UnreadableId())
            if tick % 4 == 2 and not self._versions_paused.is_set():
                self._versions(tick, now)
            for monitor, label_pid, actual in self._due(now):
                if isinstance(actual, _VersionLabel):
                    monitor.record_outcome(label_pid, actual.values, key=actual.key)
                    self._tally(actual)
                elif isinstance(actual, _ShadowLabel):
                    monitor.record_outcome(label_pid, actual.values)
                    for counted in actual.tallies:
                        self._tally(counted)
                else:
                    monitor.record_outcome(label_pid, actual)
                self.labels_sent += 1

    def _versions(self, tick: int, now: float) -> None:
        """One call to the shadow pair and one to each split, with labels scheduled. The shadow
        pair (which has a reference) gets 100 to 200 rows a call, so that its drift window holds
        thousands of rows from the first scrape (a PSI over a few hundred rows is biased up to
        the warning level: see the segment alerts' scenario)."""
        rng = self.rng
        full = _classifier_frame(rng, int(rng.integers(100, 200)))
        frame = _features_only(full, SHADOW_FEATURES)
        truth = _classifier_truth(rng, {**frame, "gender": np.array(["m"] * len(frame["age"]))})
        champion, challenger = _shadow_champion(frame), _shadow_challenger(frame)
        self.shadow(frame, prediction_id=f"s-{tick}")
        with self._lock:
            self.shadow_rows += len(truth)
            self.shadow_disagreements += int((champion != challenger).sum())
        self._schedule(now, self.shadow, f"s-{tick}", _ShadowLabel(truth, (
            _VersionLabel(truth, SHADOW, VERSION, champion),
            _VersionLabel(truth, SHADOW, CHALLENGER, challenger))), always=True)
        user = int(rng.integers(0, 500))
        out = self.split(frame, user_id=user, prediction_id=f"ab-{tick}")
        self._schedule(now, self.split, f"ab-{tick}", _VersionLabel(
            truth, SPLIT, self.split.variant_for(user), out, key=user))
        if tick % 8 == 2:
            rframe = _features_only(_regressor_frame(rng, 4), REG_FEATURES)
            rtruth = _regressor_values(rframe) + rng.normal(0.0, 15.0, 4)
            rout = self.split_price(rframe, user_id=user, prediction_id=f"abp-{tick}")
            self._schedule(now, self.split_price, f"abp-{tick}", _VersionLabel(
                rtruth, SPLIT_PRICE, self.split_price.variant_for(user), rout, key=user))

    def _tally(self, label: _VersionLabel) -> None:
        with self._lock:
            counts = self.version_outcomes.setdefault((label.model, label.version), [0, 0])
            counts[0] += len(label.values)
            counts[1] += int((np.asarray(label.predicted) == label.values).sum())

    def _schedule(self, now: float, monitor: Any, pid: str, actual: Any,
                  always: bool = False) -> None:
        if always or self.rng.random() < LABEL_SHARE:
            due = now + float(self.rng.uniform(*LABEL_DELAY_S))
            self._label_seq += 1
            heapq.heappush(self._labels, (due, self._label_seq, monitor, pid, actual))

    def _due(self, now: float) -> list[tuple[ModelMonitor, str, Any]]:
        out = []
        while self._labels and self._labels[0][0] <= now:
            _, _, monitor, pid, actual = heapq.heappop(self._labels)
            out.append((monitor, pid, actual))
        return out

    def stop(self) -> None:
        """Stop the traffic, flush and shut the providers down (bounded)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        try:
            self._system.uninstrument()
        finally:
            self.classifier.close()
            self.regressor.close()
            self.shadow.shadow.close()
            self.split.close()
            self.split_price.close()
            self.meter_provider.shutdown(timeout_millis=5_000)
            self.tracer_provider.shutdown()


class _UnreadableId:
    """A prediction id whose ``str()`` raises: otel_ml counts it in ``ml.telemetry.errors``
    (reason ``prediction_id``) and gives the call its own id; the caller's call runs as usual."""

    def __str__(self) -> str:
        raise ValueError("no string form")


def _shadow_champion(frame: dict[str, np.ndarray], prediction_id: str | None = None) -> np.ndarray:
    return (_classifier_scores({**frame, "gender": np.array(["m"] * len(frame["age"]))}) > 0
            ).astype(np.int64)


def _shadow_challenger(frame: dict[str, np.ndarray], prediction_id: str | None = None
                       ) -> np.ndarray:
    return (_classifier_scores({**frame, "gender": np.array(["m"] * len(frame["age"]))})
            > CHALLENGER_THRESHOLD).astype(np.int64)


def _price_a(frame: dict[str, np.ndarray]) -> np.ndarray:
    return _regressor_values(frame)


def _price_b(frame: dict[str, np.ndarray]) -> np.ndarray:
    return _regressor_values(frame) + 10.0  # biased: a larger MAE


class _VersionLabel:
    """A label of one version's prediction, and what the scenario tallies when it is sent."""

    def __init__(self, values: np.ndarray, model: str, version: str, predicted: Any,
                 key: Any = None) -> None:
        self.values, self.model, self.version = values, model, version
        self.predicted, self.key = predicted, key


class _ShadowLabel:
    """A label of a shadow pair's call: joined to both versions (``shadow.record_outcome``)."""

    def __init__(self, values: np.ndarray, tallies: tuple[_VersionLabel, ...]) -> None:
        self.values, self.tallies = values, tallies
