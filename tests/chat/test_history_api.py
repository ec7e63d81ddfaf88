"""Conversation history on the server, through its JSON API as the chat page uses it.

Ownership (someone else's conversation is a 404), validation (typed, worded errors; 413 for
too large), search, pagination, exports, retention from the quota policy (including "don't
keep"), private conversations at sign-out, the daily purge and the counts-only admin.
"""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from chat.history import services
from chat.models import Conversation, Message
from quotas.models import QuotaPolicy

pytestmark = pytest.mark.django_db

URL = "/api/conversations/"


@pytest.fixture
def standard(db):
    return QuotaPolicy.objects.create(name="Standard", is_default=True, ten_minute_total=10_000, monthly_total=100_000)


def signed_in(user, **options) -> Client:
    client = Client(**options)
    client.force_login(user)
    return client


@pytest.fixture
def alice_client(alice, standard):
    return signed_in(alice)


@pytest.fixture
def bob_client(bob, standard):
    return signed_in(bob)


def post(client: Client, url: str, body, method: str = "post"):
    return getattr(client, method)(url, data=json.dumps(body), content_type="application/json")


def turn(question: str, answer: str = "", **answer_fields) -> list[dict]:
    messages = [{"role": "user", "content": question}]
    if answer:
        messages.append({"role": "assistant", "content": answer, "modelId": "demo.echo-v1", **answer_fields})
    return messages


def create(client: Client, question: str = "What is a token?", answer: str = "A piece of a word.", **body):
    response = post(client, URL, {"messages": turn(question, answer), "modelId": "demo.echo-v1", **body})
    assert response.status_code == 201, response.content
    return response.json()


def error_of(response) -> dict:
    return response.json()["errors"][0]


# --- the round trip ------------------------------------------------------------------------

def test_a_conversation_is_created_listed_opened_continued_renamed_and_deleted(alice_client):
    created = create(alice_client, "What is a token?", "A piece of a word.")
    assert created["title"] == "What is a token?"  # from the first question when no title is given
    assert [m["role"] for m in created["messages"]] == ["user", "assistant"]
    assert created["messages"][1]["source"] == "model"
    assert created["private"] is False

    appended = post(alice_client, f"{URL}{created['id']}/turns", {"messages": turn(
        "And a cached one?", "From the cache.", source="cache", inputTokens=12, outputTokens=5, stopReason="end_turn")})
    assert appended.status_code == 201
    detail = alice_client.get(f"{URL}{created['id']}").json()
    assert [m["content"] for m in detail["messages"]] == [
        "What is a token?", "A piece of a word.", "And a cached one?", "From the cache."]
    assert detail["messages"][3] | {"id": 0, "createdAt": ""} == {
        "id": 0, "createdAt": "", "role": "assistant", "content": "From the cache.", "modelId": "demo.echo-v1",
        "inputTokens": 12, "outputTokens": 5, "source": "cache", "stopReason": "end_turn"}

    renamed = post(alice_client, f"{URL}{created['id']}", {"title": "  Tokens,   explained "}, method="patch")
    assert renamed.status_code == 200
    assert renamed.json()["title"] == "Tokens, explained"

    listed = alice_client.get(URL).json()
    assert [c["title"] for c in listed["conversations"]] == ["Tokens, explained"]
    assert listed["conversations"][0]["messageCount"] == 4
    assert listed["retention"] == {"kept": True, "days": None}

    assert alice_client.delete(f"{URL}{created['id']}").status_code == 204
    assert alice_client.get(URL).json()["conversations"] == []
    assert not Message.objects.exists()


def test_a_regenerated_answer_or_an_edited_question_replaces_what_followed(alice_client):
    created = create(alice_client, "One?", "First answer.")
    url = f"{URL}{created['id']}/turns"
    post(alice_client, url, {"messages": turn("Two?", "Second answer.")})
    # Regenerate the last answer: the two messages before the question stay.
    assert post(alice_client, url, {"messages": turn("Two?", "Second answer, again."), "keep": 2}).status_code == 201
    # Edit the first question: nothing before it stays.
    post(alice_client, url, {"messages": turn("One, edited?", "Another first answer."), "keep": 0})
    contents = [m["content"] for m in alice_client.get(f"{URL}{created['id']}").json()["messages"]]
    assert contents == ["One, edited?", "Another first answer."]
    refused = post(alice_client, url, {"messages": turn("Three?"), "keep": -1})
    assert refused.status_code == 400
    assert "keep" in error_of(refused)["message"]


