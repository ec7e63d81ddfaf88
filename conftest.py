"""Shared fixtures: the personas (an admin, an analyst, two users) and the local servers.

The servers each live in their own plugin module under `tests/servers/` and start once per
test session on 127.0.0.1 (ephemeral ports), stopping when the session ends.
"""
from __future__ import annotations

import pytest

pytest_plugins = [
    "tests.servers.dynamodb",
    "tests.aws.plugin",
    "tests.servers.bedrock",
    "tests.servers.openai",
    "tests.browser",
]

PASSWORD = "correct-horse-battery-staple"  # noqa: S105 - the test users' password


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


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def admin_user(db):
    from accounts.roles import GATEWAY_ADMINS
    from tests.factories import UserFactory

    return UserFactory(username="ada", is_staff=True, groups=[GATEWAY_ADMINS])


@pytest.fixture
def superuser(db):
    from tests.factories import UserFactory

    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def analyst_user(db):
    from accounts.roles import ANALYSTS
    from tests.factories import UserFactory

    return UserFactory(username="ana", is_staff=True, groups=[ANALYSTS])


@pytest.fixture
def alice(db):
    from tests.factories import UserFactory

    return UserFactory(username="alice")


@pytest.fixture
def bob(db):
    from tests.factories import UserFactory

    return UserFactory(username="bob")


# In CI every real component is there (PostgreSQL, Redis, Chromium), so a skipped test means
# a check that silently did not run: fail the run instead of reporting green.
_skipped: list[str] = []


def pytest_runtest_logreport(report) -> None:
    if report.skipped:
        _skipped.append(f"{report.nodeid}: {report.longrepr[-1] if isinstance(report.longrepr, tuple) else ''}")


def pytest_sessionfinish(session, exitstatus) -> None:
    import os

    if os.environ.get("CI") == "true" and _skipped and exitstatus == 0:
        print("\nCI=true and these tests were skipped (a component is missing):\n  " + "\n  ".join(_skipped))  # noqa: T201 - after pytest's summary
        session.exitstatus = 1


@pytest.fixture(autouse=True)
def _forget_rate_limits():
    """allauth's login throttles and the publish allowances live in the (local-memory) cache:
    each test starts with none spent, whatever the tests before it did."""
    yield
    from django.conf import settings

    if settings.configured:
        from django.core.cache import caches

        caches["default"].clear()


@pytest.fixture(autouse=True)
def _channel_layer_per_test():
    """Each async test runs on an event loop of its own, and the Redis channel layer keeps
    locks bound to the loop that first used them: a layer shared between tests failed with
    "bound to a different event loop" depending on order. Every test gets its own layer."""
    from django.conf import settings

    if settings.configured:
        from channels.layers import channel_layers

        channel_layers._reset_backends(setting="CHANNEL_LAYERS")  # noqa: SLF001 - channels has no public reset


@pytest.fixture(autouse=True)
def _english_after_each_test():
    """LocaleMiddleware activates a request's language on the thread and never deactivates it:
    after a test client request in Korean, the next test's plain `gettext` would answer in
    Korean. Each test starts in the default language."""
    yield
    from django.utils import translation

    translation.deactivate()
