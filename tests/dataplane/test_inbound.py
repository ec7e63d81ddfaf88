"""`run_published_events`, the one entry below both doors, and how a running turn stops."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from dataplane.inbound import run_published_events
from dataplane.outbound import ListOutbound
from dataplane.pipeline import Identity
from dataplane.stopping import TurnStop
from tests.dataplane.conftest import ALICE, BOB, chat_request

REPO = Path(__file__).resolve().parents[2]


class DeltaSignal(ListOutbound):
    """Collects events and says when the first text chunk has gone out."""

    def __init__(self) -> None:
        super().__init__()
        self.first_delta = threading.Event()

    def send(self, event: dict) -> None:
        super().send(event)
        if "contentBlockDelta" in event:
            self.first_delta.set()


def publish(gateway, payloads, *, sub=ALICE, outbound=None, **options):
    outbound = outbound or ListOutbound()
    records = run_published_events(
        gateway=gateway, identity=Identity(sub=sub), channel=f"/inbound/{sub}", payloads=payloads,
        outbound=outbound, entry="appsync", **options,
    )
    return records, outbound


def test_a_cancel_published_elsewhere_stops_the_running_turn_within_a_chunk_and_bills_what_streamed(gateway, provider):
    provider.chunks = [f"chunk{i} " for i in range(50)]
    provider.gate = threading.Event()  # holds the model after its first chunk
    streaming = DeltaSignal()
    finished: list = []
    turn = threading.Thread(
        target=lambda: finished.append(
            publish(gateway, [chat_request()], outbound=streaming, watch_store_cancels=True, cancel_poll_seconds=0)
        )
    )
    turn.start()
    assert streaming.first_delta.wait(5)

    # The cancel arrives like in Lambda: another invocation, sharing only the store.
    records, answered = publish(gateway, [{"action": "cancel", "conversationId": "conv-1"}])
    provider.gate.set()
    turn.join(5)

    assert records == []
    assert answered.events == []
    (record,), _ = finished[0]
    assert record.outcome == "cancelled"
    assert streaming.texts() == "chunk0 "
    assert provider.closed == 1
    assert record.output_tokens > 0  # billed as streamed
    assert streaming.events[-1]["metadata"]["usage"]["outputTokens"] == record.output_tokens


def test_a_cancel_without_conversation_stops_every_turn_of_the_user_only(gateway, provider):
    publish(gateway, [{"action": "cancel"}])
    (mine,), _ = publish(gateway, [chat_request()], watch_store_cancels=True, cancel_poll_seconds=0)
    (bobs,), _ = publish(gateway, [chat_request()], sub=BOB, watch_store_cancels=True, cancel_poll_seconds=0)

    # The frozen test clock makes the earlier cancel "as new as" the turn: it counts.
    assert mine.outcome == "cancelled"
    assert bobs.outcome == "ok"


def test_a_cancel_on_someone_elses_channel_is_ignored(gateway):
    since = gateway.clock()
    run_published_events(
        gateway=gateway, identity=Identity(sub=ALICE), channel=f"/inbound/{BOB}",
        payloads=[{"action": "cancel", "conversationId": "conv-1"}], outbound=ListOutbound(), entry="appsync",
    )
    assert not gateway.store.cancel_requested(sub=ALICE, conversation_id="conv-1", since=since)
    assert not gateway.store.cancel_requested(sub=BOB, conversation_id="conv-1", since=since)


def test_chat_requests_and_cancels_run_in_order(gateway, provider):
    records, _outbound = publish(
        gateway, [chat_request(), {"action": "cancel"}, chat_request("And a second?", conversationId="conv-2")]
    )

    assert [r.outcome for r in records] == ["ok", "ok"]  # a cancel stops running turns only
    assert len(provider.calls) == 2


def test_the_store_is_asked_for_cancels_at_most_twice_a_second():
    now = [0.0]
    asked: list[float] = []

    def cancelled_in_store() -> bool:
        asked.append(now[0])
        return now[0] >= 2.0

    stop = TurnStop(cancelled_in_store=cancelled_in_store, monotonic=lambda: now[0])
    reasons = []
    for _ in range(40):  # a chunk every 0.1 s
        now[0] = round(now[0] + 0.1, 1)
        reasons.append(stop.reason())

    assert asked == [0.5, 1.0, 1.5, 2.0]
    assert reasons.index("cancelled") == 19
    assert stop.cancel.is_set()


# Imports every module of the Django apps, the data plane (but its handlers) and the CDK app,
# then says which modules of the Lambda handlers that loaded along the way.
IMPORT_EVERYTHING = """
import importlib, pathlib, sys
import django
django.setup()
sys.path.insert(0, "deploy")
packages = ["accounts", "analytics", "chat", "quotas", "gateway_project", "dataplane", "deploy/gateway_infra"]
imported = 0
for package in packages:
    for path in sorted(pathlib.Path(package).rglob("*.py")):
        parts = list(path.with_suffix("").parts)
        if parts[0] == "deploy":
            parts = parts[1:]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        name = ".".join(parts)
        if name.startswith(("dataplane.handlers", "gateway_project.settings.")):
            continue
        importlib.import_module(name)
        imported += 1
print(imported, sorted(m for m in sys.modules if m.startswith("dataplane.handlers")))
"""


def test_no_module_outside_the_handlers_imports_them():
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "gateway_project.settings.test"}
    loaded = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING],
        capture_output=True, text=True, check=False, cwd=REPO, env=environment, timeout=240,
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    count, _, modules = loaded.stdout.strip().partition(" ")
    assert int(count) > 100
    assert modules == "[]"


def test_django_runs_both_doors_without_powertools_or_the_lambda_handlers():
    probe = (
        "import sys, django; django.setup(); import chat.consumers, chat.turns, gateway_project.asgi; "
        "print(sorted(m for m in sys.modules"
        " if m.startswith(('aws_lambda_powertools', 'aws_xray_sdk', 'dataplane.handlers'))))"
    )
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "gateway_project.settings.test"}
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO, env=environment
    )
    assert loaded.stdout.strip() == "[]"


def test_a_cancel_sent_as_json_text_is_still_a_cancel(gateway, provider):
    since = gateway.clock()
    records, _ = publish(gateway, ['{"action": "cancel", "conversationId": "conv-1"}'])

    assert records == []
    assert provider.calls == []
    assert gateway.store.cancel_requested(sub=ALICE, conversation_id="conv-1", since=since)
