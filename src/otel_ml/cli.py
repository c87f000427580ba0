"""The ``otel-ml`` command: ``profile``, ``report``, ``demo`` and ``--version``.

Exit codes (also in ``otel-ml --help``):

- ``0``: success (``report``: no drift, or drift without ``--fail-on-drift``).
- ``1``: ``report --fail-on-drift`` found a drifted feature or prediction distribution.
- ``2``: usage error: unknown option, missing argument, value out of range.
- ``3``: input error: a file is missing, unreadable, empty, of an unknown format, or does not
  match the reference.
- ``4``: internal error (a bug: the traceback is printed; please report it).
- ``130``: interrupted by Ctrl-C (``demo`` ends cleanly with its summary and exits ``0``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from otel_ml.version import __version__

__all__ = ["EXIT_DRIFT", "EXIT_INPUT", "EXIT_INTERNAL", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK = 0
EXIT_DRIFT = 1
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_INTERNAL = 4
EXIT_INTERRUPTED = 130

_EPILOG = """\
exit codes:
  0    success
  1    report --fail-on-drift: drift found
  2    usage error (unknown option, missing argument, value out of range)
  3    input error (missing, unreadable, empty or mismatched file)
  4    internal error (a bug: please report it with the traceback)
  130  interrupted (Ctrl-C)
