"""Reference profiles: what the model's inputs and predictions looked like in training.

A :class:`Reference` holds, per feature, aggregates only (no raw rows): for a numeric feature
the bin edges at reference quantiles with the share of the reference in each bin, the mean of
each bin, counts, min/max, mean/std, the missing count and the central 99% range; for a
categorical feature the top categories with their shares plus an "other" bucket. The
predictions get a profile of the same kind. It is saved as versioned JSON.

Profiles are mergeable: two finished references merge exactly when they share bin edges
(build the second with ``ReferenceBuilder(edges_from=first)``); builders always merge.

The other modules of this package each hold one concern and import this one: ``builder``
(accumulating chunks), ``columns`` (its per-column accumulators), ``codec`` (the JSON form and
its validation) and ``files`` (profiling a data file). :class:`Reference`'s constructors and
serialisation delegate to them, importing them when called (a module-level import would be a
cycle: they build References).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from otel_ml._internal.reference.estimation_fit import Estimation

__all__ = [
    "CategoricalProfile",
    "FineBins",
    "NumericProfile",
    "Profile",
    "Reference",
]


@dataclass(frozen=True, eq=False)
class FineBins:
    """The fine equal-share bins of a numeric profile, for the in-process KS and Wasserstein.

    They refine the profile's bins (every bin edge and the central 99% bounds are fine edges
    too) and are never exported; see ``docs/drift.md`` ("Resolution").

    Attributes:
        edges: Interior edges, strictly increasing, all within ``(min, max]``.
        shares: Share of the sample in each of the ``len(edges) + 1`` bins (sums to 1).
        centroids: Mean of the sample values in each bin (NaN for an empty bin).
        count: Values the shares were measured on (the sample size: ``m`` of the KS test).
    """

    edges: np.ndarray
    shares: np.ndarray
    centroids: np.ndarray
    count: int


@dataclass(frozen=True, eq=False)
class NumericProfile:
    """Profile of one numeric feature (or of numeric predictions).

    Attributes:
        name: Feature name.
        count: Rows seen, missing ones included.
        missing: Rows whose value was missing or not finite.
        edges: Interior bin edges, strictly increasing; bin ``i`` is ``[edges[i-1], edges[i])``
            with the outer bins open-ended, so there are ``len(edges) + 1`` bins.
        shares: Share of the non-missing reference values in each bin (sums to 1).
        centroids: Mean of the reference values in each bin (NaN for an empty bin).
        min: Smallest value. max: Largest value.
        mean: Mean. std: Population standard deviation.
        p_low: 0.5% quantile. p_high: 99.5% quantile (the central 99% range).
        fine: The fine bins (:class:`FineBins`; ``None`` in references saved before them, or
            for a column with one bin: then drift uses ``edges`` alone).
    """

    name: str
    count: int
    missing: int
    edges: np.ndarray
    shares: np.ndarray
    centroids: np.ndarray
    min: float
    max: float
    mean: float
    std: float
    p_low: float
    p_high: float
    fine: FineBins | None = None
    kind: str = field(default="numeric", init=False)

    @property
    def valid(self) -> int:
        """Non-missing values."""
        return self.count - self.missing

    @property
    def bins(self) -> int:
        """Number of bins."""
        return len(self.shares)

    def bin_of(self, values: np.ndarray) -> np.ndarray:
        """Bin index of each value (-1 for NaN)."""
        v = np.asarray(values, dtype=np.float64)
        out = np.searchsorted(self.edges, v, side="right")
        out[np.isnan(v)] = -1
        return out

    def bin_label(self, i: int) -> str:
        """Human-readable range of bin ``i`` (for docs and reports, never a metric attribute)."""
        lo = "-inf" if i == 0 else f"{self.edges[i - 1]:.6g}"
        hi = "inf" if i == len(self.edges) else f"{self.edges[i]:.6g}"
        return f"[{lo}, {hi})"


@dataclass(frozen=True, eq=False)
class CategoricalProfile:
    """Profile of one categorical feature (or of predicted classes).

    Attributes:
        name: Feature name.
        count: Rows seen, missing ones included.
        missing: Rows whose value was missing.
        categories: The most frequent categories (at most ``max_categories``), as strings.
        shares: Share of each category, then of "other" (all the rest): ``len(categories) + 1``
            values summing to 1.
        other_categories: Distinct categories folded into "other" (0: the reference saw every
            category it lists, so any new value is an unseen category).
    """

    name: str
    count: int
    missing: int
    categories: tuple[str, ...]
    shares: np.ndarray
    other_categories: int
    kind: str = field(default="categorical", init=False)

    @property
    def valid(self) -> int:
        """Non-missing values."""
        return self.count - self.missing

    @property
    def bins(self) -> int:
        """Number of bins (categories plus "other")."""
        return len(self.shares)

    def bin_label(self, i: int) -> str:
        """The category of bin ``i`` (the last bin is "other")."""
        return self.categories[i] if i < len(self.categories) else "__other__"


Profile = NumericProfile | CategoricalProfile


class Reference:
    """The reference profile of a model's inputs and predictions (see the module docs).

    Build one with :meth:`from_data` (or :meth:`from_file`, or a ``ReferenceBuilder``),
    save it with :meth:`save`, load it with :meth:`load`, and pass it (or its path) to
    ``ModelMonitor(..., reference=...)``.

    Attributes:
        features: Profile of each feature, in input order.
        prediction: Profile of the predictions, or ``None``.
        rows: Rows the profile was built from.
        performance: Validation performance stored with the profile (metric name -> value).
        attributions: Mean absolute attribution per feature.
        metadata: Free-form string pairs.
        created: ISO-8601 creation time (UTC).
        projections: Fitted projections by space (``"features"``: multivariate drift of the
            numeric features; ``"embedding"``: the embeddings' PCA), see
            ``otel_ml._internal.reference.projection``.
        estimation: What performance estimation without labels needs (a calibration or a
            loss model, fitted from labelled validation data), or ``None``: estimation off.
    """

    def __init__(self, features: Mapping[str, Profile], *, prediction: Profile | None = None,
                 rows: int = 0, performance: Mapping[str, float] | None = None,
                 attributions: Mapping[str, float] | None = None,
                 metadata: Mapping[str, str] | None = None, created: str | None = None,
                 projections: Mapping[str, Any] | None = None,
                 estimation: Estimation | None = None) -> None:
        self.features: dict[str, Profile] = dict(features)
        self.prediction = prediction
        self.rows = int(rows)
        self.performance = _float_dict("performance", performance)
        self.attributions = _float_dict("attributions", attributions)
        self.metadata = {str(k): str(v) for k, v in (metadata or {}).items()}
        self.created = created or datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.projections: dict[str, Any] = dict(projections or {})
        self.estimation = estimation

    def __repr__(self) -> str:
        kinds = [p.kind[0] for p in self.features.values()]
        return (f"Reference({len(self.features)} features ({kinds.count('n')} numeric, "
                f"{kinds.count('c')} categorical), rows={self.rows}, "
                f"prediction={self.prediction.kind if self.prediction else None})")

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Feature names in input order."""
        return tuple(self.features)

    @classmethod
    def from_data(cls, X: Any, *, predictions: Any = None,
                  feature_names: Sequence[str] | None = None,
                  categorical: Iterable[str] | None = None, bins: int = 10,
                  max_categories: int = 50, performance: Mapping[str, float] | None = None,
                  attributions: Mapping[str, float] | None = None,
                  metadata: Mapping[str, str] | None = None, input_kind: str = "auto",
                  embeddings: Any = None, embedding_components: int = 8,
                  multivariate: bool = True, image_layout: str = "auto",
                  pixel_range: str = "auto", labels: Any = None,
                  classes: Sequence[Any] | None = None) -> Reference:
        """Profile training (or validation) data.

        Args:
            X: The features: numpy 2-D array, pandas/polars frame, dict of columns, list of
                dicts (anything the monitor accepts).
            predictions: The model's predictions on ``X`` (labels, scores or probabilities).
            feature_names: Names for positional input (default ``f0``, ``f1``, ...).
            categorical: Features to treat as categorical whatever their dtype (strings,
                bools and pandas categoricals are categorical anyway).
            bins: Target number of equal-share numeric bins (fewer when quantiles tie).
            max_categories: Categories kept per categorical feature (the rest are "other").
            performance: Validation performance to store (e.g. ``{"accuracy": 0.91}``).
            attributions: Mean absolute attribution per feature to store.
            metadata: Free-form string pairs stored with the profile.
            input_kind: ``"auto"``, ``"tabular"``, ``"image"``, ``"text"`` or
                ``"embedding"``: images and texts are profiled as their derived properties
                (``image.*``, ``text.*``); see ``docs/inputs.md``.
            embeddings: Embedding vectors of the rows: an ``(n, d)`` array, or the name of an
                input column holding them. A PCA of ``embedding_components`` components is
                stored, its components profiled as ``embedding.pc1``.. features.
            embedding_components: Components kept for embeddings (1..32).
            multivariate: Fit the standardised PCA of the numeric features for multivariate
                drift (when there are at least two).
            image_layout: ``"auto"``, ``"channels_last"`` or ``"channels_first"``.
            pixel_range: ``"auto"``, ``"unit"`` or ``"byte"`` (float images).
            labels: True labels of validation rows (with ``predictions``): fits what
                estimating performance without labels needs (a probability calibration per
                class, or a loss model for a regressor) and stores the realised performance
                (a given ``performance`` wins, metric by metric).
            classes: Class labels in probability-column order (default: the sorted labels).

        Returns:
            The profile. Shares are exact for up to 10 million rows per feature (a uniform
            sample of that size sets the edges beyond).

        Raises:
            ValueError: The data is empty or cannot be read; the message names the column.
        """
        from otel_ml._internal.reference.builder import ReferenceBuilder
        from otel_ml._internal.reference.kinds import prepare_input

        prepared = prepare_input(X, input_kind=input_kind, embeddings=embeddings,
                                 components=embedding_components, feature_names=feature_names,
                                 image_layout=image_layout, pixel_range=pixel_range)
        builder = ReferenceBuilder(bins=bins, categorical=categorical,
                                   max_categories=max_categories, sample_size=10_000_000)
        builder.update(prepared.x, predictions,
                       feature_names=None if prepared.derived else feature_names)
        if builder.rows == 0:
            raise ValueError("cannot build a reference from data with no rows")
        estimation = None
        if labels is not None:
            if predictions is None:
                raise ValueError("labels= needs predictions= (the model's outputs on X)")
            from otel_ml._internal.reference.estimation_fit import fit_estimation

            estimation, realised = fit_estimation(X, predictions, labels, feature_names,
                                                  classes)
            performance = {**realised, **(performance or {})}
        reference = builder.build(performance=performance, attributions=attributions,
                                  metadata={**prepared.metadata, **(metadata or {})})
        reference.projections.update(prepared.projections)
        if multivariate:
            prepared.fit_features(reference)
        reference.estimation = estimation
        return reference

    @classmethod
    def from_file(cls, path: str | os.PathLike, *, prediction_column: str | None = None,
                  exclude: Iterable[str] = (), categorical: Iterable[str] | None = None,
                  bins: int = 10, max_categories: int = 50, chunk_rows: int = 100_000,
                  sample_size: int = 1_000_000,
                  progress: Callable[[int, int | None], None] | None = None,
                  performance: Mapping[str, float] | None = None,
                  attributions: Mapping[str, float] | None = None) -> Reference:
        """Profile a CSV, Parquet (with pyarrow) or ``.npy`` file, reading it in chunks.

        When the file has more rows than ``sample_size``, a second pass counts the bin shares
        exactly with the edges found in the first.

        Args:
            path: The data file.
            prediction_column: Column holding the model's predictions (profiled as such).
            exclude: Columns that are not features (ids, labels...).
            categorical: Features to treat as categorical.
            bins: Target number of numeric bins.
            max_categories: Categories kept per categorical feature.
            chunk_rows: Rows read at a time.
            sample_size: Values per feature kept for the quantile edges.
            progress: Called after each chunk with ``(rows_done, rows_total)``; counts both
                passes when there are two; ``rows_total`` is ``None`` when unknown (CSV).
            performance: Validation performance to store.
            attributions: Mean absolute attribution per feature to store.

        Raises:
            otel_ml.errors.DataFileError: The file is unreadable, empty or inconsistent;
                the message names the file (and the column, when one is at fault).
        """
        from otel_ml._internal.reference.files import reference_from_file

        return reference_from_file(
            path, prediction_column=prediction_column, exclude=exclude, categorical=categorical,
            bins=bins, max_categories=max_categories, chunk_rows=chunk_rows,
            sample_size=sample_size, progress=progress, performance=performance,
            attributions=attributions)

    def merge(self, other: Reference) -> Reference:
        """A reference for the rows of both profiles (e.g. two replicas' profiles).

        Exact when the numeric features share bin edges (build the second with
        ``ReferenceBuilder(edges_from=first)``): shares, bin means, moments, min/max and
        missing counts combine exactly; the central 99% range is the count-weighted average of
        the two. Categorical shares combine exactly over the union of listed categories; the
        top ``max(len)`` are kept.

        Raises:
            ValueError: Different features, kinds or bin edges.
        """
        if self.feature_names != other.feature_names:
            raise ValueError(f"cannot merge references with different features: "
                             f"{list(self.feature_names)} and {list(other.feature_names)}")
        features = {n: merge_profiles(self.features[n], other.features[n])
                    for n in self.features}
        prediction = None
        if self.prediction is not None and other.prediction is not None:
            prediction = merge_profiles(self.prediction, other.prediction)
        elif self.prediction is not None or other.prediction is not None:
            raise ValueError("cannot merge a reference with predictions and one without")
        return Reference(features, prediction=prediction, rows=self.rows + other.rows,
                         performance=self.performance, attributions=self.attributions,
                         metadata={**other.metadata, **self.metadata},
                         projections=self.projections, estimation=self.estimation)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form (what :meth:`save` writes)."""
        from otel_ml._internal.reference import codec

        return codec.encode(self)

    def save(self, path: str | os.PathLike) -> None:
        """Write the profile as JSON (atomically: a temporary file renamed over ``path``)."""
        from otel_ml._internal.reference import codec

        codec.write(codec.encode(self), path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Reference:
        """Read a profile written by :meth:`save`, checking it thoroughly.

        Raises:
            FileNotFoundError: No such file.
            otel_ml.errors.InvalidReferenceError: The file is not valid JSON (e.g. truncated),
                not an otel_ml reference, of an unsupported version, or inconsistent; the
                message says where.
        """
        from otel_ml._internal.reference import codec

        source = os.fspath(path)
        return cls.from_dict(codec.read(source), source=source)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "reference") -> Reference:
        """Build from the dict form, validating it (see :meth:`load`)."""
        from otel_ml._internal.reference import codec

        return cls(**codec.decode(data, source=source))


def merge_profiles(a: Profile, b: Profile) -> Profile:
    """The profile of the rows of both ``a`` and ``b`` (see :meth:`Reference.merge`).

    Raises:
        ValueError: Different kinds, or numeric profiles with different bin edges.
    """
    if a.kind != b.kind:
        raise ValueError(f"feature {a.name!r} is {a.kind} in one reference and {b.kind} in "
                         "the other")
    if isinstance(a, CategoricalProfile):
        assert isinstance(b, CategoricalProfile)
        return _merge_categorical(a, b)
    assert isinstance(b, NumericProfile)
    return _merge_numeric(a, b)


def _merge_categorical(a: CategoricalProfile, b: CategoricalProfile) -> CategoricalProfile:
    totals: dict[str, float] = {}
    for p in (a, b):
        for cat, share in zip(p.categories, p.shares[:-1]):
            totals[cat] = totals.get(cat, 0.0) + share * p.valid
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
    top = [k for k, _ in ranked[: max(len(a.categories), len(b.categories))]]
    valid = a.valid + b.valid
    listed = [totals[k] for k in top]
    other = max(valid - sum(listed), 0.0)
    shares = np.array(listed + [other]) / valid if valid else np.zeros(len(top) + 1)
    dropped = len(totals) - len(top)
    return CategoricalProfile(a.name, a.count + b.count, a.missing + b.missing, tuple(top),
                              shares, a.other_categories + b.other_categories + dropped)


def _merge_numeric(a: NumericProfile, b: NumericProfile) -> NumericProfile:
    na, nb = a.valid, b.valid
    if nb == 0:
        return a
    if na == 0:
        return b
    if a.edges.shape != b.edges.shape or not np.array_equal(a.edges, b.edges):
        raise ValueError(f"feature {a.name!r} has different bin edges in the two references: "
                         "merge ReferenceBuilders instead, or build the second reference with "
                         "ReferenceBuilder(edges_from=first)")
    ca, cb = a.shares * na, b.shares * nb
    counts = ca + cb
    n = na + nb
    wa, wb = na / n, nb / n
    lo, hi = min(a.min, b.min), max(a.max, b.max)
    # Weighted averages, never sums of values: no term exceeds the largest value (1e308).
    with np.errstate(all="ignore"):
        centroids = np.clip(np.where(ca == 0, b.centroids, np.where(
            cb == 0, a.centroids, a.centroids * (ca / counts) + b.centroids * (cb / counts))),
            lo, hi)
    scale = max(abs(a.mean), abs(b.mean), a.std, b.std) or 1.0
    var = (wa * (a.std / scale) ** 2 + wb * (b.std / scale) ** 2
           + wa * wb * (b.mean / scale - a.mean / scale) ** 2)
    std = min(scale * math.sqrt(var), hi / 2 - lo / 2)  # at most half the range
    p_low = _within(a.p_low * wa + b.p_low * wb, lo, hi)
    p_high = _within(a.p_high * wa + b.p_high * wb, p_low, hi)
    return NumericProfile(a.name, a.count + b.count, a.missing + b.missing, a.edges, counts / n,
                          centroids, lo, hi, _within(a.mean * wa + b.mean * wb, lo, hi), std,
                          p_low, p_high, _merge_fine(a.fine, b.fine, lo, hi))


def _merge_fine(a: FineBins | None, b: FineBins | None, lo: float, hi: float) -> FineBins | None:
    """Fine bins of both samples when they share edges; else none (drift then uses the bins)."""
    if a is None or b is None or a.edges.shape != b.edges.shape or \
            not np.array_equal(a.edges, b.edges):
        return None
    ca, cb = a.shares * a.count, b.shares * b.count
    counts = ca + cb
    with np.errstate(all="ignore"):
        centroids = np.clip(np.where(ca == 0, b.centroids, np.where(
            cb == 0, a.centroids, a.centroids * (ca / counts) + b.centroids * (cb / counts))),
            lo, hi)
    total = a.count + b.count
    return FineBins(a.edges, counts / max(total, 1), centroids, total)


def _within(x: float, lo: float, hi: float) -> float:
    return min(max(x, lo), hi)


def _float_dict(label: str, value: Mapping[str, float] | None) -> dict[str, float] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"{label} must be a mapping of names to numbers")
    out = {}
    for k, x in value.items():
        try:
            f = float(x)
        except (TypeError, ValueError):
            raise ValueError(f"{label}[{k!r}] is not a number: {x!r}") from None
        if not math.isfinite(f):
            raise ValueError(f"{label}[{k!r}] is not finite: {x!r}")
        out[str(k)] = f
    return out
