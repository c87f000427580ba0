"""The uint8 image kernel (chunked integer path) against the properties' plain definitions.

The definitions are written out here in float64 numpy, image by image, with no chunks or
scratch: 8-bit luma ``(77 R + 150 G + 29 B + 128) >> 8``, its mean and std over 255, the
variance of its 4-neighbour Laplacian over 255**2, clipping shares, and the mean of
``(max - min) / max``. The kernel must agree to float64 rounding (saturation: 1e-6, summed in
float32), on random and real (scikit-learn's bundled photographs) images, grey and colour,
channels-first, RGBA, tiny shapes and batches that do not fill the last chunk.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_sample_images

from otel_ml._internal.data import image_kernel
from otel_ml._internal.data.images import image_properties


def _definition(img: np.ndarray) -> dict[str, float]:
    """The properties of one ``(h, w)`` or ``(h, w, 3)`` uint8 image, straight from the docs."""
    x = img.astype(np.int64)
    if x.ndim == 3:
        luma = (77 * x[..., 0] + 150 * x[..., 1] + 29 * x[..., 2] + 128) >> 8
        hi, lo = x[..., :3].max(axis=-1), x[..., :3].min(axis=-1)
        ratio = np.where(hi > 0, (hi - lo) / np.maximum(hi, 1), 0.0)
    else:
        luma, ratio = x, None
    g = luma / 255.0
    h, w = g.shape
    out = {"image.brightness": g.mean(), "image.contrast": g.std(),
           "image.overexposed": np.mean(luma >= 250), "image.underexposed": np.mean(luma <= 5)}
    if h >= 3 and w >= 3:
        lap = g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1] - 4 * g[1:-1, 1:-1]
        out["image.sharpness"] = lap.var()
    else:
        out["image.sharpness"] = np.nan
    if ratio is not None:
        out["image.saturation"] = ratio.mean()
    return out


def _check(batch: np.ndarray, images: np.ndarray) -> None:
    got = image_properties(batch)
    for i, img in enumerate(images):
        for name, want in _definition(img).items():
            tol = 1e-6 if name == "image.saturation" else 1e-12
            if np.isnan(want):
                assert np.isnan(got[name][i]), (name, i)
            else:
                assert got[name][i] == pytest.approx(want, rel=tol, abs=1e-12), (name, i)


@pytest.mark.parametrize("chunk", [1, 700, image_kernel.CHUNK_PIXELS])
def test_kernel_matches_the_definitions_on_random_images(monkeypatch, chunk):
    monkeypatch.setattr(image_kernel, "CHUNK_PIXELS", chunk)  # 1 image, 2 of 5, all
    rng = np.random.default_rng(0)
    colour = rng.integers(0, 256, (5, 19, 17, 3), dtype=np.uint8)
    colour[0] = 0  # black: max == 0 everywhere
    colour[1] = 255  # white: fully overexposed
    colour[2, :, :8] = rng.integers(0, 6, (19, 8, 3))  # underexposed half
    _check(colour, colour)
    _check(colour.transpose(0, 3, 1, 2), colour)  # channels-first
    rgba = np.concatenate([colour, np.full((5, 19, 17, 1), 7, np.uint8)], axis=-1)
    _check(rgba, colour)  # alpha ignored
    grey = rng.integers(0, 256, (7, 11, 23), dtype=np.uint8)
    _check(grey, grey)
    tiny = rng.integers(0, 256, (3, 2, 9, 3), dtype=np.uint8)
    _check(tiny, tiny)  # too small for a Laplacian: NaN


def test_kernel_matches_the_definitions_on_real_photographs():
    photos = np.stack([im[:240, :320] for im in load_sample_images().images])
    _check(photos, photos)
    flat = np.full((2, 224, 224, 3), 128, np.uint8)  # constant: exactly no contrast/sharpness
    p = image_properties(flat)
    assert p["image.contrast"].tolist() == [0.0, 0.0]
    assert p["image.sharpness"].tolist() == [0.0, 0.0]


def test_kernel_scratch_is_reused_and_bounded():
    kernel = image_kernel.Uint8Kernel()
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (9, 32, 32, 3), dtype=np.uint8)
    first = kernel.stats(None, a)
    scratch = kernel._scratch
    again = kernel.stats(None, a)
    assert kernel._scratch is scratch  # same shape: the same buffers
    for x, y in zip(first, again):
        assert np.array_equal(x, y)
    fewer = kernel.stats(None, a[:2])  # a smaller batch of the same images: the same set
    assert kernel._scratch is scratch
    assert np.array_equal(fewer[0], first[0][:2])
    kernel.stats(None, rng.integers(0, 256, (2, 48, 40, 3), dtype=np.uint8))
    assert kernel._scratch is not scratch  # a new shape replaces it: one set per kernel
