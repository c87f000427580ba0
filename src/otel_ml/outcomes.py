"""Outcomes joined to predictions (placeholder: replaced by the ground-truth work)."""

from __future__ import annotations

from typing import Any


class OutcomeMonitor:
    def __init__(self, monitor: Any) -> None:
        self.monitor = monitor

    def remember(self, prediction_id: str, batch: Any, result: Any, output: str,
                 span_context: Any, segment: str | None) -> None:
        pass

    def collectors(self) -> dict:
        return {}

    def inferred_task(self) -> str | None:
        return None

    def after_fork(self) -> None:
        pass