def test_the_list_is_newest_first_and_paginated(alice, alice_client):
    ids = [create(alice_client, f"Question {n}")["id"] for n in range(23)]
    # Activity, not creation, orders the list: the first conversation gets a new turn.
    post(alice_client, f"{URL}{ids[0]}/turns", {"messages": turn("Back to this one")})
    first = alice_client.get(URL).json()
    assert first["total"] == 23
    assert first["hasNext"] is True
    assert len(first["conversations"]) == 20
    assert first["conversations"][0]["id"] == ids[0]
    assert first["conversations"][1]["id"] == ids[22]
    second = alice_client.get(URL, {"page": 2}).json()
    assert second["hasNext"] is False
    assert {c["id"] for c in first["conversations"] + second["conversations"]} == set(ids)
    assert len(alice_client.get(URL, {"pageSize": 5}).json()["conversations"]) == 5


def test_search_matches_titles_and_message_text_of_ones_own_conversations_only(alice_client, bob_client):
    kimchi = create(alice_client, "How long to ferment kimchi?", "About two weeks in a cool place.")
    budget = create(alice_client, "Draft the Q3 budget memo", "Here is a draft.")
    create(bob_client, "Kimchi for Bob", "Bob's own kimchi answer.")

    def titles(query: str) -> list[str]:
        response = alice_client.get(URL, {"q": query})
        assert response.status_code == 200
        return [c["id"] for c in response.json()["conversations"]]

    assert titles("KIMCHI") == [kimchi["id"]]  # title, any case, and not Bob's
    assert titles("cool place") == [kimchi["id"]]  # an answer's text
    assert titles("q3 BUDGET") == [budget["id"]]
    assert titles("nothing like this") == []
    assert len(titles("")) == 2


# --- ownership -----------------------------------------------------------------------------

def test_another_users_conversation_is_not_found_by_any_route(alice_client, bob_client):
    mine = create(alice_client, "Alice's secret plan", "Keep it quiet.")
    url = f"{URL}{mine['id']}"
    answers = [
        bob_client.get(url),
        post(bob_client, url, {"title": "Mine now"}, method="patch"),
        bob_client.delete(url),
        post(bob_client, f"{url}/turns", {"messages": turn("Hijack")}),
        bob_client.get(f"{url}/export"),
        bob_client.get(f"{url}/export", {"format": "markdown"}),
    ]
    assert [response.status_code for response in answers] == [404] * 6
    assert error_of(answers[0]) == {
        "errorType": "NotFound", "message": "No such conversation. It may have been deleted or have expired."}
    assert "secret" not in bob_client.get(URL).content.decode()
    assert "secret" not in bob_client.get(f"{URL}export").content.decode()
    conversation = Conversation.objects.get()
    assert conversation.title == "Alice's secret plan"
    assert conversation.messages.count() == 2
    assert alice_client.get(f"{URL}not-a-uuid").status_code == 404


def test_signed_out_callers_get_401_and_forms_without_the_csrf_token_are_refused(alice, standard):
    anonymous = Client()
    response = anonymous.get(URL)
    assert response.status_code == 401
    assert error_of(response)["errorType"] == "Unauthorized"
    strict = signed_in(alice, enforce_csrf_checks=True)
    assert post(strict, URL, {"messages": turn("Forged")}).status_code == 403
    assert not Conversation.objects.exists()
    strict.get("/")  # the chat page sets the CSRF cookie; the page sends it back in X-CSRFToken
    token = strict.cookies["csrftoken"].value
    allowed = strict.post(URL, data=json.dumps({"messages": turn("Real")}), content_type="application/json",
                          headers={"X-CSRFToken": token})
    assert allowed.status_code == 201


# --- validation ----------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "message"), [
    ({"messages": [{"role": "system", "content": "x"}]}, "role must be one of: assistant, user."),
    ({"messages": [{"role": "user", "content": 5}]}, "content must be text."),
    ({"messages": [{"role": "assistant", "content": "Hi"}]}, "A turn starts with the user's message."),
    ({"messages": turn("q", "a", inputTokens=-1)}, "inputTokens must be a whole number of tokens, 0 or more."),
    ({"messages": turn("q", "a", source="elsewhere")}, "source must be one of: cache, model, prepared."),
    ({"title": "   "}, "Give the conversation a title (some text)."),
    ({}, "Give the conversation a title (some text)."),
    ({"title": "x" * 201}, "A title is at most 200 characters."),
    ({"title": "ok", "owner": 1}, "Unknown field: owner."),
    ({"title": "ok", "private": "yes"}, "private must be true or false."),
    (["not", "an", "object"], "The body must be a JSON object."),
])
def test_bad_bodies_get_a_400_that_says_what_is_wrong(alice_client, body, message):
    response = post(alice_client, URL, body)
    assert response.status_code == 400
    assert error_of(response) == {"errorType": "BadRequest", "message": message}
    assert not Conversation.objects.exists()


