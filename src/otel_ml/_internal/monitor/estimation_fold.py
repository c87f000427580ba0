"""Folding pending calls into the estimation sums: the calls a monitor kept since the last
fold (predictions copied on the hot path, the loss model's input columns kept for a
regressor) are validated, joined per time slot and evaluated in chunks of up to
:data:`CHUNK_ROWS` rows (see :mod:`otel_ml._internal.monitor.estimation`): a binary
classifier's raw scores through one
:class:`~otel_ml._internal.reference.score_table.ScoreTable` lookup and three ``bincount``
calls, a multiclass classifier's rows calibrated and summed, a regressor's rows through the
loss model's tables. A chunk's temporaries live in a :class:`Scratch` the monitor keeps, so a
fold allocates (and page-faults) nothing of the chunk's size.

Each fold returns, per segment, an accumulator of the slot's sums. Sums do not depend on how
rows were grouped into calls or chunks, so 1-row calls fold to the same estimates as one
batch of the same rows (up to float rounding).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from otel_ml._internal.core.scratch import Scratch
from otel_ml._internal.monitor.loss_arena import LossArena
from otel_ml._internal.monitor.loss_input import LossInput
from otel_ml._internal.reference.calibration import Calibration
from otel_ml._internal.reference.loss_model import PREDICTION, LossModel
from otel_ml._internal.reference.score_table import ScoreTable
from otel_ml.contract import Excluded

__all__ = ["CHUNK_ROWS", "Pending", "fold_binary", "fold_multiclass", "fold_regression",
           "row_segments", "segment_codes"]

#: Rows of a probability row may sum to 1 within this.
SUM_TOLERANCE = 1e-3
#: Rows evaluated at once (the scratch arrays hold this many rows).
CHUNK_ROWS = 8192

#: ``(reason, rows)`` -> counts a data-quality problem of the predictions.
Exclude = Callable[[str, int], None]
#: A new, empty accumulator of the monitor's kind.
NewAcc = Callable[[], Any]
#: Per segment, the sums of a slot.
Parts = list[tuple[str, Any]]


class Pending(NamedTuple):
    """One call waiting to be folded in.

    Attributes:
        slot: Absolute time slot of the call.
        predictions: A private copy of the call's predictions.
        segments: The call's segment, or one per row.
        inputs: Regression: the loss model's input columns, the predictions' row included
            (:class:`LossInput`), else ``None``.
    """

    slot: int
    predictions: np.ndarray
    segments: Any
    inputs: LossInput | None


def row_segments(items: Sequence[Any], sizes: Sequence[int]) -> Any:
    """One segment for all rows (a string) when the items agree, else one per row."""
    first = items[0]
    if all(isinstance(s, str) and s == first for s in items):
        return first
    return np.concatenate([np.full(n, s, dtype=object) if isinstance(s, str)
                           else np.asarray(s, dtype=object).reshape(-1)
                           for s, n in zip(items, sizes)])


def segment_codes(segments: Any) -> tuple[list[str], np.ndarray | None]:
    """``(segment names, per-row index into them)``; the index is ``None`` when every row is
    in the one segment."""
    if isinstance(segments, str):
        return [segments], None
    names, codes = np.unique(segments.astype(str), return_inverse=True)
    if len(names) == 1:
        return [str(names[0])], None
    return names.tolist(), codes.reshape(-1).astype(np.intp)


def _chunks(sizes: Sequence[int], limit: int) -> Iterator[list[tuple[int, int, int]]]:
    """Pieces ``(item, start, stop)`` of the items' rows, in order, in groups of at most
    ``limit`` rows (an item longer than that is cut)."""
    group: list[tuple[int, int, int]] = []
    rows = 0
    for i, n in enumerate(sizes):
        start = 0
        while start < n:
            take = min(n - start, limit - rows)
            group.append((i, start, start + take))
            rows += take
            start += take
            if rows == limit:
                yield group
                group, rows = [], 0
    if group:
        yield group


def _piece(seg: Any, start: int, stop: int) -> Any:
    return seg if isinstance(seg, str) else seg[start:stop]


def _accumulate(accs: dict[str, Any], new: NewAcc, names: list[str],
                add: Callable[[Any, int], None]) -> None:
    for i, name in enumerate(names):
        acc = accs.get(name)
        if acc is None:
            acc = accs[name] = new()
        add(acc, i)


# ---------------------------------------------------------------------- binary
def _binary_scores(arr: np.ndarray, exclude: Exclude,
                   ) -> tuple[np.ndarray, np.ndarray | None] | None:
    """``(positive-class scores, usable rows or None for all)`` of one binary call, checked
    as :func:`_proba` checks it; ``None``: the call is unusable."""
    if arr.dtype.kind == "f" and arr.ndim <= 1:
        p = arr.reshape(-1)
        good = (p >= 0.0) & (p <= 1.0)  # NaN fails both
        if good.all():
            return p, None
        finite = np.isfinite(p)
        exclude(Excluded.MISSING, int((~finite).sum()))
        exclude(Excluded.OUT_OF_RANGE, int((finite & ~good).sum()))
        return p, good
    read = _proba(arr, 2, exclude)
    return None if read is None else (read[0][:, 1], read[1])


def _valid(values: np.ndarray, ok: np.ndarray | None, seg: Any) -> tuple[np.ndarray, Any]:
    """A call's ``values`` and segments (one, or one per row) where ``ok`` (``None``: all)."""
    if ok is None:
        return values, seg
    if not isinstance(seg, str):
        seg = np.asarray(seg, dtype=object).reshape(-1)[ok]
    return values[ok], seg


