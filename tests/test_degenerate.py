"""Degenerate data (issue 22): constant, two-valued, all-missing, single-row, huge and tiny
magnitudes, integers beyond 2**53, mixed infinities.

Whatever the family, building a reference, saving and loading it, scoring drift, monitoring and
the command line raise nothing and warn nothing into the caller; every drift score is finite
or explicitly not computable, with a reason.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import otel_ml
from otel_ml import DriftConfig, Reference, ReferenceBuilder
from otel_ml._internal.stats.drift import binned_reference_from_profiles, evaluate
from otel_ml.cli import EXIT_DRIFT, EXIT_OK, main

MAX = np.finfo(np.float64).max

#: Column families: name -> (rows, rng) -> values (float64, or int64 beyond 2**53).
FAMILIES: dict[str, Any] = {
    "normal": lambda n, rng: rng.normal(size=n),
    "constant": lambda n, rng: np.full(n, rng.choice([0.0, 0.1, -3.5, 1e307, 1e-300, 2.0**60])),
    "two_valued": lambda n, rng: np.where(rng.random(n) < rng.choice([0.5, 0.95, 0.999]),
                                          0.0, 1.0),
    "all_missing": lambda n, rng: rng.choice([np.nan, np.inf, -np.inf], size=n),
    "huge": lambda n, rng: np.clip(rng.normal(size=n) * 1e307, -MAX, MAX),
    "float_limits": lambda n, rng: rng.choice([-MAX, MAX], size=n),
    "tiny": lambda n, rng: rng.normal(size=n) * 1e-300,
    "subnormal": lambda n, rng: rng.integers(-5, 5, size=n) * 5e-324,
    "big_int": lambda n, rng: 2**62 + rng.integers(0, 1000, size=n),
    "beyond_2_53": lambda n, rng: 2**53 + rng.integers(0, 4, size=n),
    "mixed_inf": lambda n, rng: np.where(rng.random(n) < 0.2, rng.choice([np.inf, -np.inf], n),
                                         rng.normal(size=n)),
}

families = st.sampled_from(sorted(FAMILIES))
rows = st.sampled_from([1, 2, 3, 60, 500])


def column(family: str, n: int, seed: int) -> np.ndarray:
    return np.asarray(FAMILIES[family](n, np.random.default_rng(seed)))


@contextmanager
def no_warnings() -> Iterator[None]:
    """Any warning raised inside is an error, as in a host that runs with ``-W error``."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def check_profile(p: Any) -> None:
    """The invariants every numeric profile keeps, degenerate or not."""
    assert p.count >= p.missing >= 0
    if p.valid == 0:
        assert len(p.edges) == 0 and p.bins == 1
        return
    assert p.min <= p.p_low <= p.p_high <= p.max
    assert p.min <= p.mean <= p.max
    assert math.isfinite(p.std) and 0.0 <= p.std <= p.max / 2 - p.min / 2
    assert np.all(np.diff(p.edges) > 0) and np.all((p.edges > p.min) & (p.edges <= p.max))
    assert p.shares.sum() == pytest.approx(1.0) and np.all(p.shares > 0)
    filled = p.centroids[~np.isnan(p.centroids)]
    assert np.all((filled >= p.min) & (filled <= p.max))
    if p.min == p.max:  # constant: one bin holding exactly the value
        assert p.bins == 1 and p.std == 0.0 and p.mean == p.p_low == p.p_high == p.min
        assert p.centroids[0] == p.min


def round_trip(ref: Reference, path: Path) -> Reference:
    ref.save(path)
    again = Reference.load(path)
    assert again.to_dict() == ref.to_dict()
    return again


def window_counts(ref: Reference, data: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Window counts in the reference's bins, and values outside each reference range (what
    the monitor's bins count)."""
    br = binned_reference_from_profiles(ref.features.values())
    W = np.zeros((len(ref.features), br.width))
    outside = np.zeros(len(ref.features))
    for i, (name, p) in enumerate(ref.features.items()):
        values = data[name].astype(np.float64)
        finite = values[np.isfinite(values)]
        W[i, : p.bins] = np.bincount(p.bin_of(finite), minlength=p.bins)
        if p.valid:
            outside[i] = np.count_nonzero((finite < p.min) | (finite > p.max))
    return W, outside


def check_report(report: Any) -> None:
    """Finite, or explicitly not computable with a reason; and serialisable as strict JSON."""
    items = list(report.features.values()) + ([report.prediction] if report.prediction else [])
    for f in items:
        assert f.reason
        values = list(f.scores.values()) + list(f.pvalues.values())
        assert all(math.isfinite(v) for v in values), (f.feature, f.scores, f.pvalues)
        assert all(0.0 <= p <= 1.0 for p in f.pvalues.values())
        assert all(why for why in f.not_computable.values())
        assert not set(f.scores) & set(f.not_computable)
        if not f.computable:
            assert not f.drifted and report.not_computable[f.feature] == f.reason
    json.dumps(report.to_dict(), allow_nan=False)


# ------------------------------------------------------------------------ reference


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(families, min_size=1, max_size=3), rows, st.integers(0, 2**16))
def test_any_family_builds_checks_and_round_trips(tmp_path_factory, kinds, n, seed) -> None:
    data = {f"{kind}_{i}": column(kind, n, seed + i) for i, kind in enumerate(kinds)}
    with no_warnings():
        ref = Reference.from_data(data, predictions=column(kinds[0], n, seed).astype(float))
        for p in [*ref.features.values(), ref.prediction]:
            check_profile(p)
        round_trip(ref, tmp_path_factory.mktemp("ref") / "ref.json")


