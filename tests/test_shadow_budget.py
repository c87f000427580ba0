"""The shadow challenger's CPU budget (``shadow(max_share=...)``): honoured, counted, and out of
the way of paced traffic."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

import otel_ml
from otel_ml._internal.instrument.shadow_budget import DEFAULT_MAX_SHARE, WINDOW_S, CpuBudget
from otel_ml.contract import Skip


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_refills_at_max_share_and_rests_exactly_the_deficit():
    clock = FakeClock()
    budget = CpuBudget(0.1, window_s=1.0, clock=clock)
    assert budget.burst_s == pytest.approx(0.1)
    assert budget.charge(0.06) == 0.0  # within the burst
    assert budget.rest_s() == 0.0
    rest = budget.charge(0.09)  # credit 0.1 - 0.15 = -0.05: 0.5 s at 0.1 s/s
    assert rest == pytest.approx(0.5)
    assert budget.resting(clock.now) and budget.resting(clock.now + 0.49)
    assert not budget.resting(clock.now + 0.5)
    clock.now += 0.25
    assert budget.rest_s() == pytest.approx(0.25)
    clock.now += 0.25
    assert budget.rest_s() == 0.0
    clock.now += 100.0  # idle for long: the credit is capped at the burst
    assert budget.charge(0.1) == 0.0
    assert budget.charge(0.01) == pytest.approx(0.1)
    assert budget.charged_s == pytest.approx(0.06 + 0.09 + 0.1 + 0.01)


def test_only_jobs_that_competed_with_a_champion_call_are_charged():
    clock = FakeClock()
    budget = CpuBudget(0.1, window_s=1.0, clock=clock)
    since = clock.now
    clock.now += 0.01
    assert budget.settle(0.5, since) == 0.0  # the champion was idle: free
    assert (budget.free_s, budget.charged_s) == (0.5, 0.0)
    budget.in_flight.append(None)  # a call runs as the job ends
    assert budget.settle(0.05, since) == 0.0 and budget.charged_s == 0.05
    budget.in_flight.pop()
    budget.last_call = since + 0.005  # a call started during the job
    budget.settle(0.05, since)
    budget.last_call = since - 1.0
    budget.settle(0.05, since, busy_at_start=True)  # a call ran when it started
    assert budget.charged_s == pytest.approx(0.15)
    assert budget.free_s == 0.5
    assert budget.rest_s() == pytest.approx(0.5)  # 0.1 credit - 0.15 charged, at 0.1 s/s


@pytest.mark.parametrize("share", [0.02, 0.05, 0.3])
def test_saturated_worker_stays_within_max_share_over_any_stretch(share):
    """A simulated worker that always has work (jobs of random CPU cost, as a saturated caller
    gives it), driven by a fake clock: the CPU it spends over the run, and over every stretch of
    it, is at most max_share x (stretch + window) plus one job."""
    clock = FakeClock()
    budget = CpuBudget(share, window_s=WINDOW_S, clock=clock)
    rng = np.random.default_rng(7)
    start = clock.now
    log: list[tuple[float, float]] = []  # (end of job, its CPU)
    biggest = 0.0
    while clock.now - start < 200.0:
        rest = budget.rest_s()
        if rest > 0:
            clock.now += rest
            continue
        cpu = float(rng.exponential(0.004))
        biggest = max(biggest, cpu)
        clock.now += cpu  # a job holds the worker for its CPU time
        budget.charge(cpu)
        log.append((clock.now, cpu))
    total = sum(c for _, c in log)
    elapsed = clock.now - start
    assert total <= share * (elapsed + WINDOW_S) + biggest
    assert total >= 0.9 * share * elapsed  # and it is a budget, not a ban
    ends = np.array([t for t, _ in log])
    cum = np.concatenate([[0.0], np.cumsum([c for _, c in log])])
    for stretch in (0.5, 2.0, 10.0):
        hi = np.searchsorted(ends, ends + stretch, side="right")
        spent = cum[hi] - cum[np.arange(len(ends)) + 1]  # jobs ending in (t, t + stretch]
        assert spent.max() <= share * (stretch + WINDOW_S) + 2 * biggest


def _burn(seconds: float) -> None:
    """Pure Python for ``seconds`` of this thread's CPU (holds the GIL like a model would)."""
    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        for i in range(200):
            x += i