"""


class InputError(Exception):
    """A file the user named cannot be used; the message names the file and the problem."""


class _Parser(argparse.ArgumentParser):
    """argparse with our usage exit code (argparse's own is also 2) and a hint line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n"
                              f"Run '{self.prog} --help' for the options.\n")


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _columns(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for the docs and tests)."""
    parser = _Parser(
        prog="otel-ml",
        description="Make a machine-learning model observable with OpenTelemetry.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"otel-ml {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    profile = sub.add_parser(
        "profile", help="build a reference profile from training data",
        description="Build a reference profile (bins, category frequencies, prediction "
                    "distribution; no raw rows) from a data file, read in chunks.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    profile.add_argument("data", metavar="DATA",
                         help="CSV, Parquet (with pyarrow) or .npy file of training data")
    profile.add_argument("-o", "--output", required=True, metavar="REFERENCE",
                         help="where to write the profile (JSON)")
    profile.add_argument("--predictions", metavar="COLUMN",
                         help="column holding the model's predictions (profiled separately)")
    profile.add_argument("--categorical", type=_columns, default=[], metavar="COLS",
                         help="comma-separated columns to treat as categorical")
    profile.add_argument("--exclude", type=_columns, default=[], metavar="COLS",
                         help="comma-separated columns to leave out (ids, labels)")
    profile.add_argument("--chunk-rows", type=_positive(int), default=100_000, metavar="N",
                         help="rows read at a time (default: 100000)")
    profile.add_argument("--bins", type=_positive(int), default=10, metavar="N",
                         help="equal-share bins per numeric feature (default: 10)")
    profile.add_argument("--quiet", action="store_true", help="no progress bar")

    report = sub.add_parser(
        "report", help="offline drift and data-quality report of a data file",
        description="Compare a data file with a reference profile: drift per feature and of "
                    "the predictions, and data-quality problems.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    report.add_argument("reference", metavar="REFERENCE", help="profile from 'otel-ml profile'")
    report.add_argument("data", metavar="DATA", help="CSV, Parquet (with pyarrow) or .npy file")
    report.add_argument("--predictions", metavar="COLUMN",
                        help="column holding the model's predictions")
    report.add_argument("--segment-by", metavar="COLUMN",
                        help="column whose value is each row's segment (drift per segment)")
    report.add_argument("--json", action="store_true", help="print JSON instead of a table")
    report.add_argument("--fail-on-drift", action="store_true",
                        help="exit 1 when a feature or the predictions drifted")
    report.add_argument("--chunk-rows", type=_positive(int), default=100_000, metavar="N",
                        help="rows read at a time (default: 100000)")

    demo = sub.add_parser(
        "demo", help="run the embedded demo (no collector needed)",
        description="Train a small model on data bundled with scikit-learn, serve generated "
                    "traffic through it (normal, drift, a new data source, an error burst, "
                    "recovery) and show its telemetry live. Needs 'otel-ml[demo]'.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    demo.add_argument("--duration", type=_non_negative, default=60.0, metavar="SECONDS",
                      help="how long to run; 0 = until Ctrl-C, the phases repeating every "
                           "120 s (default: 60)")
    demo.add_argument("--rate", type=_positive(float), default=50.0, metavar="CALLS",
                      help="predict calls per second (default: 50)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    demo.add_argument("--otlp", metavar="ENDPOINT",
                      help="also export over OTLP, e.g. http://localhost:4317 "
                           "(default: $OTEL_EXPORTER_OTLP_ENDPOINT if set)")
    demo.add_argument("--no-live", action="store_true",
                      help="print one plain line per second instead of the live view")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        if args.command == "profile":
            return _profile(args)
        if args.command == "report":
            return _report(args)
        return _demo(args)
    except InputError as exc:
        print(f"otel-ml {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except _UsageError as exc:
        print(f"otel-ml {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"otel-ml {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ImportError as exc:
        print(f"otel-ml {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception:
        traceback.print_exc()
        print(f"otel-ml {args.command}: internal error (exit {EXIT_INTERNAL}); "
              "please report it with the traceback above", file=sys.stderr)
        return EXIT_INTERNAL


# ---------------------------------------------------------------------------- demo
def _demo(args: argparse.Namespace) -> int:
    from otel_ml.demo import DemoOptions, run_demo

    options = DemoOptions(duration_s=args.duration, rate=args.rate, seed=args.seed,
                          otlp=args.otlp, live=not args.no_live and sys.stdout.isatty())
    if not args.no_live and not sys.stdout.isatty():
        print("otel-ml demo: standard output is not a terminal; printing plain lines",
              file=sys.stdout)
    run_demo(options)
    return EXIT_OK


# ---------------------------------------------------------------------------- profile
def _profile(args: argparse.Namespace) -> int:
    from otel_ml._internal.data.files import DataFileError
    from otel_ml._internal.reference.profile import Reference

    _require_file(args.data, "data file")
    if args.bins < 2:
        raise _UsageError("argument --bins: must be >= 2")
    with _progress(f"profiling {args.data}", quiet=args.quiet) as progress:
        try:
            reference = Reference.from_file(
                args.data, prediction_column=args.predictions, exclude=args.exclude,
                categorical=args.categorical, bins=args.bins, chunk_rows=args.chunk_rows,
                progress=progress)
        except (DataFileError, ValueError, OSError) as exc:
            raise InputError(str(exc)) from exc
    try:
        reference.save(args.output)
    except OSError as exc:
        raise InputError(f"cannot write {args.output}: {exc.strerror or exc}") from exc
    kinds = [type(p).__name__.replace("Profile", "").lower() for p in reference.features.values()]
    print(f"wrote {args.output}: {reference.rows} rows, {len(kinds)} features "
          f"({kinds.count('numeric')} numeric, {kinds.count('categorical')} categorical), "
          f"predictions {'profiled' if reference.prediction is not None else 'not given'}")
    return EXIT_OK


class _UsageError(Exception):
    """A combination of arguments argparse cannot check."""


def _require_file(path: str, what: str) -> None:
    if not os.path.exists(path):
        raise InputError(f"{what} {path!r} does not exist")
    if os.path.isdir(path):
        raise InputError(f"{what} {path!r} is a directory, not a file")


class _progress:  # noqa: N801 - used as a function: with _progress(...) as update
    """A progress bar on standard error when it is a terminal and rich is installed."""

    def __init__(self, label: str, quiet: bool) -> None:
        self.label = label
        self.bar: Any = None
        self.task: Any = None
        if quiet or not sys.stderr.isatty():
            return
        try:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
        except ImportError:
            return
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("rows"), console=Console(stderr=True), transient=True)

    def __enter__(self) -> Any:
        if self.bar is None:
            return None
        self.bar.__enter__()
        self.task = self.bar.add_task(self.label, total=None)
        return self.update

    def update(self, done: int, total: int | None) -> None:
        self.bar.update(self.task, completed=done, total=total)

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


# ---------------------------------------------------------------------------- report
def _report(args: argparse.Namespace) -> int:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider

    from otel_ml.contract import Attr
    from otel_ml._internal.data.files import DataFileError, read_table
    from otel_ml.demo.snapshot import read_points
    from otel_ml._internal.instrument.model_monitor import ModelMonitor
    from otel_ml._internal.reference.codec import InvalidReferenceError
    from otel_ml._internal.reference.profile import Reference

    _require_file(args.reference, "reference")
    _require_file(args.data, "data file")
    try:
        reference = Reference.load(args.reference)
    except (InvalidReferenceError, OSError) as exc:
        raise InputError(str(exc)) from exc
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    tracer_provider = TracerProvider()
    # One slot covering any run time: every row of the file is in the window.
    monitor = ModelMonitor("offline-report", "file", reference=reference,
                           segment_by=args.segment_by, drift_window_s=1e9, slot_s=1e9,
                           tracer_provider=tracer_provider, meter_provider=meter_provider)
    rows = 0
    warned = False
    try:
        for chunk in read_table(args.data, chunk_rows=args.chunk_rows):
            columns = set(chunk)
            if args.predictions and args.predictions not in columns:
                raise InputError(f"{args.data}: no column {args.predictions!r} "
                                 f"(columns: {', '.join(chunk)})")
            if args.segment_by and args.segment_by not in columns:
                raise InputError(f"{args.data}: no column {args.segment_by!r} "
                                 f"(columns: {', '.join(chunk)})")
            missing = [n for n in reference.feature_names if n not in columns]
            if len(missing) == len(reference.feature_names):
                raise InputError(
                    f"{args.data}: none of the reference's features are in the file "
                    f"(reference: {', '.join(reference.feature_names[:8])}"
                    f"{', ...' if len(reference.feature_names) > 8 else ''}; "
                    f"file: {', '.join(list(chunk)[:8])}{', ...' if len(chunk) > 8 else ''})")
            if missing and not warned:
                print(f"otel-ml report: warning: {args.data} lacks reference features "
                      f"{', '.join(missing)} (reported as schema problems)", file=sys.stderr)
                warned = True
            predictions = chunk.pop(args.predictions) if args.predictions else None
            monitor.observe(chunk, predictions=predictions)
            rows += len(next(iter(chunk.values()))) if chunk else 0
    except DataFileError as exc:
        raise InputError(str(exc)) from exc
    if rows == 0:
        raise InputError(f"{args.data}: no rows")
    monitor.flush()
    report = monitor.drift_report()
    quality: dict[tuple[str, str], int] = {}
    for point in read_points(reader).get("ml.data_quality.issues", ()):
        key = (str(point.attributes.get(Attr.FEATURE)), str(point.attributes.get(Attr.CHECK)))
        quality[key] = quality.get(key, 0) + int(point.value)
    monitor.close()
    meter_provider.shutdown()
    tracer_provider.shutdown()

    if args.json:
        json.dump({
            "reference": args.reference, "data": args.data, "rows": rows,
            "drifted": report.drifted, "drifted_features": report.drifted_features,
            "prediction_drifted": bool(report.prediction and report.prediction.drifted),
            "drift": report.to_dict(),
            "data_quality": [{"feature": f, "check": c, "count": n}
                             for (f, c), n in sorted(quality.items())],
        }, sys.stdout, indent=2, default=_json_default)
        print()
    else:
        _print_report(args, reference, rows, report, quality)
    return EXIT_DRIFT if args.fail_on_drift and report.drifted else EXIT_OK


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def _num(value: float | None, pvalue: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    if pvalue and value < 1e-3:
        return f"{value:.1e}"
    return f"{value:.3f}"


def _print_report(args: argparse.Namespace, reference: Any, rows: int, report: Any,
                  quality: dict[tuple[str, str], int]) -> None:
    print(f"{args.data}: {rows:,} rows against {args.reference} "
          f"({len(reference.feature_names)} features, {reference.rows:,} reference rows)")
    print(f"decision: a test significant at {report.alpha_per_test:.2g} per feature "
          "(Bonferroni) and an effect size above its minimum; see docs/drift.md\n")
    header = f"{'feature':<24} {'kind':<11} {'rows':>9} {'psi':>7} {'js':>7} {'test p':>8} " \
             f"{'effect':>7}  drifted"
    print(header)
    print("-" * len(header))
    items = list(report.features.values())
    if report.prediction is not None:
        items.append(report.prediction)
    for f in items:
        test = "ks" if f.kind == "numeric" else "chi2"
        effect = "wasserstein" if f.kind == "numeric" else "jensen_shannon"
        name = "(predictions)" if f is report.prediction else f.feature
        print(f"{name[:24]:<24} {f.kind:<11} {f.rows:>9,} {_num(f.scores.get('psi')):>7} "
              f"{_num(f.scores.get('jensen_shannon')):>7} "
              f"{_num(f.pvalues.get(test), pvalue=True):>8} {_num(f.scores.get(effect)):>7}  "
              f"{'DRIFT' if f.drifted else 'no'}")
    for segment, sub in sorted(report.segments.items()):
        if sub.drifted_features:
            print(f"segment {segment}: drifted {', '.join(sub.drifted_features)}")
    print()
    if quality:
        print("data quality:")
        for (feature, check), n in sorted(quality.items(), key=lambda kv: -kv[1]):
            print(f"  {feature:<24} {check:<20} {n:>9,}")
    else:
        print("data quality: no problems found")
    drifted = report.drifted_features
    pred = " and the predictions" if report.prediction and report.prediction.drifted else ""
    print(f"\ndrifted: {', '.join(drifted) or 'none'}{pred}" if drifted or pred
          else "\nno drift")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
