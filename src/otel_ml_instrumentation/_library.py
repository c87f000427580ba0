"""What the three instrumentors share: the environment, the import hook, patching, undoing.

An instrumentor names the module whose import triggers patching and a function that patches it
given an ``otel_ml._internal.instrument.auto_calls.AutoCalls`` and a ``ClassPatcher``. Nothing
here raises into the application: a library that cannot be patched is left untouched, with one
log line.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Collection
from typing import Any

import wrapt
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

__all__ = ["LibraryInstrumentor", "Settings"]

_logger = logging.getLogger("otel_ml.instrumentation")

# Equal to the constants of ``otel_ml.environment_variables`` (not imported: start-up cost).
_NAME = "OTEL_ML_MODEL_NAME"
_VERSION = "OTEL_ML_MODEL_VERSION"
_REFERENCE = "OTEL_ML_REFERENCE"


class Settings:
    """What ``instrument()`` was given, read once when it ran.

    Attributes:
        name: ``OTEL_ML_MODEL_NAME`` or ``None``.
        version: ``OTEL_ML_MODEL_VERSION`` or ``"unknown"``.
        reference: ``OTEL_ML_REFERENCE`` when it names a file, else ``None``.
        tracer_provider: The ``tracer_provider`` keyword, or ``None`` (global).
        meter_provider: The ``meter_provider`` keyword, or ``None`` (global).
    """

    def __init__(self, **kwargs: Any) -> None:
        env = os.environ
        self.name = env.get(_NAME, "").strip() or None
        self.version = env.get(_VERSION, "").strip() or "unknown"
        reference = env.get(_REFERENCE, "").strip() or None
        if reference is not None and not os.path.isfile(reference):
            _logger.warning("otel_ml: %s=%r is not a file; models are observed without a "
                            "reference (no drift)", _REFERENCE, reference)
            reference = None
        self.reference = reference
        self.tracer_provider = kwargs.get("tracer_provider")
        self.meter_provider = kwargs.get("meter_provider")


class _Session:
    """One ``instrument()`` .. ``uninstrument()``: the hook's target and what it patched."""

    def __init__(self, library: str, patch: Callable[[Any, Any, Any], None],
                 settings: Settings) -> None:
        self.library = library
        self.patch = patch
        self.settings = settings
        self.active = True
        self.calls: Any = None
        self.patcher: Any = None

    def on_import(self, module: Any) -> None:
        """The library was imported (or already was): patch it, or leave it untouched."""
        if not self.active or self.patcher is not None:
            return
        try:
            from otel_ml._internal.instrument.auto_calls import AutoCalls, Defaults
            from otel_ml._internal.instrument.auto_patch import ClassPatcher

            s = self.settings
            self.calls = AutoCalls(Defaults(s.name, s.version, s.reference),
                                   tracer_provider=s.tracer_provider,
                                   meter_provider=s.meter_provider)
            self.patcher = ClassPatcher()
            self.patch(module, self.calls, self.patcher)
        except Exception as exc:
            _logger.warning("otel_ml: %s is not instrumented: %s: %s", self.library,
                            type(exc).__name__, exc)
            self.stop()

    def stop(self) -> None:
        self.active = False
        try:
            if self.patcher is not None:
                self.patcher.restore()
            if self.calls is not None:
                self.calls.close()
        except Exception as exc:  # pragma: no cover - restoring is plain attribute setting
            _logger.warning("otel_ml: undoing the %s instrumentation failed: %s",
                            self.library, exc)


class LibraryInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """A library's instrumentor: patch on import, restore on ``uninstrument()``.

    Subclasses set ``library`` (the module whose import triggers patching), ``requirements``
    and ``patch(module, calls, patcher)``.
    """

    library: str = ""
    requirements: tuple[str, ...] = ()

    def instrumentation_dependencies(self) -> Collection[str]:
        """The library's distribution and lowest supported version."""
        return self.requirements

    def _instrument(self, **kwargs: Any) -> None:
        try:
            session = _Session(self.library, type(self).patch, Settings(**kwargs))
            self._otel_ml_session = session
            wrapt.register_post_import_hook(session.on_import, self.library)
        except Exception as exc:
            _logger.warning("otel_ml: %s is not instrumented: %s", self.library, exc)

    def _uninstrument(self, **kwargs: Any) -> None:
        session = getattr(self, "_otel_ml_session", None)
        if session is not None:
            session.stop()
            self._otel_ml_session = None

    @staticmethod
    def patch(module: Any, calls: Any, patcher: Any) -> None:  # pragma: no cover - abstract
        """Patch the library (``module`` is what the hook was registered for)."""
        raise NotImplementedError

    @property
    def monitors(self) -> list[Any]:
        """The :class:`otel_ml.ModelMonitor` of every model observed so far."""
        session = getattr(self, "_otel_ml_session", None)
        return [] if session is None or session.calls is None else session.calls.monitors()
