"""One entry below both doors: run what a user published on their inbound channel.

The AppSync Lambda handler and the Channels door both hand the published payloads here, in
order: each chat request becomes one turn, each `{"action": "cancel"}` stops running turns.
How a cancel travels differs by door, and is the only thing the doors choose:

- Channels runs every turn in this process: it sets the turn's `cancel` event itself (and
  never sends cancels here).
- Lambda runs each publish in its own invocation: a cancel leaves a short-lived marker in the
  store, and the invocation streaming the turn polls for it (`watch_store_cancels`).
"""
from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from dataplane.channels import INBOUND, owns_channel
from dataplane.errors import InternalError, StoreUnavailableError, ValidationError
from dataplane.gateway import Gateway
from dataplane.outbound import ClientGoneError, Outbound
from dataplane.pipeline import Identity, chat_turn
from dataplane.requests import cancel_target, conversation_id_of, decode_payload
from dataplane.stopping import CANCEL_POLL_SECONDS, TurnStop
from dataplane.telemetry.record import RequestRecord

logger = logging.getLogger("dataplane.inbound")

# A marker must outlive any turn it may have to stop (Lambda's timeout is 5 minutes); after
# that it is noise, and the store's TTL removes it.
CANCEL_MARKER_TTL_SECONDS = 15 * 60


def run_published_events(
    *,
    gateway: Gateway,
    identity: Identity,
    channel: str,
    payloads: Sequence[Any],
    outbound: Outbound,
    entry: str,
    cancel: threading.Event | None = None,
    remaining_ms: Callable[[], int] | None = None,
    watch_store_cancels: bool = False,
    cancel_poll_seconds: float = CANCEL_POLL_SECONDS,
) -> list[RequestRecord]:
    """Run the published payloads in order; returns the telemetry record of each chat turn."""
    records: list[RequestRecord] = []
    for payload in payloads:
        conversation_id = cancel_target(_parsed(payload))
        if conversation_id is not None:
            _request_cancel(gateway, identity, channel, conversation_id, outbound)
            continue
        stop = TurnStop(
            cancel=cancel,
            cancelled_in_store=_store_cancel_check(gateway, identity, payload) if watch_store_cancels else None,
            remaining_ms=remaining_ms,
            poll_seconds=cancel_poll_seconds,
        )
        records.append(
            chat_turn(
                gateway=gateway,
                identity=identity,
                channel=channel,
                payload=payload,
                outbound=outbound,
                entry=entry,
                stop=stop,
            )
        )
    return records


def _parsed(payload: Any) -> Any:
    """A door may hand over JSON text; what is not JSON is the turn's to refuse."""
    try:
        return decode_payload(payload)
    except ValidationError:
        return payload


def _store_cancel_check(gateway: Gateway, identity: Identity, payload: Any) -> Callable[[], bool]:
    conversation_id = conversation_id_of(_parsed(payload)) or ""
    since = gateway.clock()
    return lambda: gateway.store.cancel_requested(sub=identity.sub, conversation_id=conversation_id, since=since)


def _request_cancel(
    gateway: Gateway, identity: Identity, channel: str, conversation_id: str, outbound: Outbound
) -> None:
    # A marker is keyed by the caller's own `sub`, so a cancel on someone else's channel
    # could only stop the caller's turns; it is ignored all the same, like any foreign publish.
    if not owns_channel(identity.sub, channel, namespace=INBOUND):
        logger.warning("cancel on a channel the caller does not own: %s", channel)
        return
    try:
        gateway.store.cancel_request(
            sub=identity.sub, conversation_id=conversation_id, ttl_seconds=CANCEL_MARKER_TTL_SECONDS
        )
    except StoreUnavailableError as error:
        logger.warning("cancel for %s failed: %s", identity.sub, error.message)
        reference = str(uuid.uuid4())
        failure = InternalError(f"The gateway could not stop the answer; try again (reference {reference}).")
        with contextlib.suppress(ClientGoneError):
            outbound.send({"error": failure.to_wire(request_id=reference), "conversationId": conversation_id or None})
