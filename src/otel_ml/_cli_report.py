"""``otel-ml report``: an offline drift and data-quality report, fit to gate CI.

A gate must not pass data it could not check: a reference feature absent from the file, a
feature without a single valid value, and CSV rows of unequal length are input errors (exit
3) unless the user opts out (``--allow-missing-columns``, ``--allow-empty-columns``,
``--allow-ragged-rows``). Kept apart from :mod:`otel_ml.cli` (argument parsing, the other
commands).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["InputError", "require_file", "run_report"]


class InputError(Exception):
    """A file the user named cannot be used; the message names the file and the problem."""


def require_file(path: str, what: str) -> None:
    """An :class:`InputError` unless ``path`` is an existing file."""
    if not os.path.exists(path):
        raise InputError(f"{what} {path!r} does not exist")
    if os.path.isdir(path):
        raise InputError(f"{what} {path!r} is a directory, not a file")


def run_report(args: argparse.Namespace) -> bool:
    """Run ``otel-ml report``; whether drift was found.

    Raises:
        InputError: A file it cannot use, or data it could not check.
    """
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider

    from otel_ml._internal.core.readout import read_points
    from otel_ml._internal.data.files import DataFileError, read_table
    from otel_ml._internal.instrument.model_monitor import ModelMonitor
    from otel_ml._internal.reference.codec import InvalidReferenceError
    from otel_ml._internal.reference.profile import Reference
    from otel_ml.contract import Attr

    require_file(args.reference, "reference")
    require_file(args.data, "data file")
    labels_column = getattr(args, "labels", None)
    html_path = getattr(args, "html", None)
    if labels_column and not args.predictions:
        raise InputError("--labels needs --predictions (the column of the model's predictions)")
    if html_path:
        _check_html_extra()
    try:
        reference = Reference.load(args.reference)
    except (InvalidReferenceError, OSError) as exc:
        raise InputError(str(exc)) from exc
    if not args.allow_ragged_rows:
        _check_csv_rows(args.data)
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    tracer_provider = TracerProvider()
    # One slot covering any run time: every row of the file is in the window.
    monitor = ModelMonitor("offline-report", "file", reference=reference,
                           segment_by=args.segment_by, drift_window_s=1e9, slot_s=1e9,
                           tracer_provider=tracer_provider, meter_provider=meter_provider)
    rows = 0
    missing: list[str] = []
    try:
        for chunk in read_table(args.data, chunk_rows=args.chunk_rows):
            if rows == 0:
                missing = _check_columns(args, reference, chunk)
            predictions = chunk.pop(args.predictions) if args.predictions else None
            labels = chunk.pop(labels_column) if labels_column else None
            monitor.observe(chunk, predictions=predictions)
            if labels is not None:
                monitor.record_outcomes(labels, predictions, segments=chunk.get(args.segment_by)
                                        if args.segment_by else None)
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
    if html_path:
        _write_html(args, monitor, rows, html_path)
    monitor.close()
    meter_provider.shutdown()
    tracer_provider.shutdown()
    if not args.allow_empty_columns:
        _check_valid_values(args, reference, report, quality, missing)

    if args.json:
        json.dump({
            "reference": args.reference, "data": args.data, "rows": rows,
            "drifted": report.drifted, "drifted_features": report.drifted_features,
            "prediction_drifted": bool(report.prediction and report.prediction.drifted),
            "missing_features": missing, "decision": _decision(report),
            "drift": report.to_dict(),
            "data_quality": [{"feature": f, "check": c, "count": n}
                             for (f, c), n in sorted(quality.items())],
        }, sys.stdout, indent=2, default=_json_default)
        print()
    else:
        _print_report(args, reference, rows, report, quality)
    return report.drifted


def _check_columns(args: argparse.Namespace, reference: Any, chunk: dict[str, Any]) -> list[str]:
    """Input errors for absent columns; returns the reference features the file lacks."""
    columns = set(chunk)
    for option, name in (("--predictions", args.predictions), ("--segment-by", args.segment_by),
                         ("--labels", getattr(args, "labels", None))):
        if name and name not in columns:
            raise InputError(f"{args.data}: no column {name!r} for {option} "
                             f"(columns: {_names(list(chunk))})")
    names = list(reference.feature_names)
    missing = [n for n in names if n not in columns]
    if missing and len(missing) == len(names):
        raise InputError(f"{args.data}: none of the reference's features are in the file "
                         f"(reference: {_names(names)}; file: {_names(list(chunk))})")
    if missing and not args.allow_missing_columns:
        raise InputError(f"{args.data}: lacks {len(missing)} of the reference's {len(names)} "
                         f"features ({_names(missing)}); --allow-missing-columns reports the "
                         "others")
    if missing:
        print(f"otel-ml report: warning: {args.data} lacks reference features "
              f"{_names(missing)} (reported as schema problems, not checked)", file=sys.stderr)
    return missing


def _check_html_extra() -> None:
    """Fail before reading the data when the HTML report cannot be rendered."""
    try:
        import jinja2  # noqa: F401
    except ImportError as exc:
        raise ImportError("--html needs Jinja2: pip install 'otel-ml[report]'") from exc


def _sha256(path: str) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_html(args: argparse.Namespace, monitor: Any, rows: int, path: str) -> None:
    """The HTML report of the offline monitor's window (every row of the file)."""
    provenance = [("model", "-"),
                  ("window", f"every row of {os.path.basename(args.data)} ({rows:,} rows)"),
                  ("data file", os.path.abspath(args.data)),
                  ("data file sha256", _sha256(args.data)),
                  ("reference file", os.path.abspath(args.reference)),
                  ("reference file sha256", _sha256(args.reference))]
    try:
        written = monitor.report_html(path, title=f"otel-ml report: {os.path.basename(args.data)}",
                                      provenance=provenance)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    print(f"otel-ml report: wrote {written}", file=sys.stderr)


