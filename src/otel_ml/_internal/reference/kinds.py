"""Reference input kinds: images, texts and embeddings profiled as derived features.

:func:`prepare_input` turns what ``Reference.from_data`` is given into the columns the
builder profiles, with the same rules the monitor applies to each batch
(:mod:`otel_ml._internal.data.input_kinds`): images and texts become their properties,
embeddings are fitted a PCA whose components become the features ``embedding.pc1``..; the
feature-space PCA of the numeric features is fitted on the same columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from otel_ml._internal.data.image_files import image_batches, image_files
from otel_ml._internal.data.images import ImageReader
from otel_ml._internal.data.input_kinds import InputDeriver, kind_of
from otel_ml._internal.data.inputs import default_names, is_categorical, to_float, to_table
from otel_ml._internal.reference.projection import (
    EMBEDDING,
    FEATURES,
    Projection,
    component_names,
    fit_projection,
)

__all__ = ["Prepared", "prepare_input", "reference_from_images"]


class Prepared:
    """What the builder profiles, and what is stored besides.

    Attributes:
        x: The input to profile (the caller's, or a dict of derived columns).
        derived: Whether ``x`` was replaced by derived columns (names are then fixed).
        projections: Space -> fitted projection (embeddings).
        metadata: String pairs stored with the reference (``input_kind``, ``image.colour``).
        columns: Numeric columns for the feature-space PCA (name -> values), when known.
    """

    def __init__(self, x: Any, derived: bool, metadata: dict[str, str]) -> None:
        self.x = x
        self.derived = derived
        self.projections: dict[str, Projection] = {}
        self.metadata = metadata

    def fit_features(self, reference: Any) -> None:
        """Fit the feature-space PCA on the reference's numeric features (at least two;
        embedding components are left out: they are decorrelated already)."""
        try:
            table = to_table(self.x)
        except Exception:
            return
        names = table.names if table.names is not None else list(default_names(table.width))
        cols, used = [], []
        for i, name in enumerate(names):
            profile = reference.features.get(name)
            if profile is None or profile.kind != "numeric" or name.startswith("embedding.pc"):
                continue
            col = table.column(i)
            if is_categorical(col):
                continue
            values, _ = to_float(col)
            values = values.reshape(-1)
            finite = values[np.isfinite(values)]
            if finite.shape[0] < 2 or finite.min() == finite.max():
                continue
            cols.append(values)
            used.append(name)
        if len(used) < 2 or table.rows < 10:
            return
        try:  # optional: data a PCA cannot take (values near the float limits) goes without
            with np.errstate(all="ignore"):
                projection = fit_projection(np.column_stack(cols), FEATURES,
                                            columns=tuple(used))
        except (ValueError, np.linalg.LinAlgError):
            return
        reference.projections[FEATURES] = projection


def prepare_input(x: Any, *, input_kind: str = "auto", embeddings: Any = None,
                  components: int = 8, feature_names: Sequence[str] | None = None,
                  image_layout: str = "auto", pixel_range: str = "auto") -> Prepared:
    """The columns to profile for ``x`` of ``input_kind`` (see the module docs).

    Raises:
        ValueError: An option is out of range, or the embeddings are not an ``(n, d)``
            matrix of the input's rows.
    """
    deriver = InputDeriver(input_kind, image_layout, pixel_range)
    kind = kind_of(x, input_kind)
    metadata = {} if kind == "tabular" else {"input_kind": kind}
    vectors = None
    if kind == "embedding":
        vectors, x = x, {}
    elif isinstance(embeddings, str):
        table = to_table(x)
        if table.names is None or embeddings not in table.names:
            raise ValueError(f"embeddings={embeddings!r} names no column of the input")
        vectors = table.column_named(embeddings)
        x = {n: table.column(i) for i, n in enumerate(table.names) if n != embeddings}
    elif embeddings is not None:
        vectors = embeddings
    derived = deriver.derive(x) if kind in ("image", "text") else None
    out: dict[str, Any] | None = None
    if derived is not None:
        out = dict(derived.columns)
        if kind == "image":
            metadata["image.colour"] = "true" if deriver.images.colour else "false"
    if vectors is not None:
        matrix = _matrix(vectors)
        proj = fit_projection(matrix, EMBEDDING, k=components)
        z, _, _ = proj.apply(matrix)
        if out is None:
            out = _columns_of(x, feature_names) if not (isinstance(x, dict) and not x) else {}
        rows = _rows_of(out)
        if rows is not None and rows != matrix.shape[0]:
            raise ValueError(f"{matrix.shape[0]} embeddings for {rows} rows")
        for i, name in enumerate(component_names(proj.k)):
            out[name] = z[:, i]
        prepared = Prepared(out, True, metadata)
        prepared.projections[EMBEDDING] = proj
        metadata["embedding.dim"] = str(proj.dim)
        return prepared
    if out is not None:
        return Prepared(out, True, metadata)
    return Prepared(x, False, metadata)


def _matrix(vectors: Any) -> np.ndarray:
    """Embeddings as an ``(n, d)`` float matrix (a column of vectors is stacked)."""
    if hasattr(vectors, "to_numpy"):
        vectors = vectors.to_numpy()
    a = np.asarray(vectors)
    if a.dtype == object:
        a = np.stack([np.asarray(v, dtype=np.float64) for v in a])
    if a.ndim != 2:
        raise ValueError(f"embeddings must be an (n, d) matrix, got shape {a.shape}")
    return a.astype(np.float64, copy=False)


def _columns_of(x: Any, feature_names: Sequence[str] | None) -> dict[str, Any]:
    table = to_table(x)
    names = table.names or list(feature_names or default_names(table.width))
    return {str(n): table.column(i) for i, n in enumerate(names)}


def _rows_of(columns: dict[str, Any]) -> int | None:
    for col in columns.values():
        return len(col)
    return None


def reference_from_images(folder: Any, *, bins: int = 10, image_layout: str = "auto",
                          pixel_range: str = "auto", batch: int = 256,
                          progress: Any = None) -> Any:
    """The reference of a folder of image files (``otel-ml profile --images DIR``): their
    properties, profiled batch by batch, and the feature-space PCA.

    Raises:
        FileNotFoundError: ``folder`` is not a directory.
        ValueError: No image in it, or a file that is not a readable image.
        ImportError: Pillow is missing.
    """
    from otel_ml._internal.reference.builder import ReferenceBuilder

    files = image_files(folder)
    if not files:
        raise ValueError(f"no image files in {folder}")
    reader = ImageReader(image_layout, pixel_range)
    builder = ReferenceBuilder(bins=bins, sample_size=1_000_000)
    kept: dict[str, list[np.ndarray]] = {}
    done = 0
    for images in image_batches(files, batch):
        columns = reader.read(images).columns
        builder.update(columns)
        for name, values in columns.items():
            kept.setdefault(name, []).append(values)
        done += len(images)
        if progress is not None:
            progress(done, len(files))
    metadata = {"input_kind": "image", "image.colour": "true" if reader.colour else "false",
                "source": str(folder)}
    reference = builder.build(metadata=metadata)
    Prepared({n: np.concatenate(v) for n, v in kept.items()}, True, metadata) \
        .fit_features(reference)
    return reference
