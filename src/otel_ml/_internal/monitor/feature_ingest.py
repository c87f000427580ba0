"""Feature ingest: what a call passed, turned into the prepared :class:`Batch` every analysis reads.

Every call's features (and predictions) become one float matrix in the order of the
:class:`BinPlan`: numeric values as they are, categorical values as the index of their category
in the reference (NaN when missing). The plan comes from the reference profile; without one,
the first batch fixes the schema (names and kinds) and nothing is binned.

A single numeric row of the plan's width (numpy ``(F,)``/``(1, F)``, or a list/tuple of
floats and ints) takes the short way: it is not converted here, the statistics copy it into
their micro-batch buffer (:meth:`FeatureIngest.is_row` is the one test of that form).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from otel_ml._internal.core.log import internal_error, log_limited
from otel_ml._internal.data.arrays import to_array
from otel_ml._internal.data.inputs import (
    InputError,
    Table,
    count_rows,
    default_names,
    is_categorical,
    to_categories,
    to_category_codes,
    to_float,
    to_float_masked,
    to_table,
)
from otel_ml._internal.monitor.batch import Batch, FeatureMatrix, RowBins, SchemaIssue
from otel_ml._internal.monitor.input_derive import InputDerivation
from otel_ml._internal.monitor.settings import Settings
from otel_ml._internal.reference.profile import NumericProfile, Reference
from otel_ml._internal.stats.binplan import CATEGORICAL, NUMERIC, BinPlan, RowOutlierTest
from otel_ml._internal.stats.task import CLASSIFICATION, infer_task
from otel_ml.contract import INPUT_FEATURE, NO_SEGMENT, OTHER, Check

__all__ = ["FeatureIngest", "plan_from_first", "plan_from_reference"]

#: Element types of a list/tuple row on the short way (bool, str, None... take the general one).
_ROW_TYPES = frozenset((float, int))
#: A +inf prediction is stored as the largest float (+inf marks "no prediction" in the buffer);
#: both count as out of range of any reference.
HUGE = float(np.finfo(np.float64).max)
#: Distinct names of extra columns reported (the rest as ``__other__``).
_MAX_EXTRA_NAMES = 20


class FeatureIngest:
    """The features of one model (names, kinds, bin plan) and the preparation of each call.

    Args:
        settings: The monitor's settings.
        reference: The reference profile (``None``: the first batch fixes the schema).
        segment_values: Caps a segment value (declared values, or the first ``max_segments``).
    """

    def __init__(self, settings: Settings, reference: Reference | None,
                 segment_values: Callable[[Any], str]) -> None:
        self._settings = settings
        self._segment_values = segment_values
        self._segment_column = settings.segment_by if isinstance(settings.segment_by, str) \
            else None
        self._ignored = {settings.segment_by, settings.sensitive_attribute}
        self._lock = threading.Lock()
        self._task: str | None = None
        self._extra_names: set[str] = set()
        self._plan: BinPlan | None = None
        self._short = False  # single rows take the short way
        self._width = -1  # features of the plan: the width of a single row
        self._row_shape: tuple[int, ...] = (-1,)
        self._row_shape_2d: tuple[int, ...] = (1, -1)
        self._row_test: RowOutlierTest | None = None
        self._derivation = InputDerivation(settings, reference)
        self._derive = self._derivation.active  # False: inputs are tables as given
        if reference is not None:
            self._set_plan(plan_from_reference(reference, settings))
            if reference.prediction is not None and reference.prediction.kind == CATEGORICAL:
                self._task = CLASSIFICATION

    # ------------------------------------------------------------------ what is known
    @property
    def plan(self) -> BinPlan | None:
        """The bin plan (``None`` until the first batch when there is no reference)."""
        return self._plan

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The features tracked (empty until known)."""
        return tuple(self._plan.names) if self._plan is not None else ()

    def inferred_task(self) -> str | None:
        """``"classification"``/``"regression"`` from the predictions seen, else ``None``."""
        return self._task

    def bin_label(self, feature: str, index: int) -> str:
        """The label of reference bin ``index`` of ``feature`` (the ``ml.bin`` attribute)."""
        plan = self._plan
        c = plan.index.get(feature) if plan is not None else None
        if c is not None and 0 <= index < len(plan.bin_labels[c]):
            return plan.bin_labels[c][index]
        return str(index)

    def after_fork(self) -> None:
        """In a forked child: fresh locks (the plan and the task stay)."""
        self._lock = threading.Lock()
        self._extra_names = set()
        if self._plan is not None and self._plan.has_outliers:
            self._row_test = RowOutlierTest(self._plan.row_bounds)

    # ------------------------------------------------------------------ the short way
    def is_row(self, x: Any) -> bool:
        """Whether ``x`` is a single numeric row of the plan's width: numpy ``(F,)`` or
        ``(1, F)`` of numbers, or a list/tuple of F floats and ints (the short way)."""
        t = type(x)
        if t is np.ndarray:
            return (x.shape == self._row_shape or x.shape == self._row_shape_2d) \
                and x.dtype.kind in "fiub"
        if t is list or t is tuple:
            return len(x) == self._width and _ROW_TYPES.issuperset(map(type, x))
        return False

    def row_outlier_rate(self, x: Any) -> float | None:
        """Outlier rate of one numeric numpy row, read before the call so that it goes into
        the span's start attributes; ``None`` for anything else (the statistics work it out
        after the call). Never raises."""
        test = self._row_test
        if test is None or not self._short or type(x) is not np.ndarray or not self.is_row(x):
            return None
        try:
            v = x if x.ndim == 1 else x[0]
            with self._lock:
                outside = test.count_outside(v)
            if not outside:
                return 0.0
            return test.rate(v if v.dtype.kind == "f" else v.astype(np.float64), outside)
        except Exception as exc:
            internal_error("outlier_rate", exc)
            return None

    # ------------------------------------------------------------------ preparation
    def prepare(self, x: Any, predictions: Any, *, segment: str | None, output: str,
                rate: float | None = None, embeddings: Any = None) -> Batch:
        """The prepared batch of one call's inputs (``x``, may be ``None``) and predictions.

        Args:
            x: The features as passed.
            predictions: The model's result (``None``: not known).
            segment: The call's segment.
            output: How to read the predictions (``auto``, ``label``, ``proba``, ``score``).
            rate: The single row's outlier rate when :meth:`row_outlier_rate` gave it.
            embeddings: The call's embedding vectors (``(n, d)``), or ``None``.

        Never raises: an input that cannot be read is a data-quality count.
        """
        derived = None
        if self._derive or embeddings is not None:  # images, texts, embeddings: columns
            derived = self._derivation.derive(x, embeddings)
            if derived is not None:
                if derived.x is None:
                    return Batch(self, x, derived.rows, segment, issues=derived.issues)
                x = derived.x  # columns (or an embedding's coordinates): the general way
        # A rate from row_outlier_rate means x passed is_row already (numpy rows only).
        if self._short and derived is None and (predictions is None or self._task is not None) \
                and (rate is not None or self.is_row(x)):
            p = _row_prediction(predictions, self._plan.prediction_kind)  # type: ignore[union-attr]
            if p is not None:
                # Positional on the hot path: rows, segment, segments, rate, row prediction.
                return Batch(self, x, 1, segment, None, rate, p)
        try:
            batch = self._prepare(x, predictions, segment, output, rate)
        except Exception as exc:  # a batch the statistics do not take; the call goes on
            internal_error("features", exc)
            batch = Batch(self, x, count_rows(x), segment)
        return batch if derived is None else derived.onto(batch)

    def batch_of(self, x: Any, rows: int | None = None) -> Batch:
        """A batch over an input kept earlier (e.g. a stored row), for :meth:`bin_rows` and
        :meth:`Batch.column`; not for the statistics. Never raises."""
        return Batch(self, x, count_rows(x) if rows is None else rows, None)

    def _prepare(self, x: Any, predictions: Any, segment: str | None, output: str,
                 rate: float | None) -> Batch:
        table = None
        rows = 0
        if x is not None:
            try:
                table = to_table(x)
                rows = table.rows
            except InputError as exc:
                name = self._settings.name
                log_limited(f"input:{name}", "otel_ml: %s: input not readable as features "
                            "(%s); counted as a type mismatch", name, exc, count=False)
                return Batch(self, x, 1, segment,
                             issues=[SchemaIssue(INPUT_FEATURE, Check.TYPE_MISMATCH, 1)])
        column, kind = None, None
        if predictions is not None:
            column, kind = self._prediction_column(predictions, output)
            if table is None:
                rows = 0 if column is None else column.shape[0]
            elif column is not None and column.shape[0] != rows:
                name = self._settings.name
                log_limited(f"pred-rows:{name}", "otel_ml: %s: %d predictions for %d rows; "
                            "predictions not profiled", name, column.shape[0], rows,
                            count=False)
                column = None
        plan = self._plan
        if plan is None:
            if table is None or table.width == 0:
                return Batch(self, x, rows, segment)
            with self._lock:
                if self._plan is None:
                    self._set_plan(plan_from_first(table, kind, self._settings))
            plan = self._plan
            assert plan is not None
        issues: list[SchemaIssue] = []
        values = mismatch = None
        absent: list[int] = []
        if table is not None:
            values, mismatch, absent = self._matrix(table, plan, issues)
        segments = self._row_segments(table) if self._segment_column is not None \
            and table is not None else None
        coded = None
        if column is not None and plan.prediction_kind is not None:
            coded = _prediction_codes(column, plan)
        if rate is None and rows == 1 and values is not None and plan.has_outliers:
            rate = 1.0 if plan.row_bounds.is_outlier(values[0]) else 0.0
        return Batch(self, x, rows, segment, segments=segments, rate=rate, issues=issues,
                     matrix=FeatureMatrix(values, mismatch, absent, coded))

    def _prediction_column(self, predictions: Any, output: str) -> tuple[np.ndarray | None,
                                                                         str | None]:
        array, column, kind = _prediction_values(predictions, output)
        if self._task is None and kind is not None and array is not None:
            self._task = infer_task(array, output)
        return column, kind

    # ------------------------------------------------------------------ conversion
    def _matrix(self, table: Table, plan: BinPlan, issues: list[SchemaIssue],
                ) -> tuple[np.ndarray, np.ndarray | None, list[int]]:
        """The input as an (rows x features) float matrix in plan order, the mask of values
        that are NaN because they were not numbers (``None``: none) and the absent columns;
        schema issues are appended to ``issues``."""
        rows = table.rows
        n = plan.n_features
        absent: list[int] = []
        if table.names is None:
            width = table.width
            if width != n:
                issues.append(SchemaIssue(INPUT_FEATURE, Check.SCHEMA_FEATURE_COUNT, rows))
                absent = list(range(width, n))
            matrix = table.matrix
            if matrix is not None and plan.all_numeric and matrix.dtype.kind in "fiub" \
                    and width == n:
                return (matrix if matrix.dtype == np.float64 else matrix.astype(np.float64),
                        None, absent)
            pairs = [(c, c) for c in range(min(width, n))]
        else:
            present = {name: i for i, name in enumerate(table.names)}
            pairs = []
            for c, name in enumerate(plan.names):
                i = present.get(name)
                if i is None:
                    issues.append(SchemaIssue(name, Check.SCHEMA_MISSING_COLUMN, rows))
                    absent.append(c)
                else:
                    pairs.append((c, i))
            for name in table.names:
                if name not in plan.index and name not in self._ignored:
                    issues.append(SchemaIssue(self._extra_name(name), Check.SCHEMA_EXTRA_COLUMN,
                                              rows))
        values = np.full((rows, n), np.nan)
        mismatch = None
        for c, i in pairs:
            col = table.column(i)
            codes = plan.categories[c]
            if codes is not None:
                values[:, c] = to_category_codes(col, codes.codes, codes.other)
                continue
            floats, bad = to_float_masked(col)
            values[:, c] = floats.reshape(-1)[:rows]
            if bad is not None:
                if mismatch is None:
                    mismatch = np.zeros((rows, n), dtype=bool)
                mismatch[:, c] = bad[:rows]
        return values, mismatch, absent

    def _extra_name(self, name: str) -> str:
        if name in self._extra_names:
            return name
        if len(self._extra_names) >= _MAX_EXTRA_NAMES:
            return OTHER
        self._extra_names.add(name)
        return name

    def _row_segments(self, table: Table) -> np.ndarray | None:
        col = table.column_named(self._segment_column) if table.names is not None else None
        if col is None:
            return None
        codes, keys = to_categories(col)
        cap = self._segment_values
        mapped = np.array([cap(k) if k is not None else NO_SEGMENT for k in keys] + [NO_SEGMENT],
                          dtype=object)
        return mapped[codes]

    # ------------------------------------------------------------------ reading batches again
    def column_of(self, x: Any, name: str) -> np.ndarray | None:
        """Raw values of input column ``name`` of ``x``: by name, or by position among the
        feature names for positional input (``None`` when absent)."""
        if x is None:
            return None
        table = to_table(x)
        col = table.column_named(name)
        if col is None and table.names is None:
            names = list(self.feature_names or self._settings.feature_names or ())
            if name in names and names.index(name) < table.width:
                col = table.column(names.index(name))
        if col is None:
            return None
        if hasattr(col, "to_numpy"):
            col = col.to_numpy()
        return np.asarray(col).reshape(-1)

    def bin_rows(self, batch: Batch) -> RowBins | None:
        """Reference bin of each row's value of each feature; ``None`` without a reference or
        an input. Never raises."""
        plan = self._plan
        if plan is None or not plan.binned[: plan.n_features].any() or batch is None \
                or batch.input is None:
            return None
        try:
            values, _, _ = self._matrix(to_table(batch.input), plan, [])
            return RowBins(tuple(plan.names), plan.bins_of(values))
        except Exception as exc:
            internal_error("bin_rows", exc)
            return None

    # ------------------------------------------------------------------ plans
    def _set_plan(self, plan: BinPlan) -> None:
        self._plan = plan
        n = plan.n_features
        self._width = n
        self._row_shape = (n,)
        self._row_shape_2d = (1, n)
        self._row_test = RowOutlierTest(plan.row_bounds) if plan.has_outliers else None
        self._short = n > 0 and plan.all_numeric and self._segment_column is None

