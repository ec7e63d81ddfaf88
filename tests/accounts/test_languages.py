"""Korean and English: the browser's language by default, a switch kept on the user."""
from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

NEW_CONVERSATION_KO = "새 대화"


def chat_page(client: Client, **headers: Any) -> str:
    response = client.get("/", **headers)
    assert response.status_code == 200
    return response.content.decode()


def test_the_browser_language_is_the_default(alice):
    client = Client()
    client.force_login(alice)

    korean = chat_page(client, HTTP_ACCEPT_LANGUAGE="ko-KR,ko;q=0.9,en;q=0.5")
    english = chat_page(client, HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")

    assert '<html lang="ko">' in korean
    assert NEW_CONVERSATION_KO in korean
    assert '<html lang="en">' in english
    assert "New conversation" in english


def test_the_switch_keeps_the_choice_on_the_user_for_every_browser(alice):
    first_browser = Client()
    first_browser.force_login(alice)
    response = first_browser.post("/i18n/setlang/", {"language": "ko", "next": "/"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 302
    assert response.url == "/"
    alice.refresh_from_db()
    assert alice.language == "ko"

    second_browser = Client()  # no cookie, an English browser: the user's choice still wins
    second_browser.force_login(alice)
    page = chat_page(second_browser, HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert '<html lang="ko">' in page
    assert NEW_CONVERSATION_KO in page


def test_a_language_outside_the_list_is_not_kept(alice):
    client = Client()
    client.force_login(alice)
    client.post("/i18n/setlang/", {"language": "ko", "next": "/"})
    client.post("/i18n/setlang/", {"language": "xx", "next": "/"})
    alice.refresh_from_db()
    assert alice.language == "ko"  # the earlier valid choice stands


def test_signed_out_pages_follow_the_browser_and_the_switch_cookie():
    client = Client()
    assert "로그인" in client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="ko").content.decode()
    client.post("/i18n/setlang/", {"language": "en", "next": "/accounts/login/"})
    page = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="ko").content.decode()
    assert '<html lang="en">' in page


def test_the_javascript_catalogue_serves_korean(alice):
    client = Client()
    client.force_login(alice)
    script = client.get("/jsi18n/", HTTP_ACCEPT_LANGUAGE="ko").content.decode()
    assert "\\uc0c8 \\ub300\\ud654" in script or NEW_CONVERSATION_KO in script  # "새 대화"


def test_the_admin_and_its_customisations_speak_korean(admin_user):
    client = Client()
    client.force_login(admin_user)
    index = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="ko").content.decode()
    live = client.get("/admin/quotas/quotapolicy/live-usage/", HTTP_ACCEPT_LANGUAGE="ko")
    assert "모델, 한도, 사용량 관리" in index
    assert "로그아웃" in index
    assert live.status_code == 200
    assert "현재 10분 구간" in live.content.decode()
    assert "실시간 사용량" in live.content.decode()


@pytest.mark.django_db(transaction=True)
async def test_the_saved_choice_also_wins_when_the_server_runs_async(alice):
    """Under daphne the middleware chain runs async (so async views never queue on Django's one
    sync thread): the user's saved language must still win there."""
    from asgiref.sync import sync_to_async
    from django.test import AsyncClient

    alice.language = "ko"
    await sync_to_async(alice.save)()
    client = AsyncClient()
    await client.aforce_login(alice)

    response = await client.get("/", headers={"Accept-Language": "en-US,en;q=0.9"})

    assert response.status_code == 200
    assert '<html lang="ko">' in response.content.decode()


def test_the_language_middleware_serves_async_chains_without_a_thread_hop():
    from accounts.languages import UserLanguageMiddleware

    async def view(request):
        return None

    assert UserLanguageMiddleware.async_capable
    from asgiref.sync import iscoroutinefunction

    assert iscoroutinefunction(UserLanguageMiddleware(view))
