"""The JSON form of a reference profile: encoding, reading, writing and validation.

The file is versioned JSON (``{"format": "otel_ml.reference", "version": 1, ...}``); a value
that is not finite is written as ``null`` (JSON has no NaN). :func:`decode` checks everything a
monitor relies on and raises :class:`InvalidReferenceError` with a message of the form
``source: where: what``.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

from otel_ml._internal.reference.profile import (
    CategoricalProfile,
    FineBins,
    NumericProfile,
    Profile,
    Reference,
)

__all__ = ["FORMAT", "VERSION", "InvalidReferenceError", "decode", "encode", "read", "write"]

#: Value of the file's ``"format"`` key.
FORMAT = "otel_ml.reference"
#: The file version this otel_ml writes and reads.
VERSION = 1

_SHARE_TOLERANCE = 1e-6


class InvalidReferenceError(ValueError):
    """A reference file or dict that cannot be used; the message says what is wrong."""


def encode(reference: Reference) -> dict[str, Any]:
    """The JSON-ready dict of ``reference``."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "created": reference.created,
        "rows": reference.rows,
        "features": [_profile_dict(p) for p in reference.features.values()],
        "prediction": _profile_dict(reference.prediction) if reference.prediction else None,
        "performance": reference.performance,
        "attributions": reference.attributions,
        "metadata": reference.metadata,
        **({"projections": [p.to_dict() for p in reference.projections.values()]}
           if reference.projections else {}),
        # Only when fitted: a profile without it is byte-for-byte the previous format.
        **({"estimation": reference.estimation.to_dict()}
           if getattr(reference, "estimation", None) is not None else {}),
    }


def write(data: dict[str, Any], path: str | os.PathLike) -> None:
    """Write ``data`` as JSON, atomically (a temporary file renamed over ``path``)."""
    text = json.dumps(data, indent=1, allow_nan=False)
    target = os.fspath(path)
    tmp = f"{target}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, target)


