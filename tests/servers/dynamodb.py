"""Pytest plugin: a local test server (filled in by its owner)."""