def _check_valid_values(args: argparse.Namespace, reference: Any, report: Any,
                        quality: dict[tuple[str, str], int], missing: list[str]) -> None:
    """An input error when a feature in the file has no valid value: its drift is unknown.

    A feature the reference itself has no value of is left alone: nothing could be checked
    for it whatever the file holds (the report says so as "not computable").
    """
    profiles = reference.features
    empty = [f for f in report.features.values() if f.rows == 0 and f.feature not in missing
             and (f.feature not in profiles or profiles[f.feature].valid > 0)]
    if report.prediction is not None and args.predictions and report.prediction.rows == 0:
        empty.append(report.prediction)
    if not empty:
        return
    described = []
    for f in empty:
        name = args.predictions if f is report.prediction else f.feature
        found = ", ".join(f"{check} {n:,}" for (feature, check), n in sorted(quality.items())
                          if feature == f.feature and n)
        described.append(f"{name} ({found or 'no values'})")
    raise InputError(f"{args.data}: no valid value in {_names(described)}: drift cannot be "
                     "checked; --allow-empty-columns reports the others")


def _check_csv_rows(path: str) -> None:
    """An input error at the first CSV row whose field count differs from the header's.

    pandas fills a short row with missing values without a word; a CI gate must not
    pass a file it misread.
    """
    import csv
    import gzip

    lower = path.lower()
    if not lower.endswith((".csv", ".tsv", ".csv.gz")):
        return
    opener: Any = gzip.open if lower.endswith(".gz") else open
    try:
        with opener(path, "rt", newline="", encoding="utf-8") as f:
            reader = csv.reader(f, delimiter="\t" if lower.endswith(".tsv") else ",")
            header = next(reader, None)
            if not header:
                return  # read_table names the problem
            for row in reader:
                if row and len(row) != len(header):
                    raise InputError(
                        f"{path}: line {reader.line_num} has {len(row)} fields, the header "
                        f"has {len(header)}; --allow-ragged-rows reads absent fields as missing")
    except (UnicodeDecodeError, OSError, csv.Error):
        return  # read_table reports unreadable files with its own message


def _names(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _decision(report: Any) -> dict[str, Any]:
    """The rule and thresholds the decision used (the same figures as the table's)."""
    config = report.config
    if config.method is not None:
        return {"method": config.method, "threshold": config.threshold(config.method)}
    return {"alpha": config.alpha, "correction": config.correction,
            "alpha_per_test": report.alpha_per_test,
            "numeric": {"test": "ks", "effect": config.numeric_effect,
                        "min_effect": config.numeric_min_effect},
            "categorical": {"test": "chi2", "effect": config.categorical_effect,
                            "min_effect": config.categorical_min_effect}}


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
    rule = _decision(report)
    if "method" in rule:
        print(f"decision: {rule['method']} at its threshold {rule['threshold']:.3g}; "
              "see docs/drift.md\n")
    else:
        num, cat = rule["numeric"], rule["categorical"]
        print(f"decision: drifted when the test's p <= {rule['alpha_per_test']:.3g} (alpha "
              f"{rule['alpha']:.3g}, {rule['correction']}) and the effect >= its minimum "
              f"({num['effect']} {num['min_effect']:.3g}, {cat['effect']} "
              f"{cat['min_effect']:.3g}); see docs/drift.md\n")
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
              f"{'DRIFT' if f.drifted else 'no' if f.computable else 'n/a'}")
    for name, why in report.not_computable.items():
        print(f"n/a {name}: {why}")
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
