"""The account pages (allauth's, in the product's layout) speak Korean to a Korean browser."""
from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.django_db
KOREAN = {"HTTP_ACCEPT_LANGUAGE": "ko"}


def visible_text(html: str) -> str:
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/accounts/login/", "로그인"), ("/accounts/password/reset/", "비밀번호")],
)
def test_account_pages_in_korean(client, path, expected):
    response = client.get(path, **KOREAN)
    text = visible_text(response.content.decode())
    assert response.status_code == 200
    assert expected in text
    assert "Sign In" not in text
    assert "Password Reset" not in text


def test_the_sign_out_page_in_korean(client, alice):
    client.force_login(alice)
    text = visible_text(client.get("/accounts/logout/", **KOREAN).content.decode())
    assert "로그아웃" in text
    assert "Sign Out" not in text
