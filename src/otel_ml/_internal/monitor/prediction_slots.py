"""The packed encoding of the prediction store: a ring of compact slots of typed arrays.

A remembered call costs about 160 bytes here (one element of each typed array in
:data:`FIELDS` and an index entry), plus the held input row (8 bytes per feature) when
inputs are kept, plus an :class:`Extra` for what does not fit a slot (a user's prediction id,
multi-row predictions or inputs, per-row segments), which the byte cap counts.

A slot's ``flags`` field packs small codes into one integer; read it with the accessors of
:class:`Flags` (the hot path writes it with the same shifts, inline).
"""

from __future__ import annotations

import threading
from array import array
from typing import Any

import numpy as np

__all__ = ["Codes", "Extra", "Flags", "PackedSlots", "PredictionCodec", "Tombstone",
           "record_key"]

_INDEX_ENTRY = 110  # bytes per live record in the id index (dict entry, int key and slot)
#: Fields of a slot and their C types: one typed array per field (compact like numpy, with
#: element access at Python speed, which the hot path needs).
FIELDS = (("t", "d"), ("trace_hi", "Q"), ("trace_lo", "Q"), ("span", "Q"), ("pred", "d"),
          ("rows", "i"), ("flags", "Q"))
_EXACT_INT = 1 << 53
_DENSE_INPUT_BYTES = 8 * 1024 * 1024  # largest preallocated array of held single rows
MASK64 = (1 << 64) - 1


class Flags:
    """Layout of a slot's ``flags``: 8 bits of booleans, the trace flags (8 bits), the output
    code (8), the prediction layout code + 1 (16; 0: the prediction is in the extra) and the
    segment code + 1 (24; 0: no segment)."""

    LIVE, CONTEXT, EXTRA, ROW, ROW_2D = 1, 2, 4, 8, 16
    TRACE_FLAGS, OUTPUT, LAYOUT, SEGMENT = 8, 16, 24, 40  # shifts

    @staticmethod
    def pack(bits: int, trace_flags: int, output: int, layout: int, segment: int) -> int:
        """Pack the fields (``segment`` -1: none)."""
        return bits | trace_flags << 8 | output << 16 | layout << 24 | (segment + 1) << 40

    @staticmethod
    def trace_flags(flags: int) -> int:
        """The span context's trace flags."""
        return flags >> 8 & 0xFF

    @staticmethod
    def output(flags: int) -> int:
        """Code of the output kind."""
        return flags >> 16 & 0xFF

    @staticmethod
    def layout(flags: int) -> int:
        """Code + 1 of the prediction's dtype and rank (0: the prediction is in the extra)."""
        return flags >> 24 & 0xFFFF

    @staticmethod
    def segment(flags: int) -> int:
        """Code of the segment, or -1 for none."""
        return (flags >> 40) - 1


class Tombstone:
    """Why a prediction id left the store unlabelled (codes of the tombstone ring)."""

    EXPIRED, EVICTED, DUPLICATE = 1, 2, 3
    REASONS = ("", "expired", "evicted", "duplicate")


class Extra:
    """What a record holds beyond its compact slot (user id, big predictions, input)."""

    __slots__ = ("ctx", "held", "key", "nbytes", "pred", "segments")

    def __init__(self) -> None:
        self.key: str | None = None
        self.pred: np.ndarray | None = None
        self.segments: Any = None
        self.held: Any = None
        self.ctx: Any = None
        self.nbytes = 0


class Codes:
    """Small values (segments, output kinds, prediction layouts) by compact integer code.

    Args:
        cap: Most distinct values given a code.
    """

    __slots__ = ("cap", "codes", "lock", "values")

    def __init__(self, cap: int = 4096) -> None:
        self.cap = cap
        self.codes: dict[Any, int] = {}
        self.values: list[Any] = []
        self.lock = threading.Lock()

    def __call__(self, value: Any) -> int:
        """The value's code, or -1 when the table is full (any thread)."""
        code = self.codes.get(value)
        if code is None:
            with self.lock:
                code = self.codes.get(value)
                if code is None:
                    if len(self.values) >= self.cap:
                        return -1
                    self.values.append(value)
                    code = self.codes[value] = len(self.values) - 1
        return code


