"""``otel_ml.split``: A/B traffic split with deterministic, sticky assignment.

Each call's variant is chosen by hashing a key the caller derives from the call (a user id):
BLAKE2b-64 of ``salt``, a NUL byte and ``str(key)``, read as a number in [0, 1) and placed
among the cumulative weights. The same key always gets the same variant (in every process and
release: the hash is not Python's randomised ``hash``); different salts (by default the model
name) give independent assignments. A key callable that raises or returns ``None`` sends the
call to the first variant, counted as ``key_error`` in ``ml.model.split.assignments``.

Each variant is monitored as a version of the same model (its own
:class:`~otel_ml.ModelMonitor`), so every per-version signal, the label join and the
per-version performance rules apply unchanged. The first variant is the control: every other
variant is declared as a challenger of it (``ml.model.comparison.info``, mode ``split``), which
the recording rules use to test each variant's accuracy or MAE against the control's.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry import trace

from otel_ml._internal.core.instruments import instruments_for
from otel_ml._internal.core.log import log_limited
from otel_ml._internal.core.state import register_monitor
from otel_ml._internal.instrument.comparisons import Comparison, ComparisonReport, report_for
from otel_ml._internal.instrument.model_monitor import ModelMonitor
from otel_ml._internal.instrument.proxy import ModelProxy
from otel_ml._internal.monitor.comparison import SplitTally
from otel_ml.contract import Assignment

__all__ = ["MAX_REMEMBERED_IDS", "Split", "assign_unit", "split"]

#: Caller prediction ids remembered per split to route late labels to their variant.
MAX_REMEMBERED_IDS = 100_000

_SCALE = float(2 ** 64)


def assign_unit(salt: str, key: Any) -> float:
    """The key's position in [0, 1): BLAKE2b-64 of ``salt``, NUL and ``str(key)``."""
    digest = hashlib.blake2b(f"{salt}\x00{key}".encode("utf-8", "surrogatepass"),
                             digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


class Split:
    """Routes each call to one variant (see the module docstring); call it as the model.

    Attributes:
        name: Model name.
        versions: The variants' versions, the control first.
        weights: Normalised weights, in the order of ``versions``.
        monitors: Version to its monitor.
        salt: The hash salt.
    """

    def __init__(self, name: str, variants: Mapping[str, Any],
                 key: str | Callable[[tuple, dict], Any],
                 weights: Sequence[float] | Mapping[str, float] | None, salt: str | None,
                 providers: dict[str, Any], options: dict[str, Any]) -> None:
        if not isinstance(variants, Mapping) or len(variants) < 2:
            raise ValueError("split needs a mapping of at least two versions to models")
        if not callable(key) and not isinstance(key, str):
            raise TypeError("key must be a keyword argument's name (taken out of the call) or "
                            "a callable (args, kwargs) -> the unit to assign "
                            "(e.g. lambda args, kwargs: kwargs['user_id'])")
        self.name = name
        self.versions = [str(v) for v in variants]
        self.weights = _weights(weights, self.versions)
        cumulative = list(self.weights)
        for i in range(1, len(cumulative)):
            cumulative[i] += cumulative[i - 1]
        cumulative[-1] = 1.0
        self._cumulative = cumulative
        self.salt = name if salt is None else str(salt)
        self._key = key if callable(key) else None
        self._key_arg = key if isinstance(key, str) else None
        self.monitors: dict[str, ModelMonitor] = {}
        self._callables: list[Callable[..., Any]] = []
        for version, model in variants.items():
            monitor = ModelMonitor(name, str(version), **providers, **options)
            self.monitors[str(version)] = monitor
            self._callables.append(_monitored(model, monitor))
        self._id_arg = next(iter(self.monitors.values())).settings.prediction_id_arg
        self.tally = SplitTally(name, self.versions)
        instruments_for(providers.get("meter_provider")).register(self.tally)
        register_monitor(self.tally)
        control = self.monitors[self.versions[0]]
        self.comparisons = [
            Comparison(control, self.monitors[v], "split", providers.get("meter_provider"),
                       traffic=self.traffic) for v in self.versions[1:]]
        self._ids: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def _index(self, key_value: Any) -> int:
        return bisect.bisect_right(self._cumulative, assign_unit(self.salt, key_value))

    def variant_for(self, key_value: Any) -> str:
        """The version a key is assigned to (deterministic)."""
        return self.versions[self._index(key_value)]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            if self._key_arg is not None:
                value = kwargs.pop(self._key_arg, None)
            else:
                value = self._key(args, kwargs)  # type: ignore[misc]
            if value is None:
                raise ValueError("the split key is None")
            index, reason = self._index(value), Assignment.KEY
        except Exception as exc:  # the caller's key code: the control variant, counted
            log_limited("split_key", "otel_ml: split key of %s failed (%s); the call goes to "
                        "the first variant", self.name, type(exc).__qualname__, count=False)
            index, reason = 0, Assignment.KEY_ERROR
        self.tally.count(self.versions[index], reason)
        if self._id_arg is not None and kwargs:
            pid = kwargs.get(self._id_arg)
            if pid is not None:
                self._remember(str(pid), index)
        return self._callables[index](*args, **kwargs)

    predict = __call__

    def _remember(self, pid: str, index: int) -> None:
        with self._lock:
            ids = self._ids
            ids[pid] = index
            if len(ids) > MAX_REMEMBERED_IDS:
                ids.popitem(last=False)

    def record_outcome(self, prediction_id: str, actual: Any, *, key: Any = None) -> None:
        """Join a label to the prediction of the variant that made it. Never raises.

        The variant is the one the call's ``key`` hashes to when given, else the one that
        served the caller's ``prediction_id`` (the last :data:`MAX_REMEMBERED_IDS` are kept);
        an unknown id is counted as unmatched by the control variant.
        """
        index = 0
        try:
            if key is not None:
                index = self._index(key)
            else:
                with self._lock:
                    index = self._ids.get(str(prediction_id), 0)
        except Exception as exc:
            log_limited("split_key", "otel_ml: split outcome key failed (%s)",
                        type(exc).__qualname__, count=False)
        self.monitors[self.versions[index]].record_outcome(prediction_id, actual)

    def traffic(self) -> dict[str, int]:
        """Version to calls routed to it since start."""
        out = dict.fromkeys(self.versions, 0)
        for (version, _), n in list(self.tally.counts.items()):
            out[version] += n
        return out

    def comparison_report(self) -> ComparisonReport:
        """The control against the second variant (the others in ``others``), in process."""
        report = report_for(self.monitors[self.versions[0]])
        assert report is not None  # a split always has its comparisons
        return report

    def close(self) -> None:
        """Stop reporting the assignments and the pairs (the variants keep working)."""
        self.tally.closed = True
        for comparison in self.comparisons:
            comparison.close()


def _weights(weights: Any, versions: list[str]) -> list[float]:
    if weights is None:
        values = [1.0] * len(versions)
    elif isinstance(weights, Mapping):
        if {str(k) for k in weights} != set(versions):
            raise ValueError(f"weights must name exactly the versions {versions}")
        by_version = {str(k): w for k, w in weights.items()}
        values = [float(by_version[v]) for v in versions]
    else:
        values = [float(w) for w in weights]
        if len(values) != len(versions):
            raise ValueError(f"{len(values)} weights for {len(versions)} variants")
    if any(not math.isfinite(w) or w < 0 for w in values) or sum(values) <= 0:
        raise ValueError(f"weights must be finite, >= 0 and not all 0, got {values}")
    total = sum(values)
    return [w / total for w in values]


def _monitored(model: Any, monitor: ModelMonitor) -> Callable[..., Any]:
    predict = getattr(model, "predict", None)
    if callable(predict):
        return ModelProxy(model, monitor).predict  # type: ignore[no-any-return]
    if callable(model):
        return monitor(model)
    raise TypeError(f"a split variant is a function or a model with predict(), got "
                    f"{type(model).__name__}")


def split(variants: Mapping[str, Any], *, name: str, key: str | Callable[[tuple, dict], Any],
          weights: Sequence[float] | Mapping[str, float] | None = None, salt: str | None = None,
          tracer_provider: trace.TracerProvider | None = None, meter_provider: Any = None,
          **options: Any) -> Split:
    """Split traffic between versions of a model, each monitored as its version.

    Args:
        variants: Version to model (function, ``async def`` or object with ``predict``), the
            control first.
        name: Model name (``ml.model.name``) of every variant.
        key: ``(args, kwargs) -> unit`` (a user id): calls with the same unit always go to the
            same variant; or the name of a keyword argument holding the unit, taken out of the
            call before the variant sees it (``split(x, user_id=42)`` with ``key="user_id"``).
        weights: Traffic shares (normalised), in the order of ``variants`` or by version;
            default equal.
        salt: Hash salt (default the model name): another salt, another assignment.
        tracer_provider: Provider to use instead of the global one.
        meter_provider: Provider to use instead of the global one.
        **options: :class:`~otel_ml.ModelMonitor` options for every variant.

    Returns:
        A :class:`Split`: call it (or its ``predict``) as the model;
        ``split.record_outcome(id, label)`` joins labels per variant.
    """
    providers = {"tracer_provider": tracer_provider, "meter_provider": meter_provider}
    return Split(name, variants, key, weights, salt, providers, options)