@settings(max_examples=60, deadline=None)
@given(families, families, st.integers(0, 2**16))
def test_builders_and_references_of_any_family_merge(first, second, seed) -> None:
    a, b = column(first, 300, seed), column(second, 200, seed + 1)
    if a.dtype != b.dtype:
        a, b = a.astype(np.float64), b.astype(np.float64)
    with no_warnings():
        merged = ReferenceBuilder(seed=1).update({"x": a}).merge(
            ReferenceBuilder(seed=2).update({"x": b})).build()
        whole = Reference.from_data({"x": np.concatenate([a, b])})
        p, w = merged.features["x"], whole.features["x"]
        check_profile(p)
        assert (p.count, p.missing) == (w.count, w.missing)
        if w.valid:
            assert (p.min, p.max) == (w.min, w.max)
            # Means are floats: near 2**53 they resolve 2, which bounds what a merge can keep.
            resolution = 4 * math.ulp(max(abs(w.min), abs(w.max)))
            assert p.mean == pytest.approx(w.mean, rel=1e-9, abs=resolution)
            assert p.std == pytest.approx(w.std, rel=1e-9, abs=resolution)
        again = ReferenceBuilder(edges_from=whole).update({"x": b}).build()
        check_profile(whole.merge(again).features["x"])


def test_constant_column_is_one_bin_of_exactly_its_value() -> None:
    for value in (0.0, 0.1, -7.25, 1e307, -MAX, 5e-324):
        with no_warnings():
            p = Reference.from_data({"c": np.full(1000, value)}).features["c"]
        assert (p.bins, p.mean, p.std, p.p_low, p.p_high) == (1, value, 0.0, value, value)
        assert p.centroids[0] == value


def test_a_sparse_two_valued_column_keeps_two_bins() -> None:
    """An atom holding every quantile (95% zeros) still gets a bin of its own."""
    x = np.r_[np.zeros(950), np.ones(50)]
    p = Reference.from_data({"flag": x}).features["flag"]
    np.testing.assert_array_equal(p.edges, [1.0])
    np.testing.assert_allclose(p.shares, [0.95, 0.05])


def test_moments_of_extreme_magnitudes_are_exact_to_rounding() -> None:
    rng = np.random.default_rng(3)
    z = rng.normal(size=5000)
    for scale in (1e307, 1e-300):
        with no_warnings():
            p = Reference.from_data({"x": z * scale}).features["x"]
        assert p.mean == pytest.approx(z.mean() * scale, rel=1e-9)
        assert p.std == pytest.approx(z.std() * scale, rel=1e-9)
        assert np.nanmax(np.abs(p.centroids)) <= max(abs(p.min), abs(p.max))


def test_integers_beyond_2_53_profile_as_their_nearest_floats() -> None:
    """2**62 + 0..999 are two floats, 1024 apart: the standard deviation of those floats is
    about 512 (numpy's two-pass ``np.std`` says 733: its mean is rounded to a float)."""
    x = 2**62 + np.arange(1000, dtype=np.int64)
    floats = x.astype(np.float64)
    with no_warnings():
        p = Reference.from_data({"id": x}).features["id"]
    assert p.kind == "numeric" and p.min == float(2**62) and p.max == float(2**62 + 999)
    exact = statistics.pstdev([int(v) for v in floats])  # exact rational arithmetic
    assert p.std == pytest.approx(exact, rel=1e-9)


def test_an_integer_beyond_the_float_range_is_named() -> None:
    with pytest.raises(ValueError, match="column 'big': a value is beyond the float64 range"):
        Reference.from_data({"big": np.array([10**400, 1, 2], dtype=object)})


