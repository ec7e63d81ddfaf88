""" "Test this model" in the admin: one small real call through the data plane's provider, to the
local OpenAI-style and Bedrock-style servers and the demo model, with the result or the error
shown as an admin message."""

from __future__ import annotations

import itertools

import pytest

from quotas.model_test import TEST_MAX_TOKENS, catalogue_model_test
from quotas.models import ModelCatalogueEntry

pytestmark = pytest.mark.django_db
_unique = itertools.count()


@pytest.fixture
def model_id() -> str:
    return f"admin-test-{next(_unique)}"


@pytest.fixture
def bedrock(settings, bedrock_server, aws_test_credentials):
    settings.GATEWAY_BEDROCK_ENDPOINT_URL = bedrock_server.url
    settings.GATEWAY_BEDROCK_MAX_ATTEMPTS = "1"
    return bedrock_server


def messages_of(response) -> list[tuple[str, str]]:
    return [(message.level_tag, message.message) for message in response.context["messages"]]


def test_the_button_calls_the_openai_compatible_server_and_shows_the_answer(
    client, admin_user, openai_server, model_id
):
    openai_server.script(model_id, chunks=["Yes, ", "I am working."], usage=(14, 5))
    entry = ModelCatalogueEntry.objects.create(
        provider="openai", model_id=model_id, display_name="Local", endpoint_url=openai_server.url
    )
    client.force_login(admin_user)

    response = client.post(f"/admin/quotas/model-test/{entry.pk}/", follow=True)

    ((level, text),) = messages_of(response)
    assert level == "success"
    assert text.startswith(f"Test of {model_id}: answered in ")
    assert text.endswith("ms (14 in / 5 out tokens): “Yes, I am working.”")
    sent = openai_server.requests_for(model_id)[-1].body
    assert sent["max_tokens"] == TEST_MAX_TOKENS
    assert response.redirect_chain[-1][0] == f"/admin/quotas/modelcatalogueentry/{entry.pk}/change/"


def test_bedrock_through_boto3_and_the_event_stream(bedrock, model_id):
    bedrock.script(model_id, chunks=["Working", " fine."], usage=(11, 3))
    entry = ModelCatalogueEntry.objects.create(provider="bedrock", model_id=model_id, display_name="Bedrock")

    result = catalogue_model_test(entry=entry)

    assert (result.ok, result.excerpt, result.input_tokens, result.output_tokens) == (True, "Working fine.", 11, 3)
    assert bedrock.requests_for(model_id)[-1].body["inferenceConfig"]["maxTokens"] == TEST_MAX_TOKENS


def test_bedrock_access_denied_names_the_action_and_the_model(client, admin_user, bedrock, model_id):
    bedrock.script(model_id, status=403)
    entry = ModelCatalogueEntry.objects.create(provider="bedrock", model_id=model_id, display_name="Denied")
    client.force_login(admin_user)

    response = client.post(
        "/admin/quotas/modelcatalogueentry/",
        {"action": "test_selected_models", "_selected_action": [entry.pk]},
        follow=True,
    )

    ((level, text),) = messages_of(response)
    assert level == "error"
    assert f"Test of {model_id} failed after" in text
    assert "ModelUnavailable" in text
    assert "bedrock:InvokeModelWithResponseStream" in text
    assert model_id in text


def test_bedrock_without_credentials_says_so(settings, bedrock_server, monkeypatch, tmp_path, model_id):
    settings.GATEWAY_BEDROCK_ENDPOINT_URL = bedrock_server.url
    settings.AWS_REGION = "eu-north-1"  # a provider (boto3 client) of its own, built without credentials
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # A boto3 session resolves credentials once: start from a session that never saw any.
    monkeypatch.setattr("dataplane.aws._session", None)
    entry = ModelCatalogueEntry.objects.create(provider="bedrock", model_id=model_id, display_name="No credentials")

    result = catalogue_model_test(entry=entry)

    assert not result.ok
    assert result.error == f"Model {model_id} is unavailable: the gateway has no AWS credentials for Bedrock."
    assert bedrock_server.requests_for(model_id) == []


def test_the_demo_model_answers_offline(settings):
    settings.GATEWAY_DEMO_CHUNK_DELAY = "0"
    entry = ModelCatalogueEntry.objects.create(provider="demo", model_id="demo.echo-v1", display_name="Demo")

    result = catalogue_model_test(entry=entry)

    assert result.ok
    assert result.excerpt
    assert result.output_tokens
    assert result.output_tokens <= TEST_MAX_TOKENS


def test_an_unreachable_endpoint_is_an_error_not_a_traceback(client, admin_user, model_id):
    entry = ModelCatalogueEntry.objects.create(
        provider="openai", model_id=model_id, display_name="Gone", endpoint_url="http://127.0.0.1:9/v1"
    )
    client.force_login(admin_user)
    ((level, text),) = messages_of(client.post(f"/admin/quotas/model-test/{entry.pk}/", follow=True))
    assert level == "error"
    assert model_id in text


def test_analysts_cannot_spend_a_call(client, analyst_user, model_id):
    entry = ModelCatalogueEntry.objects.create(provider="demo", model_id="demo.echo-v1", display_name="Demo")
    client.force_login(analyst_user)
    assert client.post(f"/admin/quotas/model-test/{entry.pk}/").status_code == 403
    assert client.get(f"/admin/quotas/model-test/{entry.pk}/").status_code == 405
