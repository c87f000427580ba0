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

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """A C-contiguous array of ``shape`` and ``dtype`` (contents undefined) that stays
        valid until the next :meth:`get` of the same name."""
        size = math.prod(shape)
        dtype = np.dtype(dtype)
        held = self._arrays.get(name)
        if held is None or held.dtype != dtype or held.size < size:
            held = self._arrays[name] = np.empty(max(size, 1), dtype=dtype)
        return held[:size].reshape(shape)

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        return sum(a.nbytes for a in self._arrays.values())
