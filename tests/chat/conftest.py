"""Fixtures for the chat tests: signed-in WebSocket connections to the real ASGI app,
policies published straight to the data-plane store, and a model the test can hold open.
"""
from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from dataplane.policy import AllowedModel, EffectivePolicy, WindowLimits
from dataplane.providers.base import ModelCall, ProviderStream, StreamEnd, TextDelta
from gateway_project.gateway import gateway, gateway_store

DEMO_MODEL = AllowedModel(model_id="demo.echo-v1", display_name="Demo model (offline)", provider="demo")
ENDLESS_MODEL = AllowedModel(model_id="test.endless-v1", display_name="Endless test model", provider="demo")
SUBPROTOCOLS = ["aws-appsync-event-ws", "header-eyJob3N0IjoidGVzdHNlcnZlciJ9"]
WAIT = 10  # seconds a test waits for a frame before failing (not a sleep: it returns at once on arrival)


class EndlessProvider:
    """Streams a chunk every few milliseconds until the turn is cancelled (bounded at 2000)."""

    name = "endless"

    def __init__(self) -> None:
        self.closed = threading.Event()

    def stream(self, call: ModelCall) -> ProviderStream:
        try:
            for _ in range(2000):
                yield TextDelta("tick ")
                self.closed.wait(0.005)
            yield StreamEnd(stop_reason="end_turn", input_tokens=3, output_tokens=2000)
        finally:
            self.closed.set()


TEST_POLICY_VERSIONS = 2**62  # above any version Django's outbox gives out


def publish_policy(user, *, ten_minute: int | None = 100_000, monthly: int | None = 1_000_000,
                   models: tuple[AllowedModel, ...] = (DEMO_MODEL,), **options: Any) -> EffectivePolicy:
    # The test's policy stands for the control plane's: it must outrank what Django publishes
    # for this user (at creation, or at a first sign-in; Django's versions are microsecond
    # clocks), and a later call in the same test must outrank this one.
    stored = gateway_store().policy_get(user.sub)
    version = max((stored.version if stored else 0) + 1, TEST_POLICY_VERSIONS)
    policy = EffectivePolicy(
        sub=user.sub, version=version, models=models,
        ten_minute=WindowLimits(total=ten_minute), monthly=WindowLimits(total=monthly), **options,
    )
    gateway_store().policy_put(policy)
    gateway().policies.forget()
    return policy


@pytest.fixture
def demo_without_delay(settings):
    """The demo model streams without pauses, so tests spend no time waiting for it (the
    setting's change builds a fresh gateway, and its end another one)."""
    settings.GATEWAY_DEMO_CHUNK_DELAY = 0.0


@pytest.fixture
def endless_provider(demo_without_delay) -> Iterator[EndlessProvider]:
    # After `demo_without_delay`, which clears the gateway's providers.
    provider = EndlessProvider()
    key = (ENDLESS_MODEL.provider, ENDLESS_MODEL.model_id, ENDLESS_MODEL.endpoint)
    gateway()._providers[key] = provider
    yield provider
    provider.closed.set()
    gateway()._providers.pop(key, None)


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


class Session:
    """A WebSocket connection speaking the AppSync Events protocol, for tests."""

    def __init__(self, cookie: str | None, *, subprotocols: list[str] = SUBPROTOCOLS) -> None:
        from gateway_project.asgi import application

        headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
        if cookie:
            headers.append((b"cookie", cookie.encode()))
        self.ws = WebsocketCommunicator(application, "/event/realtime", headers=headers, subprotocols=subprotocols)
        self.early: list[dict[str, Any]] = []  # events that arrived while a publish awaited its answer

    async def open(self) -> Any:
        connected, subprotocol = await self.ws.connect(timeout=WAIT)
        assert connected
        return subprotocol

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.ws.send_to(text_data=frame if isinstance(frame, str) else json.dumps(frame))

    async def receive(self) -> dict[str, Any]:
        if self.early:
            return self.early.pop(0)
        return json.loads(await self.ws.receive_from(timeout=WAIT))

    async def init(self) -> dict[str, Any]:
        await self.send({"type": "connection_init"})
        return await self.receive()

    async def subscribe(self, channel: str, frame_id: str | None = None) -> dict[str, Any]:
        await self.send({"type": "subscribe", "id": frame_id or str(uuid.uuid4()), "channel": channel,
                         "authorization": {"host": "testserver"}})
        return await self.receive()

    async def publish(self, channel: str, *events: Any, frame_id: str | None = None) -> dict[str, Any]:
        raw = [e if isinstance(e, str) else json.dumps(e) for e in events]
        await self.send({"type": "publish", "id": frame_id or str(uuid.uuid4()), "channel": channel, "events": raw})
        # A running turn's events may come first (a cancel sent mid-answer): kept for later reads.
        while True:
            frame = json.loads(await self.ws.receive_from(timeout=WAIT))
            if frame["type"] != "data":
                return frame
            self.early.append(frame)

    async def next_of(self, kind: str) -> dict[str, Any]:
        """The next frame of this type; keep-alives and others in between are skipped."""
        while True:
            frame = await self.receive()
            if frame["type"] == kind:
                return frame

    async def events_until(self, predicate) -> list[dict[str, Any]]:
        """Decoded `data` events up to and including the first that matches `predicate`."""
        events = []
        while True:
            frame = await self.next_of("data")
            event = json.loads(frame["event"])
            events.append(event)
            if predicate(event):
                return events

    async def close(self) -> None:
        await self.ws.disconnect()


def chat_request(text: str = "Hello there", *, model: str = DEMO_MODEL.model_id, conversation: str | None = None,
                 **extra: Any) -> dict[str, Any]:
    return {"modelId": model, "conversationId": conversation or f"c-{uuid.uuid4().hex[:12]}",
            "messages": [{"role": "user", "content": [{"text": text}]}], **extra}


def turn_over(event: dict[str, Any]) -> bool:
    return "metadata" in event or "error" in event


def streamed_text(events: list[dict[str, Any]]) -> str:
    return "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)


@pytest.fixture
def alice_cookie(alice):
    publish_policy(alice)
    return session_cookie(alice)


@pytest.fixture
def bob_cookie(bob):
    publish_policy(bob)
    return session_cookie(bob)


async def connected(cookie: str) -> Session:
    session = Session(cookie)
    await session.open()
    assert (await session.init())["type"] == "connection_ack"
    return session