def test_all_missing_and_single_row_columns(tmp_path) -> None:
    with no_warnings():
        ref = Reference.from_data({"none": np.array([np.nan, np.inf, -np.inf]),
                                   "one": np.array([1.0, np.nan, np.nan])})
        again = round_trip(ref, tmp_path / "ref.json")
    none, one = again.features["none"], again.features["one"]
    assert (none.count, none.missing, none.valid) == (3, 3, 0) and math.isnan(none.mean)
    assert (one.valid, one.bins, one.min, one.max, one.std) == (1, 1, 1.0, 1.0, 0.0)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(families, min_size=1, max_size=3), st.integers(0, 2**16))
def test_files_of_any_family_profile_in_two_passes(tmp_path_factory, kinds, seed) -> None:
    """More rows than the sample: the second pass counts shares with the first pass's edges."""
    data = {f"{kind}_{i}": column(kind, 700, seed + i) for i, kind in enumerate(kinds)}
    path = tmp_path_factory.mktemp("data") / "data.npy"
    np.save(path, np.column_stack([v.astype(np.float64) for v in data.values()]))
    with no_warnings():
        ref = Reference.from_file(path, sample_size=100, chunk_rows=128)
        for p in ref.features.values():
            check_profile(p)
        round_trip(ref, path.with_suffix(".json"))


# ------------------------------------------------------------------------ drift


@settings(max_examples=150, deadline=None)
@given(families, families, rows, rows, st.integers(0, 2**16), st.booleans())
def test_drift_of_any_family_is_finite_or_not_computable(ref_kind, win_kind, m, n, seed,
                                                         given_outside) -> None:
    with no_warnings():
        ref = Reference.from_data({"x": column(ref_kind, m, seed), "n": column("normal", m, 1)})
        window = {"x": column(win_kind, n, seed + 1), "n": column("normal", n, 2)}
        W, outside = window_counts(ref, window)
        br = binned_reference_from_profiles(ref.features.values())
        report = evaluate(br, W, DriftConfig(min_rows=1),
                          outside=outside if given_outside else None)
        check_report(report)
        str(report)


def _evaluate(ref: Reference, window: dict[str, np.ndarray], **config: Any) -> Any:
    W, outside = window_counts(ref, window)
    br = binned_reference_from_profiles(ref.features.values())
    with no_warnings():
        report = evaluate(br, W, DriftConfig(**config), outside=outside)
    check_report(report)
    return report


def test_constant_reference_drifts_on_any_other_value() -> None:
    ref = Reference.from_data({"z": np.zeros(1000)})
    same = _evaluate(ref, {"z": np.zeros(500)}).features["z"]
    assert not same.drifted and same.computable
    assert same.reason == ("the reference is the constant 0 (one bin): 0 of 500 values differ "
                           "from it")
    one = np.zeros(500)
    one[7] = 1e-9
    f = _evaluate(ref, {"z": one}).features["z"]
    assert f.drifted and "1 of 500 values differ" in f.reason
    assert set(f.scores) == {"psi", "jensen_shannon", "hellinger"}
    assert set(f.not_computable) == {"ks", "wasserstein"}
    # One method alone decides with its own threshold; a method without a score cannot.
    assert not _evaluate(ref, {"z": one}, method="psi").features["z"].drifted
    ks = _evaluate(ref, {"z": one}, method="ks").features["z"]
    assert not ks.drifted and not ks.computable and ks.reason.startswith("ks not computable")


def test_without_outside_counts_a_one_bin_feature_is_not_computable() -> None:
    ref = Reference.from_data({"z": np.zeros(1000), "a": np.arange(1000.0)})
    br = binned_reference_from_profiles(ref.features.values())
    W, _ = window_counts(ref, {"z": np.ones(100), "a": np.arange(100.0)})
    report = evaluate(br, W, DriftConfig())
    f = report.features["z"]
    assert not f.computable and not f.drifted and f.scores == {}
    assert report.not_computable == {"z": f.reason}
    assert "constant 0" in f.reason and "not given" in f.reason
    assert report.features["a"].computable
    assert "n/a" in str(report).splitlines()[1]


def test_all_missing_reference_is_not_computable() -> None:
    ref = Reference.from_data({"gone": np.full(100, np.nan), "a": np.arange(100.0)})
    f = _evaluate(ref, {"gone": np.arange(80.0), "a": np.arange(80.0)}).features["gone"]
    assert not f.computable and f.reason == "the reference has no values of this feature " \
                                            "(all missing)"


def test_extreme_magnitudes_drift_like_their_scaled_copies() -> None:
    """Drift is scale-free: 1e307 and 1e-300 columns score as the same data at scale 1."""
    rng = np.random.default_rng(5)
    base, shifted = rng.normal(size=20_000), rng.normal(0.3, 1, size=5_000)
    unit = _evaluate(Reference.from_data({"x": base}), {"x": shifted}).features["x"]
    assert unit.drifted
    for scale in (1e307, 1e-300):
        f = _evaluate(Reference.from_data({"x": base * scale}),
                      {"x": shifted * scale}).features["x"]
        assert f.drifted
        for method, score in unit.scores.items():
            assert f.scores[method] == pytest.approx(score, rel=1e-6, abs=1e-9)


