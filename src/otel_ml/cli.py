"""The ``otel-ml`` command: ``profile``, ``report``, ``demo`` and ``--version``.

Exit codes (also in ``otel-ml --help``):

- ``0``: success (``report``: no drift, or drift without ``--fail-on-drift``).
- ``1``: ``report --fail-on-drift`` found a drifted feature or prediction distribution.
- ``2``: usage error: unknown option, missing argument, value out of range.
- ``3``: input error: a file is missing, unreadable, empty, of an unknown format, or does not
  match the reference.
- ``4``: internal error (a bug: the traceback is printed; please report it).
- ``130``: interrupted by Ctrl-C (``demo`` ends cleanly with its summary and exits ``0``).
- ``141``: standard output was closed early (e.g. piped into ``head``): no message, like
  ``yes | head`` (128 + SIGPIPE, what a shell reports for such a program).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from otel_ml._cli_report import InputError, require_file, run_report
from otel_ml.version import __version__

__all__ = ["EXIT_BROKEN_PIPE", "EXIT_DRIFT", "EXIT_INPUT", "EXIT_INTERNAL", "EXIT_OK",
           "EXIT_USAGE", "main"]

EXIT_OK = 0
EXIT_DRIFT = 1
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_INTERNAL = 4
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141

_EPILOG = """\
exit codes:
  0    success
  1    report --fail-on-drift: drift found
  2    usage error (unknown option, missing argument, value out of range)
  3    input error (missing, unreadable, empty or mismatched file; report: a
       reference column missing or without a valid value, rows of unequal length)
  4    internal error (a bug: please report it with the traceback)
  130  interrupted (Ctrl-C)
  141  standard output closed early (e.g. piped into head): quiet, like other tools
"""


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
    profile.add_argument("data", metavar="DATA", nargs="?",
                         help="CSV, Parquet (with pyarrow) or .npy file of training data, or a "
                              "folder or glob of such files (one profile of all their rows)")
    profile.add_argument("--images", metavar="DIR",
                         help="profile a folder of image files instead of DATA: their "
                              "brightness, contrast, sharpness... (needs Pillow: the "
                              "'images' extra)")
    profile.add_argument("-o", "--output", required=True, metavar="REFERENCE",
                         help="where to write the profile (JSON)")
    profile.add_argument("--predictions", type=_columns, default=[], metavar="COLUMNS",
                         help="column holding the model's predictions (profiled separately), "
                              "or comma-separated probability columns, one per class in order")
    profile.add_argument("--labels", metavar="COLUMN",
                         help="column of true labels (validation data): fits the calibration "
                              "or loss model that estimates performance before labels arrive, "
                              "and stores the realised performance")
    profile.add_argument("--categorical", type=_columns, default=[], metavar="COLS",
                         help="comma-separated columns to treat as categorical")
    profile.add_argument("--exclude", type=_columns, default=[], metavar="COLS",
                         help="comma-separated columns to leave out (ids, labels)")
    profile.add_argument("--chunk-rows", type=_positive(int), default=100_000, metavar="N",
                         help="rows read at a time (default: 100000)")
    profile.add_argument("--bins", type=_positive(int), default=10, metavar="N",
                         help="equal-share bins per numeric feature (default: 10)")
    profile.add_argument("--quiet", action="store_true", help="no progress bar")
    # Issue 20: a folder or glob of files, profiled by local worker processes.
    profile.add_argument("--workers", type=_positive(int), default=None, metavar="N",
                         help="profile a folder or glob of files (DATA), one file per task, in N "
                              "local processes merged into one profile (default: one file, "
                              "in this process)")

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
    report.add_argument("--allow-missing-columns", action="store_true",
                        help="accept a file that lacks some reference features (reported as "
                             "schema problems, not checked); by default an input error")
    report.add_argument("--allow-empty-columns", action="store_true",
                        help="accept a feature without a single valid value (all missing or "
                             "of the wrong type: not checked); by default an input error")
    report.add_argument("--allow-ragged-rows", action="store_true",
                        help="accept CSV rows with fewer fields than the header (the "
                             "absent fields read as missing values); by default an input error")
    report.add_argument("--html", metavar="PATH",
                        help="also write a self-contained HTML report (distributions, drift "
                             "by segment, quality, performance); needs 'otel-ml[report]'")
    report.add_argument("--labels", metavar="COLUMN",
                        help="column holding the true labels (with --predictions): "
                             "performance and the confusion matrix or errors")

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
    demo.add_argument("--images", action="store_true",
                      help="the image scenario: a new hospital's scanner (scikit-learn's digits "
                           "as scans), drift of image properties in its segment only")
    demo.add_argument("--no-live", action="store_true",
                      help="print plain lines instead of the live view: one per second, "
                           "and one per alert that starts or stops holding")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    try:
        try:
            code = _main(argv)
        except SystemExit:  # argparse's --help, --version and usage errors
            sys.stdout.flush()
            raise
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        return _broken_pipe()


def _broken_pipe() -> int:
    """The reader of standard output went away (``| head``): stop quietly.

    Python's recipe: point standard output at devnull so that the interpreter's last flush
    does not fail again, and exit with what a shell reports for a program ended by SIGPIPE.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_BROKEN_PIPE


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        if args.command == "profile":
            return _profile(args)
        if args.command == "report":
            drifted = run_report(args)
            return EXIT_DRIFT if drifted and args.fail_on_drift else EXIT_OK
        return _demo(args)
    except BrokenPipeError:
        raise
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

    if args.images:
        from otel_ml.demo.images import run_image_demo

        run_image_demo(duration_s=args.duration or 30.0, rate=min(args.rate, 40.0),
                       seed=args.seed, otlp=args.otlp)
        return EXIT_OK
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

    if args.bins < 2:
        raise _UsageError("argument --bins: must be >= 2")
    if (args.images is None) == (args.data is None):
        raise _UsageError("give either a data file or --images DIR")
    if args.images is not None:
        from otel_ml._internal.reference.kinds import reference_from_images

        with _progress(f"profiling images in {args.images}", quiet=args.quiet) as progress:
            try:
                reference = reference_from_images(args.images, bins=args.bins,
                                                  progress=progress)
            except (ValueError, OSError) as exc:
                raise InputError(str(exc)) from exc
        return _write_profile(reference, args)
    if args.workers is not None or os.path.isdir(args.data) or any(c in args.data for c in "*?["):
        return _profile_files(args)
    predictions = args.predictions
    if args.labels is not None and not predictions:
        raise _UsageError("argument --labels: needs --predictions (the model's outputs)")
    exclude = [*args.exclude, *([args.labels] if args.labels else []),
               *(predictions if len(predictions) > 1 else [])]
    require_file(args.data, "data file")
    with _progress(f"profiling {args.data}", quiet=args.quiet) as progress:
        try:
            reference = Reference.from_file(
                args.data, prediction_column=predictions[0] if len(predictions) == 1 else None,
                exclude=exclude, categorical=args.categorical, bins=args.bins,
                chunk_rows=args.chunk_rows, progress=progress)
            if args.labels is not None:
                from otel_ml._internal.reference.estimation_file import estimation_from_file

                reference.estimation, realised = estimation_from_file(
                    args.data, labels=args.labels, predictions=predictions,
                    features=list(reference.feature_names), chunk_rows=args.chunk_rows,
                    rows=reference.rows)
                reference.performance = {**realised, **(reference.performance or {})}
        except (DataFileError, ValueError, OSError) as exc:
            raise InputError(str(exc)) from exc
    return _write_profile(reference, args)


