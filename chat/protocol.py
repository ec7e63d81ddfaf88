"""The AppSync Events WebSocket protocol: frames, their rules and the server's answers.

Pure functions and small classes, no I/O: the consumer (`chat.consumers`) and the HTTP
door (`chat.views.publish_events`) both use them, so the two doors enforce the same rules.

Client → server: `connection_init`, `subscribe {id, channel}`, `unsubscribe {id}`,
`publish {id, channel, events: [<JSON string>, ...]}`.
Server → client: `connection_ack {connectionTimeoutMs}`, `ka`, `subscribe_success` /
`subscribe_error`, `unsubscribe_success` / `unsubscribe_error`, `publish_success {successful,
failed}` / `publish_error`, `data {id, event: <JSON string>}` (one frame per event, as AppSync
sends them) and `error` for frames that are not part of the protocol.
"""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from dataplane.channels import (
    INBOUND,
    MAX_EVENT_BYTES,
    MAX_EVENTS_PER_PUBLISH,
    ChannelNameError,
    channel_segments,
    owns_channel,
)
from dataplane.requests import parse_json

SUBPROTOCOL = "aws-appsync-event-ws"
CONNECTION_TIMEOUT_MS = 300_000  # what AppSync announces; the client closes after this without `ka`
# A publish frame holds at most five events of 240 KB plus a little envelope.
MAX_FRAME_BYTES = MAX_EVENTS_PER_PUBLISH * MAX_EVENT_BYTES + 16 * 1024
_MESSAGE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")

# errorType values, as AppSync names them.
BAD_REQUEST = "BadRequestException"
UNAUTHORIZED = "UnauthorizedException"
THROTTLED = "ThrottlingException"
UNSUPPORTED = "UnsupportedOperation"

# WebSocket close codes (4000-4999 are for applications).
CLOSE_UNAUTHENTICATED = 4401
CLOSE_ABUSE = 4429


@dataclass
class ProtocolError(Exception):
    """A frame broke a rule; the consumer answers with `<kind>_error` or `error`."""

    error_type: str
    message: str

    def as_errors(self) -> list[dict[str, str]]:
        return [{"errorType": self.error_type, "message": self.message}]


def parse_frame(text: str | None, binary: bytes | None) -> dict[str, Any]:
    """The JSON object a client sent, or `ProtocolError` saying why it is not one."""
    if binary is not None:
        raise ProtocolError(BAD_REQUEST, "Binary frames are not part of the protocol; send JSON text.")
    # `surrogatepass`: a lone surrogate only counts here; the chat request's rules refuse it.
    if text is None or len(text.encode("utf-8", "surrogatepass")) > MAX_FRAME_BYTES:
        raise ProtocolError(BAD_REQUEST, f"A frame is at most {MAX_FRAME_BYTES} bytes.")
    try:
        frame = parse_json(text)
    except ValueError:
        raise ProtocolError(BAD_REQUEST, "The frame is not valid JSON.") from None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise ProtocolError(BAD_REQUEST, "A frame is a JSON object with a string `type`.")
    return frame


def message_id(frame: dict[str, Any]) -> str:
    value = frame.get("id")
    if not isinstance(value, str) or not _MESSAGE_ID.match(value):
        raise ProtocolError(BAD_REQUEST, "`id` must be 1-128 letters, digits or . _ : - (a UUID is fine).")
    return value


def channel_path(frame: dict[str, Any]) -> str:
    channel = frame.get("channel")
    try:
        channel_segments(channel)
    except ChannelNameError as error:
        raise ProtocolError(BAD_REQUEST, str(error)) from None
    return str(channel)  # channel_segments accepts only a str


@dataclass(frozen=True)
class PublishedEvent:
    """One event of a publish that passed the per-event rules, parsed."""

    identifier: str
    index: int
    payload: Any


@dataclass
class PublishOutcome:
    accepted: list[PublishedEvent] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)

    def successful(self) -> list[dict[str, Any]]:
        return [{"identifier": event.identifier, "index": event.index} for event in self.accepted]


def inbound_publish(sub: str, message: dict[str, Any]) -> tuple[str, PublishOutcome]:
    """Check a publish (WebSocket frame or HTTP body) to the caller's inbound channel."""
    channel = channel_path(message)
    if not owns_channel(sub, channel, namespace=INBOUND):
        raise ProtocolError(UNAUTHORIZED, "You can only publish to your own inbound channel, /inbound/<your id>.")
    return channel, publish_events(message.get("events"))


def publish_events(raw: Any) -> PublishOutcome:
    """Check a publish's `events`: the list as a whole raises, single events fail alone."""
    if not isinstance(raw, list) or not raw:
        raise ProtocolError(BAD_REQUEST, "`events` must be a non-empty list of JSON strings.")
    if len(raw) > MAX_EVENTS_PER_PUBLISH:
        raise ProtocolError(BAD_REQUEST, f"At most {MAX_EVENTS_PER_PUBLISH} events per publish; got {len(raw)}.")
    outcome = PublishOutcome()
    for index, event in enumerate(raw):
        identifier = str(uuid.uuid4())
        try:
            payload = _event_payload(event)
        except ValueError as problem:
            outcome.failed.append({"identifier": identifier, "index": index, "code": 400, "message": str(problem)})
            continue
        outcome.accepted.append(PublishedEvent(identifier=identifier, index=index, payload=payload))
    return outcome


def _event_payload(event: Any) -> Any:
    """The parsed event; a ValueError says what is wrong with it."""
    if not isinstance(event, str):
        # A ValueError, like every other problem with an event: the caller reports them alike.
        raise ValueError("Each event must be a string holding JSON (JSON.stringify it).")  # noqa: TRY004
    size = len(event.encode("utf-8", "surrogatepass"))
    if size > MAX_EVENT_BYTES:
        raise ValueError(f"The event is {size} bytes; the limit is {MAX_EVENT_BYTES}.")
    try:
        return parse_json(event)
    except ValueError:
        raise ValueError("The event is not valid JSON.") from None


# --- server messages ------------------------------------------------------------------------


def connection_ack() -> dict[str, Any]:
    return {"type": "connection_ack", "connectionTimeoutMs": CONNECTION_TIMEOUT_MS}


def keepalive() -> dict[str, Any]:
    return {"type": "ka"}


def answer(kind: str, frame_id: str | None, **body: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"type": kind}
    if frame_id is not None:
        message["id"] = frame_id
    message.update(body)
    return message


def failure(kind: str, frame_id: str | None, error: ProtocolError) -> dict[str, Any]:
    return answer(kind, frame_id, errors=error.as_errors())


def data(subscription_id: str, event: str) -> dict[str, Any]:
    return {"type": "data", "id": subscription_id, "event": event}


def data_frame(subscription_id: str, encoded_event: str) -> str:
    """The text of a `data` frame whose event is already a JSON string literal (quoted and
    escaped), so the event, the bulk of the frame, is not serialised once per connection."""
    return f'{{"type": "data", "id": {json.dumps(subscription_id)}, "event": {encoded_event}}}'
