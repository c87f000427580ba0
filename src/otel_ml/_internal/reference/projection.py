"""Projections stored with a reference: PCA for multivariate drift and for embeddings.

A :class:`Projection` is fitted on reference rows (never stored: only the fitted aggregates)
and applied to each batch with one matrix product:

- ``space="features"``: the numeric features, standardised with the reference mean and
  standard deviation, keeping the fewest components that explain :data:`KEEP_VARIANCE` of the
  variance (NannyML's data-reconstruction method);
- ``space="embedding"``: the embedding vectors, centred (not scaled), ``k`` components
  (default :data:`DEFAULT_COMPONENTS`, at most :data:`MAX_COMPONENTS`); the components are
  binned as the ordinary features ``embedding.pc1`` .. ``embedding.pcK``.

For each row, :meth:`Projection.apply` gives its coordinates ``z``, its reconstruction error
(the Euclidean distance between the row and its reconstruction from ``k`` components:
``sqrt(|x|^2 - |z|^2)`` on the centred row, as the components are orthonormal) and its
distance to the reference centroid ``|x|``. Missing values are imputed with the reference
mean. The reference keeps a sample of both per-row quantities; the band of a window of ``n``
rows is the mean plus three standard deviations of the means of bootstrap windows of ``n``
reference rows (:meth:`Projection.upper`), computed once per size class and cached. The
sample is of held-out rows (up to half the reference): the PCA is fitted on the others, so the
reference errors are out-of-sample like the errors of new data.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["DEFAULT_COMPONENTS", "EMBEDDING", "FEATURES", "KEEP_VARIANCE", "MAX_COMPONENTS",
           "Projection", "component_names", "fit_projection"]

FEATURES = "features"
EMBEDDING = "embedding"
#: Share of the standardised variance the feature-space PCA keeps.
KEEP_VARIANCE = 0.65
DEFAULT_COMPONENTS = 8
MAX_COMPONENTS = 32
#: Held-out reference rows whose errors and distances are measured (at most).
SAMPLE = 2000
#: Quantiles of the held-out errors and distances stored (aggregates, not rows): 0%, 2%, ...
QUANTILES = 51
#: Bootstrap windows per band; windows above BOOTSTRAP_MAX_ROWS use the normal limit.
BOOTSTRAPS = 300
BOOTSTRAP_MAX_ROWS = 256
#: Standard deviations of the bootstrap means above their mean: the band's upper bound.
BAND_SIGMAS = 3.0


def component_names(k: int) -> tuple[str, ...]:
    """``embedding.pc1`` .. ``embedding.pcK``."""
    return tuple(f"embedding.pc{i + 1}" for i in range(k))


@dataclass(eq=False)
class Projection:
    """A fitted PCA and the reference distribution of its per-row errors and distances.

    Attributes:
        space: ``"features"`` or ``"embedding"``.
        columns: The feature names it reads (features space; empty for embeddings).
        mean: ``(d,)`` reference mean. scale: ``(d,)`` divisor (std, or ones).
        components: ``(k, d)`` orthonormal rows.
        explained: Share of the (standardised) variance the components explain.
        errors: Quantiles (0%, 2%, ..., 100%) of the held-out reference rows'
            reconstruction errors.
        distances: The same quantiles of their distances to the centroid.
    """

    space: str
    columns: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    components: np.ndarray
    explained: float
    errors: np.ndarray
    distances: np.ndarray
    _bands: dict[tuple[str, int], float] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (a reference sent to Spark or Dask workers) without its lock and caches."""
        return {f: getattr(self, f) for f in ("space", "columns", "mean", "scale",
                                               "components", "explained", "errors",
                                               "distances")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._bands = {}
        self._lock = threading.Lock()
        self.__post_init__()

    def __post_init__(self) -> None:
        self._basis = np.ascontiguousarray((self.components / self.scale).T)  # (d, k)
        self._shift = (self.mean / self.scale) @ self.components.T  # (k,)
        self._mean_sq = float(self.mean @ self.mean)
        self._inv_var = 1.0 / (self.scale * self.scale)
        self._tiles = np.empty(0)  # the mean tiled over a block (features space)
        # Embeddings: the coordinates and x.m (for |x - m|^2) from one matrix product.
        self._fused = np.ascontiguousarray(np.column_stack((self._basis, self.mean))) \
            if self.space == EMBEDDING else self._basis
        # Features: the discarded directions, when fewer than the kept ones (the residual
        # |W c| of a row then takes the smaller matrix product; W: the orthonormal
        # complement of the components, from a complete QR).
        d, k = self.components.shape[1], self.components.shape[0]
        self._perp: np.ndarray | None = None
        if self.space == FEATURES and 0 < d - k < k:
            q = np.linalg.qr(self.components.T, mode="complete")[0]
            self._perp = np.ascontiguousarray(q[:, k:] / self.scale[:, None])  # (d, d - k)

    @property
    def dim(self) -> int:
        """Width of the rows it reads."""
        return int(self.mean.shape[0])

    @property
    def k(self) -> int:
        """Components."""
        return int(self.components.shape[0])

    def apply(self, x: np.ndarray, *, finite: bool = False,
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(z, error, distance)`` of each row of ``x`` (``(n, d)``): coordinates ``(n, k)``,
        reconstruction error and distance to the centroid ``(n,)``. Non-finite values are
        imputed with the reference mean (``finite=True``: the caller checked there are none).
        One matrix product; the squared norms come from ``x`` itself (no centred copy)."""
        return self.apply_checked(x, finite=finite)[:3]

    def apply_checked(self, x: np.ndarray, *, finite: bool = False,
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """:meth:`apply` and which rows held non-finite values (``None``: none did), found
        from the rows' squared norms (a NaN or infinity makes them non-finite), not from
        another pass over ``x``. ``z`` is C-contiguous."""
        with np.errstate(all="ignore"):  # never a warning into the host: huge rows give inf
            return self._apply(np.asarray(x), finite)

    def _apply(self, x: np.ndarray, finite: bool,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        if x.dtype.kind != "f":
            x = x.astype(np.float64)
        bad = None
        if self.space == FEATURES:
            z, sq = self._centred(x)
            if not finite and not np.isfinite(sq).all():  # NaN/inf inside, or overflow
                ok = np.isfinite(x)
                rows_ok = ok.all(axis=1)
                if not rows_ok.all():
                    bad = ~rows_ok
                    z, sq = self._centred(np.where(ok, x, self.mean))
        else:  # |x - m|^2 = |x|^2 - 2 x.m + |m|^2
            xx = _row_dots(x)
            if not finite and not np.isfinite(xx).all():  # NaN/inf inside, or overflow
                ok = np.isfinite(x)
                rows_ok = ok.all(axis=1)
                if not rows_ok.all():
                    bad = ~rows_ok
                    x = np.where(ok, x, self.mean)
                    xx = _row_dots(x)
            zm = x @ self._fused  # (n, k + 1): coordinates, then x.m
            k = self._basis.shape[1]
            z = np.subtract(zm[:, :k], self._shift)
            sq = xx
            sq -= 2.0 * zm[:, k]
            sq += self._mean_sq
            np.maximum(sq, 0.0, out=sq)
        err = np.sqrt(np.maximum(sq - _row_dots(z), 0.0))
        return z, err, np.sqrt(sq), bad

    def row_errors(self, x: np.ndarray, *, overwrite: bool = False,
                   ) -> tuple[np.ndarray, np.ndarray]:
        """``(error, distance)`` of each row of ``x``, as :meth:`apply` gives them, without
        the coordinates (what multivariate drift sums). ``overwrite``: ``x`` (a C-contiguous
        float64 block of the caller's) may be overwritten, saving a copy."""
        with np.errstate(all="ignore"):
            x = np.asarray(x)
            if self.space != FEATURES:
                return self._apply(x, False)[1:3]
            n, d = x.shape
            if not (overwrite and x.dtype == np.float64 and x.flags.c_contiguous):
                return self._centred_errors(np.subtract(x, self.mean))
            if d >= _WIDE or n * d > _MAX_TILED:
                np.subtract(x, self.mean, out=x)
            else:  # narrow rows: flat against the mean tiled to the block (see _centred)
                flat = x.reshape(-1)
                np.subtract(flat, self._tiled(n * d), out=flat)
            return self._centred_errors(x)

    def _tiled(self, size: int) -> np.ndarray:
        """The mean repeated over ``size`` values (rows of a block, flat)."""
        tiled = self._tiles
        if tiled.shape[0] < size:
            rows = max(-(-size // self.mean.shape[0]), 256)
            tiled = self._tiles = np.tile(self.mean, rows)
        return tiled[:size]

    def _centred_errors(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # The residual from the discarded directions when they are fewer than the kept ones
        # (|W c|, no cancellation), else |c|^2 - |z|^2 from the kept ones.
        basis = self._basis if self._perp is None else self._perp
        r = t @ basis
        if not np.isfinite(r).all():  # NaN/inf in t (or overflow): impute, found via r
            bad = ~np.isfinite(t)
            if bad.any():
                t[bad] = 0.0
                r = t @ basis
        rr = _row_dots(r)
        np.square(t, out=t)
        sq = t @ self._inv_var
        err2 = rr if self._perp is not None else np.maximum(sq - rr, 0.0)
        return np.sqrt(err2), np.sqrt(sq)

    def _centred(self, x: np.ndarray, basis: np.ndarray | None = None,
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Coordinates ``((x - mean) / scale) @ components.T`` and the squared norms
        ``|(x - mean) / scale|^2`` of the rows, from the centred rows ``t = x - mean`` (no
        cancellation): ``z = t @ basis``, ``|t / scale|^2 = t^2 @ scale^-2``. Narrow rows are
        centred flat against the mean tiled to the block (numpy broadcasting a short row over
        many rows is several times slower than an elementwise operation)."""
        n, d = x.shape
        if d >= _WIDE or n < 2 or n * d > _MAX_TILED or not x.flags.c_contiguous:
            t = np.subtract(x, self.mean)
        else:
            t = np.subtract(x.reshape(-1), self._tiled(n * d)).reshape(n, d)
        z = t @ (self._basis if basis is None else basis)
        np.square(t, out=t)
        return z, t @ self._inv_var

    def upper(self, quantity: str, rows: int) -> float:
        """Upper bound of the mean ``quantity`` (``"reconstruction_error"`` or
        ``"centroid_distance"``) over a window of ``rows`` rows with no drift."""
        q = self.errors if quantity == "reconstruction_error" else self.distances
        if rows <= 0 or q.size < 2:
            return math.nan
        size = _size_class(rows) if rows <= BOOTSTRAP_MAX_ROWS else 0
        key = (quantity, size)
        band = self._bands.get(key)
        if band is not None:
            return band if size else band / math.sqrt(rows) + self._bands[(quantity, -1)]
        grid = np.linspace(0.0, 1.0, q.size)
        if not size:  # the normal limit: mean + 3 sd / sqrt(n) of the quantile function
            dense = np.interp((np.arange(4000) + 0.5) / 4000, grid, q)
            with self._lock:
                self._bands[(quantity, -1)] = float(dense.mean())
                self._bands[key] = float(BAND_SIGMAS * dense.std())
            return self.upper(quantity, rows)
        # Bootstrap: windows of `size` reference rows drawn from the quantile function.
        rng = np.random.default_rng(size)
        means = np.interp(rng.random((BOOTSTRAPS, size)), grid, q).mean(axis=1)
        band = float(means.mean() + BAND_SIGMAS * means.std())
        with self._lock:
            self._bands[key] = band
        return band

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"space": self.space, "columns": list(self.columns),
                "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "components": self.components.tolist(), "explained": self.explained,
                "errors": [float(f"{v:.6g}") for v in self.errors],
                "distances": [float(f"{v:.6g}") for v in self.distances]}

    @classmethod
    def from_dict(cls, data: Any) -> Projection:
        """From :meth:`to_dict`'s form. Raises ``ValueError`` when inconsistent."""
        if not isinstance(data, dict) or data.get("space") not in (FEATURES, EMBEDDING):
            raise ValueError("a projection needs a space ('features' or 'embedding')")
        mean = np.asarray(data["mean"], dtype=np.float64)
        scale = np.asarray(data["scale"], dtype=np.float64)
        comp = np.asarray(data["components"], dtype=np.float64)
        if mean.ndim != 1 or scale.shape != mean.shape or comp.ndim != 2 \
                or comp.shape[1] != mean.shape[0] or not 1 <= comp.shape[0] <= MAX_COMPONENTS:
            raise ValueError("projection arrays have inconsistent shapes")
        if not (np.isfinite(mean).all() and np.isfinite(comp).all() and (scale > 0).all()):
            raise ValueError("projection arrays must be finite (scale > 0)")
        columns = tuple(str(c) for c in data.get("columns") or ())
        if data["space"] == FEATURES and len(columns) != mean.shape[0]:
            raise ValueError("a feature-space projection names one column per dimension")
        return cls(data["space"], columns, mean, scale, comp, float(data.get("explained", 0)),
                   np.asarray(data.get("errors") or [], dtype=np.float64),
                   np.asarray(data.get("distances") or [], dtype=np.float64))


def _row_dots(a: np.ndarray) -> np.ndarray:
    """``(a * a).sum(axis=1)`` of an ``(n, d)`` float array: narrow rows as a matrix-vector
    product of the squares, wide ones with numpy 2's ``vecdot`` (else ``einsum``)."""
    if a.shape[1] < _WIDE:
        return np.square(a) @ np.ones(a.shape[1])
    if _VECDOT is not None:
        return _VECDOT(a, a)
    return np.einsum("ij,ij->i", a, a)


_VECDOT = getattr(np, "vecdot", None)
#: Rows at least this wide are standardised by broadcasting (long inner loops already).
_WIDE = 64
#: Values of the largest block standardised against tiled constants (bounds the tiles).
_MAX_TILED = 1 << 16


def _size_class(rows: int) -> int:
    """The largest size ``<= rows`` on a grid growing by about 19% (a smaller window has a
    wider band, so the cached band is conservative)."""
    if rows < 16:
        return rows
    return int(2 ** (math.floor(4 * math.log2(rows)) / 4))


def fit_projection(x: np.ndarray, space: str, *, columns: tuple[str, ...] = (),
                   k: int | None = None, seed: int = 0) -> Projection:
    """Fit a :class:`Projection` on reference rows ``x`` (``(n, d)``).

    Args:
        x: Reference rows (non-finite values are imputed with the column mean).
        space: ``"features"`` (standardised, components up to :data:`KEEP_VARIANCE`) or
            ``"embedding"`` (centred, ``k`` components).
        columns: Feature names of the columns (features space).
        k: Components for embeddings (default 8, at most 32, at most ``d``).
        seed: Seed of the sample of per-row errors kept.

    Raises:
        ValueError: Fewer than 2 rows, or ``k`` out of range.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"a projection needs at least 2 rows of 1+ columns, got {x.shape}")
    finite = np.isfinite(x)
    counts = np.maximum(finite.sum(axis=0), 1)
    mean = np.where(finite, x, 0.0).sum(axis=0) / counts
    x = np.where(finite, x, mean)
    if space == FEATURES:
        scale = x.std(axis=0)
        scale[~(scale > 0)] = 1.0
    else:
        scale = np.ones(x.shape[1])
    c = (x - mean) / scale
    # The errors' sample comes from rows the PCA was not fitted on: in-sample errors are
    # smaller (the components fit the reference's own noise), and the band would be too low.
    rng = np.random.default_rng(seed)
    order = rng.permutation(c.shape[0])
    held = order[: min(SAMPLE, c.shape[0] // 2)]
    fit = order[held.shape[0]:][:50_000]
    _, s, vt = np.linalg.svd(c[fit], full_matrices=False)
    var = s ** 2
    total = float(var.sum()) or 1.0
    if space == FEATURES:
        kept = int(np.searchsorted(np.cumsum(var) / total, KEEP_VARIANCE - 1e-12) + 1)
        kept = min(kept, max(1, c.shape[1] - 1)) if c.shape[1] > 1 else 1
    else:
        kept = DEFAULT_COMPONENTS if k is None else k
        if not isinstance(kept, int) or not 1 <= kept <= MAX_COMPONENTS:
            raise ValueError(f"embedding components must be within 1..{MAX_COMPONENTS}, got {k!r}")
        kept = min(kept, vt.shape[0])
    components = vt[:kept]
    if not (np.isfinite(mean).all() and np.isfinite(scale).all() and (scale > 0).all()
            and np.isfinite(components).all()):
        raise ValueError("the rows are beyond what a PCA can take (values near the float "
                         "limits)")
    proj = Projection(space, tuple(columns), mean, scale, components,
                      float(var[:kept].sum() / total), np.empty(0), np.empty(0))
    _, err, dist = proj.apply(x[held])
    if not (np.isfinite(err).all() and np.isfinite(dist).all()):
        raise ValueError("reconstruction errors of the reference are not finite")
    levels = np.linspace(0.0, 1.0, QUANTILES)
    proj.errors, proj.distances = np.quantile(err, levels), np.quantile(dist, levels)
    return proj
