"""Metric names used by a PromQL expression (a small lexer, no Prometheus needed).

Used by the static checks that every name a dashboard, rule or doc uses exists in the metric
contract or among the recording rules.
"""

from __future__ import annotations

import re

__all__ = ["metric_names"]

_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_BRACES = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
# by/without/on/ignoring/group_left/group_right (label, ...) hold labels, not metrics.
_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "Inf", "NaN"}


def metric_names(expr: str) -> set[str]:
    """Metric (and recording rule) names in ``expr``; functions and labels are left out."""
    text = _STRING.sub('""', expr)
    text = _BRACES.sub("", text)
    text = _BRACKETS.sub("", text)
    text = _LABEL_LIST.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        word = match.group(0)
        rest = text[match.end():].lstrip()
        if rest.startswith("("):  # a function call
            continue
        if word in _KEYWORDS or re.fullmatch(r"\d.*", word):
            continue
        # Durations/numbers like 5m, 1e-4 never start with a letter except 'e' exponents.
        if text[max(0, match.start() - 1)].isdigit():
            continue
        names.add(word)
    return names
