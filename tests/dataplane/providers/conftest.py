"""Fixtures for the provider tests: unique model ids so tests sharing the session-scoped
servers never see each other's scripts."""
from __future__ import annotations

import itertools

import pytest

_counter = itertools.count()


@pytest.fixture
def unique() -> str:
    return f"t{next(_counter)}"


@pytest.fixture
def aws_test_credentials(monkeypatch) -> None:
    """Dummy credentials for providers that build their own boto3 client."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