def _shift_of(p: Any) -> float:
    return p.mean if isinstance(p, NumericProfile) and math.isfinite(p.mean) else 0.0


def _row_prediction(p: Any, kind: str | None) -> float | None:
    """A single row's prediction as a float for the buffer (+inf: none, or not tracked);
    ``None`` when it needs the general way."""
    if p is None or kind is None:
        return math.inf
    if kind == NUMERIC:
        t = type(p)
        if t is float or t is np.float64 or t is np.float32:
            return p if p != math.inf else HUGE
        if t is np.ndarray and p.dtype.kind == "f":
            if p.shape == (1,) or p.shape == ():
                v = p.item()
            elif p.shape == (1, 2):
                v = float(p[0, 1])
            else:
                return None
            return v if v != math.inf else HUGE
    return None


def _prediction_values(predictions: Any, output: str,
                       ) -> tuple[np.ndarray | None, np.ndarray | None, str | None]:
    """The predictions as an array, as one column, and the column's kind (numeric scores or
    categorical classes); ``(None, None, None)`` when they cannot be profiled."""
    try:
        array = to_array(predictions)
    except Exception:
        return None, None, None
    a = array.reshape(1) if array.ndim == 0 else array
    if a.ndim == 2:
        if a.shape[1] == 0:  # no columns: nothing to profile
            return None, None, None
        if a.shape[1] == 1:
            a = a[:, 0]
        elif a.shape[1] == 2 and a.dtype.kind == "f" and output != "label":
            a = a[:, 1]
        else:
            return array, np.argmax(a, axis=1) if a.dtype.kind in "fiu" else a[:, 0], CATEGORICAL
    elif a.ndim > 2:
        return None, None, None
    if output == "label":
        return array, a, CATEGORICAL
    if a.dtype.kind == "f":
        return array, a, NUMERIC
    if a.dtype.kind in "iubUSO":
        if a.dtype.kind == "O" and not is_categorical(a):
            return array, a, NUMERIC
        return array, a, CATEGORICAL
    return None, None, None