class PredictionCodec:
    """One prediction as a float and a layout code (its dtype and rank), and back.

    Attributes:
        layouts: Codes of ``(dtype string, ndim)`` layouts.
        labels: Codes of string labels (stored as their code).
        float_layout: ``(dtype, ndim, code + 1)`` of the last float array seen (the usual
            case, checked first on the hot path).
    """

    __slots__ = ("float_layout", "labels", "layouts")

    def __init__(self) -> None:
        self.layouts = Codes(65_000)
        self.labels = Codes()
        self.float_layout: tuple[Any, int, int] = (None, -1, 0)

    def scalar(self, result: Any) -> tuple[float, int]:
        """One prediction as ``(value, layout code + 1)``; code 0: not a single value."""
        t = type(result)
        if t is np.ndarray:
            if result.size != 1 or result.ndim > 2:
                return 0.0, 0
            if result.dtype is self.float_layout[0] and result.ndim == self.float_layout[1]:
                return result.item(), self.float_layout[2]  # the usual case, cached
            kind = result.dtype.kind
            v = result.item()
            layout = (result.dtype.str, result.ndim)
        elif t is float:
            kind, v, layout = "f", result, ("<f8", 0)
        elif t is int or t is bool:
            kind, v, layout = "i", result, ("<i8" if t is int else "|b1", 0)
        else:
            return 0.0, 0
        if kind in "US":
            code = self.labels(v)
            if code < 0:
                return 0.0, 0
            v = code
        elif kind in "iu":
            if not -_EXACT_INT < v < _EXACT_INT:
                return 0.0, 0
        elif kind not in "fb":
            return 0.0, 0
        code = self.layouts(layout) + 1
        if t is np.ndarray and kind == "f" and code:
            self.float_layout = (result.dtype, result.ndim, code)
        return float(v), code

    def array(self, value: float, pcode: int, extra: Extra | None) -> np.ndarray:
        """The prediction of a slot: its value and layout code (0: the extra's copy)."""
        if pcode == 0:
            assert extra is not None and extra.pred is not None
            return extra.pred
        dtype, ndim = self.layouts.values[pcode - 1]
        dtype = np.dtype(dtype)
        if dtype.kind in "US":
            arr = np.array(self.labels.values[int(value)], dtype=dtype)
        else:
            arr = np.array(value).astype(dtype)
        return arr.reshape((1,) * ndim)


def record_key(pid: str) -> int | str:
    """Index key of a prediction id: an int for 16 lowercase hex digits (span ids), else
    the string (one-to-one, so user ids never collide with span ids)."""
    if len(pid) == 16 and not pid.strip("0123456789abcdef"):  # (int() would take "0x...")
        return int(pid, 16)
    return pid


def _key64(key: int | str) -> int:
    return key if type(key) is int else hash(key) & MASK64


