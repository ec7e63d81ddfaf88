"""Turns of an OpenAI-compatible model stream on the event loop: no worker thread each, so
more turns run at once than there are worker threads, and each is billed exactly."""
from __future__ import annotations

import asyncio
import json

import pytest
from django.test import override_settings

import chat.turns
import gateway_project.turn_pools
from dataplane.pipeline import current_charges
from dataplane.policy import AllowedModel
from gateway_project.gateway import gateway, gateway_store
from tests.chat.conftest import chat_request, connected, publish_policy, session_cookie

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("demo_without_delay")]

TURNS = 4
CHUNKS = 30


@pytest.fixture
def one_turn_worker(monkeypatch):
    """A worker pool of one thread: a turn that needed a worker would wait for the others.

    No cross-process cancel listener either: this test has no cancels, and a listener left
    in a Redis read when pytest-asyncio closes the test's loop could keep the loop from
    closing (redis-py does not always give the cancellation back), a teardown that then
    waited for the test's time-out.
    """
    async def no_listener(self, sub: str) -> None:
        pass

    monkeypatch.setattr(chat.turns.CancelListener, "join", no_listener)
    monkeypatch.setattr(gateway_project.turn_pools, "_executors", {})
    with override_settings(GATEWAY_TURN_WORKERS=1):
        yield
    for executor in gateway_project.turn_pools._executors.values():
        executor.shutdown(wait=False)


@pytest.fixture
def paced_model(alice, openai_server) -> AllowedModel:
    model = AllowedModel(model_id="paced-openai", display_name="Paced", provider="openai", endpoint=openai_server.url)
    openai_server.script(model.model_id, chunks=[f"w{i} " for i in range(CHUNKS)], chunk_delay=0.03, usage=(11, CHUNKS))
    publish_policy(alice, models=(model,))
    return model


@pytest.fixture
def alice_session_cookie(alice, paced_model) -> str:
    return session_cookie(alice)


async def test_turns_beyond_the_worker_pool_stream_together_and_bill_exactly(
    alice, paced_model, alice_session_cookie, one_turn_worker
):
    model = paced_model
    session = await connected(alice_session_cookie)
    await session.subscribe(f"/outbound/{alice.sub}")
    conversations = [f"c-{index}" for index in range(TURNS)]

    requests = [chat_request(model=model.model_id, conversation=conversation) for conversation in conversations]
    assert (await session.publish(f"/inbound/{alice.sub}", *requests))["type"] == "publish_success"
    order: list[tuple[str, str]] = []  # (what, conversation) in arrival order
    texts = dict.fromkeys(conversations, "")
    usage: dict[str, dict] = {}
    while len(usage) < TURNS:
        frame = await session.next_of("data")
        event = json.loads(frame["event"])
        conversation = event["conversationId"]
        if "contentBlockDelta" in event:
            if not texts[conversation]:
                order.append(("first", conversation))
            texts[conversation] += event["contentBlockDelta"]["delta"]["text"]
        elif "error" in event:
            pytest.fail(f"turn {conversation} failed: {event['error']}")
        elif "metadata" in event:
            order.append(("end", conversation))
            usage[conversation] = event["metadata"]["usage"]
    # The turns settle and record after their last event: let them end on this test's loop
    # rather than be cancelled half-way when the loop closes.
    running = set(gateway_project.turn_pools.running_turns())
    if running:
        await asyncio.wait(running, timeout=10)
    await session.close()

    # Every turn had its first words before any turn ended: none waited for the one worker.
    assert [what for what, _ in order[:TURNS]] == ["first"] * TURNS
    assert all(text == "".join(f"w{i} " for i in range(CHUNKS)) for text in texts.values())
    billed = {"inputTokens": 11, "outputTokens": CHUNKS, "totalTokens": 11 + CHUNKS}
    assert all(figures == billed for figures in usage.values())
    # Settled before each answer's last event: the windows hold exactly the answers' usage,
    # and nothing stays reserved.
    windows = await asyncio.to_thread(_windows, alice.sub)
    assert [(window.total, window.reserved) for window in windows] == [(TURNS * (11 + CHUNKS), 0)] * 2


def _windows(sub: str) -> list:
    policy = gateway().policies.get(sub)
    assert policy is not None
    return gateway_store().usage_read(sub=sub, charges=current_charges(gateway(), policy))
