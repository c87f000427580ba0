"""The cheap estimation fold (issue 17's cost target) computes what the definitions say.

A binary model's per-row work is one :class:`ScoreTable` lookup: its calibrated value,
predicted class and AUC score bin equal ``np.interp`` on the isotonic curve, the threshold
and ``np.searchsorted`` on the score edges, for every score including each breakpoint. The
loss model's lookup tables equal the sum of its terms' log factors, unknown bins included.
Folding in chunks (and 1-row calls) gives the batch's estimates, per segment too. Real data
bundled with scikit-learn (breast cancer, diabetes); a regressor with pairwise terms needs
5,000 labelled rows, so it is fitted on a bundled data set's rows resampled with noise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge

from otel_ml import ModelMonitor, Reference
from otel_ml._internal.core.scratch import Scratch
from otel_ml._internal.monitor import estimation_fold, loss_arena
from otel_ml._internal.reference.loss_model import PREDICTION
from otel_ml._internal.reference.score_table import ScoreTable
from otel_ml._internal.stats.estimation import ClassAcc


@pytest.fixture(scope="module")
def binary():
    X, y = load_breast_cancer(return_X_y=True)
    model = LogisticRegression(max_iter=5000).fit(X[:200], y[:200])
    proba = model.predict_proba(X)
    ref = Reference.from_data(X[200:400], predictions=proba[200:400], labels=y[200:400])
    return ref, X[400:], proba[400:]


@pytest.fixture(scope="module")
def regression():
    """Diabetes rows resampled to 6,000 with noise (pairs need 5,000 labelled rows), a
    categorical column derived from a feature, as a frame."""
    X, y = load_diabetes(return_X_y=True)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(X), 9000)
    Xr = X[idx] + rng.normal(0, 0.005, (len(idx), X.shape[1]))
    yr = y[idx] + rng.normal(0, 20, len(idx))
    frame = pd.DataFrame(Xr[:, :6], columns=[f"x{i}" for i in range(6)])
    frame["band"] = np.where(Xr[:, 2] > 0.03, "high", np.where(Xr[:, 2] < -0.03, "low", "mid"))
    model = Ridge().fit(Xr[:3000, :6], yr[:3000])
    pred = model.predict(Xr[:, :6])
    ref = Reference.from_data(frame.iloc[:6000], predictions=pred[:6000], labels=yr[:6000],
                              categorical=["band"])
    return ref, frame.iloc[6000:].reset_index(drop=True), pred[6000:]


def _monitor(ref, **options):
    return ModelMonitor("fold", "1", reference=ref, meter_provider=MeterProvider(), **options)


def _close(a, b, tol=1e-9):
    assert set(a) == set(b)
    for name in a:
        if isinstance(a[name], dict):
            _close(a[name], b[name], tol)
        else:
            assert abs(a[name] - b[name]) <= tol * max(1.0, abs(a[name])), name


def test_score_table_equals_interp_threshold_and_searchsorted(binary):
    ref, _, proba = binary
    cal = ref.estimation.calibration
    table = ScoreTable(cal, 0.5)
    xs, ys = cal.curves[1]
    edges = cal.auc_edges
    rng = np.random.default_rng(1)
    p = np.concatenate([proba[:, 1], rng.random(20000), rng.random(2000) ** 12, xs, edges,
                        np.nextafter(xs, 0), np.nextafter(edges, 1), [0.0, 1.0, 0.5,
                                                                      np.nextafter(0.5, 0)]])
    p = np.clip(p, 0.0, 1.0)
    code = table.codes(p)
    np.testing.assert_array_equal(code, np.searchsorted(table._points, p, side="right"))
    np.testing.assert_allclose(table.calibrated(p, code), np.interp(p, xs, ys), rtol=0,
                               atol=1e-15)
    np.testing.assert_array_equal(table.predicted[code], (p >= 0.5).astype(int))
    np.testing.assert_array_equal(table.score_bin[code], np.searchsorted(edges, p, side="right"))


def test_score_table_sums_equal_the_row_by_row_sums(binary):
    ref, _, proba = binary
    cal = ref.estimation.calibration
    p = np.clip(np.concatenate([proba[:, 1], np.random.default_rng(2).random(5000)]), 0, 1)
    table = ScoreTable(cal, 0.3)
    sums = table.fold(p, scratch=Scratch())
    fast = ClassAcc(2, len(cal.auc_edges) + 1)
    fast.add_binary(*sums)
    rows = ClassAcc(2, len(cal.auc_edges) + 1)
    full = cal.apply(np.column_stack([1 - p, p]))
    rows.add_rows((p >= 0.3).astype(np.int64), full, np.searchsorted(cal.auc_edges, p, "right"))
    for attr in ("conf", "m2", "pos", "neg"):
        np.testing.assert_allclose(getattr(fast, attr), getattr(rows, attr), rtol=1e-12,
                                   atol=1e-9)


def _by_definition(model, predictions, frame):
    """Expected errors summing each term's log factor (an unknown bin adds nothing)."""
    bins = []
    for b in model.binnings:
        values = predictions if b.name == PREDICTION else frame[b.name].to_numpy()
        bins.append(b.bin_of(values))
    logs_a = np.zeros(len(predictions))
    logs_s = np.zeros(len(predictions))
    for t in model.terms:
        cols = t.columns
        known = np.all([bins[c] >= 0 for c in cols], axis=0)
        cell = bins[cols[0]] if len(cols) == 1 else \
            bins[cols[0]] * model.binnings[cols[1]].bins + bins[cols[1]]
        logs_a[known] += t.abs_values[cell[known]]
        logs_s[known] += t.sq_values[cell[known]]
    a = model.abs_intercept * np.exp(logs_a)
    return a, np.maximum(model.sq_intercept * np.exp(logs_s), a * a)


