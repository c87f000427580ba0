"""Derived inputs: images, texts and embeddings turned into ordinary feature columns.

This is the front of the one seam: :class:`FeatureIngest` asks :class:`InputDerivation` for
the derived columns of a call's input before anything else, and from then on the columns are
features like any other (reference bins, drift, data quality, outliers, segments, fleet-wide
PromQL drift). Data-quality problems of the raw input (channel mismatches, non-finite pixels,
missing or empty texts, embeddings of the wrong width or with NaN) become schema-issue counts
and a rate-limited log line; the call is never lost.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from otel_ml._internal.core.log import log_limited
from otel_ml._internal.data.input_kinds import InputDeriver, kind_of
from otel_ml._internal.data.inputs import count_rows, default_names, to_table
from otel_ml._internal.monitor.batch import Batch, SchemaIssue
from otel_ml._internal.monitor.settings import Settings
from otel_ml._internal.reference.profile import Reference
from otel_ml._internal.reference.projection import EMBEDDING, Projection, component_names
from otel_ml.contract import INPUT_FEATURE, Check

__all__ = ["EMBEDDING_FEATURE", "DerivedInput", "InputDerivation"]

#: ``ml.feature.name`` of data-quality counts about the embeddings as a whole.
EMBEDDING_FEATURE = "embedding"


class DerivedInput(NamedTuple):
    """A call's input after derivation.

    Attributes:
        x: What the feature path reads (a dict of columns), or ``None`` when unreadable.
        rows: Rows of the input.
        issues: Data-quality counts of the raw input.
        projected: ``(reconstruction error, centroid distance)`` per row of the embeddings,
            or ``None``.
    """

    x: Any
    rows: int
    issues: list[SchemaIssue]
    projected: tuple[np.ndarray, np.ndarray] | None

    def onto(self, batch: Batch) -> Batch:
        """``batch`` (made from :attr:`x`) with this input's issues and projection."""
        if self.issues:
            batch.issues = (batch.issues or []) + self.issues
        batch.projected = self.projected
        return batch


