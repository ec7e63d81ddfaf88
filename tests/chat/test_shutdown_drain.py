"""A web process that is told to stop (SIGTERM, as an orchestrator does) with chat turns in
flight: the turns finish within the grace period, or are stopped and settle what streamed,
before the process exits, so no reservation stays counted and every turn is in the lake."""
from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from pathlib import Path

import duckdb
import pytest
from django.conf import settings

from dataplane.pipeline import current_charges
from gateway_project.gateway import gateway, gateway_store
from tests.chat.conftest import WAIT, publish_policy, session_cookie
from tests.chat.live import LiveDaphne
from tests.chat.test_live_daphne import open_session, request

pytestmark = pytest.mark.django_db(transaction=True)


def windows(sub: str) -> list:
    gateway().policies.forget()
    policy = gateway().policies.get(sub)
    assert policy is not None
    return gateway_store().usage_read(sub=sub, charges=current_charges(gateway(), policy))


def lake_outcome(request_id: str) -> str | None:
    files = list(Path(settings.GATEWAY_LAKE_DIR).rglob("*.parquet"))
    rows = duckdb.execute(
        "select outcome from read_parquet(?, hive_partitioning = true, union_by_name = true) where request_id = ?",
        [[str(f) for f in files], request_id],
    ).fetchall() if files else []
    return rows[0][0] if rows else None


async def a_turn_in_flight(server: LiveDaphne, user) -> str:
    """Publish a question and return its request id once its first words arrived."""
    ws = await open_session(server, await asyncio.to_thread(session_cookie, user))
    subscribed = await request(ws, {"type": "subscribe", "id": "s1", "channel": f"/outbound/{user.sub}"})
    assert subscribed["type"] == "subscribe_success", subscribed
    payload = {"modelId": "demo.echo-v1", "conversationId": f"c-{uuid.uuid4().hex[:8]}",
               "messages": [{"role": "user", "content": [{"text": "Tell me about tokens"}]}]}
    ack = await request(ws, {"type": "publish", "id": "p1", "channel": f"/inbound/{user.sub}",
                             "events": [json.dumps(payload)]})
    assert ack["type"] == "publish_success", ack
    request_id = None
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
        if frame["type"] != "data":
            continue
        event = json.loads(frame["event"])
        request_id = event.get("requestId", request_id)
        if "contentBlockDelta" in event:
            assert request_id
            return request_id


def stop_server(server: LiveDaphne) -> float:
    """SIGTERM, and the seconds until the process exited."""
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(30)
    return time.monotonic() - started


@pytest.mark.parametrize(
    ("chunk_delay", "grace", "outcome"),
    [
        ("0.03", "20", "ok"),  # an answer of about a second finishes within the grace period
        ("0.5", "1", "cancelled"),  # an answer of about fifteen seconds is stopped after one
    ],
    ids=["finishes", "stopped"],
)
async def test_a_stopping_server_settles_its_turns_in_flight(alice, tmp_path, chunk_delay, grace, outcome):
    await asyncio.to_thread(publish_policy, alice)
    server = await asyncio.to_thread(LiveDaphne, tmp_path, extra_env={
        "GATEWAY_DEMO_CHUNK_DELAY": chunk_delay, "GATEWAY_SHUTDOWN_GRACE_SECONDS": grace,
    })
    try:
        request_id = await a_turn_in_flight(server, alice)
        took = await asyncio.to_thread(stop_server, server)
    finally:
        await asyncio.to_thread(server.stop)

    assert server.process.returncode == 0, server.log()
    assert took < float(grace) + 5, server.log()
    ten_minutes, month = await asyncio.to_thread(windows, alice.sub)
    assert (ten_minutes.reserved, month.reserved) == (0, 0), server.log()  # nothing left counted as running
    assert month.total > 0  # what streamed is billed
    assert await asyncio.to_thread(lake_outcome, request_id) == outcome, server.log()