def test_loss_tables_equal_the_sum_of_the_terms(regression):
    ref, frame, pred = regression
    model = ref.estimation.loss
    assert any(len(t.columns) == 2 for t in model.terms)  # pairs are in the tables too
    assert model.categorical_names == ["band"]
    live = frame.copy()
    live.loc[::7, "x1"] = np.nan  # missing: the unknown bin
    live.loc[::11, "x3"] = np.inf
    live.loc[::13, "band"] = "unseen"
    a, s = model.expected(pred, lambda name: live[name].to_numpy() if name in live else None)
    da, ds = _by_definition(model, pred, live)
    np.testing.assert_allclose(a, da, rtol=1e-12)
    np.testing.assert_allclose(s, ds, rtol=1e-12)
    # A column absent from the input contributes nothing either.
    a2, _ = model.expected(pred, lambda name: None if name == "x2" else live[name].to_numpy())
    da2, _ = _by_definition(model, pred, live.assign(x2=np.nan))
    np.testing.assert_allclose(a2, da2, rtol=1e-12)


@pytest.mark.parametrize("chunk", [64, 1000])
def test_chunked_folds_and_single_rows_equal_one_batch(binary, regression, monkeypatch, chunk):
    """Rows folded in chunks (an item cut across chunks), and 1-row calls, give the batch's
    estimates, per segment too."""
    for ref, x, out, options in (
            (binary[0], binary[1], binary[2], {"output": "proba"}),
            (regression[0], regression[1], regression[2], {"task": "regression"})):
        n = len(out)
        regions = np.where(np.arange(n) % 3 == 0, "eu", "us")
        whole = _monitor(ref, segment_by=lambda a, k: k.get("region"), **options)
        fn = whole(lambda x, p, region=None: p)
        for region in ("eu", "us"):
            fn(x[regions == region] if isinstance(x, np.ndarray) else x[regions == region],
               out[regions == region], region=region)
        expected = whole.performance_report().estimated
        monkeypatch.setattr(estimation_fold, "CHUNK_ROWS", chunk)
        chunked = _monitor(ref, segment_by=lambda a, k: k.get("region"), **options)
        fn = chunked(lambda x, p, region=None: p)
        for i in range(0, n, 97):  # calls of 97 rows: cut across the chunks
            part = slice(i, i + 97)
            for region in ("eu", "us"):
                keep = regions[part] == region
                xs = x[part][keep] if isinstance(x, np.ndarray) else x.iloc[part][keep]
                fn(xs, out[part][keep], region=region)
        got = chunked.performance_report().estimated
        monkeypatch.undo()
        _close(expected, got)
        assert set(got["by_segment"]) == {"eu", "us"}