class InputDerivation:
    """What a monitor derives from each input (see the module docs).

    Args:
        settings: The monitor's settings (``input_kind``, ``image_layout``, ``pixel_range``,
            ``embeddings``).
        reference: The reference (its embedding projection and its image channel kind).
    """

    def __init__(self, settings: Settings, reference: Reference | None) -> None:
        self._name = settings.name
        self._names = settings.feature_names
        meta = reference.metadata if reference is not None else {}
        # "auto" with a reference: the reference's kind (a tabular reference reads every
        # input as a table, exactly as before input kinds existed).
        self._kind = settings.input_kind if settings.input_kind != "auto" or reference is None \
            else meta.get("input_kind", "tabular")
        self._deriver = InputDeriver(self._kind, settings.image_layout, settings.pixel_range)
        self._auto = settings.input_kind == "auto"
        #: The reference's kind: a batch of another kind is not read as features.
        self._expected = meta.get("input_kind") if meta.get("input_kind") in ("image", "text") \
            else None
        if meta.get("image.colour") in ("true", "false"):
            self._deriver.images.fix_colour(meta["image.colour"] == "true")
        self._projection: Projection | None = (
            reference.projections.get(EMBEDDING) if reference is not None else None)
        self._column = settings.embeddings if isinstance(settings.embeddings, str) else None
        self._pcs = component_names(self._projection.k) if self._projection is not None else ()
        #: The reference's features are the components alone: embedding input goes on as the
        #: (n, k) matrix of coordinates, in plan order (the fast positional way).
        self._pcs_only = bool(self._pcs) and reference is not None and \
            tuple(reference.feature_names) == self._pcs
        #: Tabular numpy input passes untouched (no embeddings to look for).
        self._plain = self._kind in ("auto", "tabular") and self._column is None

    @property
    def active(self) -> bool:
        """Whether any input may be derived (``False``: every input is a table as given)."""
        return self._kind != "tabular" or self._column is not None or \
            self._projection is not None

    def derive(self, x: Any, embeddings: Any = None) -> DerivedInput | None:
        """The derived input of ``x`` (``None``: take ``x`` as it is). Never raises."""
        if embeddings is None and self._plain and type(x) is np.ndarray and x.ndim <= 2 \
                and x.dtype.kind in "fiub" and self._expected is None:
            return None
        try:
            return self._derive(x, embeddings)
        except Exception as exc:
            log_limited(f"derive:{self._name}", "otel_ml: %s: input not readable as %s "
                        "(%s: %s); counted as a type mismatch", self._name,
                        kind_of(x, self._kind) if self._kind != "auto" else "its kind",
                        type(exc).__name__, exc, count=False)
            return DerivedInput(None, count_rows(x), [SchemaIssue(INPUT_FEATURE,
                                                                  Check.TYPE_MISMATCH, 1)], None)

    def _derive(self, x: Any, embeddings: Any) -> DerivedInput | None:
        kind = kind_of(x, self._kind) if x is not None else "tabular"
        if self._expected is not None and x is not None and self._auto \
                and kind_of(x) != self._expected:
            raise ValueError(f"the reference profiles {self._expected} inputs, got "
                             f"{type(x).__name__} {getattr(x, 'shape', '')}")
        issues: list[SchemaIssue] = []
        columns: dict[str, Any] | None = None
        vectors = embeddings
        if kind in ("image", "text"):
            d = self._deriver.derive(x)
            assert d is not None
            columns = dict(d.columns)
            issues.extend(SchemaIssue(q.feature, q.check, q.count) for q in d.quality)
        elif kind == "embedding":
            vectors, columns = x, {}
            if self._pcs_only and embeddings is None:
                return self._coordinates(x, issues)
        elif self._column is not None and x is not None:
            table = to_table(x)
            if table.names is not None and self._column in table.names:
                vectors = table.column_named(self._column) if vectors is None else vectors
                columns = {n: table.column(i) for i, n in enumerate(table.names)
                           if n != self._column}
        if vectors is None:
            if columns is None:
                return None
            return DerivedInput(columns, _rows(columns), issues, None)
        if columns is None:
            columns = _columns_of(x, self._names) if x is not None else {}
        projected = self._project(vectors, columns, issues)
        return DerivedInput(columns, _rows(columns), issues, projected)

    def _coordinates(self, x: Any, issues: list[SchemaIssue]) -> DerivedInput:
        """Embedding input of a reference of components only: the coordinates as a matrix."""
        columns: dict[str, Any] = {}
        out: list[np.ndarray] = []
        projected = self._project(x, columns, issues, out)
        z = out[0] if out else np.column_stack([columns[name] for name in self._pcs])
        return DerivedInput(z, z.shape[0], issues, projected)

    def _project(self, vectors: Any, columns: dict[str, Any], issues: list[SchemaIssue],
                 coordinates: list[np.ndarray] | None = None,
                 ) -> tuple[np.ndarray, np.ndarray] | None:
        """Add ``embedding.pc*`` to ``columns`` (and the ``(n, k)`` coordinates to
        ``coordinates``, when given); the rows' error and distance."""
        proj = self._projection
        if proj is None:
            log_limited(f"emb-ref:{self._name}", "otel_ml: %s: embeddings were given but the "
                        "reference has none (Reference.from_data(..., embeddings=...)); they "
                        "are ignored", self._name, count=False)
            return None
        rows = _rows(columns) if columns else None
        matrix = _matrix(vectors)
        n = rows if rows is not None else (matrix.shape[0] if matrix is not None else 1)
        if matrix is None or matrix.shape[1] != proj.dim or (rows is not None
                                                             and matrix.shape[0] != rows):
            got = "unreadable" if matrix is None else f"shape {matrix.shape}"
            log_limited(f"emb-dim:{self._name}", "otel_ml: %s: embeddings of %s, expected "
                        "(%d, %d); counted as wrong_dimension", self._name, got, n, proj.dim,
                        count=False)
            issues.append(SchemaIssue(EMBEDDING_FEATURE, Check.WRONG_DIMENSION, n))
            for name in self._pcs:
                columns[name] = np.full(n, np.nan)
            return None
        z, err, dist, bad = proj.apply_checked(matrix)  # bad: rows with NaN or infinity
        if bad is not None:
            log_limited(f"emb-nan:{self._name}", "otel_ml: %s: %d embeddings with NaN or "
                        "infinite values", self._name, int(bad.sum()), count=False)
            issues.append(SchemaIssue(EMBEDDING_FEATURE, Check.NON_FINITE, int(bad.sum())))
            z[bad] = np.nan
            err = err[~bad]
            dist = dist[~bad]
        for i, name in enumerate(self._pcs):
            columns[name] = z[:, i]
        if coordinates is not None:
            coordinates.append(z)
        return err, dist


def _matrix(vectors: Any) -> np.ndarray | None:
    """Embeddings as an ``(n, d)`` float matrix (one vector: one row); ``None`` when they
    are not a matrix of numbers (ragged, strings)."""
    try:
        if hasattr(vectors, "to_numpy"):
            vectors = vectors.to_numpy()
        a = np.asarray(vectors)
        if a.dtype == object:
            a = np.stack([np.asarray(v, dtype=np.float64) for v in a])
        if a.ndim == 1:
            a = a.reshape(1, -1)
        if a.ndim != 2 or a.dtype.kind not in "fiub":
            return None
        return a if a.dtype.kind == "f" else a.astype(np.float64)
    except (ValueError, TypeError):
        return None


def _columns_of(x: Any, names: tuple[str, ...] | None) -> dict[str, Any]:
    table = to_table(x)
    if table.names is not None:
        names = table.names
    elif names is None or len(names) != table.width:
        names = default_names(table.width)
    return {str(n): table.column(i) for i, n in enumerate(names)}


def _rows(columns: dict[str, Any]) -> int:
    for col in columns.values():
        return len(col)
    return 0
