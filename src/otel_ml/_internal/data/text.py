"""Text descriptors: a batch of strings turned into a few numeric columns per text.

- ``text.length``: characters (code points);
- ``text.words``: runs of non-whitespace characters (ASCII whitespace separates words);
- ``text.non_ascii_share``: share of characters above U+007F;
- ``text.digit_share``: share of the ASCII digits 0-9;
- ``text.empty``: 1 for a text that is empty or only whitespace, else 0.

Vectorised: the batch is joined once and read as an array of code points; per-text counts are
differences of cumulative sums at the texts' boundaries. ``None`` (and anything that is not a
string) gives NaN in every column and is counted by the caller as missing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["TEXT_DESCRIPTORS", "TextResult", "is_text_batch", "text_descriptors"]

TEXT_DESCRIPTORS = ("text.length", "text.words", "text.non_ascii_share", "text.digit_share",
                    "text.empty")

_SPACE = np.zeros(128, dtype=bool)
for _c in " \t\n\r\x0b\x0c":
    _SPACE[ord(_c)] = True


def is_text_batch(x: Any) -> bool:
    """Whether ``x`` is a batch of texts: a ``str``, or a list/tuple/1-D array/pandas series
    whose first non-missing element is a ``str``."""
    if isinstance(x, str):
        return True
    if isinstance(x, np.ndarray):
        if x.ndim != 1:
            return False
        if x.dtype.kind == "U":
            return True
        if x.dtype != object:
            return False
    elif type(x).__module__.split(".", 1)[0] == "pandas":
        if getattr(x, "ndim", 2) != 1:
            return False
        x = x.to_numpy(dtype=object)
    elif not isinstance(x, (list, tuple)):
        return False
    for v in x[:64]:
        if v is None:
            continue
        return isinstance(v, str)
    return False


class TextResult:
    """The descriptors of one batch and its data-quality counts.

    Attributes:
        columns: Descriptor name -> ``(n,)`` float64 (NaN for a missing text).
        missing: Texts that were ``None`` or not strings.
        empty: Texts that were empty or whitespace only.
    """

    __slots__ = ("columns", "empty", "missing")

    def __init__(self, columns: dict[str, np.ndarray], missing: int, empty: int) -> None:
        self.columns = columns
        self.missing = missing
        self.empty = empty


def text_descriptors(x: Any) -> TextResult:
    """The descriptors of every text of ``x`` (see the module docs). Never raises on values."""
    if isinstance(x, str):
        items: list[Any] = [x]
    elif type(x).__module__.split(".", 1)[0] == "pandas":
        items = list(x.to_numpy(dtype=object))
    else:
        items = list(x)
    n = len(items)
    valid = np.fromiter((type(v) is str or isinstance(v, str) for v in items), dtype=bool,
                        count=n)
    texts = [v if ok else "" for v, ok in zip(items, valid)]
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=n)
    # One string, one code-point array; a newline after each text keeps words apart.
    joined = "\n".join(texts) + "\n"
    cps = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
    starts = np.zeros(n, dtype=np.int64)
    if n > 1:
        np.cumsum(lengths[:-1] + 1, out=starts[1:])
    ends = starts + lengths
    ascii_ = cps < 128
    space = np.zeros(cps.shape[0], dtype=bool)
    space[ascii_] = _SPACE[cps[ascii_]]
    word_start = ~space
    word_start[1:] &= space[:-1]
    digit = (cps >= 48) & (cps <= 57)

    def per_text(mask: np.ndarray) -> np.ndarray:
        cs = np.zeros(mask.shape[0] + 1, dtype=np.int64)
        np.cumsum(mask, out=cs[1:])
        return (cs[ends] - cs[starts]).astype(np.float64)

    non_space = per_text(~space)
    length = lengths.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = np.where(lengths > 0, length, np.nan)
        non_ascii = np.nan_to_num(per_text(~ascii_) / denom, nan=0.0)
        digits = np.nan_to_num(per_text(digit) / denom, nan=0.0)
    empty = (non_space == 0).astype(np.float64)
    columns = {"text.length": length, "text.words": per_text(word_start),
               "text.non_ascii_share": non_ascii, "text.digit_share": digits,
               "text.empty": empty}
    missing = int(n - valid.sum())
    if missing:
        for col in columns.values():
            col[~valid] = np.nan
    return TextResult(columns, missing, int(np.count_nonzero(empty[valid] == 1.0)))
