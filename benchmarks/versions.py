"""Version comparison (issue 19): shadow cost, split shares, calibration of the significance test.

1. **Champion latency with a shadow attached**, against the champion monitored alone (the
   baseline, measured in the same run, interleaved): scikit-learn models trained on the
   breast-cancer data bundled with scikit-learn, one row and 100 rows a call. Requests arrive
   at a paced rate (a server that is not saturated: the challenger's work fits between
   requests; call by call in shuffled order) and back to back (a saturated server, the
   challenger competing for the GIL; each function's own loop, the loops in shuffled order),
   with the default CPU budget (``max_share``) and, back to back, without one. Each row gives
   median and mean against the baseline, the share of pairs compared and the target (<= 1.10x,
   median and mean). Plus the challenger's queue under a challenger 20x slower than traffic:
   pending jobs never exceed ``max_queue``, the rest is dropped and counted.
2. **Split assignment**: shares of 1,000,000 keys against the weights, stickiness, cost.
3. **Significance calibration**: the alert condition (``|z| > challenger_z`` with at least
   ``challenger_min_outcomes`` labelled rows per version) evaluated on simulated counters of
   independent windows with the formulas the recording rules compute
   (``tests/test_versions_rules.py`` proves the rule expression equals them): false alarms with
   no true difference, power for a 3-point accuracy difference at 20,000 labelled rows per
   variant; the same for Welch on MAE.

Run: ``.venv/bin/python benchmarks/versions.py [--quick]`` (prints Markdown tables).
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

import otel_ml
from otel_ml._internal.instrument.shadow_budget import DEFAULT_MAX_SHARE
from otel_ml._internal.instrument.split import assign_unit
from otel_ml._internal.stats.significance import pooled_z, welch_z
from otel_ml.thresholds import THRESHOLDS

T = THRESHOLDS


def _providers() -> dict[str, Any]:
    return {"tracer_provider": TracerProvider(),
            "meter_provider": MeterProvider(metric_readers=[InMemoryMetricReader()])}


# --------------------------------------------------------------------------- 1. latency


def _latencies(fns: tuple[Callable[[Any], Any], ...], rows: list[np.ndarray], gap_s: float
               ) -> list[list[float]]:
    """Per-call latency of each of ``fns`` over ``rows``, alternating call by call in a shuffled
    order (the load of the machine, and what ran just before, hit every function alike), with
    ``gap_s`` idle after each call."""
    out: list[list[float]] = [[] for _ in fns]
    order = list(range(len(fns)))
    shuffle = np.random.default_rng(1).shuffle
    for x in rows:
        shuffle(order)
        for i in order:
            start = time.perf_counter()
            fns[i](x)
            out[i].append(time.perf_counter() - start)
            if gap_s:
                time.sleep(gap_s)
    return out


def _blocks(fns: tuple[Callable[[Any], Any], ...], rows: list[np.ndarray],
            settle: Callable[[], None], rng: np.random.Generator) -> list[list[float]]:
    """Back to back: each of ``fns`` runs its own loop over ``rows`` (a saturated server), the
    loops in a shuffled order; ``settle`` (untimed) lets the shadows finish what they queued,
    so that one loop's challenger work does not land in the next loop's calls."""
    out: list[list[float]] = [[] for _ in fns]
    for i in rng.permutation(len(fns)):
        fn, times = fns[i], out[i]
        for x in rows:
            start = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - start)
        settle()
    return out


def _tallies(f: Any) -> tuple[int, int]:
    """(pairs compared, pairs offered) of a shadowed function so far."""
    counters = f.comparison_report().counters
    return counters["pairs"], counters["pairs"] + sum(counters["skipped"].values())


def latency_table(calls: int, repeats: int) -> list[str]:
    data = load_breast_cancer()
    x, y = data.data, data.target
    champion = LogisticRegression(max_iter=5000).fit(x[:400], y[:400])
    retrained = LogisticRegression(C=0.05, max_iter=5000).fit(x[:400], y[:400])
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(x[:400], y[:400])
    lines = ["| regime | challenger | rows/call | max_share | alone median µs | "
             "shadow median µs | median ratio | alone mean µs | shadow mean µs | mean ratio | "
             "pairs compared | target |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    rng = np.random.default_rng(0)
    regimes = (
        # ~100 requests/s: the challenger's work fits between requests.
        ("paced, 10 ms between requests", 0.010, "retrained LR", retrained),
        # ~300 requests/s with a challenger slower than the gap: it competes for the GIL.
        ("paced, 3 ms between requests", 0.003, "random forest", forest),
        # A saturated server: calls back to back, the challenger competes for every call.
        ("back to back", 0.0, "retrained LR", retrained),
    )
    for regime, gap, label, challenger in regimes:
        # Paced: the default budget; back to back also without one (what it costs otherwise).
        shares: tuple[float | None, ...] = (DEFAULT_MAX_SHARE,) if gap else (
            DEFAULT_MAX_SHARE, None)
        for batch in (1, 100):
            rows = [x[rng.integers(0, len(x), batch)] for _ in range(calls)]
            alone = otel_ml.ModelMonitor("alone", "1", **_providers())(champion.predict)
            shadows = [otel_ml.shadow(champion.predict, challenger.predict,
                                      name=f"bench-{batch}", champion_version="1",
                                      challenger_version="2", max_queue=1000, max_share=share,
                                      **_providers()) for share in shares]
            fns = (alone, *shadows)

            def settle() -> None:
                for f in shadows:
                    f.shadow.drain(60)

            _latencies(fns, rows[:200], 0)  # warm every function
            settle()
            before = [_tallies(f) for f in shadows]
            times: list[list[float]] = [[] for _ in fns]
            for _ in range(repeats):
                if gap:
                    got = _latencies(fns, rows, gap)
                    settle()
                else:  # long loops: the budget's burst (1 s of credit) is a small part
                    got = _blocks(fns, rows * 5, settle, rng)
                for acc, t in zip(times, got):
                    acc += t
            a_med, a_mean = statistics.median(times[0]), statistics.fmean(times[0])
            for f, share, s_all, (p0, o0) in zip(shadows, shares, times[1:], before):
                s_med, s_mean = statistics.median(s_all), statistics.fmean(s_all)
                p1, o1 = _tallies(f)
                compared = (p1 - p0) / max(1, o1 - o0)
                if share is None:
                    target = "(no budget: reported)"
                else:
                    ok = s_med / a_med <= 1.10 and s_mean / a_mean <= 1.10
                    target = f"<= 1.10x {'pass' if ok else 'FAIL'}"
                lines.append(
                    f"| {regime} | {label} | {batch} | {share if share else 'none'} | "
                    f"{a_med * 1e6:.0f} | {s_med * 1e6:.0f} | {s_med / a_med:.2f}x | "
                    f"{a_mean * 1e6:.0f} | {s_mean * 1e6:.0f} | {s_mean / a_mean:.2f}x | "
                    f"{compared:.1%} | {target} |")
                f.shadow.close()
    return lines


def queue_table(calls: int) -> list[str]:
    release = threading.Event()

    def slow(x: Any) -> Any:
        release.wait(0.002)  # 2 ms a call: far slower than the caller
        return x

    f = otel_ml.shadow(lambda x: x, slow, name="q", champion_version="1",
                       challenger_version="2", max_queue=100, statistics=False, **_providers())
    peak = 0
    start = time.perf_counter()
    for i in range(calls):
        f(np.ones((1, 4)))
        if i % 50 == 0:
            peak = max(peak, f.shadow.executor.pending)
    elapsed = time.perf_counter() - start
    f.shadow.drain(30)
    counters = f.comparison_report().counters
    skipped = counters["skipped"]
    return ["| calls | caller µs/call | max_queue | peak pending | compared | "
            "dropped: queue full | dropped: over budget |",
            "|---|---|---|---|---|---|---|",
            f"| {calls} | {elapsed / calls * 1e6:.1f} | 100 | {peak} | {counters['pairs']} | "
            f"{skipped['queue_full']} | {skipped['over_budget']} |"]


# --------------------------------------------------------------------------- 2. split


def split_table(keys: int) -> list[str]:
    lines = ["| weights | keys | shares | max abs deviation | target | sticky | µs/assignment |",
             "|---|---|---|---|---|---|---|"]
    for weights in ((0.5, 0.5), (0.9, 0.1), (0.5, 0.3, 0.2)):
        versions = {f"v{i}": (lambda x: x) for i in range(len(weights))}
        s = otel_ml.split(versions, name="bench-split", key="user", weights=list(weights),
                          **_providers())
        counts = dict.fromkeys(s.versions, 0)
        start = time.perf_counter()
        for k in range(keys):
            counts[s.variant_for(k)] += 1
        per = (time.perf_counter() - start) / keys
        shares = [counts[v] / keys for v in s.versions]
        dev = max(abs(a - b) for a, b in zip(shares, weights))
        sticky = all(s.variant_for(k) == s.variant_for(k) for k in range(0, keys, 97))
        lines.append(f"| {weights} | {keys:,} | {tuple(round(x, 4) for x in shares)} | "
                     f"{dev:.4f} | <= 0.01 {'pass' if dev <= 0.01 else 'FAIL'} | "
                     f"{'yes' if sticky else 'NO'} | {per * 1e6:.2f} |")
    assert assign_unit("bench-split", 1) == assign_unit("bench-split", "1")
    return lines


# --------------------------------------------------------------------------- 3. calibration


def _accuracy_alarm(rng: np.random.Generator, p_a: float, p_b: float, n: int,
                    windows: int) -> float:
    """Share of independent windows where Better or Worse holds (the rules' condition)."""
    x_a = rng.binomial(n, p_a, windows)
    x_b = rng.binomial(n, p_b, windows)
    z = np.array([pooled_z(a, n, b, n) for a, b in zip(x_a, x_b)])
    enough = n >= T.challenger_min_outcomes
    return float(np.mean(enough & (np.abs(np.nan_to_num(z)) > T.challenger_z)))


def _mae_alarm(rng: np.random.Generator, scale_a: float, scale_b: float, n: int,
               windows: int) -> float:
    hits = 0
    for _ in range(windows):
        ea = np.abs(rng.normal(0.0, scale_a, n))
        eb = np.abs(rng.normal(0.0, scale_b, n))
        z, _ = welch_z(ea.mean(), (ea ** 2).mean(), n, eb.mean(), (eb ** 2).mean(), n)
        hits += n >= T.challenger_min_outcomes and abs(z) > T.challenger_z
    return hits / windows


def calibration_table(windows: int, mae_windows: int) -> list[str]:
    rng = np.random.default_rng(19)
    lines = [f"alpha {T.challenger_alpha}, |z| > {T.challenger_z}, at least "
             f"{T.challenger_min_outcomes} labelled rows per version; {windows:,} independent "
             f"windows per row ({mae_windows:,} for MAE)", "",
             "| test | true difference | rows per variant | alarm share | target |",
             "|---|---|---|---|---|"]
    for p in (0.5, 0.8, 0.95):
        for n in (2_000, 20_000):
            rate = _accuracy_alarm(rng, p, p, n, windows)
            lines.append(f"| accuracy (pooled z) | none (both {p}) | {n:,} | {rate:.4f} | "
                         f"<= 0.05 {'pass' if rate <= 0.05 else 'FAIL'} |")
    for p in (0.5, 0.8, 0.9):
        rate = _accuracy_alarm(rng, p, p + 0.03, 20_000, windows)
        lines.append(f"| accuracy (pooled z) | +3 points ({p} -> {p + 0.03:.2f}) | 20,000 | "
                     f"{rate:.4f} | >= 0.90 {'pass' if rate >= 0.90 else 'FAIL'} |")
    below = _accuracy_alarm(rng, 0.5, 0.6, T.challenger_min_outcomes - 1, windows)
    lines.append(f"| accuracy (pooled z) | +10 points, below the minimum sample | "
                 f"{T.challenger_min_outcomes - 1:,} | {below:.4f} | 0 (not judged) |")
    rate = _mae_alarm(rng, 1.0, 1.0, 20_000, mae_windows)
    lines.append(f"| MAE (Welch) | none | 20,000 | {rate:.4f} | <= 0.05 "
                 f"{'pass' if rate <= 0.05 else 'FAIL'} |")
    rate = _mae_alarm(rng, 1.0, 1.03, 20_000, mae_windows)
    lines.append(f"| MAE (Welch) | +3% MAE | 20,000 | {rate:.4f} | (reported) |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--only", choices=("latency", "queue", "split", "significance"),
                        help="one section only")
    args = parser.parse_args()
    calls, repeats = (300, 2) if args.quick else (2_000, 3)
    keys = 100_000 if args.quick else 1_000_000
    windows, mae_windows = (2_000, 200) if args.quick else (20_000, 2_000)
    sections = (
        ("latency", "Champion latency: shadow attached vs the champion monitored alone",
         lambda: latency_table(calls, repeats)),
        ("queue", "The challenger's queue under a challenger slower than traffic",
         lambda: queue_table(calls * 5)),
        ("split", "Split assignment", lambda: split_table(keys)),
        ("significance", "Significance: the MLChallengerBetter / MLChallengerWorse condition",
         lambda: calibration_table(windows, mae_windows)),
    )
    for key, title, table in sections:
        if args.only in (None, key):
            print(f"## {title}\n")
            print("\n".join(table()) + "\n", flush=True)


if __name__ == "__main__":
    main()
