"""Reading a folder of image files with Pillow (the optional ``images`` extra), in batches.

Used by ``otel-ml profile --images DIR``. Files are read in name order; each image becomes a
numpy array (grey ``L`` or ``RGB``; other modes are converted to ``RGB``, 16-bit grey stays as
it is). Only one batch of pixels is held at a time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

__all__ = ["IMAGE_SUFFIXES", "image_batches", "image_files"]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp",
                            ".pgm", ".ppm"})


def image_files(folder: str | os.PathLike) -> list[Path]:
    """The image files of ``folder`` and its subfolders, in name order.

    Raises:
        FileNotFoundError: ``folder`` is not a directory.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{folder} is not a directory")
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                  and p.is_file())


def image_batches(files: list[Path], batch: int = 256) -> Iterator[list[np.ndarray]]:
    """Batches of images as arrays (a file Pillow cannot read raises ``ValueError`` naming it).

    Raises:
        ImportError: Pillow is not installed (with the command that installs it).
    """
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("reading image files needs Pillow: pip install 'otel-ml[images]'") \
            from None
    for start in range(0, len(files), batch):
        out = []
        for path in files[start:start + batch]:
            try:
                with Image.open(path) as img:
                    if img.mode not in ("L", "RGB", "I;16"):
                        img = img.convert("RGB")
                    out.append(np.asarray(img))
            except (OSError, SyntaxError) as exc:
                raise ValueError(f"{path}: not a readable image ({exc})") from exc
        yield out