class PackedSlots:
    """Predictions waiting for their labels: a ring of compact slots (one typed array per
    field of :data:`FIELDS`), an index ``key -> slot``, and a ring of tombstones (ids dropped
    unlabelled).

    The ring holds the last ``size`` calls: writing a slot evicts the record still in it
    (the oldest). Not thread-safe: the owner's lock guards it.

    Args:
        size: Slots.
        max_bytes: Byte cap of the live records.
        max_tombstones: Ids of dropped records remembered (to say why a late label fails).
    """

    def __init__(self, size: int, max_bytes: int, max_tombstones: int) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self.t = array("d", bytes(size * 8))
        self.trace_hi = array("Q", bytes(size * 8))
        self.trace_lo = array("Q", bytes(size * 8))
        self.span = array("Q", bytes(size * 8))
        self.pred = array("d", bytes(size * 8))
        self.rows = array("i", bytes(size * array("i").itemsize))
        self.flags = array("Q", bytes(size * 8))
        self.index: dict[int | str, int] = {}
        self.extras: dict[int, Extra] = {}
        self.inputs: np.ndarray | None = None  # (size, width) float64 held single rows
        self.width = -1  # -1: not decided yet; 0: no dense rows
        self.row_bytes = 0
        self.pos = 0  # insertions so far (next slot: pos % size)
        self.lo = 0  # position of the oldest slot that may be live
        self.bytes = 0  # live records' bytes (slot + index + row + extras)
        self.record_bytes = sum(array(c).itemsize for _, c in FIELDS) + _INDEX_ENTRY
        self.evicted = 0
        self.expired = 0
        n = max(1, max_tombstones)
        self.n_tombs = n
        self.tomb_keys = array("Q", bytes(8 * n))
        self.tomb_reasons = array("B", bytes(n))
        self.tomb_pos = 0

    def dense_width(self, width: int) -> bool:
        """Whether single rows of this width go to the preallocated array (decided once)."""
        if self.width < 0:
            ok = width > 0 and self.size * width * 8 <= min(_DENSE_INPUT_BYTES, self.max_bytes)
            self.width = width if ok else 0
            self.row_bytes = self.width * 8
            if ok:
                self.inputs = np.zeros((self.size, width))
        return width == self.width

    def tomb(self, key: int | str, reason: int) -> None:
        """Remember why ``key`` left (a code of :class:`Tombstone`)."""
        i = self.tomb_pos % self.n_tombs
        self.tomb_keys[i] = _key64(key)
        self.tomb_reasons[i] = reason
        self.tomb_pos += 1

    def tomb_reason(self, key: int | str) -> str | None:
        """Why ``key`` left, when its tombstone is still in the ring."""
        keys = np.frombuffer(self.tomb_keys, dtype=np.uint64)
        reasons = np.frombuffer(self.tomb_reasons, dtype=np.uint8)
        hits = np.flatnonzero(keys == np.uint64(_key64(key)))
        hits = hits[reasons[hits] != 0]
        if not hits.size:
            return None
        n = len(self.tomb_keys)
        newest = hits[np.argmin((self.tomb_pos - 1 - hits) % n)]
        return Tombstone.REASONS[reasons[newest]]

    def drop(self, i: int, reason: int) -> None:
        """Free slot ``i`` (live); tombstone it when ``reason`` (expired/evicted) is not 0."""
        flags = self.flags[i]
        self.flags[i] = 0
        nbytes = self.record_bytes
        if flags & Flags.EXTRA:
            extra = self.extras.pop(i)
            key: int | str = self.span[i] if extra.key is None else extra.key
            nbytes += extra.nbytes
        else:
            key = self.span[i]
        if flags & Flags.ROW:
            nbytes += self.row_bytes
        self.bytes -= nbytes
        self.index.pop(key, None)
        if reason:
            if reason == Tombstone.EXPIRED:
                self.expired += 1
            else:
                self.evicted += 1
            self.tomb(key, reason)

    def put(self, key: int | str, now: float, ttl: float, hi: int, lo: int, span: int,
            value: float, rows: int, flags: int, row: Any, extra: Extra | None) -> None:
        """Write one record into the next slot (evicting its old record)."""
        old = self.index.get(key)
        if old is not None:
            self.drop(old, 0)
        i = self.pos % self.size  # the next slot, freed of the oldest record
        if self.flags[i]:
            self.drop(i, Tombstone.EXPIRED if now - self.t[i] > ttl else Tombstone.EVICTED)
        self.pos += 1
        self.t[i] = now
        self.trace_hi[i] = hi
        self.trace_lo[i] = lo
        self.span[i] = span
        self.pred[i] = value
        self.rows[i] = rows
        self.flags[i] = flags
        if row is not None:
            self.inputs[i] = row
            self.bytes += self.row_bytes
        if extra is not None:
            self.extras[i] = extra
            self.bytes += extra.nbytes
        self.index[key] = i
        self.bytes += self.record_bytes
        if self.bytes > self.max_bytes or not self.pos & 63:  # expiry: every 64 calls
            self.trim(now, ttl)

    def trim(self, now: float, ttl: float) -> None:
        """Drop expired records from the old end, then the oldest while over the byte cap."""
        t, live, size = self.t, self.flags, self.size
        lo = max(self.lo, self.pos - size)
        while lo < self.pos:
            i = lo % size
            if live[i] & Flags.LIVE:
                if now - t[i] > ttl:
                    self.drop(i, Tombstone.EXPIRED)
                elif self.bytes > self.max_bytes:
                    self.drop(i, Tombstone.EVICTED)
                else:
                    break
            lo += 1
        self.lo = lo
