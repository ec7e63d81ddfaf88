"""Lambda: the `inbound` namespace's onPublish handler (invoked asynchronously by AppSync).

AppSync hands over the publish with the caller's verified identity; each event is one chat
turn, streamed back on the caller's `/outbound/<sub>` channel through AppSync's HTTP publish.
The Django Channels consumer calls `on_inbound_publish` too, with its own outbound.
"""
from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import AppSyncEventsResolver

from dataplane.gateway import Gateway
from dataplane.outbound import Outbound
from dataplane.pipeline import Identity, chat_turn, outbound_channel
from dataplane.requests import cancel_target
from dataplane.telemetry.record import RequestRecord

logger = Logger(service="ai-gateway-chat")
app = AppSyncEventsResolver()
_gateway: Gateway | None = None
_gateway_lock = threading.Lock()


def identity_of(event: dict[str, Any]) -> Identity:
    """The caller's `sub` from a Cognito identity; IAM callers have none and own no channel."""
    identity = event.get("identity") or {}
    sub = identity.get("sub") or (identity.get("claims") or {}).get("sub") or ""
    return Identity(sub=str(sub), username=str(identity.get("username") or ""))


def on_inbound_publish(
    event: dict[str, Any],
    *,
    gateway: Gateway,
    outbound: Outbound,
    cancel: threading.Event | None = None,
    entry: str = "appsync",
) -> list[RequestRecord]:
    """Run one chat turn per published event, in order.

    A `{"action": "cancel"}` event is not a chat request. The Channels door acts on it before
    calling here; in Lambda each turn is its own invocation, which another invocation cannot
    reach, so the cancel is dropped here (the turn ends by itself, billed as it streamed).
    """
    identity = identity_of(event)
    channel = ((event.get("info") or {}).get("channel") or {}).get("path", "")
    payloads = [item.get("payload") if isinstance(item, dict) else item for item in event.get("events") or []]
    return [
        chat_turn(
            gateway=gateway,
            identity=identity,
            channel=channel,
            payload=payload,
            outbound=outbound,
            cancel=cancel,
            entry=entry,
        )
        for payload in payloads
        if cancel_target(payload) is None
    ]


def lambda_gateway() -> Gateway:
    global _gateway
    with _gateway_lock:
        if _gateway is None:
            from dataplane.config import GatewayConfig

            _gateway = Gateway.from_config(GatewayConfig.from_environ())
        return _gateway


@functools.cache
def _publishing() -> tuple[Any, Any]:
    """One boto3 session (its credentials refresh themselves) and one HTTP connection pool
    per Lambda container, so a warm invocation builds neither again."""
    import boto3
    import urllib3

    pool = urllib3.PoolManager(timeout=urllib3.Timeout(connect=3, read=10), retries=urllib3.Retry(2))
    return boto3.session.Session(), pool


def _appsync_outbound(gateway: Gateway, sub: str) -> Outbound:
    from dataplane.appsync import AppSyncHttpOutbound

    session, pool = _publishing()
    return AppSyncHttpOutbound(
        endpoint=gateway.config.events_http_endpoint,
        channel=outbound_channel(sub),
        region=gateway.config.region,
        credentials=session.get_credentials().get_frozen_credentials(),
        http=pool,
    )


OutboundFactory = Callable[[Gateway, str], Outbound]
outbound_factory: OutboundFactory = _appsync_outbound


@app.on_publish("/inbound/*", aggregate=True)
def _chat_requests(payload: list[dict[str, Any]]) -> list[dict[str, Any]]:
    event = app.current_event.raw_event
    gateway = lambda_gateway()
    identity = identity_of(event)
    outbound = outbound_factory(gateway, identity.sub)
    try:
        on_inbound_publish(event, gateway=gateway, outbound=outbound)
    finally:
        flush = getattr(outbound, "flush", None)
        if flush is not None:
            flush()
    # Invoked asynchronously: AppSync ignores the answer; nobody subscribes to inbound.
    return []


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> Any:
    return app.resolve(event, context)
