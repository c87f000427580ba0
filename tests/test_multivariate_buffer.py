"""Multivariate drift's buffered projection (issue 16's cost target): calls copy their sampled
rows into a bounded buffer and the rows are projected together later. What a window reports
must not depend on that: the same sums as projecting every call's rows on the call, per
segment, in the time slot of the call, on real data (breast cancer, bundled with scikit-learn).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from otel_ml import Reference
from otel_ml._internal.monitor.feature_ingest import FeatureIngest
from otel_ml._internal.monitor.multivariate import MultivariateDrift
from otel_ml._internal.monitor.multivariate_buffer import PendingRows, run_sums
from otel_ml._internal.monitor.settings import Settings

COLUMNS = ["mean radius", "mean area", "mean texture", "mean smoothness", "mean symmetry"]


def _setup(window_s: float = 600, slot_s: float = 60):
    data = load_breast_cancer(as_frame=True).data[COLUMNS]
    order = np.random.default_rng(0).permutation(len(data))
    reference = Reference.from_data(data.iloc[order[:300]])
    settings = Settings.create("cancer", drift_window_s=window_s, slot_s=slot_s)
    ingest = FeatureIngest(settings, reference, lambda v: str(v))
    now = [0.0]
    mv = MultivariateDrift(settings, reference, ingest.plan, clock=lambda: now[0])
    return data.iloc[order[300:]].to_numpy(), reference.projections["features"], ingest, mv, now


def test_buffered_sums_equal_projecting_each_call_per_segment():
    current, projection, ingest, mv, _ = _setup()
    rng = np.random.default_rng(3)
    expected: dict[str, np.ndarray] = {}
    sampled: dict[str, int] = {}
    skipped: dict[str, int] = {}
    for i in range(120):  # many buffer fills; batches of 1..300 rows; three segments
        n = int(rng.integers(1, 300))
        rows = current[rng.integers(0, len(current), n)]
        seg = "ABC"[i % 3] if i % 7 else "A"
        mv.observe(ingest.prepare(rows, None, segment=seg, output="auto"))
        if sampled.get(seg, 0) >= 1024:  # one slot: every batch, then one in 8
            skipped[seg] = skipped.get(seg, 0) + 1
            if skipped[seg] % 8:
                continue
        step = -(-n // 256) if n > 256 else 1
        sampled[seg] = sampled.get(seg, 0) + len(rows[::step])
        _, err, dist = projection.apply(rows[::step])
        for key in (seg, "__all__"):
            expected[key] = expected.get(key, np.zeros(3)) + (len(err), err.sum(), dist.sum())
    got = mv.windows()["features"]
    assert set(got) == set(expected)
    for key, sums in expected.items():
        assert got[key][0] == sums[0]
        assert got[key][1:] == pytest.approx(sums[1:], rel=1e-12)


def test_buffered_rows_count_in_the_slot_of_their_call():
    current, _, ingest, mv, now = _setup(window_s=60, slot_s=10)
    mv.observe(ingest.prepare(current[:100], None, segment=None, output="auto"))
    now[0] = 30.0  # read later in the same window: counted
    mv.observe(ingest.prepare(current[100:150], None, segment=None, output="auto"))
    assert mv.windows()["features"]["__all__"][0] == 150
    mv.observe(ingest.prepare(current[:40], None, segment=None, output="auto"))
    now[0] = 200.0  # first read after the window moved past the call: nothing left
    assert mv.windows()["features"]["__all__"][0] == 0
    mv.observe(ingest.prepare(current[:10], None, segment=None, output="auto"))
    assert mv.windows()["features"]["__all__"][0] == 10


def test_the_buffer_is_bounded_and_reused():
    pending = PendingRows(5)
    capacity = pending.capacity
    block = np.ones((200, 5))
    taken = []
    for _ in range(3 * capacity // 200):
        full = pending.put(block, "s", 0)
        if full is not None:
            taken.append(full)
            pending.recycle(full.buffer)
    assert taken and all(t.rows.shape[0] <= capacity for t in taken)
    assert all(t.runs == [[0, t.rows.shape[0], "s", 0]] for t in taken)
    buffers = {id(t.buffer) for t in taken}
    assert len(buffers) <= 2  # the buffer and its spare, reused
    with pytest.raises(ValueError, match="features"):
        pending.put(np.ones(4), "s", 0)


def test_run_sums_group_by_slot_and_segment_and_leave_out_non_finite_rows():
    err = np.array([1.0, 2.0, np.inf, 4.0, 5.0, 6.0])
    dist = np.array([1.0, 1.0, 1.0, np.nan, 1.0, 1.0])
    runs = [[0, 2, "A", 7], [2, 4, "B", 7], [4, 5, "A", 7], [5, 6, "A", 8]]
    parts = run_sums(runs, err, dist)
    assert parts == {(7, "A"): [3, 8.0, 3.0], (8, "A"): [1, 6.0, 1.0]}  # B: both rows out
    assert run_sums([[0, 2, "A", 1]], err[:2], dist[:2]) == {(1, "A"): [2, 3.0, 2.0]}
    assert run_sums([[0, 3, "A", 1]], err[:3], dist[:3]) == {(1, "A"): [2, 3.0, 2.0]}
