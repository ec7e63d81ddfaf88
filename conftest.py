"""Shared fixtures: the personas (an admin, an analyst, two users) and the local servers.

The servers each live in their own plugin module under `tests/servers/` and start once per
test session on 127.0.0.1 (ephemeral ports), stopping when the session ends.
"""
from __future__ import annotations

import pytest

pytest_plugins = [
    "tests.servers.dynamodb",
    "tests.servers.bedrock",
    "tests.servers.openai",
    "tests.browser",
]

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def admin_user(db):
    from accounts.roles import GATEWAY_ADMINS
    from tests.factories import UserFactory

    user = UserFactory(username="ada", is_staff=True, groups=[GATEWAY_ADMINS])
    return user


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
