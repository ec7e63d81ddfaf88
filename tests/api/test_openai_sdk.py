"""The OpenAI-compatible door driven by the real OpenAI Python SDK, against a real daphne
process, the demo model and a local OpenAI-style upstream: the client a script or an IDE
plugin would use."""
from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import openai
import pytest
from django.utils import timezone

from api.models import ApiKey
from api.services import api_key_create, api_key_revoke
from dataplane.policy import AllowedModel
from gateway_project.gateway import gateway, gateway_store
from tests.chat.conftest import DEMO_MODEL, publish_policy, session_cookie
from tests.chat.live import LiveDaphne

pytestmark = pytest.mark.django_db(transaction=True)
WAIT = 10


def upstream_model(openai_server, name: str) -> AllowedModel:
    return AllowedModel(model_id=name, display_name=name, provider="openai", endpoint=openai_server.url)


@pytest.fixture
def serve(tmp_path):
    servers: list[LiveDaphne] = []

    def start(**env: str) -> LiveDaphne:
        server = LiveDaphne(tmp_path, extra_env={"GATEWAY_DEMO_CHUNK_DELAY": "0.001", **env})
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def client_for(server: LiveDaphne, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=WAIT)


def usage_in_store(user) -> dict[str, int]:
    from chat.selectors import me_for

    gateway().policies.forget()
    return {kind: window["used"] for kind, window in me_for(user=user)["usage"].items()}


