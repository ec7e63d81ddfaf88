"""The privacy promise end to end, through the WebSocket door: every prompt of the corpus is
published on `/event/realtime`, answered by the demo model (which echoes the prompt, so a
personal prompt gives a personal answer), and then the cache, the lake, stdout (JSON log and
EMF) and the logs are searched for every personal value — with prompt previews on and off.
Clean look-alikes must come out cached."""
from __future__ import annotations

import json
import logging
import re
import sqlite3
from pathlib import Path

import pytest
from django.test import override_settings

from dataplane.privacy import normalise
from tests.chat.conftest import chat_request, connected, publish_policy, session_cookie, turn_over
from tests.privacy_corpus import CASES

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("demo_without_delay")]


@pytest.fixture
def private_gateway(tmp_path):
    """A gateway of its own: a fresh store and lake, records on stdout (with EMF) and in the lake."""
    with override_settings(
        GATEWAY_TELEMETRY_SINK="stdout,lake",
        GATEWAY_LAKE_DIR=str(tmp_path / "lake"),
        GATEWAY_SQLITE_PATH=str(tmp_path / "store.sqlite3"),
        GATEWAY_DEMO_CHUNK_DELAY="0",
        # The corpus is one user's burst of hundreds of publishes; the door's flood control
        # has its own tests.
        CHAT_PUBLISH_BURST=10_000,
        CHAT_PUBLISH_PER_SECOND=10_000.0,
    ):
        yield tmp_path


def forms_of(value: str, *, shortest: int = 6) -> set[str]:
    """A personal value as typed, normalised, and as its bare digits (when that is long enough
    to identify someone): none of these may be written anywhere."""
    forms = {value, normalise(value)}
    digits = re.sub(r"\D", "", normalise(value))
    if len(digits) >= 9 and len(digits) * 2 > len(re.sub(r"\W", "", value)):  # a number, not a key
        forms.add(digits)
    return {f for f in forms if len(f) >= shortest}


def lake_rows(root: Path) -> list[dict]:
    """Every row of the local lake, as the product writes it (Parquet batches)."""
    import pyarrow.parquet as pq

    from dataplane.telemetry.sinks import lake_sinks_flush

    lake_sinks_flush()
    return [row for path in sorted(root.rglob("*.parquet")) for row in pq.read_table(path).to_pylist()]


def cached_answers(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [answer for (answer,) in db.execute("SELECT answer FROM cached_answers")]


@pytest.mark.parametrize("previews", [True, False], ids=["previews-on", "previews-off"])
async def test_nothing_personal_reaches_the_cache_the_lake_stdout_or_the_logs(
    alice, private_gateway, previews, capsys, caplog
):
    caplog.set_level(logging.DEBUG)
    publish_policy(alice, log_prompts=previews, cache_scope="per_user")
    from asgiref.sync import sync_to_async

    cookie = await sync_to_async(session_cookie)(alice)
    session = await connected(cookie)
    await session.subscribe(f"/outbound/{alice.sub}")
    for index, case in enumerate(CASES):
        accepted = await session.publish(f"/inbound/{alice.sub}", chat_request(case.text, conversation=f"case-{index}"))
        assert accepted["type"] == "publish_success", accepted
        events = await session.events_until(turn_over)
        assert "metadata" in events[-1], events[-1]
    await session.close()

    rows = {row["conversation_id"]: row for row in lake_rows(private_gateway / "lake")}
    assert len(rows) == len(CASES)
    stdout = capsys.readouterr().out
    assert stdout.count('"message": "chat_turn"') == len(CASES)
    assert stdout.count('"CloudWatchMetrics"') == len(CASES)
    cache = cached_answers(private_gateway / "store.sqlite3")
    lake_text = json.dumps(list(rows.values()), ensure_ascii=False, default=str)
    places = {"cache": "\n".join(cache), "lake": lake_text, "stdout": stdout, "logs": caplog.text}

    leaks = [
        (where, case.text, form)
        for case in CASES if not case.clean
        for form in forms_of(case.value, shortest=3 if case.kind == "name" else 6)
        for where, text in places.items() if form in text
    ]
    assert leaks == []
    for index, case in enumerate(CASES):
        row = rows[f"case-{index}"]
        if case.clean:
            assert (row["cache"], row["privacy_reason"]) == ("miss", None), case.text
            assert (row["prompt_preview"] is not None) == previews, case.text
        else:
            assert (row["cache"], row["privacy_reason"], row["prompt_preview"]) == ("bypass", "pii", None), case.text
    # Every clean look-alike's answer was cached, and nothing else was.
    assert len(cache) == sum(case.clean for case in CASES)


async def test_a_clean_look_alike_is_answered_from_the_cache_the_second_time(alice, private_gateway):
    publish_policy(alice)
    from asgiref.sync import sync_to_async

    session = await connected(await sync_to_async(session_cookie)(alice))
    await session.subscribe(f"/outbound/{alice.sub}")
    caches = []
    for _ in range(2):
        await session.publish(
            f"/inbound/{alice.sub}", chat_request("주문번호 ORD-20241103-5521 배송 조회", conversation="c1")
        )
        caches.append((await session.events_until(turn_over))[-1]["metadata"]["cache"])
    await session.close()
    assert caches == ["miss", "hit"]


