"""Integrations of otel_ml with other tools (each a module imported on its own)."""