def read(source: str) -> Any:
    """The parsed JSON of the file ``source`` (not yet validated: see :func:`decode`).

    Raises:
        FileNotFoundError: No such file.
        InvalidReferenceError: Unreadable, empty, or not valid JSON (e.g. truncated).
    """
    try:
        with open(source, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"reference file {source!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidReferenceError(f"{source}: cannot read: {exc}") from exc
    if not text.strip():
        raise InvalidReferenceError(f"{source}: the file is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        hint = " (the file looks truncated)" if exc.pos >= len(text.rstrip()) - 1 else ""
        raise InvalidReferenceError(f"{source}: not valid JSON{hint}: {exc.msg} at line "
                                    f"{exc.lineno} column {exc.colno}") from None


def decode(data: Any, *, source: str = "reference") -> dict[str, Any]:
    """Validate the dict form and return the keyword arguments of :class:`Reference`.

    Raises:
        InvalidReferenceError: Not an otel_ml reference, an unsupported version, or
            inconsistent; the message says where.
    """
    v = _Validator(source)
    if not isinstance(data, dict):
        v.fail("", f"expected a JSON object, got {type(data).__name__}")
    fmt = data.get("format")
    if fmt != FORMAT:
        v.fail("format", f"not an otel_ml reference profile (format is {fmt!r}, "
                         f"expected {FORMAT!r})")
    version = data.get("version")
    if version != VERSION:
        newer = isinstance(version, int) and version > VERSION
        v.fail("version", f"version {version!r} is not supported (this otel_ml reads "
                          f"version {VERSION}); " + ("upgrade otel_ml" if newer else
                                                     "re-create it with `otel-ml profile`"))
    rows = v.count("rows", data.get("rows"))
    raw = data.get("features")
    if not isinstance(raw, list) or not raw:
        v.fail("features", "must be a non-empty list")
    features: dict[str, Profile] = {}
    for i, item in enumerate(raw):
        profile = _profile_from(v, f"features[{i}]", item)
        if profile.name in features:
            v.fail(f"features[{i}].name", f"duplicate feature name {profile.name!r}")
        features[profile.name] = profile
    prediction = None
    if data.get("prediction") is not None:
        prediction = _profile_from(v, "prediction", data["prediction"])
    meta = data.get("metadata") or {}
    if not isinstance(meta, dict):
        v.fail("metadata", "must be an object")
    created = data.get("created")
    projections = _projections(v, data.get("projections"))
    return {"projections": projections,"features": features, "prediction": prediction, "rows": rows,
            "performance": v.float_dict("performance", data.get("performance")),
            "attributions": v.float_dict("attributions", data.get("attributions")),
            "metadata": meta, "created": created if isinstance(created, str) else None,
            "estimation": _estimation_from(v, data.get("estimation"))}


def _estimation_from(v: _Validator, item: Any) -> Any:
    if item is None:
        return None
    from otel_ml._internal.reference.estimation_fit import Estimation

    try:
        return Estimation.from_dict(item)
    except ValueError as exc:
        return v.fail("estimation", str(exc))


def _projections(v: Any, raw: Any) -> dict[str, Any]:
    """The optional projections (multivariate drift, embeddings): space -> Projection."""
    from otel_ml._internal.reference.projection import Projection

    if raw is None:
        return {}
    if not isinstance(raw, list):
        v.fail("projections", "must be a list")
    out = {}
    for i, item in enumerate(raw):
        try:
            p = Projection.from_dict(item)
        except (ValueError, TypeError, KeyError) as exc:
            v.fail(f"projections[{i}]", str(exc))
        out[p.space] = p
    return out


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _profile_dict(p: Profile) -> dict[str, Any]:
    if isinstance(p, NumericProfile):
        return {
            "name": p.name, "kind": "numeric", "count": p.count, "missing": p.missing,
            "min": _num(p.min), "max": _num(p.max), "mean": _num(p.mean), "std": _num(p.std),
            "p_low": _num(p.p_low), "p_high": _num(p.p_high),
            "edges": [float(e) for e in p.edges],
            "shares": [float(s) for s in p.shares],
            "centroids": [_num(c) for c in p.centroids],
            **({} if p.fine is None else {"fine": {
                "edges": [float(e) for e in p.fine.edges],
                "shares": [float(s) for s in p.fine.shares],
                "centroids": [_num(c) for c in p.fine.centroids],
                "count": p.fine.count}}),
        }
    return {
        "name": p.name, "kind": "categorical", "count": p.count, "missing": p.missing,
        "categories": list(p.categories), "shares": [float(s) for s in p.shares],
        "other_categories": p.other_categories,
    }


class _Validator:
    """Raises :class:`InvalidReferenceError` messages of the form ``source: where: what``."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, what: str) -> Any:
        prefix = f"{self.source}: {where}: " if where else f"{self.source}: "
        raise InvalidReferenceError(prefix + what)

    def count(self, where: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.fail(where, f"must be a non-negative integer, got {value!r}")
        return value

    def number(self, where: str, value: Any, *, optional: bool = False) -> float:
        if value is None and optional:
            return float("nan")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not math.isfinite(value):
            self.fail(where, f"must be a finite number, got {value!r}")
        return float(value)

    def numbers(self, where: str, value: Any, *, optional: bool = False) -> np.ndarray:
        if not isinstance(value, list):
            self.fail(where, f"must be a list of numbers, got {type(value).__name__}")
        return np.array([self.number(f"{where}[{i}]", x, optional=optional)
                         for i, x in enumerate(value)], dtype=np.float64)

    def float_dict(self, where: str, value: Any) -> dict[str, float] | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            self.fail(where, "must be an object of names to numbers")
        return {str(k): self.number(f"{where}.{k}", x) for k, x in value.items()}


def _profile_from(v: _Validator, where: str, item: Any) -> Profile:
    if not isinstance(item, dict):
        v.fail(where, "must be an object")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        v.fail(f"{where}.name", f"must be a non-empty string, got {name!r}")
    where = f"{where} ({name!r})"
    kind = item.get("kind")
    count = v.count(f"{where}.count", item.get("count"))
    missing = v.count(f"{where}.missing", item.get("missing"))
    if missing > count:
        v.fail(f"{where}.missing", f"{missing} missing values out of {count}")
    shares = v.numbers(f"{where}.shares", item.get("shares"))
    if (shares < 0).any() or (shares > 1 + _SHARE_TOLERANCE).any():
        v.fail(f"{where}.shares", "every share must be within [0, 1]")
    if kind == "numeric":
        return _numeric_from(v, where, item, name, count, missing, shares)
    if kind == "categorical":
        cats = item.get("categories")
        if not isinstance(cats, list) or not all(isinstance(c, str) for c in cats):
            v.fail(f"{where}.categories", "must be a list of strings")
        if len(set(cats)) != len(cats):
            v.fail(f"{where}.categories", "categories must be unique")
        if len(shares) != len(cats) + 1:
            v.fail(f"{where}.shares", f"{len(shares)} shares for {len(cats)} categories "
                                      f"(expected {len(cats) + 1}: one per category, then "
                                      "other)")
        _check_total(v, where, shares, count - missing)
        other = v.count(f"{where}.other_categories", item.get("other_categories", 0))
        return CategoricalProfile(name, count, missing, tuple(cats), shares, other)
    return v.fail(f"{where}.kind", f"must be 'numeric' or 'categorical', got {kind!r}")


def _check_total(v: _Validator, where: str, shares: np.ndarray, valid: int) -> None:
    total = float(shares.sum())
    if valid and abs(total - 1.0) > _SHARE_TOLERANCE:
        v.fail(f"{where}.shares", f"shares sum to {total:.9g}, not 1")


def _numeric_from(v: _Validator, where: str, item: dict[str, Any], name: str, count: int,
                  missing: int, shares: np.ndarray) -> NumericProfile:
    valid = count - missing
    edges = v.numbers(f"{where}.edges", item.get("edges"))
    if len(shares) != len(edges) + 1:
        v.fail(f"{where}.shares", f"{len(shares)} shares for {len(edges)} edges "
                                  f"(expected {len(edges) + 1}: one per bin)")
    _check_total(v, where, shares, valid)
    if len(edges) > 1 and not (np.diff(edges) > 0).all():
        v.fail(f"{where}.edges", "edges must be strictly increasing")
    centroids = v.numbers(f"{where}.centroids", item.get("centroids"), optional=True)
    if len(centroids) != len(shares):
        v.fail(f"{where}.centroids", f"{len(centroids)} centroids for {len(shares)} bins")
    opt = valid == 0
    stats = {k: v.number(f"{where}.{k}", item.get(k), optional=opt)
             for k in ("min", "max", "mean", "std", "p_low", "p_high")}
    if valid:
        if not stats["min"] <= stats["p_low"] <= stats["p_high"] <= stats["max"]:
            v.fail(where, "expected min <= p_low <= p_high <= max, got "
                          f"{stats['min']}, {stats['p_low']}, {stats['p_high']}, "
                          f"{stats['max']}")
        if len(edges) and (edges[0] < stats["min"] or edges[-1] > stats["max"]):
            v.fail(f"{where}.edges", "edges lie outside [min, max]")
        if stats["std"] < 0:
            v.fail(f"{where}.std", "must not be negative")
    fine = _fine_from(v, f"{where}.fine", item.get("fine"), stats["min"], stats["max"]) \
        if valid and len(edges) else None
    return NumericProfile(name, count, missing, edges, shares, centroids, stats["min"],
                          stats["max"], stats["mean"], stats["std"], stats["p_low"],
                          stats["p_high"], fine)


def _fine_from(v: _Validator, where: str, item: Any, lo: float, hi: float) -> FineBins | None:
    """The optional fine bins (absent from files written before them: ``None``)."""
    if item is None:
        return None
    if not isinstance(item, dict):
        v.fail(where, "must be an object")
    edges = v.numbers(f"{where}.edges", item.get("edges"))
    shares = v.numbers(f"{where}.shares", item.get("shares"))
    centroids = v.numbers(f"{where}.centroids", item.get("centroids"), optional=True)
    count = v.count(f"{where}.count", item.get("count"))
    if len(shares) != len(edges) + 1 or len(centroids) != len(shares):
        v.fail(where, f"{len(edges)} edges, {len(shares)} shares and {len(centroids)} "
                      "centroids (expected one share and one centroid per bin)")
    if (shares < 0).any() or abs(float(shares.sum()) - 1.0) > _SHARE_TOLERANCE:
        v.fail(f"{where}.shares", "shares must be within [0, 1] and sum to 1")
    if not (edges[1:] > edges[:-1]).all() or \
            (len(edges) and (edges[0] <= lo or edges[-1] > hi)):
        v.fail(f"{where}.edges", "edges must be strictly increasing, within (min, max]")
    if count < 1:
        v.fail(f"{where}.count", "must be at least 1")
    return FineBins(edges, shares, centroids, count)
