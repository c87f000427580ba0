"""Scratch arrays reused from one vectorised pass to the next.

A pass over a chunk of rows needs temporaries of the chunk's size. Allocated afresh, arrays
of a few hundred kilobytes come from (and go back to) the operating system each time, and
every page is faulted in again: on a loaded machine that costs more than the arithmetic. A
:class:`Scratch` keeps one array per name at the largest size asked for (bounded by the
chunk size the caller uses) and hands out views of it.

Not thread-safe: its owner serialises the passes (one lock).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["Scratch"]


class Scratch:
    """Named scratch arrays (see the module docs)."""

    #: Views remembered by (name, shape, dtype) at most (chunks of varying length).
    MAX_VIEWS = 64

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}
        self._views: dict[tuple[str, tuple[int, ...], Any], np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """A C-contiguous array of ``shape`` and ``dtype`` (contents undefined) that stays
        valid until the next :meth:`get` of the same name."""
        key = (name, shape, dtype)
        view = self._views.get(key)
        if view is not None:  # the usual: the same chunk shape as before
            return view
        size = math.prod(shape)
        held = self._arrays.get(name)
        if held is None or held.dtype != np.dtype(dtype) or held.size < size:
            held = self._arrays[name] = np.empty(max(size, 1), dtype=dtype)
            self._views = {k: v for k, v in self._views.items() if k[0] != name}
        view = held[:size].reshape(shape)
        if len(self._views) >= self.MAX_VIEWS:
            self._views.clear()
        self._views[key] = view
        return view

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        return sum(a.nbytes for a in self._arrays.values())