def _write_profile(reference: Any, args: argparse.Namespace) -> int:
    try:
        reference.save(args.output)
    except OSError as exc:
        raise InputError(f"cannot write {args.output}: {exc.strerror or exc}") from exc
    kinds = [type(p).__name__.replace("Profile", "").lower() for p in reference.features.values()]
    print(f"wrote {args.output}: {reference.rows} rows, {len(kinds)} features "
          f"({kinds.count('numeric')} numeric, {kinds.count('categorical')} categorical), "
          f"predictions {'profiled' if reference.prediction is not None else 'not given'}")
    if args.labels is not None:
        model = ("calibration" if reference.estimation is not None
                 and reference.estimation.calibration is not None else
                 "loss model" if reference.estimation is not None else "nothing to calibrate")
        perf = ", ".join(f"{k} {v:.4g}" for k, v in sorted(reference.performance.items())
                         if k != "count")
        print(f"estimation: {model} fitted on the labels of {args.labels!r}; realised {perf}")
    return EXIT_OK


def _profile_files(args: argparse.Namespace) -> int:
    """``otel-ml profile`` on a folder or glob of files (issue 20: ``--workers``)."""
    from otel_ml._internal.data.files import DataFileError
    from otel_ml.integrations.local_files import data_files, profile_files

    if args.labels is not None or len(args.predictions) > 1:
        raise _UsageError("a folder, a glob or --workers takes one --predictions column and no "
                          "--labels (fit the calibration from one validation file)")
    try:
        paths = data_files(args.data)
        result = profile_files(paths, workers=args.workers or 1,
                               predictions=args.predictions[0] if args.predictions else None,
                               exclude=args.exclude, categorical=args.categorical,
                               bins=args.bins, chunk_rows=args.chunk_rows,
                               sample_size=1_000_000)
    except (DataFileError, ValueError, OSError) as exc:
        raise InputError(str(exc)) from exc
    reference = result.reference
    try:
        reference.save(args.output)
    except OSError as exc:
        raise InputError(f"cannot write {args.output}: {exc.strerror or exc}") from exc
    kinds = [type(p).__name__.replace("Profile", "").lower() for p in reference.features.values()]
    print(f"wrote {args.output}: {reference.rows} rows from {len(paths)} file(s), {len(kinds)} "
          f"features ({kinds.count('numeric')} numeric, {kinds.count('categorical')} "
          f"categorical), predictions "
          f"{'profiled' if reference.prediction is not None else 'not given'}")
    return EXIT_OK


class _UsageError(Exception):
    """A combination of arguments argparse cannot check."""


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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