def test_single_row_calls_of_a_frame_regressor_equal_one_batch(regression):
    """1-row calls (the column-by-column path) and one batch (the matrix path)."""
    ref, frame, pred = regression
    batch = _monitor(ref, task="regression")
    batch(lambda x, p: p)(frame.iloc[:300], pred[:300])
    stream = _monitor(ref, task="regression")
    fn = stream(lambda x, p: p)
    for i in range(300):
        fn(frame.iloc[i:i + 1], pred[i:i + 1])
    by_hand = _monitor(ref, task="regression")
    by_hand.observe(frame.iloc[:300], pred[:300])
    expected = batch.performance_report().estimated
    _close(expected, stream.performance_report().estimated)
    _close(expected, by_hand.performance_report().estimated)


def test_a_regressor_call_keeps_only_the_loss_model_columns(regression):
    ref, frame, pred = regression
    monitor = _monitor(ref, task="regression")
    wide = frame.assign(**{f"extra{i}": 0.0 for i in range(30)})
    monitor(lambda x: pred[:500])(wide.iloc[:500])
    pending = monitor._outcomes._estimation._pending
    assert len(pending) == 1
    kept = pending[0].inputs
    loss = ref.estimation.loss
    assert kept.block.shape == (len(loss.numeric_names), 500)  # the model's, not 37 + 1
    assert [c.shape for c in kept.categorical] == [(500,)]
    # The rows lie in the monitor's arena (prediction first), not in a block of their own.
    arena = monitor._outcomes._estimation._arena
    assert kept.start == 0 and arena.used == 500
    assert np.shares_memory(kept.block, arena.block)
    np.testing.assert_array_equal(kept.block[0], pred[:500])
    names = [n for n in loss.numeric_names if n != "__prediction__"]
    np.testing.assert_array_equal(kept.block[1:], wide[names].iloc[:500].to_numpy(dtype=float).T)


@pytest.mark.parametrize("most", [256, 1000, 4096])
def test_a_regressor_folds_the_same_from_its_arena_and_past_it(regression, monkeypatch,
                                                                most):
    """Calls whose rows no longer fit the arena keep their own (the fold copies those in),
    the arena grows by doubling up to its bound, and two folds in a row reuse the arenas:
    every way gives one batch's estimates."""
    ref, frame, pred = regression
    whole = _monitor(ref, task="regression")
    whole(lambda x, p: p)(frame.iloc[:2400], pred[:2400])
    expected = whole.performance_report().estimated
    monkeypatch.setattr(loss_arena, "MAX_ROWS", most)
    monkeypatch.setattr(loss_arena, "START_ROWS", 64)
    monitor = _monitor(ref, task="regression")
    fn = monitor(lambda x, p: p)
    est = monitor._outcomes._estimation
    for i in range(0, 1200, 150):  # eight calls, then a fold, then eight more
        fn(frame.iloc[i:i + 150], pred[i:i + 150])
    starts = [item.inputs.start for item in est._pending]
    assert starts == [s if s + 150 <= most else -1 for s in range(0, 1200, 150)]
    assert est._arena.block.shape[1] <= most
    monitor.performance_report()
    assert est._spare.used == 0 and not est._pending
    for i in range(1200, 2400, 150):
        fn(frame.iloc[i:i + 150], pred[i:i + 150])
    _close(expected, monitor.performance_report().estimated)


def test_fold_scratch_is_bounded_by_the_chunk(binary):
    ref, x, out = binary
    monitor = _monitor(ref, output="proba")
    fn = monitor(lambda x, p: p)
    big_x, big_p = np.tile(x, (150, 1)), np.tile(out, (150, 1))  # 25,000 rows pending
    fn(big_x, big_p)
    monitor.performance_report()
    held = monitor._outcomes._estimation._scratch.nbytes
    assert 0 < held <= 12 * 8 * estimation_fold.CHUNK_ROWS
    fn(np.tile(big_x, (2, 1)), np.tile(big_p, (2, 1)))
    monitor.performance_report()
    assert monitor._outcomes._estimation._scratch.nbytes == held


def test_a_pickled_loss_model_travels_as_data_and_estimates_the_same(regression):
    """A reference shipped to Spark or Dask workers carries the loss model's data, not its
    lookup tables (rebuilt on arrival)."""
    import pickle

    ref, frame, pred = regression
    model = ref.estimation.loss
    data = pickle.dumps(model)
    assert len(data) < 3 * len(str(model.to_dict()))  # about the JSON's size, no tables
    again = pickle.loads(data)

    def column(name):
        return frame[name].to_numpy() if name in frame else None

    for a, b in zip(model.expected(pred, column), again.expected(pred, column)):
        np.testing.assert_array_equal(a, b)
