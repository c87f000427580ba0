"""otel_ml benchmarks side by side with the tools users would pick instead.

    .venv/bin/python benchmarks/run.py             # full figures (several minutes)
    .venv/bin/python benchmarks/run.py --quick     # smoke test: small sizes, few repeats
    .venv/bin/python benchmarks/run.py --setup-peers   # create the peer venvs first

Prints one table of medians and ratios (every ratio measured in this same run) with the targets
of issues 3 and 12 as pass/fail, and writes it as JSON (``benchmarks/results/latest.json`` by default).
Peers (whylogs, Evidently, NannyML, alibi-detect) run in their own venvs, see ``peers.py``; a
peer whose venv is missing or broken is skipped and the table says why.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import numpy as np
import peers
from _common import feature_names, make_data

SIZES = {
    "full": {"stats_rows": 1_000_000, "ref_rows": 100_000, "cur_rows": 10_000,
             "calls": 1_000_000, "overhead_repeats": 7, "min_time": 0.2, "warmup": 5_000,
             "stats_repeats": 5, "drift_repeats": 7, "slow_repeats": 3, "whylogs_repeats": 3},
    "quick": {"stats_rows": 100_000, "ref_rows": 100_000, "cur_rows": 10_000, "calls": 20_000,
              "overhead_repeats": 3, "min_time": 0.03, "warmup": 500, "stats_repeats": 3,
              "drift_repeats": 3, "slow_repeats": 2, "whylogs_repeats": 2},
}

TARGETS = {
    "single_row_ratio": ("otel_ml full, 1 row, vs minimal OTel wrapper", "<= 1.25x", 1.25),
    "batch_ratio": ("otel_ml full, 1,000 rows x 20, vs minimal OTel wrapper", "<= 3x", 3.0),
    "stats_mvalues": ("batch statistics, 1M x 20", ">= 100 M values/s", 100.0),
    "drift_eval_ms": ("drift evaluation, 20 features, 10k vs 100k", "<= 5 ms", 5.0),
    "reference_ms": ("reference build, 100k x 20", "<= 150 ms", 150.0),
    "rss_mb": ("RSS growth after 1,000,000 single-row calls", "< 5 MB", 5.0),
}

PEER_ENV = {  # the peers' usage telemetry off: there is no network for it anyway
    "WHYLOGS_NO_ANALYTICS": "True",
    "DO_NOT_TRACK": "1",
    "EVIDENTLY_DISABLE_TELEMETRY": "1",
    "NML_DISABLE_USAGE_LOGGING": "1",
    "TF_CPP_MIN_LOG_LEVEL": "3",
}


# ---------------------------------------------------------------------- subprocesses
def run_script(python: Path | str, script: Path, argv: list[str], timeout: float) -> dict:
    """Run a benchmark script and return the JSON it emitted, or ``{"error": reason}``."""
    env = {**os.environ, **PEER_ENV}
    try:
        proc = subprocess.run([str(python), str(script), *argv], capture_output=True, text=True,
                              timeout=timeout, env=env, cwd=str(HERE), check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("@@RESULT@@"):
            return json.loads(line[len("@@RESULT@@"):])
    tail = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()][-1:] or ["no output"]
    return {"error": f"exit {proc.returncode}: {tail[0][:240]}"}


def run_peer(name: str, script: str, argv: list[str], timeout: float = 1800) -> dict:
    python = peers.venv_python(name)
    if not python.exists():
        failed = peers.ROOT / f"{name}.install.failed"
        why = failed.read_text().strip() if failed.exists() else "venv missing (run with --setup-peers)"
        return {"error": f"not installed: {why}"}
    result = run_script(python, HERE / "peer_scripts" / script, argv, timeout)
    return result


# ---------------------------------------------------------------------- machine
def machine() -> dict:
    def cmd(*args: str) -> str:
        try:
            return subprocess.run(args, capture_output=True, text=True, timeout=10, check=False).stdout.strip()
        except Exception as exc:  # noqa: BLE001
            return f"unavailable: {exc}"

    cpu = next((ln.split(":", 1)[1].strip() for ln in cmd("lscpu").splitlines()
                if ln.startswith("Model name")), "unknown")
    mem = next((ln.split()[1] for ln in cmd("free", "-h").splitlines() if ln.startswith("Mem:")), "?")
    blas = []
    try:
        from threadpoolctl import threadpool_info

        blas = [f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')}, "
                f"{i.get('num_threads')} threads)" for i in threadpool_info()]
    except Exception:  # noqa: BLE001, S110 (threadpoolctl is optional: no BLAS line then)
        pass
    import opentelemetry.sdk.version as otel_version

    import otel_ml

    return {
        "cpu": cpu, "nproc": cmd("nproc"), "memory": mem, "kernel": platform.release(),
        "python": platform.python_version(), "numpy": np.__version__,
        "opentelemetry_sdk": otel_version.__version__, "otel_ml": otel_ml.__version__,
        "blas": blas,
        "openblas_env": {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
                         if k in os.environ},
        "git": cmd("git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD") + (
            "+dirty" if cmd("git", "-C", str(HERE.parent), "status", "--porcelain", "src") else ""),
    }


def load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


# ---------------------------------------------------------------------- formatting
def us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f} µs" if seconds < 1e-3 else f"{seconds * 1e3:,.2f} ms"


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.2f} ms" if seconds < 10 else f"{seconds:,.2f} s"


def verdict(ok: bool | None) -> str:
    return "" if ok is None else ("PASS" if ok else "FAIL")


def render(rows: list[dict], header: list[str]) -> str:
    cols = ["section", "variant", "median", "ratio", "note", "target", "result"]
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols}
    widths["note"] = min(widths["note"], 80)
    lines = list(header)
    lines.append("  ".join(c.ljust(widths[c]) for c in cols))
    lines.append("  ".join("-" * widths[c] for c in cols))
    last = None
    for r in rows:
        if last is not None and r["section"] != last:
            lines.append("")
        last = r["section"]
        cells = []
        for c in cols:
            text = str(r.get(c, ""))
            if c == "note" and len(text) > widths[c]:
                text = text[: widths[c] - 1] + "…"
            cells.append(text.ljust(widths[c]))
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def markdown(rows: list[dict]) -> str:
    cols = ["section", "variant", "median", "ratio", "note", "target", "result"]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(str(r.get(c, "")).replace("|", "\\|") for c in cols) + " |")
    return "\n".join(out)


# ---------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats (smoke test)")
    parser.add_argument("--no-peers", action="store_true", help="skip whylogs/Evidently/NannyML/alibi")
    parser.add_argument("--setup-peers", action="store_true", help="create/repair the peer venvs first")
    parser.add_argument("--only", default="", help="comma list: overhead,stats,drift,memory")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "latest.json")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    size = SIZES[mode]
    only = {s for s in args.only.split(",") if s} or {"overhead", "stats", "drift", "memory"}

    if args.setup_peers:
        for name in peers.PEERS:
            st = peers.ensure(name)
            print(f"peer {name}: {'ok ' + st['version'] if st['ok'] else 'FAILED ' + str(st['reason'])}")

    started = time.time()
    load_start = load()
    data_dir = Path(tempfile.mkdtemp(prefix="otel-ml-bench-"))
    record: dict[str, Any] = {"mode": mode, "sizes": size, "machine": machine(),
                              "load_start": load_start, "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    rows: list[dict] = []
    targets: dict[str, dict] = {}

    def target(key: str, value: float | None, ok: bool | None, shown: str) -> dict:
        label, text, _ = TARGETS[key]
        targets[key] = {"label": label, "target": text, "value": value, "shown": shown,
                        "pass": ok}
        return {"target": text, "result": verdict(ok)}

    try:
        print(f"[bench] mode={mode}; writing data to {data_dir}", file=sys.stderr)
        record["data"] = make_data(data_dir, stats_rows=size["stats_rows"],
                                   ref_rows=size["ref_rows"], cur_rows=size["cur_rows"])
        ref_X = np.load(data_dir / "reference.npy")
        cur_X = np.load(data_dir / "current.npy")
        stats_X = np.load(data_dir / "stats.npy")

        import sections

        # ``missing`` says why otel_ml's statistics cannot be measured (None when they can);
        # the reference build is timed whenever Reference.from_data exists.
        missing = sections.reference_available()
        record["otel_ml_statistics_missing"] = missing
        reference, ref_time, ref_error = None, None, None
        try:
            built, ref_time = sections.build_reference(ref_X, repeats=size["drift_repeats"])
            if missing is None:
                reference = built
        except Exception as exc:  # noqa: BLE001
            ref_error = f"Reference.from_data failed: {type(exc).__name__}: {exc}"[:200]
            missing = missing or ref_error
            record["otel_ml_statistics_missing"] = missing

        # ---------------------------------------------------------------- per-call overhead
        if "overhead" in only:
            for label, x in (("call, 1 row x 20", cur_X[:1].copy()),
                             ("call, 1,000 rows x 20", cur_X[:1000].copy())):
                print(f"[bench] overhead: {label}", file=sys.stderr)
                res = sections.overhead(reference, x, repeats=size["overhead_repeats"],
                                        min_time=size["min_time"], warmup_calls=size["warmup"])
                record.setdefault("overhead", {})[label] = res
                by = {r["key"]: r for r in res}
                bare, base = by["bare"]["median"], by["otel_wrapper"]["median"]
                cpu_base = by["otel_wrapper"]["cpu_median"]
                for r in res:
                    cpu_ratio = r["cpu_median"] / cpu_base
                    row = {"section": label, "variant": r["label"], "median": us(r["median"]),
                           "ratio": "" if r["key"] == "bare" else
                           f"{r['median'] / base:.2f}x wrapper (cpu {cpu_ratio:.2f}x)",
                           "note": r["note"] or ("" if r["key"] == "bare" else
                                                 f"+{us(r['median'] - bare)} over bare")}
                    if r["key"] == "otel_ml_full":
                        one_row = label.startswith("call, 1 row")
                        ratio = r["median"] / base
                        floor = by.get("floor" if one_row else "batch_floor")
                        floor_note = ("" if floor is None else
                                      f"; hand-written floor {floor['median'] / base:.2f}x")
                        name = "single_row_ratio" if one_row else "batch_ratio"
                        row.update(target(name, ratio, ratio <= TARGETS[name][2],
                                          f"{ratio:.2f}x wall, {cpu_ratio:.2f}x cpu{floor_note}"))
                    rows.append(row)
                if missing:
                    rows.append({"section": label, "variant": "otel_ml full", "median": "skipped",
                                 "note": missing})
                    rows[-1].update(target("single_row_ratio" if label.startswith("call, 1 row")
                                           else "batch_ratio", None, None, "not measured"))
            if reference is not None:
                try:
                    c = sections.collection_cost(reference, cur_X[:1].copy(), calls=2000,
                                                 repeats=size["drift_repeats"])
                    record["collection"] = c
                    rows.append({"section": "collection", "variant": "otel_ml full: one metric collection",
                                 "median": ms(c["median"]),
                                 "note": f"{c['points']} points; observable callbacks incl. drift"})
                except Exception as exc:  # noqa: BLE001
                    rows.append({"section": "collection", "variant": "otel_ml full: one collection",
                                 "median": "error", "note": f"{type(exc).__name__}: {exc}"})

        # ---------------------------------------------------------------- feature statistics
        if "stats" in only:
            print("[bench] feature statistics", file=sys.stderr)
            section = f"stats, {stats_X.shape[0]:,} x 20 (0.1% NaN)"
            res = sections.stats_throughput(reference, stats_X, repeats=size["stats_repeats"])
            if not args.no_peers:
                print("[bench] whylogs", file=sys.stderr)
                w = run_peer("whylogs", "whylogs_stats.py",
                             ["--data", str(data_dir), "--repeats", str(size["whylogs_repeats"])])
                if "error" in w:
                    res.append({"key": "whylogs", "label": "whylogs why.log(df)", "error": w["error"]})
                else:
                    res.append({"key": "whylogs", "label": f"whylogs {w['version']} why.log(df)",
                                "seconds": w["seconds"], "mvalues_per_s": w["mvalues_per_s"],
                                "versions": {"numpy": w["numpy"], "pandas": w["pandas"]}})
            record["stats"] = res
            by = {r["key"]: r for r in res}
            limit = by["numpy_sum"]["mvalues_per_s"]
            for r in res:
                if "error" in r:
                    rows.append({"section": section, "variant": r["label"], "median": "skipped",
                                 "note": r["error"]})
                    continue
                row = {"section": section, "variant": r["label"],
                       "median": f"{r['mvalues_per_s']:,.1f} M values/s",
                       "ratio": f"{r['mvalues_per_s'] / limit:.3f}x numpy sum",
                       "note": ms(r["seconds"]["median"]) + " per pass"}
                if r["key"] == "otel_ml_observe":
                    ok = r["mvalues_per_s"] >= 100.0
                    row.update(target("stats_mvalues", r["mvalues_per_s"], ok,
                                      f"{r['mvalues_per_s']:,.1f} M values/s"))
                    if "whylogs" in by and "error" not in by["whylogs"]:
                        row["note"] += f"; {r['mvalues_per_s'] / by['whylogs']['mvalues_per_s']:,.0f}x whylogs"
                rows.append(row)
            if missing:
                rows.append({"section": section, "variant": "otel_ml monitor.observe(X)",
                             "median": "skipped", "note": missing,
                             **target("stats_mvalues", None, None, "not measured")})

        # ---------------------------------------------------------------- drift + reference
        if "drift" in only:
            print("[bench] drift", file=sys.stderr)
            section = "drift, 10k window vs 100k ref"
            expected = [feature_names()[i] for i in range(0, 20, 2)]
            results: list[dict] = []
            if reference is not None:
                try:
                    results.append(sections.otel_ml_drift(reference, cur_X,
                                                          repeats=size["drift_repeats"]))
                except Exception as exc:  # noqa: BLE001
                    results.append({"tool": "otel_ml", "error": f"{type(exc).__name__}: {exc}"})
            else:
                results.append({"tool": "otel_ml", "error": missing})
            results.append(sections.scipy_drift(ref_X, cur_X, repeats=size["drift_repeats"]))
            if not args.no_peers:
                for name, script, reps, label in (
                        ("alibi-detect", "alibi_drift.py", size["drift_repeats"], "alibi-detect KSDrift"),
                        ("nannyml", "nannyml_drift.py", size["drift_repeats"], "NannyML univariate drift"),
                        ("evidently", "evidently_drift.py", size["slow_repeats"], "Evidently DataDriftPreset")):
                    print(f"[bench] {name}", file=sys.stderr)
                    r = run_peer(name, script, ["--data", str(data_dir), "--repeats", str(reps)])
                    r.setdefault("tool", label)
                    results.append(r)
            record["drift"] = results
            record["drift_expected"] = expected
            base = next((r["evaluate"]["median"] for r in results
                         if r["tool"] == "otel_ml" and "error" not in r), None)
            for r in results:
                name = r["tool"] + (f" {r['version']}" if r.get("version") else "")
                if "error" in r:
                    rows.append({"section": section, "variant": name, "median": "skipped",
                                 "note": r["error"]})
                    if r["tool"] == "otel_ml":
                        rows[-1].update(target("drift_eval_ms", None, None, "not measured"))
                    continue
                ev = r["evaluate"]["median"]
                flagged = r["flagged"]
                hits = len(set(flagged) & set(expected))
                false = len(set(flagged) - set(expected))
                row = {"section": section, "variant": name + " (evaluate)", "median": ms(ev),
                       "ratio": f"{ev / base:,.1f}x otel_ml" if base else "",
                       "note": f"flagged {hits}/10 shifted, {false} false; {r.get('rule', '')}"}
                if r["tool"] == "otel_ml":
                    row["ratio"] = "1.0x otel_ml"
                    m = r.get("methods") or {}
                    row["note"] = (f"flagged {hits}/10 shifted, {false} false; methods "
                                   f"{', '.join(m.get('scores', []))} (p-values: "
                                   f"{', '.join(m.get('pvalues', [])) or 'none'})")
                    row.update(target("drift_eval_ms", ev * 1e3, ev * 1e3 <= 5.0, ms(ev)))
                rows.append(row)
                if r["tool"] == "otel_ml":
                    rows.append({"section": section, "variant": "otel_ml (ingest of the 10k window)",
                                 "median": ms(r["ingest"]["median"]),
                                 "note": "monitor.observe(window) + flush, timed apart from evaluation"})
            section = "reference build, 100k x 20"
            if ref_time is not None:
                v = ref_time["median"]
                rows.append({"section": section, "variant": "otel_ml Reference.from_data",
                             "median": ms(v), "ratio": "1.0x otel_ml",
                             **target("reference_ms", v * 1e3, v * 1e3 <= 150.0, ms(v))})
                record["reference_build"] = ref_time
                try:
                    _, t1 = sections.build_reference(ref_X, repeats=size["drift_repeats"],
                                                     blas_one_thread=True)
                    record["reference_build_blas1"] = t1
                    rows.append({"section": section, "variant": "otel_ml Reference.from_data, BLAS 1 thread",
                                 "median": ms(t1["median"]),
                                 "ratio": f"{t1['median'] / v:.2f}x otel_ml",
                                 "note": "threadpoolctl limit: shows BLAS threading cost on shared cores"})
                except Exception as exc:  # noqa: BLE001
                    record["reference_build_blas1"] = {"error": str(exc)}
            else:
                rows.append({"section": section, "variant": "otel_ml Reference.from_data",
                             "median": "skipped", "note": ref_error,
                             **target("reference_ms", None, None, "not measured")})
            for r in results:
                if "error" in r or "build" not in r:
                    continue
                v = r["build"]["median"]
                what = "fit" if "NannyML" in r["tool"] else "constructor (stores x_ref)"
                rows.append({"section": section, "variant": f"{r['tool']} {what}", "median": ms(v),
                             "ratio": f"{v / ref_time['median']:,.1f}x otel_ml" if ref_time else ""})

        # ---------------------------------------------------------------- memory
        if "memory" in only:
            section = f"memory, {size['calls']:,} single-row calls"
            for variant, label in (("otel_wrapper", "minimal OTel wrapper"), ("full", "otel_ml full"),
                                   ("full_store1k", "otel_ml full, outcome_store_size=1000")):
                if variant.startswith("full") and reference is None:
                    if variant != "full":
                        continue
                    rows.append({"section": section, "variant": label, "median": "skipped",
                                 "note": missing, **target("rss_mb", None, None, "not measured")})
                    continue
                print(f"[bench] memory: {label}", file=sys.stderr)
                r = run_script(sys.executable, HERE / "memory_probe.py",
                               ["--variant", variant, "--calls", str(size["calls"]),
                                "--data", str(data_dir)], timeout=3600)
                record.setdefault("memory", {})[variant] = r
                if "error" in r:
                    rows.append({"section": section, "variant": label, "median": "error",
                                 "note": r["error"]})
                    if variant == "full":
                        rows[-1].update(target("rss_mb", None, False, "error"))
                    continue
                mb = r["growth"] / 2**20
                tail = (r["rss_after"] - r["rss_samples"][0]) / 2**20 if r.get("rss_samples") else 0.0
                row = {"section": section, "variant": f"{label}: RSS growth", "median": f"{mb:+.2f} MB",
                       "note": f"RSS {r['rss_before'] / 2**20:.0f} -> {r['rss_after'] / 2**20:.0f} MB, "
                               f"{tail:+.1f} MB after the first 10% of calls; "
                               f"{us(r['per_call'])}/call incl. 1 s metric export"}
                if variant == "full":
                    scale = 1_000_000 / size["calls"]
                    row.update(target("rss_mb", mb, mb * scale < 5.0, f"{mb:+.2f} MB"))
                    if scale != 1:
                        row["note"] += f"; target scaled x{scale:g}"
                rows.append(row)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)

    record["load_end"] = load()
    record["elapsed_s"] = time.time() - started
    record["rows"] = rows
    record["targets"] = targets
    m = record["machine"]
    header = [
        f"otel_ml {m['otel_ml']} benchmarks ({mode} mode), {record['started']}, git {m['git']}",
        (f"machine: {m['cpu']}, {m['nproc']} cores, {m['memory']} RAM; Python {m['python']}, "
         f"numpy {m['numpy']}, OTel SDK {m['opentelemetry_sdk']}"),
        f"load average at start {load_start}, at end {record['load_end']} (the cores are shared)",
        "medians over repeats; every ratio is measured in this run",
        "",
    ]
    table = render(rows, header)
    print(table)
    print()
    print("Targets (issues 3 and 12):")
    for key, (label, text, _) in TARGETS.items():
        t = targets.get(key)
        shown = t["shown"] if t else "not run"
        print(f"  {verdict(t['pass']) if t and t['pass'] is not None else 'n/a ':4s}  {label}: "
              f"{shown} (target {text})")
    if args.markdown:
        print()
        print(markdown(rows))
    record["table"] = table
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=2, default=str))
    print(f"\nJSON: {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
