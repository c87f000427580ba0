"""Input kinds: images and texts turned into ordinary feature columns (the derived table).

``input_kind`` is one of :data:`INPUT_KINDS`. ``"tabular"`` takes the input as columns, as
always. ``"image"`` and ``"text"`` replace the input by the columns of
:mod:`otel_ml._internal.data.images` and :mod:`otel_ml._internal.data.text`; ``"embedding"``
takes the input as an ``(n, d)`` matrix of embeddings (projected by the reference, see
:mod:`otel_ml._internal.reference.projection`). ``"auto"`` decides per input: an array with
``ndim >= 3`` or a list of 2-D/3-D arrays or PIL images is an image batch, a ``str`` or a
sequence of ``str`` is a text batch, anything else is tabular (embeddings are never guessed:
a 2-D float array is a table). The derived columns then go through the existing feature path
unchanged: reference bins, drift, data quality, outliers, segments.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from otel_ml._internal.data.images import ImageReader, is_image_batch
from otel_ml._internal.data.text import is_text_batch, text_descriptors
from otel_ml.contract import Check

__all__ = ["INPUT_KINDS", "Derived", "InputDeriver", "Quality", "kind_of"]

INPUT_KINDS = ("auto", "tabular", "image", "text", "embedding")

#: Feature names data-quality counts about a whole image or text are reported under.
IMAGE_CHANNELS = "image.channels"
IMAGE_PIXELS = "image.pixels"
TEXT = "text"


class Quality(NamedTuple):
    """A data-quality count of a derived input: reported feature name, check, count."""

    feature: str
    check: str
    count: int


class Derived(NamedTuple):
    """An input turned into columns.

    Attributes:
        kind: ``"image"`` or ``"text"``.
        columns: Column name -> ``(n,)`` float64.
        rows: Images or texts in the batch.
        quality: Data-quality counts (channel mismatches, non-finite pixels, missing texts).
    """

    kind: str
    columns: dict[str, np.ndarray]
    rows: int
    quality: list[Quality]


def kind_of(x: Any, declared: str = "auto") -> str:
    """The kind of one input: ``declared`` unless it is ``"auto"`` (see the module docs)."""
    if declared != "auto":
        return declared
    if is_image_batch(x):
        return "image"
    if is_text_batch(x):
        return "text"
    return "tabular"


class InputDeriver:
    """Turns image and text inputs into derived columns; keeps the image reading rules fixed.

    Args:
        kind: One of :data:`INPUT_KINDS`.
        image_layout: See :class:`otel_ml._internal.data.images.ImageReader`.
        pixel_range: See :class:`otel_ml._internal.data.images.ImageReader`.

    Raises:
        ValueError: An option is not one of its values.
    """

    def __init__(self, kind: str = "auto", image_layout: str = "auto",
                 pixel_range: str = "auto") -> None:
        if kind not in INPUT_KINDS:
            raise ValueError(f"input_kind must be one of {INPUT_KINDS}, got {kind!r}")
        self.kind = kind
        self.images = ImageReader(image_layout, pixel_range)

    def derive(self, x: Any) -> Derived | None:
        """The derived columns of ``x``; ``None`` when ``x`` is taken as a table (tabular or
        embedding input). Raises ``ValueError``/``TypeError`` on an input of the declared kind
        that cannot be read at all (the caller counts it)."""
        kind = kind_of(x, self.kind)
        if kind == "image":
            r = self.images.read(x)
            rows = next(iter(r.columns.values())).shape[0] if r.columns else 0
            quality = []
            if r.channels_mismatch:
                quality.append(Quality(IMAGE_CHANNELS, Check.CHANNELS_MISMATCH,
                                       r.channels_mismatch))
            if r.non_finite:
                quality.append(Quality(IMAGE_PIXELS, Check.NON_FINITE, r.non_finite))
            if r.unreadable:
                quality.append(Quality(IMAGE_PIXELS, Check.TYPE_MISMATCH, r.unreadable))
            return Derived("image", r.columns, rows, quality)
        if kind == "text":
            t = text_descriptors(x)
            rows = t.columns["text.length"].shape[0]
            quality = []
            if t.missing:
                quality.append(Quality(TEXT, Check.MISSING, t.missing))
            if t.empty:
                quality.append(Quality(TEXT, Check.EMPTY_TEXT, t.empty))
            return Derived("text", t.columns, rows, quality)
        return None
