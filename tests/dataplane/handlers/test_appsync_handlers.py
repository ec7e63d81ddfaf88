"""The Lambda handlers on the events AppSync sends them, publishing back over real HTTP."""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aws_lambda_powertools.event_handler.events_appsync.exceptions import UnauthorizedException
from botocore.credentials import Credentials

from dataplane.appsync import AppSyncHttpOutbound
from dataplane.handlers import appsync_chat, appsync_subscribe
from tests.dataplane.conftest import ALICE, BOB, chat_request


@dataclass
class LambdaContext:
    function_name: str = "chat-handler"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:chat-handler"
    aws_request_id: str = "req-1"


def appsync_event(*, sub: str, channel: str, operation: str, events: list | None = None) -> dict:
    namespace = channel.split("/")[1]
    return {
        "identity": {"sub": sub, "username": "alice", "claims": {"sub": sub}, "issuer": "https://cognito-idp"},
        "info": {
            "channel": {"path": channel, "segments": channel.strip("/").split("/")},
            "channelNamespace": {"name": namespace},
            "operation": operation,
        },
        "events": events,
        "outErrors": [],
        "request": {"headers": {}, "domainName": None},
        "stash": {},
        "error": None,
        "prev": None,
    }


class AppSyncHttpStub(BaseHTTPRequestHandler):
    """A local stand-in for AppSync's HTTP publish endpoint that records what it receives."""

    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.received.append({"path": self.path, "body": body, "authorization": self.headers.get("Authorization", "")})
        answer = {"successful": [{"identifier": str(i), "index": i} for i in range(len(body["events"]))], "failed": []}
        payload = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def appsync_http():
    AppSyncHttpStub.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), AppSyncHttpStub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/event", AppSyncHttpStub.received
    server.shutdown()
    server.server_close()


@pytest.fixture
def lambda_wired(gateway, appsync_http, monkeypatch):
    endpoint, received = appsync_http
    monkeypatch.setattr(appsync_chat, "_gateway", gateway)

    def outbound(gw, sub):
        return AppSyncHttpOutbound(
            endpoint=endpoint,
            channel=f"/outbound/{sub}",
            region="us-east-1",
            credentials=Credentials("AKIDEXAMPLE", "secret"),
            linger_seconds=60,
        )

    monkeypatch.setattr(appsync_chat, "outbound_factory", outbound)
    return received


def published_events(received: list[dict]) -> list[dict]:
    return [json.loads(e) for call in received for e in call["body"]["events"]]


def test_on_publish_streams_the_answer_back_signed_in_batches_of_at_most_five(lambda_wired, provider):
    provider.chunks = [f"part{i} " for i in range(12)]
    event = appsync_event(
        sub=ALICE, channel=f"/inbound/{ALICE}", operation="PUBLISH", events=[{"id": "e1", "payload": chat_request()}]
    )

    result = appsync_chat.handler(event, LambdaContext())

    assert result == {"events": []}  # nothing is re-broadcast on inbound
    assert lambda_wired, "nothing was published back"
    assert all(call["body"]["channel"] == f"/outbound/{ALICE}" for call in lambda_wired)
    assert all(1 <= len(call["body"]["events"]) <= 5 for call in lambda_wired)
    assert all(call["authorization"].startswith("AWS4-HMAC-SHA256") and "/appsync/aws4_request" in call["authorization"] for call in lambda_wired)
    events = published_events(lambda_wired)
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    assert text == "".join(provider.chunks)
    assert "metadata" in events[-1]
    assert len(lambda_wired) < len(events)  # small chunks were batched


def test_on_publish_to_someone_elses_inbound_is_refused_on_the_callers_outbound(lambda_wired, provider):
    event = appsync_event(
        sub=ALICE, channel=f"/inbound/{BOB}", operation="PUBLISH", events=[{"id": "e1", "payload": chat_request()}]
    )

    appsync_chat.handler(event, LambdaContext())

    events = published_events(lambda_wired)
    assert events[0]["error"]["type"] == "Forbidden"
    assert all(call["body"]["channel"] == f"/outbound/{ALICE}" for call in lambda_wired)
    assert provider.calls == []


def test_subscribe_to_own_outbound_is_allowed():
    event = appsync_event(sub=ALICE, channel=f"/outbound/{ALICE}", operation="SUBSCRIBE")
    assert appsync_subscribe.handler(event, LambdaContext()) is None


@pytest.mark.parametrize("channel", [f"/outbound/{BOB}", f"/outbound/{ALICE}/extra", "/outbound/*"])
def test_subscribe_to_any_other_channel_is_unauthorized(channel):
    event = appsync_event(sub=ALICE, channel=channel, operation="SUBSCRIBE")
    with pytest.raises(UnauthorizedException):
        appsync_subscribe.handler(event, LambdaContext())


def test_a_cancel_event_is_not_answered_as_a_bad_chat_request(lambda_wired, provider):
    event = appsync_event(
        sub=ALICE, channel=f"/inbound/{ALICE}", operation="PUBLISH",
        events=[{"id": "e1", "payload": {"action": "cancel", "conversationId": "conv-1"}}],
    )

    appsync_chat.handler(event, LambdaContext())

    assert lambda_wired == []  # nothing published back, no ValidationError
    assert provider.calls == []