# ------------------------------------------------------------------------ the monitor


def degenerate_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "normal": rng.normal(size=n),
        "constant": np.zeros(n),
        "two_valued": np.where(rng.random(n) < 0.95, 0.0, 1.0),
        "huge": rng.normal(size=n) * 1e307,
        "tiny": rng.normal(size=n) * 1e-300,
        "big_int": 2**62 + rng.integers(0, 1000, size=n),
        "mixed_inf": np.where(rng.random(n) < 0.1, rng.choice([np.inf, -np.inf], n),
                              rng.normal(size=n)),
    })


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(families, families, rows, rows, st.integers(0, 2**16))
def test_monitor_on_any_family_warns_nothing(ref_kind, win_kind, m, n, seed) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider

    reader = InMemoryMetricReader()
    with no_warnings():
        ref = Reference.from_data({"x": column(ref_kind, m, seed), "n": column("normal", m, 1)})
        monitor = otel_ml.ModelMonitor("any", "1", reference=ref,
                                       tracer_provider=TracerProvider(),
                                       meter_provider=MeterProvider(metric_readers=[reader]))
        x = column(win_kind, n, seed + 1)
        monitor.observe({"x": x, "n": column("normal", n, 2)})
        monitor.observe(np.array([[x[0], 0.0]]))  # a single row
        monitor.flush()
        report = monitor.drift_report()
        reader.get_metrics_data()  # every collector
        monitor.close()
    check_report(report)


def test_monitor_end_to_end_on_degenerate_columns(providers) -> None:
    train = degenerate_frame(2000, 0)
    train["all_missing"] = np.nan
    with no_warnings():
        ref = Reference.from_data(train)
        monitor = otel_ml.ModelMonitor("degenerate", "1", reference=ref, **providers)
        live = degenerate_frame(1000, 1)
        live["all_missing"] = np.random.default_rng(2).normal(size=1000)
        live.loc[:9, "constant"] = 1.0  # ten values other than the constant
        monitor.observe(live)
        monitor.observe(live.iloc[:1])  # a single row
        monitor.flush()
        report = monitor.drift_report()
        monitor.close()
    check_report(report)
    assert report.not_computable.keys() == {"all_missing"}
    constant = report.features["constant"]
    assert constant.drifted and "11 of 1001 values differ" in constant.reason
    for name in ("normal", "two_valued", "huge", "tiny", "big_int", "mixed_inf"):
        assert report.features[name].computable and not report.features[name].drifted, name


# ------------------------------------------------------------------------ the command line


@pytest.fixture()
def csv_files(tmp_path) -> tuple[Path, Path, Path]:
    train = degenerate_frame(2000, 0)
    train["all_missing"] = np.nan
    train.to_csv(tmp_path / "train.csv", index=False)
    same = degenerate_frame(1000, 1)
    same["all_missing"] = 1.0
    same.to_csv(tmp_path / "same.csv", index=False)
    other = same.copy()
    other.loc[:4, "constant"] = 3.0
    other.to_csv(tmp_path / "other.csv", index=False)
    return tmp_path / "train.csv", tmp_path / "same.csv", tmp_path / "other.csv"


def test_cli_profile_and_report_on_degenerate_columns(csv_files, tmp_path, capsys) -> None:
    train, same, other = csv_files
    ref = tmp_path / "ref.json"
    with no_warnings():
        assert main(["profile", str(train), "-o", str(ref), "--quiet"]) == EXIT_OK
    out = capsys.readouterr()
    assert "8 features (8 numeric, 0 categorical)" in out.out and out.err == ""
    profile = Reference.load(ref).features
    assert profile["constant"].bins == 1 and profile["all_missing"].valid == 0
    with no_warnings():
        code = main(["report", str(ref), str(same), "--json", "--fail-on-drift"])
    out = capsys.readouterr()
    assert code == EXIT_OK, out.err
    body = json.loads(out.out)
    assert body["drifted_features"] == []
    assert body["drift"]["not_computable"].keys() == {"all_missing"}
    with no_warnings():
        code = main(["report", str(ref), str(other), "--fail-on-drift"])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    assert re.search(r"^all_missing +numeric +1,000 +- +- +- +-  n/a$", out.out, re.M)
    assert "n/a all_missing: the reference has no values of this feature (all missing)" \
        in out.out
    assert code == EXIT_DRIFT, out.out
    assert "drifted: constant" in out.out
