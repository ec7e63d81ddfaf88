"""Start-up checks of the chat transport: a misconfigured `appsync` transport is named at
`manage.py check` (and server start), not discovered by a user whose page cannot connect."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register

TRANSPORTS = ("local", "appsync")


@register()
def chat_transport_check(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    transport = settings.GATEWAY_CHAT_TRANSPORT
    if transport not in TRANSPORTS:
        return [
            Error(
                f"GATEWAY_CHAT_TRANSPORT is {transport!r}; it must be one of {', '.join(TRANSPORTS)}.", id="chat.E001"
            )
        ]
    if transport != "appsync":
        return []
    errors = []
    missing = [
        name
        for name in (
            "GATEWAY_EVENTS_REALTIME_ENDPOINT",
            "GATEWAY_EVENTS_HTTP_ENDPOINT",
            "COGNITO_DOMAIN",
            "COGNITO_CLIENT_ID",
        )
        if not getattr(settings, name)
    ]
    if missing:
        errors.append(Error(
            f"GATEWAY_CHAT_TRANSPORT=appsync needs {', '.join(missing)} (deploy/outputs_to_env.py prints them).",
            id="chat.E002",
        ))
    realtime = settings.GATEWAY_EVENTS_REALTIME_ENDPOINT
    if realtime and not realtime.startswith(("wss://", "ws://")):
        errors.append(
            Error(f"GATEWAY_EVENTS_REALTIME_ENDPOINT must be a wss:// URL, not {realtime!r}.", id="chat.E003")
        )
    if settings.GATEWAY_STORE != "dynamodb":
        errors.append(Error(
            "GATEWAY_CHAT_TRANSPORT=appsync needs GATEWAY_STORE=dynamodb: the usage bars must read the windows the "
            "chat Lambda writes.",
            id="chat.E004",
        ))
    return errors