def test_what_is_not_json_or_too_large_is_refused_in_words(alice_client):
    not_json = alice_client.post(URL, data="{oops", content_type="application/json")
    assert not_json.status_code == 400
    assert error_of(not_json)["message"] == "The body is not valid JSON."
    form = alice_client.post(URL, data={"title": "form"})
    assert form.status_code == 400
    assert error_of(form)["message"] == "Send the body as application/json."
    huge = post(alice_client, URL, {"messages": turn("q", "a" * 600_000)})
    assert huge.status_code == 413
    assert error_of(huge)["errorType"] == "TooLarge"
    long_message = post(alice_client, URL, {"messages": turn("q" * 200_001)})
    assert long_message.status_code == 413
    assert error_of(long_message)["message"] == "content is too long (at most 200000 characters)."
    assert alice_client.get(URL, {"page": "0"}).status_code == 400
    assert alice_client.get(URL, {"pageSize": "1000"}).status_code == 400
    wrong_method = alice_client.put(URL)
    assert wrong_method.status_code == 405
    assert wrong_method["Allow"] == "GET, POST"
    assert not Conversation.objects.exists()


def test_a_full_conversation_asks_for_a_new_one(alice_client, monkeypatch):
    monkeypatch.setattr(services, "MAX_MESSAGES_PER_CONVERSATION", 3)
    created = create(alice_client, "One", "Two")
    full = post(alice_client, f"{URL}{created['id']}/turns", {"messages": turn("Three", "Four")})
    assert full.status_code == 413
    assert error_of(full)["message"] == "This conversation is full (3 messages). Start a new conversation."
    assert Message.objects.count() == 2


# --- exports -------------------------------------------------------------------------------

def test_one_conversation_exports_as_json_and_markdown_and_all_of_them_as_json(alice_client):
    first = create(alice_client, "한국어로 인사해 줘", "안녕하세요!")
    post(alice_client, f"{URL}{first['id']}/turns", {"messages": turn("Prepared?", "Yes.", source="prepared")})
    second = create(alice_client, "Second", "Two")

    as_json = alice_client.get(f"{URL}{first['id']}/export")
    assert as_json["Content-Type"].startswith("application/json")
    assert as_json["Content-Disposition"].startswith('attachment; filename="conversation-')
    exported = json.loads(as_json.content)
    assert exported["format"] == "ai-gateway-conversations"
    assert exported["version"] == 1
    assert [m["content"] for m in exported["conversations"][0]["messages"]] == [
        "한국어로 인사해 줘", "안녕하세요!", "Prepared?", "Yes."]

    markdown = alice_client.get(f"{URL}{first['id']}/export", {"format": "markdown"})
    assert markdown["Content-Type"] == "text/markdown; charset=utf-8"
    text = markdown.content.decode()
    assert text.startswith("# 한국어로 인사해 줘\n")
    assert "## You\n\n한국어로 인사해 줘" in text
    assert "## Assistant (demo.echo-v1)\n\n안녕하세요!" in text
    assert "## Assistant (a prepared answer)\n\nYes." in text

    assert alice_client.get(f"{URL}{first['id']}/export", {"format": "pdf"}).status_code == 400

    everything = alice_client.get(f"{URL}export")
    assert everything["Content-Disposition"] == 'attachment; filename="conversations.json"'
    listed = json.loads(everything.content)["conversations"]
    assert {c["id"] for c in listed} == {first["id"], second["id"]}
    assert sum(len(c["messages"]) for c in listed) == 6


# --- retention and privacy -----------------------------------------------------------------

def test_a_policy_that_keeps_no_history_stores_nothing_and_the_page_says_so(alice, alice_client, standard):
    standard.history_retention_days = 0
    standard.save()
    refused = post(alice_client, URL, {"messages": turn("Remember this")})
    assert refused.status_code == 403
    assert error_of(refused) == {"errorType": "HistoryNotKept",
                                 "message": "Your policy does not keep chat history, so nothing was saved."}
    assert not Conversation.objects.exists()
    assert alice_client.get(URL).json()["retention"] == {"kept": False, "days": 0}
    page = alice_client.get("/").content.decode()
    assert "Your policy does not keep chat history" in page
    assert '"kept": false' in page


