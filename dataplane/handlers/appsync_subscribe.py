"""Lambda: the `outbound` namespace's onSubscribe handler.

A subscriber may only listen to `/outbound/<their own sub>`; anything else is refused with
AppSync's UnauthorizedException, which AppSync turns into a `subscribe_error`.
"""
from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import AppSyncEventsResolver
from aws_lambda_powertools.event_handler.events_appsync.exceptions import UnauthorizedException

from dataplane.channels import OUTBOUND, owns_channel
from dataplane.handlers.appsync_chat import identity_of

logger = Logger(service="ai-gateway-subscribe")
app = AppSyncEventsResolver()


def may_subscribe(sub: str, channel: str) -> bool:
    return owns_channel(sub, channel, namespace=OUTBOUND)


@app.on_subscribe("/outbound/*")
def _subscribe() -> None:
    event = app.current_event.raw_event
    channel = app.current_event.info.channel_path
    if not may_subscribe(identity_of(event).sub, channel):
        logger.warning("refused subscription", extra={"channel": channel})
        raise UnauthorizedException("You can only subscribe to your own outbound channel.")


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> Any:
    return app.resolve(event, context)
