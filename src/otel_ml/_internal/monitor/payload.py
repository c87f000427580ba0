"""Payload capture: a sampled call's inputs and predictions on its span, opt-in and redacted."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from otel_ml._internal.core.log import internal_error
from otel_ml._internal.data.arrays import to_array
from otel_ml._internal.data.inputs import default_names, to_table
from otel_ml._internal.monitor.feature_ingest import FeatureIngest
from otel_ml._internal.monitor.settings import Settings
from otel_ml.contract import Attr

__all__ = ["PAYLOAD_CHARS", "PAYLOAD_ROWS", "PayloadCapture"]

#: Largest payload attribute, characters.
PAYLOAD_CHARS = 4096
#: Rows captured per call.
PAYLOAD_ROWS = 10


class PayloadCapture:
    """Attaches inputs and predictions to spans as JSON, without the ``redact`` fields.

    Args:
        settings: The monitor's settings (``redact``, ``feature_names``).
        ingest: Knows the feature names of positional input.
    """

    def __init__(self, settings: Settings, ingest: FeatureIngest) -> None:
        self._redact = settings.redact
        self._names = settings.feature_names
        self._ingest = ingest

    def capture(self, span: Any, x: Any, predictions: Any) -> None:
        """Attach (already sampled) ``x`` and ``predictions`` to ``span``, cut to a few rows
        and characters. Never raises."""
        try:
            truncated = False
            if x is not None:
                table = to_table(x)
                names = table.names or list(self._ingest.feature_names or self._names
                                            or default_names(table.width))
                if len(names) != table.width:
                    names = list(default_names(table.width))
                keep = [i for i, n in enumerate(names) if n not in self._redact]
                n_rows = min(table.rows, PAYLOAD_ROWS)
                truncated = table.rows > n_rows
                cols = {names[i]: _jsonable(_head(table.column(i), n_rows)) for i in keep}
                rows = [{k: v[r] for k, v in cols.items()} for r in range(n_rows)]
                text, cut = _bounded_json(rows)
                truncated = truncated or cut
                span.set_attribute(Attr.PAYLOAD_INPUTS, text)
            if predictions is not None:
                text, cut = _bounded_json(_jsonable(_head(predictions, PAYLOAD_ROWS)))
                truncated = truncated or cut
                span.set_attribute(Attr.PAYLOAD_PREDICTIONS, text)
            if truncated:
                span.set_attribute(Attr.PAYLOAD_TRUNCATED, True)
        except Exception as exc:
            internal_error("payload", exc)


def _head(values: Any, n: int) -> Any:
    a = to_array(values)
    return a[:n] if a.ndim else a


def _jsonable(a: Any) -> Any:
    if isinstance(a, np.ndarray):
        return [_jsonable(v) for v in a.tolist()] if a.dtype == object else _clean(a.tolist())
    return _clean(a)


def _clean(v: Any) -> Any:
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, list):
        return [_clean(x) for x in v]
    if v is None or isinstance(v, (int, str, bool)):
        return v
    return str(v)


def _bounded_json(value: Any) -> tuple[str, bool]:
    text = json.dumps(value, separators=(",", ":"), default=str)
    if len(text) <= PAYLOAD_CHARS:
        return text, False
    return text[: PAYLOAD_CHARS - 3] + "...", True
