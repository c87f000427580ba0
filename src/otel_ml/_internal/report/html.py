"""The report as one self-contained HTML file: Jinja2 (autoescaped) and inline SVG.

No script, font, style sheet or image is loaded from anywhere: the page carries its CSS and
its charts, and a Content-Security-Policy forbids the rest, so it opens offline and a hostile
feature name stays text. Jinja2 comes with the ``report`` extra (``pip install
'otel-ml[report]'``); it is imported when a report is rendered, never by ``import otel_ml``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from otel_ml._internal.report.charts import BarChart, bar_chart
from otel_ml._internal.report.content import QUALITY_LIMITS, Distribution, ReportContent
from otel_ml.thresholds import THRESHOLDS
from otel_ml.version import __version__

__all__ = ["TEMPLATE", "render_html", "write_html"]

#: The page's template, next to this module.
TEMPLATE = "report.html.j2"


def render_html(content: ReportContent) -> str:
    """The page for ``content``.

    Args:
        content: What to show (:func:`~otel_ml._internal.report.content.build_content`).

    Raises:
        ImportError: Jinja2 is not installed (``pip install 'otel-ml[report]'``).
    """
    env = _environment()
    return env.get_template(TEMPLATE).render(
        c=content, limits=QUALITY_LIMITS, thresholds=THRESHOLDS,
        version_of_otel_ml=__version__)


def write_html(content: ReportContent, path: str | os.PathLike[str]) -> Path:
    """Render ``content`` and write it to ``path`` (UTF-8); returns the path written."""
    text = render_html(content)
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)
    return target


def _environment() -> Any:
    try:
        import jinja2
    except ImportError as exc:
        raise ImportError("the HTML report needs Jinja2: pip install 'otel-ml[report]'") from exc
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent)),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=False,
        keep_trailing_newline=True)
    env.filters.update(num=_num, num2=lambda v: _fixed(v, 2), num3=_num3, pval=_pval, pct=_pct,
                       signed=_signed, heat=_heat, chart=_chart, error_chart=_error_chart,
                       histogram_chart=_histogram_chart)
    return env


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


def _num(value: Any) -> str:
    if not _finite(value):
        return "-"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.3g}"


def _fixed(value: Any, digits: int) -> str:
    return f"{value:.{digits}f}" if _finite(value) else "-"


def _num3(value: Any) -> str:
    if not _finite(value):
        return "-"
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:.3f}"


def _pval(value: Any) -> str:
    if not _finite(value):
        return "-"
    return f"{value:.1e}" if value < 1e-3 else f"{value:.3f}"


def _pct(value: Any) -> str:
    if not _finite(value):
        return "-"
    pct = value * 100
    return f"{pct:.2g}%" if 0 < abs(pct) < 1 else f"{pct:.1f}%"


def _signed(value: Any) -> str:
    return f"{value:+.3f}" if _finite(value) else "-"


def _heat(level: float, good: bool = False) -> str:
    """A background colour for ``level`` in 0..1: white to red (green when ``good``)."""
    level = min(max(float(level) if _finite(level) else 0.0, 0.0), 1.0)
    r, g, b = (46, 125, 50) if good else (192, 57, 43)
    alpha = 0.08 + 0.8 * level if level > 0 else 0.0
    return f"rgba({r}, {g}, {b}, {alpha:.2f})"


def _chart(dist: Distribution) -> BarChart:
    return bar_chart(dist.labels, [dist.reference, dist.current])


def _histogram_chart(counts: Mapping[str, int]) -> BarChart:
    """Shares of rows per bucket (the regression error distribution), empty leading and
    trailing buckets left out."""
    labels = list(counts)
    nonzero = [i for i, k in enumerate(labels) if counts[k]]
    labels = labels[nonzero[0]: nonzero[-1] + 1] if nonzero else labels
    total = sum(counts.values()) or 1
    return bar_chart(labels, [[counts[k] / total for k in labels]], ("share of rows",),
                     percent=True)


def _error_chart(bins: Mapping[str, Mapping[str, float]]) -> BarChart:
    labels = list(bins)
    return bar_chart(labels, [[float(bins[k].get("error", math.nan)) for k in labels]],
                     ("mean absolute error",), percent=False)