def fold_binary(items: Sequence[Pending], table: ScoreTable, exclude: Exclude,
                scratch: Scratch, new: NewAcc) -> Parts:
    """Validate the pending calls of one slot of a binary model and sum them per segment
    (positive-class scores, the usual output, are checked a chunk at a time)."""
    scores, segs = [], []
    for item in items:
        arr = item.predictions
        if arr.dtype.kind == "f" and arr.ndim <= 1:
            p, seg = arr.reshape(-1), item.segments
        else:
            read = _binary_scores(arr, exclude)
            if read is None:
                continue
            p, ok = read
            p, seg = _valid(p, ok, item.segments)
        if len(p):
            scores.append(p)
            segs.append(seg)
    accs: dict[str, Any] = {}
    for group in _chunks([len(p) for p in scores], CHUNK_ROWS):
        rows = sum(b - a for _, a, b in group)
        p = scratch.get("fold.scores", (rows,), np.float64)
        np.concatenate([scores[i][a:b] for i, a, b in group], out=p)
        segments = row_segments([_piece(segs[i], a, b) for i, a, b in group],
                                [b - a for _, a, b in group])
        if not (p.min() >= 0.0 and p.max() <= 1.0):  # NaN fails too
            p, good = _binary_scores(p, exclude)  # type: ignore[misc]
            p = p[good]
            if not isinstance(segments, str):
                segments = segments[good]
            if not len(p):
                continue
        names, codes = segment_codes(segments)
        sums = table.fold(p, codes, len(names), scratch)
        if codes is None:
            sums = type(sums)(*(None if s is None else s[None] for s in sums))
        _accumulate(accs, new, names, lambda acc, i: acc.add_binary(
            sums.n[i], sums.s1[i], sums.s2[i], None if sums.pos is None else sums.pos[i],
            None if sums.neg is None else sums.neg[i]))
    return list(accs.items())


# ---------------------------------------------------------------------- multiclass
def _proba(arr: np.ndarray, k: int, exclude: Exclude) -> tuple[np.ndarray, np.ndarray | None] | None:
    """``(proba (rows, k), usable rows or None for all)``; ``None``: the call is unusable."""
    if arr.dtype.kind != "f":  # labels (or anything else): nothing to calibrate
        return None
    if arr.ndim <= 1 and k == 2:  # the positive-class probability
        p = arr.reshape(-1)
        good = (p >= 0.0) & (p <= 1.0)  # NaN fails both
        proba = np.column_stack([1.0 - p, p])
        if good.all():
            return proba, None
        finite = np.isfinite(p)
        exclude(Excluded.MISSING, int((~finite).sum()))
        exclude(Excluded.OUT_OF_RANGE, int((finite & ~good).sum()))
        return proba, good
    if arr.ndim == 1 and arr.shape[0] == k:  # one row
        arr = arr.reshape(1, k)
    if arr.ndim != 2 or arr.shape[1] != k:
        exclude(Excluded.WRONG_CLASS_COUNT, arr.shape[0] if arr.ndim else 1)
        return None
    with np.errstate(invalid="ignore"):
        in_range = ((arr >= 0) & (arr <= 1)).all(axis=1)  # NaN fails
        summed = np.abs(arr.sum(axis=1) - 1.0) <= SUM_TOLERANCE
    ok = in_range & summed
    if ok.all():
        return arr, None
    finite = np.isfinite(arr).all(axis=1)
    exclude(Excluded.MISSING, int((~finite).sum()))
    exclude(Excluded.OUT_OF_RANGE, int((finite & ~in_range).sum()))
    exclude(Excluded.NOT_NORMALISED, int((finite & in_range & ~summed).sum()))
    return arr, ok


