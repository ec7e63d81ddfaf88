"""Fixtures for the provider tests: unique model ids so tests sharing the session-scoped
servers never see each other's scripts."""
from __future__ import annotations

import itertools

import pytest

_counter = itertools.count()


@pytest.fixture
def unique() -> str:
    return f"t{next(_counter)}"
