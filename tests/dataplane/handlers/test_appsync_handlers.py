"""The Lambda handlers on the events AppSync sends them, publishing back over real HTTP."""
from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
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
    # What `get_remaining_time_in_millis` answers, call after call (the last value repeats).
    remaining_ms: tuple[int, ...] = (300_000,)
    calls: int = 0

    def get_remaining_time_in_millis(self) -> int:
        self.calls += 1
        return self.remaining_ms[min(self.calls, len(self.remaining_ms)) - 1]


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

    def do_POST(self) -> None:
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
    assert all(
        call["authorization"].startswith("AWS4-HMAC-SHA256") and "/appsync/aws4_request" in call["authorization"]
        for call in lambda_wired
    )
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


@pytest.mark.parametrize(
    "channel",
    [f"/outbound/{BOB}", f"/outbound/{ALICE}/extra", "/outbound/*", "/outbound", f"/inbound/{ALICE}", "/inbound/*"],
)
def test_subscribe_to_any_other_channel_is_refused_as_an_answer_not_an_error(channel):
    event = appsync_event(sub=ALICE, channel=channel, operation="SUBSCRIBE")

    # A normal return: AppSync answers subscribe_error, Lambda counts no error.
    assert appsync_subscribe.handler(event, LambdaContext()) == {"error": appsync_subscribe.REFUSAL}


def test_an_iam_caller_owns_no_outbound_channel():
    event = appsync_event(sub=ALICE, channel=f"/outbound/{ALICE}", operation="SUBSCRIBE")
    event["identity"] = {"accountId": "123456789012", "userArn": "arn:aws:iam::123456789012:role/x"}
    assert appsync_subscribe.handler(event, LambdaContext()) == {"error": appsync_subscribe.REFUSAL}


def test_the_authorizer_imports_only_the_channel_rules():
    probe = (
        "import sys, json, dataplane.handlers.appsync_subscribe; "
        "print(json.dumps(sorted(m for m in sys.modules"
        " if m.startswith(('dataplane', 'boto', 'aws_lambda_powertools')))))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert json.loads(loaded) == [
        "dataplane",
        "dataplane.channels",
        "dataplane.handlers",
        "dataplane.handlers.appsync_subscribe",
    ]


def test_a_cancel_event_is_not_answered_as_a_bad_chat_request_and_leaves_a_marker(lambda_wired, provider, gateway):
    started = gateway.clock()
    event = appsync_event(
        sub=ALICE, channel=f"/inbound/{ALICE}", operation="PUBLISH",
        events=[{"id": "e1", "payload": {"action": "cancel", "conversationId": "conv-1"}}],
    )

    appsync_chat.handler(event, LambdaContext())

    assert lambda_wired == []  # nothing published back, no ValidationError
    assert provider.calls == []
    assert gateway.store.cancel_requested(sub=ALICE, conversation_id="conv-1", since=started)
    assert not gateway.store.cancel_requested(sub=ALICE, conversation_id="conv-2", since=started)


def test_a_stream_near_the_lambda_timeout_stops_settles_and_tells_the_user(lambda_wired, provider, telemetry):
    provider.chunks = [f"part{i} " for i in range(10)]
    event = appsync_event(
        sub=ALICE, channel=f"/inbound/{ALICE}", operation="PUBLISH", events=[{"id": "e1", "payload": chat_request()}]
    )
    # Plenty of time to start and for the first chunks, then inside the safety margin.
    context = LambdaContext(remaining_ms=(200_000,) * 4 + (9_000,))

    appsync_chat.handler(event, context)

    events = published_events(lambda_wired)
    assert events[-1]["error"]["type"] == "TimeLimitReached"
    streamed = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    assert streamed
    assert streamed != "".join(provider.chunks)
    assert provider.closed == 1  # the model stream was closed, not abandoned
    (record,) = telemetry.records
    assert (record.outcome, record.error_type, record.stop_reason) == ("error", "TimeLimitReached", "time_limit")
    assert record.output_tokens > 0
    assert record.estimated_usage
    assert events[-1]["usage"]["outputTokens"] == record.output_tokens


def test_no_turn_starts_without_time_to_finish_it(lambda_wired, provider, telemetry):
    event = appsync_event(
        sub=ALICE, channel=f"/inbound/{ALICE}", operation="PUBLISH", events=[{"id": "e1", "payload": chat_request()}]
    )

    appsync_chat.handler(event, LambdaContext(remaining_ms=(5_000,)))

    assert provider.calls == []
    assert published_events(lambda_wired)[-1]["error"]["type"] == "TimeLimitReached"
    assert telemetry.records[0].total_tokens == 0


def test_a_failure_outside_the_turn_reaches_the_user_the_logs_the_metrics_and_lambda(appsync_http, monkeypatch, capsys):
    endpoint, received = appsync_http
    monkeypatch.setattr(appsync_chat, "_gateway", None)
    monkeypatch.setenv("GATEWAY_MONTH_TIMEZONE", "Mars/Olympus_Mons")  # the gateway cannot be built
    monkeypatch.setenv("GATEWAY_EVENTS_HTTP_ENDPOINT", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    appsync_chat._publishing.cache_clear()
    event = appsync_event(
        sub=ALICE, channel=f"/inbound/{ALICE}", operation="PUBLISH", events=[{"id": "e1", "payload": chat_request()}]
    )

    try:
        with pytest.raises(appsync_chat.InboundPublishError):
            appsync_chat.handler(event, LambdaContext())
    finally:
        appsync_chat._publishing.cache_clear()

    (error,) = [e["error"] for e in published_events(received)]
    assert error["type"] == "InternalError"
    assert error["requestId"] in error["message"]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    failures = [line for line in lines if "ChatHandlerFailures" in line]
    assert failures
    assert failures[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "AIGateway"
    (record,) = [line for line in lines if line.get("message") == "chat_turn"]
    assert (record["outcome"], record["error_type"], record["request_id"]) == (
        "error",
        "InternalError",
        error["requestId"],
    )


def test_pipeline_logs_in_lambda_carry_the_invocation_context(lambda_wired, provider):
    provider.fail_after, provider.error = 1, RuntimeError("the model connection broke")
    event = appsync_event(
        sub=ALICE, channel=f"/inbound/{ALICE}", operation="PUBLISH", events=[{"id": "e1", "payload": chat_request()}]
    )
    wired = appsync_chat.logger.registered_handler  # Powertools' handler...
    assert wired in logging.getLogger("dataplane").handlers  # ...wired to the data plane's loggers at import
    written = io.StringIO()
    previous = wired.setStream(written)
    try:
        appsync_chat.handler(event, LambdaContext(aws_request_id="req-for-the-logs"))
    finally:
        wired.setStream(previous)

    lines = [json.loads(line) for line in written.getvalue().splitlines()]
    (failure,) = [line for line in lines if line["message"].startswith("chat turn ")]  # dataplane.pipeline's
    assert failure["function_request_id"] == "req-for-the-logs"
    assert failure["level"] == "ERROR"
    assert published_events(lambda_wired)[-1]["error"]["type"] == "InternalError"