def test_streaming_non_streaming_and_models_share_the_chat_quota(alice, openai_server, serve):
    upstream = upstream_model(openai_server, "api-upstream")
    openai_server.script("api-upstream", chunks=["Hel", "lo"], usage=(12, 2))
    publish_policy(alice, models=(DEMO_MODEL, upstream))
    secret = api_key_create(user=alice, name="laptop").secret
    server = serve()
    client = client_for(server, secret)

    assert sorted(model.id for model in client.models.list()) == ["api-upstream", "demo.echo-v1"]

    stream = client.chat.completions.create(
        model="demo.echo-v1", messages=[{"role": "user", "content": "Say something"}],
        stream=True, stream_options={"include_usage": True}, max_completion_tokens=200,
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Say something" in text  # the demo model echoes the question
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    streamed_usage = chunks[-1].usage
    assert chunks[-1].choices == []
    assert streamed_usage.total_tokens > 0

    completion = client.chat.completions.create(
        model="api-upstream", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    )
    assert completion.choices[0].message.content == "Hello"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (12, 2)
    upstream_request = openai_server.requests[-1].body
    assert upstream_request["messages"][0] == {"role": "system", "content": "Be brief."}

    # One quota whichever door: the chat page's bars count what the API used.
    spent = streamed_usage.total_tokens + completion.usage.total_tokens
    assert usage_in_store(alice) == {"10m": spent, "month": spent}


def test_refusals_and_errors_have_openai_shapes(alice, openai_server, serve):
    publish_policy(alice, ten_minute=50, models=(DEMO_MODEL,))  # room below a useful answer
    secret = api_key_create(user=alice, name="ci").secret
    server = serve()
    client = client_for(server, secret)
    question = [{"role": "user", "content": "Hello"}]

    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="demo.echo-v1", messages=question, max_completion_tokens=5000)
    assert refused.value.status_code == 429
    assert 0 < int(refused.value.response.headers["retry-after"]) <= 600  # until the 10-minute window resets
    assert "10-minute" in refused.value.message or "10 minute" in refused.value.message

    with pytest.raises(openai.PermissionDeniedError) as not_allowed:
        client.chat.completions.create(model="someone-elses-model", messages=question)
    assert "not allowed" in not_allowed.value.message

    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="demo.echo-v1", messages=question, temperature=1.5)
    assert bad.value.body["param"] == "temperature"

    with pytest.raises(openai.BadRequestError) as tools:
        client.chat.completions.create(
            model="demo.echo-v1", messages=question,
            tools=[{"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}}],
        )
    assert tools.value.body["param"] == "tools"

    with pytest.raises(openai.AuthenticationError):
        client_for(server, "gwk_nothing_like_a_key").models.list()
    # Nothing above was billed: refusals reserve nothing.
    assert usage_in_store(alice) == {"10m": 0, "month": 0}


def test_a_spent_budget_is_a_429_in_dollars(alice, openai_server, serve):
    from dataclasses import replace

    from dataplane.policy import WindowLimits

    priced = replace(upstream_model(openai_server, "api-priced"), price_in_per_1k=1.0, price_out_per_1k=1.0)
    policy = publish_policy(alice, models=(priced,))
    gateway_store().policy_put(replace(policy, version=policy.version + 1,
                                       monthly=WindowLimits(total=1_000_000, cost=1_000)))  # $0.001
    secret = api_key_create(user=alice, name="budget").secret
    server = serve()
    with pytest.raises(openai.RateLimitError) as refused:
        client_for(server, secret).chat.completions.create(
            model="api-priced", messages=[{"role": "user", "content": "hi"}], max_completion_tokens=100,
        )
    assert "budget" in refused.value.message
    assert int(refused.value.response.headers["retry-after"]) > 0  # when the month resets
    assert openai_server.requests == [] or all(r.body["model"] != "api-priced" for r in openai_server.requests)


def test_a_group_budget_spent_by_one_member_refuses_another(alice, bob, openai_server, serve):
    from dataclasses import replace

    from dataplane.policy import PooledBudget, pool_owner

    priced = replace(upstream_model(openai_server, "api-pooled"), price_in_per_1k=1.0, price_out_per_1k=1.0)
    # The session shares one store: a pool of this test's own.
    research = PooledBudget(key=pool_owner(uuid.uuid4().hex), name="Research", cost=500_000)  # $0.50 for the group
    for member in (alice, bob):  # neither has a budget of their own
        publish_policy(member, models=(priced,), pools=(research,))
    openai_server.script("api-pooled", chunks=["spent"], usage=(490, 10))  # $0.50: the whole pool
    server = serve()
    ask = {"model": "api-pooled", "messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 100}

    client_for(server, api_key_create(user=alice, name="alice").secret).chat.completions.create(**ask)
    with pytest.raises(openai.RateLimitError) as refused:
        client_for(server, api_key_create(user=bob, name="bob").secret).chat.completions.create(**ask)

    assert "Research group's shared monthly budget of $0.50 is spent" in refused.value.message
    assert len([r for r in openai_server.requests if r.body["model"] == "api-pooled"]) == 1


def test_revoked_expired_and_narrowed_keys(alice, openai_server, serve):
    from quotas.models import ModelCatalogueEntry

    upstream = upstream_model(openai_server, "api-narrow")
    publish_policy(alice, models=(DEMO_MODEL, upstream))
    revoked = api_key_create(user=alice, name="old")
    api_key_revoke(key=revoked.key)
    expired = api_key_create(user=alice, name="temp", expires_at=timezone.now() + timedelta(seconds=1))
    demo_entry, _ = ModelCatalogueEntry.objects.get_or_create(
        model_id="demo.echo-v1", defaults={"provider": "demo", "display_name": "Demo"}
    )
    narrowed = api_key_create(user=alice, name="demo only", models=[demo_entry])
    server = serve()
    while timezone.now() < expired.key.expires_at:
        time.sleep(0.05)  # the key's own expiry time, not a timing assumption about the server

    with pytest.raises(openai.AuthenticationError) as revoked_error:
        client_for(server, revoked.secret).models.list()
    assert "revoked" in revoked_error.value.message
    with pytest.raises(openai.AuthenticationError) as expired_error:
        client_for(server, expired.secret).models.list()
    assert "expired" in expired_error.value.message

    client = client_for(server, narrowed.secret)
    assert [model.id for model in client.models.list()] == ["demo.echo-v1"]
    with pytest.raises(openai.PermissionDeniedError) as outside:
        client.chat.completions.create(model="api-narrow", messages=[{"role": "user", "content": "hi"}])
    assert "This API key may not use" in outside.value.message
    answer = client.chat.completions.create(model="demo.echo-v1", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content


def test_a_stream_the_client_drops_is_settled_as_streamed(alice, openai_server, serve):
    upstream = upstream_model(openai_server, "api-slow")
    openai_server.script("api-slow", chunks=["word "] * 400, usage=(10, 400), chunk_delay=0.01)
    publish_policy(alice, models=(upstream,))
    secret = api_key_create(user=alice, name="agent").secret
    server = serve()
    client = client_for(server, secret)

    stream = client.chat.completions.create(
        model="api-slow", messages=[{"role": "user", "content": "Talk"}], stream=True, max_completion_tokens=1000,
    )
    received = 0
    for chunk in stream:
        received += 1 if chunk.choices and chunk.choices[0].delta.content else 0
        if received == 3:
            break
    stream.close()

    # The turn notices the client is gone, stops reading the model, and settles: no tokens
    # stay reserved, and what streamed is billed (more than nothing, far less than 1,000).
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        usage = gateway_store().usage_read(sub=alice.sub, charges=_charges(alice))
        if all(window.reserved == 0 for window in usage) and usage[0].total > 0:
            break
        time.sleep(0.05)
    assert all(window.reserved == 0 for window in usage)
    assert 0 < usage[0].total < 400


def test_streams_run_together_beyond_the_turn_workers_and_are_counted_each(alice, openai_server, serve):
    """One turn worker per process, and still every stream of an OpenAI-compatible model runs
    at once: the door reads the model on the event loop, not in a worker thread per request."""
    streams, chunks = 4, 30
    upstream = upstream_model(openai_server, "api-paced")
    openai_server.script("api-paced", chunks=[f"w{i} " for i in range(chunks)], usage=(11, chunks), chunk_delay=0.05)
    publish_policy(alice, models=(upstream,))
    issued = api_key_create(user=alice, name="parallel")
    server = serve(GATEWAY_TURN_WORKERS="1")
    client = client_for(server, issued.secret)
    together = threading.Barrier(streams)

    def one_stream(_: int) -> tuple[float, float, str, object]:
        together.wait(WAIT)
        stream = client.chat.completions.create(
            model="api-paced", messages=[{"role": "user", "content": "Count"}], stream=True,
            stream_options={"include_usage": True}, max_completion_tokens=500,
        )
        first_words, text, usage = 0.0, "", None
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                first_words = first_words or time.monotonic()
                text += chunk.choices[0].delta.content
            usage = chunk.usage or usage
        return first_words, time.monotonic(), text, usage

    with ThreadPoolExecutor(streams) as clients:
        answers = list(clients.map(one_stream, range(streams)))

    # Every stream had its first words before any stream ended: none waited for the worker.
    assert max(first for first, _, _, _ in answers) < min(end for _, end, _, _ in answers)
    assert all(text == "".join(f"w{i} " for i in range(chunks)) for _, _, text, _ in answers)
    assert all((usage.prompt_tokens, usage.completion_tokens) == (11, chunks) for *_, usage in answers)
    key = ApiKey.objects.get(pk=issued.key.pk)
    assert (key.request_count, key.input_tokens, key.output_tokens) == (streams, streams * 11, streams * chunks)
    ten_minutes, month = gateway_store().usage_read(sub=alice.sub, charges=_charges(alice))
    assert (month.total, month.reserved, ten_minutes.reserved) == (streams * (11 + chunks), 0, 0)
    assert ten_minutes.total in (0, month.total)  # 0 only when a new 10-minute window began meanwhile


def _charges(user):
    from dataplane.pipeline import current_charges

    gateway().policies.forget()
    return current_charges(gateway(), gateway().policies.get(user.sub))


def test_the_chat_session_cookie_does_not_open_the_api(alice, serve):
    """Only a bearer key opens /v1: a cross-site page cannot spend a signed-in user's quota."""
    import urllib.error
    import urllib.request

    publish_policy(alice)
    server = serve()
    request = urllib.request.Request(
        f"{server.url}/v1/models", headers={"Cookie": session_cookie(alice)}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=WAIT)
    assert refused.value.code == 401