def test_conversations_past_the_policys_retention_are_hidden_then_purged(
    alice, bob, alice_client, bob_client, standard
):
    standard.history_retention_days = 7
    standard.save()
    old = create(alice_client, "Old question")
    recent = create(alice_client, "Recent question")
    forever = QuotaPolicy.objects.create(name="Archivists", unlimited=True)  # keeps history until deleted
    from quotas.models import UserPolicyOverride

    UserPolicyOverride.objects.create(user=bob, policy=forever)
    bobs_old = create(bob_client, "Bob's old question")
    eight_days_ago = timezone.now() - timedelta(days=8)
    Conversation.objects.filter(pk__in=[old["id"], bobs_old["id"]]).update(updated_at=eight_days_ago)

    assert [c["id"] for c in alice_client.get(URL).json()["conversations"]] == [recent["id"]]
    assert alice_client.get(f"{URL}{old['id']}").status_code == 404
    assert "7 days after the last message" in alice_client.get("/").content.decode()

    from chat.tasks import history_expired_purge

    assert history_expired_purge.delay().get() == 1
    remaining = {str(pk) for pk in Conversation.objects.values_list("pk", flat=True)}
    assert remaining == {recent["id"], bobs_old["id"]}  # Bob's policy keeps his for good
    assert Message.objects.filter(conversation_id=old["id"]).count() == 0


def test_private_conversations_go_at_sign_out_and_leftovers_after_a_day(alice, alice_client):
    private = create(alice_client, "A private matter", private=True)
    shared = create(alice_client, "Not private")
    # A private turn makes the conversation private for good.
    post(alice_client, f"{URL}{shared['id']}/turns", {"messages": turn("Now private"), "private": True})
    post(alice_client, f"{URL}{shared['id']}/turns", {"messages": turn("Still private"), "private": False})
    assert Conversation.objects.get(pk=shared["id"]).private is True
    kept = create(alice_client, "Keep me")

    assert alice_client.post("/accounts/logout/").status_code == 302
    assert {str(pk) for pk in Conversation.objects.values_list("pk", flat=True)} == {kept["id"]}
    assert private["id"] not in {str(pk) for pk in Conversation.objects.values_list("pk", flat=True)}

    # A session that expired without signing out leaves its private conversations: the daily
    # purge takes them once a day has passed since their last message.
    again = signed_in(alice)
    leftover = create(again, "Left behind", private=True)
    fresh = create(again, "Still in use", private=True)
    Conversation.objects.filter(pk=leftover["id"]).update(updated_at=timezone.now() - timedelta(hours=25))
    assert services.history_expired_purge() == 1
    assert {str(pk) for pk in Conversation.objects.values_list("pk", flat=True)} == {kept["id"], fresh["id"]}


def test_the_daily_purge_is_scheduled_with_beat():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="chat.history_expired_purge")
    assert task.enabled
    assert task.crontab is not None
    assert task.crontab.hour == "3"


# --- the admin -----------------------------------------------------------------------------

def test_admins_see_counts_and_last_activity_never_titles_text_or_private_conversations(
    admin_user, alice, bob, alice_client, bob_client
):
    create(alice_client, "Alice's confidential title", "A confidential answer.")
    create(alice_client, "Second one", "Another answer.")
    create(alice_client, "Private one", "Hidden from the admin.", private=True)
    create(bob_client, "Bob's private", "Private too.", private=True)

    admin = signed_in(admin_user)
    page = admin.get("/admin/chat/historyowner/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "alice" in html
    assert ">2<" in html
    assert ">4<" in html
    for content in ("confidential", "Second one", "Another answer", "Private one", "Hidden from the admin"):
        assert content not in html
    assert ">bob<" not in html  # Bob keeps only a private conversation: not even a count
    # Nothing to open, add, change or delete.
    assert admin.get(f"/admin/chat/historyowner/{alice.pk}/change/").status_code == 403
    assert admin.get("/admin/chat/historyowner/add/").status_code == 403
    assert "/admin/chat/conversation/" not in admin.get("/admin/").content.decode()


def test_the_history_admin_runs_the_same_queries_for_one_user_or_many(admin_user, standard):
    from tests.factories import UserFactory

    admin = signed_in(admin_user)

    def queries_for_list() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            assert admin.get("/admin/chat/historyowner/").status_code == 200
        return len(captured)

    create(signed_in(UserFactory(username="one")), "First")
    with_one = queries_for_list()
    for n in range(5):
        create(signed_in(UserFactory(username=f"many{n}")), f"Question {n}")
    assert queries_for_list() == with_one


def test_the_policy_admin_offers_retention_with_its_help_text(admin_user, standard):
    page = signed_in(admin_user).get(f"/admin/quotas/quotapolicy/{standard.pk}/change/").content.decode()
    assert 'name="history_retention_days"' in page
    assert "Empty = kept until the user deletes them; 0 = not kept at all" in page


def test_errors_are_worded_in_the_users_language(alice_client):
    response = alice_client.post(URL, data="{oops", content_type="application/json", headers={"Accept-Language": "ko"})
    assert response.status_code == 400
    assert error_of(response)["message"] == "본문이 올바른 JSON이 아닙니다."
