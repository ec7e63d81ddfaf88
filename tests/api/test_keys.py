"""API keys as their owner and the admins handle them: the key page, the admin, and what a
key's use leaves behind."""
from __future__ import annotations

import json

import pytest
from django.test import AsyncClient, Client
from django.urls import reverse

from api.models import ApiKey
from api.services import api_key_create, api_key_hash
from quotas.models import ModelCatalogueEntry
from tests.chat.conftest import publish_policy

pytestmark = pytest.mark.django_db(transaction=True)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_user_creates_a_key_sees_it_once_and_revokes_it(alice):
    client = signed_in(alice)
    page = client.post(reverse("api:keys"), {"name": "laptop script"})
    assert page.status_code == 200
    secret = page.context["issued"].secret
    assert secret.startswith("gwk_")
    assert secret in page.content.decode()
    key = ApiKey.objects.get(user=alice)
    assert key.key_hash == api_key_hash(secret)
    assert secret not in (key.prefix, key.key_hash)

    again = client.get(reverse("api:keys")).content.decode()
    assert key.prefix in again
    assert secret not in again  # shown once, never again

    client.post(reverse("api:key-revoke", args=[key.pk]))
    key.refresh_from_db()
    assert key.state() == "revoked"


def test_keys_are_private_to_their_owner(alice, bob):
    bobs = api_key_create(user=bob, name="bob's").key
    client = signed_in(alice)
    assert bobs.prefix not in client.get(reverse("api:keys")).content.decode()
    assert client.post(reverse("api:key-revoke", args=[bobs.pk])).status_code == 404
    bobs.refresh_from_db()
    assert bobs.state() == "active"


def test_a_key_can_only_be_narrowed_to_the_users_own_models(alice):
    mine = ModelCatalogueEntry.objects.create(provider="demo", model_id="demo.echo-v1", display_name="Demo",
                                              available_to_all=True)
    hidden = ModelCatalogueEntry.objects.create(provider="demo", model_id="demo.secret-v1", display_name="Secret",
                                                available_to_all=False)
    client = signed_in(alice)
    refused = client.post(reverse("api:keys"), {"name": "x", "models": [hidden.pk]})
    assert "models" in refused.context["form"].errors
    accepted = client.post(reverse("api:keys"), {"name": "x", "models": [mine.pk]})
    assert list(accepted.context["issued"].key.allowed_models.all()) == [mine]


def test_past_expiry_is_refused(alice):
    page = signed_in(alice).post(reverse("api:keys"), {"name": "x", "expires_at": "2001-01-01T00:00"})
    assert "expires_at" in page.context["form"].errors
    assert not ApiKey.objects.exists()


async def test_each_answered_request_is_counted_on_its_key(alice, demo_without_delay):
    from asgiref.sync import sync_to_async

    await sync_to_async(publish_policy)(alice)
    issued = await sync_to_async(api_key_create)(user=alice, name="counted")
    client = AsyncClient()
    body = {"model": "demo.echo-v1", "messages": [{"role": "user", "content": "Count me"}]}
    response = await client.post("/v1/chat/completions", json.dumps(body), content_type="application/json",
                                 headers={"Authorization": f"Bearer {issued.secret}"})
    assert response.status_code == 200, response.content
    usage = json.loads(response.content)["usage"]
    key = await ApiKey.objects.aget(pk=issued.key.pk)
    assert key.request_count == 1
    assert (key.input_tokens, key.output_tokens) == (usage["prompt_tokens"], usage["completion_tokens"])
    assert key.last_used_at is not None


async def test_a_refused_request_and_a_model_list_mark_the_key_used_but_count_no_tokens(alice, demo_without_delay):
    from asgiref.sync import sync_to_async

    await sync_to_async(publish_policy)(alice, ten_minute=10)  # no room for any answer
    issued = await sync_to_async(api_key_create)(user=alice, name="refused")
    client, bearer = AsyncClient(), {"Authorization": f"Bearer {issued.secret}"}

    listed = await client.get("/v1/models", headers=bearer)
    key = await ApiKey.objects.aget(pk=issued.key.pk)
    assert listed.status_code == 200
    listed_at = key.last_used_at
    assert listed_at is not None

    body = {"model": "demo.echo-v1", "messages": [{"role": "user", "content": "Hello"}]}
    refused = await client.post("/v1/chat/completions", json.dumps(body), content_type="application/json",
                                headers=bearer)
    key = await ApiKey.objects.aget(pk=issued.key.pk)
    assert refused.status_code == 429
    assert key.last_used_at > listed_at
    assert (key.request_count, key.input_tokens, key.output_tokens) == (0, 0, 0)


def test_admins_see_usage_and_revoke_but_cannot_mint_keys(admin_user, alice):
    issued = api_key_create(user=alice, name="alice's")
    client = signed_in(admin_user)
    listing = client.get(reverse("admin:api_apikey_changelist")).content.decode()
    assert issued.key.prefix in listing
    assert issued.secret not in listing
    assert client.get(reverse("admin:api_apikey_add")).status_code == 403
    client.post(reverse("admin:api_apikey_changelist"),
                {"action": "revoke_keys", "_selected_action": [issued.key.pk]})
    issued.key.refresh_from_db()
    assert issued.key.state() == "revoked"


def test_a_plain_user_has_no_admin_for_keys(alice):
    assert signed_in(alice).get(reverse("admin:api_apikey_changelist")).status_code == 302  # to the sign-in page


def test_the_key_page_speaks_korean(alice):
    from django.utils import translation

    alice.language = "ko"
    alice.save(update_fields=["language"])
    page = signed_in(alice).get(reverse("api:keys")).content.decode()
    translation.activate("en")
    assert "키 만들기" in page
    assert "아직 키가 없습니다." in page
    assert "Create a key" not in page
