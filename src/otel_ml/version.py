"""The package version, in one place (read by pyproject.toml and passed to get_tracer/get_meter)."""

__version__ = "0.1.0"