def test_budget_is_honoured_under_back_to_back_calls_and_drops_are_counted(providers):
    used = []

    def champion(x):
        _burn(0.0005)
        return (np.asarray(x)[:, 0] > 0).astype(int)

    def challenger(x):
        start = time.thread_time()
        _burn(0.003)
        out = (np.asarray(x)[:, 0] > 0).astype(int)
        used.append(time.thread_time() - start)
        return out

    share = 0.1
    f = otel_ml.shadow(champion, challenger, name="m", champion_version="1",
                       challenger_version="2", max_share=share, statistics=False, **providers)
    x = np.ones((2, 2))
    calls = 0
    start = time.perf_counter()
    while time.perf_counter() - start < 1.5:
        f(x)
        calls += 1
    assert f.shadow.drain(10)
    elapsed = time.perf_counter() - start
    spent = sum(used)  # measured inside the challenger, not by the budget
    counters = f.comparison_report().counters
    assert spent <= share * (elapsed + WINDOW_S) + 0.003 + 0.02
    assert counters["skipped"][Skip.OVER_BUDGET] > 0
    assert counters["pairs"] > 0 and counters["pairs"] == len(used)
    # Every call is accounted for: compared, or dropped with a reason.
    assert counters["pairs"] + sum(counters["skipped"].values()) == calls
    budget = f.shadow.budget
    assert budget.charged_s + budget.free_s >= spent
    assert budget.charged_s >= 0.8 * spent  # back to back, the jobs compete with the calls


def test_paced_traffic_compares_every_pair(providers):
    """Requests 5 ms apart: the challenger's job (about half a millisecond of CPU with its
    monitor, over 5% of the time between requests) runs between calls, so it is not charged
    and nothing is dropped."""
    f = otel_ml.shadow(lambda x: np.asarray(x)[:, 0] > 0, lambda x: np.asarray(x)[:, 0] > 0.5,
                       name="m", champion_version="1", challenger_version="2", **providers)
    assert f.shadow.budget.max_share == DEFAULT_MAX_SHARE
    rng = np.random.default_rng(3)
    for _ in range(150):
        f(rng.normal(size=(20, 2)))
        time.sleep(0.005)
    assert f.shadow.drain(10)
    counters = f.comparison_report().counters
    assert counters["pairs"] == 150
    assert sum(counters["skipped"].values()) == 0
    assert f.shadow.budget.free_s > f.shadow.budget.charged_s


def test_no_budget_compares_every_pair_back_to_back(providers):
    def slow(x):
        _burn(0.001)
        return np.asarray(x)[:, 0] > 0

    f = otel_ml.shadow(lambda x: np.asarray(x)[:, 0] > 0, slow, name="m", champion_version="1",
                       challenger_version="2", max_share=None, statistics=False, **providers)
    assert f.shadow.budget is None
    for _ in range(100):
        f(np.ones((2, 2)))
    assert f.shadow.drain(10)
    assert f.comparison_report().counters["pairs"] == 100


@pytest.mark.parametrize("bad, error", [
    (0, ValueError), (0.0, ValueError), (-0.1, ValueError), (1.5, ValueError),
    (math.nan, ValueError), (math.inf, ValueError), ("0.1", TypeError), (True, TypeError),
])
def test_bad_max_share_fails_fast_at_setup(providers, bad, error):
    with pytest.raises(error, match="max_share"):
        otel_ml.shadow(lambda x: x, lambda x: x, name="m", champion_version="1",
                       challenger_version="2", max_share=bad, **providers)
