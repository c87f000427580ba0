"""RSS growth over N single-row calls through one instrumented function, in a fresh process.

    python benchmarks/memory_probe.py --variant full --calls 1000000 --data DIR

Spans go through a BatchSpanProcessor to a dropping exporter; metrics are collected every second
by a PeriodicExportingMetricReader into a dropping exporter, so the collection path (observable
callbacks, drift) runs during the probe as it would in a server. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from _common import emit, feature_names, rss_bytes
from hotpath import Providers, minimal_otel_wrapper, predict


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", choices=("full", "full_store1k", "otel_wrapper"), default="full")
    parser.add_argument("--calls", type=int, default=1_000_000)
    # A short warm-up (imports, first collection): the prediction store fills during the
    # measured calls, so its memory is counted in the growth.
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument("--data", type=Path, required=True)
    args = parser.parse_args()

    cur = np.load(args.data / "current.npy")
    x = np.ascontiguousarray(cur[:1])
    p = Providers.build(export_interval_s=1.0)
    if args.variant.startswith("full"):
        import otel_ml

        ref = otel_ml.Reference.from_data(np.load(args.data / "reference.npy"),
                                          feature_names=feature_names(cur.shape[1]))
        # full_store1k: the same with the outcome store (predictions kept for joining labels
        # that arrive later) capped at 1,000 records, to show how much of the RSS is that store.
        options = {"outcome_store_size": 1000} if args.variant == "full_store1k" else {}
        fn = otel_ml.instrument_model(name="bench", version="1", reference=ref, **options,
                                      **p.kwargs())(predict)
    else:
        fn = minimal_otel_wrapper(predict, p)
    for _ in range(args.warmup):
        fn(x)
    time.sleep(1.5)  # let one collection and one span export happen before the baseline
    gc.collect()
    before = rss_bytes()
    t0 = time.perf_counter()
    samples = []
    step = max(1, args.calls // 10)
    for i in range(args.calls):
        fn(x)
        if (i + 1) % step == 0:
            samples.append(rss_bytes())
    elapsed = time.perf_counter() - t0
    time.sleep(1.5)
    gc.collect()
    after = rss_bytes()
    p.shutdown()
    emit({"variant": args.variant, "calls": args.calls, "warmup": args.warmup,
          "rss_before": before, "rss_after": after, "growth": after - before,
          "rss_samples": samples, "seconds": elapsed, "per_call": elapsed / args.calls})


if __name__ == "__main__":
    main()
