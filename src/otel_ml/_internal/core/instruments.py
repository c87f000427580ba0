"""Instruments: created once per meter from the contract, shared by every monitor on it.

Synchronous instruments are recorded on the hot path. Observable instruments have one callback
each, which asks every live monitor registered with the holder for its observations at
collection time; a failing monitor is logged and skipped, never allowed to break collection.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Meter, Observation

from otel_ml._internal.core.log import internal_error, log_limited
from otel_ml.contract import (CONTRACT_VERSION, METRICS, SCHEMA_URL, SCOPE_CONTRACT_VERSION, Attr,
                              Kind, MetricSpec)
from otel_ml.version import __version__

__all__ = ["Instruments", "Observer", "instruments_for", "tracer_for"]

_SCOPE = "otel_ml"
#: On every meter and tracer: which metric contract the names follow (with ``SCHEMA_URL``).
_SCOPE_ATTRIBUTES = {SCOPE_CONTRACT_VERSION: CONTRACT_VERSION}

Points = Iterable[tuple[float, Mapping[str, Any]]]


class Observer(Protocol):
    """What an :class:`Instruments` holder asks at collection time."""

    def observe_metric(self, name: str) -> Points:
        """Yield ``(value, attributes)`` for the observable metric ``name``."""


class Instruments:
    """Every instrument of the contract, created once from one meter.

    Args:
        meter: The meter (from the caller's provider, or the global one).
    """

    def __init__(self, meter: Meter) -> None:
        self._observers: weakref.WeakSet[Observer] = weakref.WeakSet()
        self._lock = threading.Lock()
        self.sync: dict[str, Any] = {}
        for spec in METRICS.values():
            self.sync[spec.name] = self._create(meter, spec)

    def _create(self, meter: Meter, spec: MetricSpec) -> Any:
        if spec.kind is Kind.HISTOGRAM:
            return meter.create_histogram(
                spec.name, unit=spec.unit, description=spec.description,
                explicit_bucket_boundaries_advisory=list(spec.buckets or ()),
            )
        if spec.kind is Kind.COUNTER:
            return meter.create_counter(spec.name, unit=spec.unit, description=spec.description)
        factory = (meter.create_observable_counter if spec.kind is Kind.OBSERVABLE_COUNTER
                   else meter.create_observable_gauge)
        return factory(spec.name, callbacks=[self._callback(spec.name)], unit=spec.unit,
                       description=spec.description)

    def _callback(self, name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            with self._lock:
                observers = list(self._observers)
            out: list[Observation] = []
            process_wide = _PROCESS_WIDE.get(name)
            if process_wide is not None:  # no model attributes: reported once per provider
                try:
                    out.extend(Observation(v, a) for v, a in process_wide())
                except Exception as exc:
                    internal_error(f"collect:{name}", exc)
                return out
            for observer in observers:
                try:
                    out.extend(Observation(value, attrs)
                               for value, attrs in observer.observe_metric(name))
                except Exception as exc:  # never let one monitor break collection
                    internal_error(f"collect:{name}", exc)
            return out

        return callback

    def register(self, observer: Observer) -> None:
        """Include ``observer`` in every observable callback until it is garbage-collected."""
        with self._lock:
            self._observers.add(observer)

    def unregister(self, observer: Observer) -> None:
        """Stop asking ``observer`` for observations."""
        with self._lock:
            self._observers.discard(observer)

    def __getitem__(self, name: str) -> Any:
        return self.sync[name]


_GLOBAL = object()
_holders: dict[int, tuple[Any, Instruments]] = {}
_tracers: dict[int, tuple[Any, trace.Tracer]] = {}
_registry_lock = threading.Lock()


def _key(provider: Any) -> tuple[int, Any]:
    owner = _GLOBAL if provider is None else provider
    return id(owner), owner


def instruments_for(meter_provider: metrics.MeterProvider | None = None) -> Instruments:
    """The shared :class:`Instruments` for ``meter_provider`` (``None``: the global API).

    The global meter is taken once from the API: before an SDK provider is set it is a proxy
    that forwards to the real provider as soon as the application sets one.
    """
    key, owner = _key(meter_provider)
    with _registry_lock:
        entry = _holders.get(key)
        if entry is not None and entry[0] is owner:
            return entry[1]
        meter = metrics.get_meter(_SCOPE, __version__, meter_provider, schema_url=SCHEMA_URL,
                                  attributes=_SCOPE_ATTRIBUTES)
        holder = Instruments(meter)
        _holders[key] = (owner, holder)
        return holder


def tracer_for(tracer_provider: trace.TracerProvider | None = None) -> trace.Tracer:
    """The otel_ml tracer for ``tracer_provider`` (``None``: the global API), made once."""
    key, owner = _key(tracer_provider)
    with _registry_lock:
        entry = _tracers.get(key)
        if entry is not None and entry[0] is owner:
            return entry[1]
        tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider, schema_url=SCHEMA_URL,
                                  attributes=_SCOPE_ATTRIBUTES)
        _tracers[key] = (owner, tracer)
        return tracer


def _gpu_points() -> Points:
    from otel_ml._internal.core.gpu import gpu_memory_points

    return gpu_memory_points()


def telemetry_error_points() -> Points:
    """Observations for ``ml.telemetry.errors`` (process-wide, no model attributes)."""
    totals: dict[str, int] = {}
    for cause, n in list(log_limited.counts.items()):
        head = cause.split(":", 1)[0]  # "collect:ml.x" -> "collect": bounded cardinality
        totals[head] = totals.get(head, 0) + n
    return [(float(n), {Attr.REASON: head}) for head, n in totals.items()]


def renew_locks_after_fork() -> None:
    """In a forked child: new locks, in case a parent thread held one at the fork."""
    global _registry_lock
    _registry_lock = threading.Lock()
    for _, holder in list(_holders.values()):
        holder._lock = threading.Lock()


#: Observable metrics about the process rather than a model.
_PROCESS_WIDE: dict[str, Callable[[], Points]] = {
    "ml.telemetry.errors": telemetry_error_points,
    "ml.process.gpu.memory.usage": _gpu_points,
}