def _capped(names: list[str], settings: Settings) -> int:
    """How many of ``names`` are tracked (``max_features``; one log line beyond)."""
    cap = settings.max_features
    if len(names) > cap:
        log_limited(f"cap:features:{settings.name}", "otel_ml: %s has %d features; the first %d "
                    "are tracked (max_features)", settings.name, len(names), cap)
    return min(len(names), cap)


def plan_from_reference(ref: Reference, settings: Settings) -> BinPlan:
    """The bin plan of a reference profile (its first ``max_features`` features)."""
    names = list(ref.feature_names)
    names = names[: _capped(names, settings)]
    profiles = [ref.features[n] for n in names]
    shifts = [_shift_of(p) for p in profiles]
    pred = ref.prediction
    if pred is not None:
        shifts.append(_shift_of(pred))
    return BinPlan(names, [p.kind for p in profiles], profiles,
                   pred.kind if pred is not None else None, pred, settings.max_categories,
                   np.array(shifts), settings.name)


def plan_from_first(table: Table, prediction_kind: str | None, settings: Settings) -> BinPlan:
    """The plan the first batch fixes without a reference: names and kinds, nothing binned."""
    names = table.names or list(settings.feature_names or default_names(table.width))
    if table.names is None and len(names) != table.width:
        names = list(default_names(table.width))
    kinds, shifts = [], []
    for i in range(table.width):
        col = table.column(i)
        categorical = is_categorical(col)
        kinds.append(CATEGORICAL if categorical else NUMERIC)
        shift = 0.0
        if not categorical:
            values, _ = to_float(col)
            finite = values[np.isfinite(values)]
            shift = float(finite[0]) if finite.size else 0.0
        shifts.append(shift)
    n = _capped(list(names), settings)
    shifts = shifts[:n] + ([0.0] if prediction_kind else [])
    return BinPlan(list(names)[:n], kinds[:n], [None] * n, prediction_kind, None,
                   settings.max_categories, np.array(shifts), settings.name)


def _prediction_codes(column: np.ndarray, plan: BinPlan) -> np.ndarray:
    """The predictions as the plan's float column (categorical: category codes)."""
    codes = plan.categories[plan.n_features] if plan.prediction_kind == CATEGORICAL else None
    if codes is not None:
        return to_category_codes(column, codes.codes, codes.other)
    values, _ = to_float(column)
    return values
