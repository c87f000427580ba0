"""Image properties: a batch of images turned into a few numeric columns per image.

The properties follow the quality metrics of data-centric tools, computed vectorised over the
batch on intensities scaled to ``[0, 1]``:

- ``image.brightness``: mean intensity (grey level: ITU-R 601 luma of colour images);
- ``image.contrast``: standard deviation of the intensity;
- ``image.sharpness``: variance of the 4-neighbour Laplacian of the intensity (blur lowers it);
- ``image.saturation``: mean HSV saturation ``(max - min) / max`` of the channels (colour only);
- ``image.width``, ``image.height``, ``image.aspect_ratio`` (width / height);
- ``image.overexposed`` / ``image.underexposed``: share of pixels at or above 250/255, at or
  below 5/255.

uint8 batches take an integer path (8-bit luma ``(77 R + 150 G + 29 B + 128) >> 8``, exact sums)
in cache-sized chunks: :mod:`otel_ml._internal.data.image_kernel`. Other dtypes are read as
``float32`` intensities here.

How an array is read (decided once per reader, never guessed differently between batches):

- **Layout.** ``(N, H, W)`` is a batch of grey images. ``(N, A, B, C)`` is channels-last when
  ``C`` is 1, 3 or 4 and ``A`` is not, channels-first when ``A`` is 1, 3 or 4 and ``C`` is not.
  A shape where both hold (``(N, 3, 3, 3)``, ``(N, 3, 5, 4)``) is ambiguous: with
  ``layout="auto"`` the first unambiguous batch fixes the layout for good; an ambiguous batch
  before that is read channels-last (numpy and PIL's convention) with one log line asking for
  ``image_layout=``. A batch that contradicts the fixed layout is read as that layout anyway
  and counted as an ``image.channels`` mismatch.
- **Range.** Integer pixels are scaled by their dtype's maximum (uint8: 255). Floats: with
  ``pixel_range="auto"``, the first float batch whose finite maximum exceeds 1 fixes the range
  ``[0, 255]``, else ``[0, 1]`` (a nearly black ``[0, 255]`` image then reads as bright: set
  ``pixel_range=`` when that matters).
- **Channels.** The first batch fixes the channel count (1 or 3/4); a batch with another count
  is a data-quality count on ``image.channels`` (``channels_mismatch``), its properties are
  still computed. The alpha channel of RGBA is ignored.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from otel_ml._internal.data.image_kernel import Uint8Kernel

__all__ = ["GREY_PROPERTIES", "IMAGE_LAYOUTS", "IMAGE_PROPERTIES", "PIXEL_RANGES",
           "ImageReader", "ImageResult", "image_properties", "is_image_batch"]

IMAGE_LAYOUTS = ("auto", "channels_last", "channels_first")
PIXEL_RANGES = ("auto", "unit", "byte")

#: Every property, in column order (grey images have no saturation).
IMAGE_PROPERTIES = ("image.brightness", "image.contrast", "image.sharpness", "image.saturation",
                    "image.width", "image.height", "image.aspect_ratio", "image.overexposed",
                    "image.underexposed")
GREY_PROPERTIES = tuple(p for p in IMAGE_PROPERTIES if p != "image.saturation")

_CHANNELS = (1, 3, 4)
_OVER = np.float32(250 / 255)
_UNDER = np.float32(5 / 255)
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def is_image_batch(x: Any) -> bool:
    """Whether ``x`` looks like a batch of images: an array with ``ndim >= 3`` (numpy, torch,
    anything with ``__array__`` and ``shape``), or a non-empty list/tuple of 2-D/3-D arrays or
    PIL images."""
    shape = getattr(x, "shape", None)
    if shape is not None and not isinstance(x, type) and hasattr(x, "__array__"):
        try:
            return len(shape) in (3, 4) and getattr(x, "dtype", None) is not None \
                and np.dtype(str(x.dtype).replace("torch.", "")).kind in "uif"
        except TypeError:
            return len(shape) in (3, 4)
    if isinstance(x, (list, tuple)) and x:
        first = x[0]
        if _is_pil(first):
            return True
        s = getattr(first, "shape", None)
        return s is not None and len(s) in (2, 3)
    return False


def _is_pil(x: Any) -> bool:
    return type(x).__module__.split(".", 1)[0] == "PIL" and hasattr(x, "getbands")


class ImageResult:
    """The properties of one batch and its data-quality counts.

    Attributes:
        columns: Property name -> ``(n,)`` float64 values (NaN for an unreadable image).
        channels_mismatch: Images whose channel count or layout differs from the fixed one.
        non_finite: Images with NaN or infinite pixels (their properties are NaN).
        unreadable: Images that could not be read at all (properties NaN).
    """

    __slots__ = ("channels_mismatch", "columns", "non_finite", "unreadable")

    def __init__(self, columns: dict[str, np.ndarray]) -> None:
        self.columns = columns
        self.channels_mismatch = 0
        self.non_finite = 0
        self.unreadable = 0


class ImageReader:
    """Reads batches of images into properties, keeping the layout, range and channel count
    fixed once decided (see the module docs). Thread-safe; never raises on bad images.

    Args:
        layout: ``"auto"``, ``"channels_last"`` or ``"channels_first"``.
        pixel_range: ``"auto"``, ``"unit"`` (floats in [0, 1]) or ``"byte"`` ([0, 255]).

    Raises:
        ValueError: An option is not one of its values.
    """

    def __init__(self, layout: str = "auto", pixel_range: str = "auto") -> None:
        if layout not in IMAGE_LAYOUTS:
            raise ValueError(f"image_layout must be one of {IMAGE_LAYOUTS}, got {layout!r}")
        if pixel_range not in PIXEL_RANGES:
            raise ValueError(f"pixel_range must be one of {PIXEL_RANGES}, got {pixel_range!r}")
        self._lock = threading.Lock()
        self.layout = None if layout == "auto" else layout
        self.float_scale: float | None = {"auto": None, "unit": 1.0, "byte": 255.0}[pixel_range]
        self.colour: bool | None = None  # fixed by the first batch
        self.ambiguous = False  # an ambiguous shape was read before the layout was fixed
        self._kernel = Uint8Kernel()  # uint8 batches: integer maths in reused scratch

    def fix_colour(self, colour: bool) -> None:
        """Fix the channel kind (e.g. from a reference built on colour images)."""
        self.colour = colour

    @property
    def names(self) -> tuple[str, ...]:
        """The property columns this reader produces (grey: no saturation)."""
        return GREY_PROPERTIES if self.colour is False else IMAGE_PROPERTIES

    def read(self, x: Any) -> ImageResult:
        """Properties of every image of ``x`` (an array batch or a list of images)."""
        if isinstance(x, (list, tuple)):
            return self._read_list(x)
        a = np.asarray(x)
        return self._read_array(a)

    # ------------------------------------------------------------------ arrays
    def _layout_of(self, shape: tuple[int, ...]) -> tuple[str, bool]:
        """(layout, mismatch) of a 4-D batch shape."""
        first, last = shape[1] in _CHANNELS, shape[3] in _CHANNELS
        if last and not first:
            found = "channels_last"
        elif first and not last:
            found = "channels_first"
        elif first and last:
            found = ""  # ambiguous
        else:
            return self.layout or "channels_last", True
        with self._lock:
            if self.layout is None:
                if not found:
                    self.ambiguous = True
                    return "channels_last", False
                self.layout = found
        return self.layout, bool(found) and found != self.layout

    def _read_array(self, a: np.ndarray) -> ImageResult:
        mismatch = 0
        if a.ndim == 2:  # one grey image
            a = a[None]
        if a.ndim == 3:
            grey = a
            colour = None
        elif a.ndim == 4:
            layout, bad = self._layout_of(a.shape)
            if layout == "channels_first":
                a = np.moveaxis(a, 1, -1)
            mismatch = a.shape[0] if bad else 0
            if a.shape[-1] == 1:
                grey, colour = a[..., 0], None
            else:
                grey, colour = None, a[..., :3]
        else:
            raise ValueError(f"an image batch has 3 or 4 dimensions, got shape {a.shape}")
        with self._lock:
            if self.colour is None:
                self.colour = colour is not None
        if (colour is not None) != self.colour:
            mismatch = a.shape[0]
        result = self._properties(grey, colour, a.dtype)
        result.channels_mismatch = mismatch
        if mismatch and (colour is not None) != self.colour:  # keep the fixed columns
            n = a.shape[0]
            result.columns = {name: result.columns.get(name, np.full(n, np.nan))
                              for name in self.names}
        return result

    def _scale(self, dtype: np.dtype, sample: np.ndarray) -> float:
        if dtype.kind in "ui":
            return float(np.iinfo(dtype).max)
        if dtype == np.bool_:
            return 1.0
        scale = self.float_scale
        if scale is None:
            finite = sample[np.isfinite(sample)]
            with self._lock:
                if self.float_scale is None and finite.size:
                    self.float_scale = 255.0 if float(finite.max()) > 1.0 else 1.0
                scale = self.float_scale or 1.0
        return scale

    def _properties(self, grey: np.ndarray | None, colour: np.ndarray | None,
                    dtype: np.dtype) -> ImageResult:
        src = colour if colour is not None else grey
        assert src is not None
        n, h, w = src.shape[:3]
        scale = self._scale(np.dtype(dtype), src)
        bad = None
        if dtype.kind == "f":
            finite = np.isfinite(src).reshape(n, -1).all(axis=1)
            if not finite.all():
                bad = ~finite
                src = np.where(np.isfinite(src), src, 0)
                if colour is not None:
                    colour = src
                else:
                    grey = src
        if src.dtype == np.uint8:
            brightness, contrast, sharpness, over, under, saturation = self._kernel.stats(
                grey, colour)
        else:
            brightness, contrast, sharpness, over, under, saturation = _float_stats(
                grey, colour, np.float32(1.0 / scale))
        columns = {
            "image.brightness": brightness, "image.contrast": contrast,
            "image.sharpness": sharpness, "image.saturation": saturation,
            "image.width": np.full(n, float(w)), "image.height": np.full(n, float(h)),
            "image.aspect_ratio": np.full(n, w / h if h else np.nan),
            "image.overexposed": over, "image.underexposed": under,
        }
        if saturation is None:
            del columns["image.saturation"]
        result = ImageResult(columns)
        if bad is not None:
            for name, col in columns.items():
                if name not in ("image.width", "image.height", "image.aspect_ratio"):
                    col[bad] = np.nan
            result.non_finite = int(bad.sum())
        return result

    # ------------------------------------------------------------------ lists
    def _read_list(self, images: Sequence[Any]) -> ImageResult:
        """Images of different sizes: properties image by image (same rules as arrays)."""
        n = len(images)
        names = self.names if self.colour is not None else IMAGE_PROPERTIES
        out = {name: np.full(n, np.nan) for name in IMAGE_PROPERTIES}
        result = ImageResult(out)
        for i, img in enumerate(images):
            try:
                a = _as_array(img)
                if a.ndim == 3 and (a.shape[0] in _CHANNELS) and (a.shape[2] not in _CHANNELS):
                    batch = a[None]  # channels-first single image: (1, C, H, W)
                elif a.ndim == 3:
                    batch = a[None]
                elif a.ndim == 2:
                    batch = a[None]
                else:
                    raise ValueError(f"an image has 2 or 3 dimensions, got shape {a.shape}")
                one = self._read_array(batch)
            except Exception:
                result.unreadable += 1
                continue
            for name, col in one.columns.items():
                out[name][i] = col[0]
            result.channels_mismatch += one.channels_mismatch
            result.non_finite += one.non_finite
        names = self.names if self.colour is not None else names
        result.columns = {name: out[name] for name in names}
        return result


_Stats = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]


def _float_stats(grey: np.ndarray | None, colour: np.ndarray | None, inv: np.float32) -> _Stats:
    """The properties of other images on float32 intensities in [0, 1]."""
    if colour is not None:
        g = colour @ (_LUMA * inv)  # (n, h, w) float32
        hi = colour.max(axis=-1).astype(np.float32)
        lo = colour.min(axis=-1).astype(np.float32)
        sat = np.divide(hi - lo, hi, out=np.zeros(hi.shape, np.float32), where=hi > 0)
        saturation = sat.reshape(sat.shape[0], -1).mean(axis=1, dtype=np.float64)
    else:
        assert grey is not None
        g = grey.astype(np.float32) * inv
        saturation = None
    n, h, w = g.shape
    flat = g.reshape(n, -1)
    brightness = flat.mean(axis=1, dtype=np.float64)
    contrast = flat.std(axis=1, dtype=np.float64)
    if h >= 3 and w >= 3:
        lap = (g[:, 1:-1, :-2] + g[:, 1:-1, 2:] + g[:, :-2, 1:-1] + g[:, 2:, 1:-1]
               - 4 * g[:, 1:-1, 1:-1])
        sharpness = lap.reshape(n, -1).var(axis=1, dtype=np.float64)
    else:
        sharpness = np.full(n, np.nan)
    over = np.count_nonzero(flat >= _OVER, axis=1) / flat.shape[1]
    under = np.count_nonzero(flat <= _UNDER, axis=1) / flat.shape[1]
    return brightness, contrast, sharpness, over, under, saturation


def _as_array(img: Any) -> np.ndarray:
    if _is_pil(img):
        if img.mode not in ("L", "RGB", "RGBA", "I;16", "I", "F"):
            img = img.convert("RGB")
        return np.asarray(img)
    return np.asarray(img)


def image_properties(x: Any, layout: str = "auto", pixel_range: str = "auto",
                     ) -> dict[str, np.ndarray]:
    """The property columns of one batch of images, read by a fresh :class:`ImageReader`.

    Args:
        x: ``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)`` array, or a list of images.
        layout: See :class:`ImageReader`.
        pixel_range: See :class:`ImageReader`.

    Returns:
        Property name -> ``(N,)`` float64.
    """
    return ImageReader(layout, pixel_range).read(x).columns
