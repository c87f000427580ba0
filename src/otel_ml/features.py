"""Statistics of inputs and predictions (placeholder: replaced by the reference/drift work)."""

from __future__ import annotations

from typing import Any


class FeatureMonitor:
    def __init__(self, monitor: Any) -> None:
        self.monitor = monitor

    def observe(self, x: Any, predictions: Any, *, segment: str | None, output: str) -> Any:
        return None

    def collectors(self) -> dict:
        return {}

    def inferred_task(self) -> str | None:
        return None

    def drift_report(self) -> Any:
        raise NotImplementedError

    def flush(self) -> None:
        pass

    def capture_payload(self, span: Any, x: Any, predictions: Any) -> None:
        pass

    def after_fork(self) -> None:
        pass
