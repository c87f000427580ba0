"""Patching a library's classes for the zero-code instrumentors, and putting them back.

Only methods a class defines itself are wrapped (``cls.__dict__``), with a
:class:`PatchedMethod` (a ``wrapt.FunctionWrapper``: signatures, docstrings and descriptors
such as scikit-learn's ``available_if`` keep working). Classes defined after patching (the
library's modules the user imports later) are patched as they are created, through their base
class's ``__init_subclass__``. :meth:`ClassPatcher.restore` puts every original back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import wrapt

from otel_ml._internal.core.log import internal_error

__all__ = ["ClassPatcher", "PatchedMethod", "subclasses"]


class PatchedMethod(wrapt.FunctionWrapper):
    """A method wrapped by a zero-code instrumentor (``__wrapped__`` is the original)."""


def subclasses(base: type) -> Iterator[type]:
    """``base`` and every class derived from it so far, each once."""
    seen: set[type] = set()
    todo = [base]
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        yield cls
        try:
            todo.extend(cls.__subclasses__())
        except TypeError:  # ``type.__subclasses__`` needs an argument
            continue


class ClassPatcher:
    """Wraps methods of classes and restores them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._patched: list[tuple[type, str, Any]] = []
        self._hooks: list[tuple[type, Any]] = []

    def wrap(self, cls: type, name: str, wrapper: Callable[..., Any]) -> bool:
        """Wrap ``cls.name`` when ``cls`` defines it as a function or descriptor.

        Returns:
            Whether it was wrapped (not when inherited, a class/static method or property, or
            already wrapped).
        """
        original = cls.__dict__.get(name)
        if (original is None or isinstance(original, (PatchedMethod, classmethod, staticmethod,
                                                       property, type))
                or not hasattr(original, "__get__")):
            return False
        with self._lock:
            setattr(cls, name, PatchedMethod(original, wrapper))
            self._patched.append((cls, name, original))
        return True

    def on_subclass(self, base: type, patch: Callable[[type], None]) -> None:
        """Call ``patch(cls)`` for every class derived from ``base`` from now on (never raises
        into the class definition)."""
        own = base.__dict__.get("__init_subclass__")

        def __init_subclass__(cls: type, **kwargs: Any) -> None:
            if own is not None:
                own.__get__(None, cls)(**kwargs)
            else:
                super(base, cls).__init_subclass__(**kwargs)  # type: ignore[misc]
            try:
                patch(cls)
            except Exception as exc:
                internal_error("instrumentor", exc)

        with self._lock:
            hook = classmethod(__init_subclass__)
            base.__init_subclass__ = hook  # type: ignore[assignment,method-assign]
            self._hooks.append((base, own))

    def restore(self) -> None:
        """Put every original method and ``__init_subclass__`` back."""
        with self._lock:
            for base, own in reversed(self._hooks):
                if own is not None:
                    base.__init_subclass__ = own  # type: ignore[method-assign]
                else:
                    try:
                        del base.__init_subclass__
                    except AttributeError:
                        pass
            for cls, name, original in reversed(self._patched):
                current = cls.__dict__.get(name)
                if isinstance(current, PatchedMethod) and current.__wrapped__ is original:
                    setattr(cls, name, original)
            self._hooks.clear()
            self._patched.clear()
