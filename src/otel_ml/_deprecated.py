"""Module-level ``__getattr__`` for import paths kept for one release."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from importlib import import_module
from typing import Any


def forwarder(old: str, names: dict[str, tuple[str, str]]) -> Callable[[str], Any]:
    """Return a module ``__getattr__`` that forwards ``names`` with a DeprecationWarning.

    Args:
        old: The deprecated module's name.
        names: Attribute name -> (new module, what to import from now on).
    """

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        module, instead = names[name]
        warnings.warn(f"{old}.{name} is deprecated and will be removed in the next release; "
                      f"use {instead}", DeprecationWarning, stacklevel=2)
        return getattr(import_module(module), name)

    return __getattr__