def fold_multiclass(items: Sequence[Pending], calibration: Calibration, exclude: Exclude,
                    new: NewAcc) -> Parts:
    """Validate and calibrate the pending calls of one slot of a multiclass model and sum
    them per segment (chunks of rows: the second moments take ``k * k`` per row)."""
    k = calibration.k
    parts, segs = [], []
    for item in items:
        read = _proba(item.predictions, k, exclude)
        if read is None:
            continue
        proba, seg = _valid(*read, item.segments)
        if len(proba):
            parts.append(proba)
            segs.append(seg)
    accs: dict[str, Any] = {}
    for group in _chunks([len(p) for p in parts], max(64, CHUNK_ROWS // k)):
        proba = np.concatenate([parts[i][a:b] for i, a, b in group])
        cal = calibration.apply(proba)
        predicted = proba.argmax(axis=1)
        names, codes = segment_codes(row_segments([_piece(segs[i], a, b) for i, a, b in group],
                                                  [b - a for _, a, b in group]))

        def add(acc: Any, i: int) -> None:
            idx = slice(None) if codes is None else np.flatnonzero(codes == i)
            acc.add_rows(predicted[idx], cal[idx], None)

        _accumulate(accs, new, names, add)
    return list(accs.items())


# ---------------------------------------------------------------------- regression
def fold_regression(items: Sequence[Pending], model: LossModel, exclude: Exclude,
                    scratch: Scratch, new: NewAcc, arena: LossArena | None = None) -> Parts:
    """Evaluate the loss model on the pending calls of one slot and sum the expected errors
    per segment (rows whose prediction is not finite are left out, counted). Rows lying
    side by side in ``arena`` (the calls' arena) are evaluated there, the others copied
    together."""
    kept = []
    for item in items:
        if item.inputs is None:  # predictions of another kind (checked on the call)
            exclude(Excluded.WRONG_CLASS_COUNT, 1)
            continue
        if len(item.predictions):
            kept.append(item)
    columns = model.numeric_names
    pred_row = columns.index(PREDICTION) if PREDICTION in columns else -1
    accs: dict[str, Any] = {}
    for group in _chunks([len(item.predictions) for item in kept], CHUNK_ROWS):
        rows = sum(b - a for _, a, b in group)
        block = None if arena is None else arena.rows(
            [(kept[i].inputs, a, b) for i, a, b in group])
        if block is None:
            block = scratch.get("fold.block", (len(columns), rows), np.float64)
            np.concatenate([kept[i].inputs.block[:, a:b] for i, a, b in group], axis=1,
                           out=block)
        cats = [_joined([kept[i].inputs.categorical[j] for i, _, _ in group], group)
                for j in range(len(model.categorical_names))]
        a_err, s_err = model.expected_block(block, cats, scratch)
        segments = row_segments([_piece(kept[i].segments, a, b) for i, a, b in group],
                                [b - a for _, a, b in group])
        if pred_row >= 0 and not np.isfinite(block[pred_row].sum()):
            ok = np.isfinite(block[pred_row])
            exclude(Excluded.MISSING, int((~ok).sum()))
            a_err, s_err = a_err[ok], s_err[ok]
            if not isinstance(segments, str):
                segments = segments[ok]
        if not len(a_err):
            continue
        names, codes = segment_codes(segments)
        if codes is None:
            square = scratch.get("fold.square", (len(a_err),), np.float64)
            sums = [np.array([float(len(a_err))]), np.array([a_err.sum()]),
                    np.array([s_err.sum()]),
                    np.array([np.multiply(a_err, a_err, out=square).sum()]),
                    np.array([np.multiply(s_err, s_err, out=square).sum()])]
        else:
            s = len(names)
            sums = [np.bincount(codes, minlength=s).astype(np.float64),
                    np.bincount(codes, weights=a_err, minlength=s),
                    np.bincount(codes, weights=s_err, minlength=s),
                    np.bincount(codes, weights=a_err * a_err, minlength=s),
                    np.bincount(codes, weights=s_err * s_err, minlength=s)]
        _accumulate(accs, new, names, lambda acc, i: acc.add_sums(*(float(x[i]) for x in sums)))
    return list(accs.items())


def _joined(parts: list[np.ndarray | None], group: list[tuple[int, int, int]]) -> np.ndarray | None:
    """One categorical column over a chunk's pieces (a call without it: ``None`` values)."""
    if all(p is None for p in parts):
        return None
    return np.concatenate([np.full(b - a, None, dtype=object) if p is None
                           else np.asarray(p, dtype=object).reshape(-1)[a:b]
                           for p, (_, a, b) in zip(parts, group)])
