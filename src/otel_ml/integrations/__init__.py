"""Integrations with the places models are served and run (optional dependencies)."""
