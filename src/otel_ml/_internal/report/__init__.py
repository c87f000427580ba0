"""The visual report: what it shows (``content``), its charts (``charts``), the HTML (``html``).

A layer over ``monitor``: it reads a :class:`~otel_ml._internal.monitor.feature_stats.FeatureStatistics`
snapshot and the monitor's reports; ``ModelMonitor.report_html`` and ``otel-ml report --html``
use it. Jinja2 (the ``report`` extra) is imported only when a report is rendered.
"""
