"""Reads for the chat page: who the user is, which models they may use, how much they used.

The data plane's published policy and its usage windows are the truth here (the same the
pipeline enforces), so the page never disagrees with the gateway about a quota.
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.translation import gettext, gettext_noop

from accounts.cognito_tokens import user_has_cognito_identity
from dataplane.channels import inbound_channel, outbound_channel
from dataplane.errors import StoreUnavailableError
from dataplane.pipeline import window_usage
from gateway_project.gateway import gateway


def me_for(*, user: Any) -> dict[str, Any]:
    current = gateway()
    policy = current.policies.get(user.sub)
    models = [
        {"id": model.model_id, "name": model.display_name, "provider": model.provider}
        for model in (policy.models if policy else ())
    ]
    usage: dict[str, Any] = {}
    if policy is not None:
        try:
            usage = window_usage(current, user.sub, policy)
        except StoreUnavailableError:
            usage = {}
    return {
        "sub": user.sub,
        "username": user.get_username(),
        "displayName": user.get_full_name() or user.get_username(),
        "models": models,
        "usage": usage,
        "channels": {"inbound": inbound_channel(user.sub), "outbound": outbound_channel(user.sub)},
    }


NO_COGNITO_MESSAGE = gettext_noop(
    "Chat on this gateway runs on AWS and needs an Amazon Cognito sign-in. "
    "Sign out, then sign in with Amazon Cognito."
)


def transport_for(*, user: Any) -> dict[str, Any]:
    """Where this user's chat page connects: Django's WebSocket or the AppSync Events API.

    With `appsync`, a user without a Cognito identity has no token AppSync would accept: they
    chat locally where the deployment allows it (`GATEWAY_CHAT_LOCAL_FALLBACK`), otherwise the
    page says how to get one.
    """
    if settings.GATEWAY_CHAT_TRANSPORT != "appsync":
        return {"transport": "local"}
    if user_has_cognito_identity(user=user):
        return {
            "transport": "appsync",
            "realtimeUrl": settings.GATEWAY_EVENTS_REALTIME_ENDPOINT,
            "httpUrl": settings.GATEWAY_EVENTS_HTTP_ENDPOINT,
            "tokenUrl": "/api/token",
        }
    if settings.GATEWAY_CHAT_LOCAL_FALLBACK:
        return {"transport": "local"}
    # The page shows this message as it is: it is worded here, in the user's language.
    return {"transport": "unavailable", "message": gettext(NO_COGNITO_MESSAGE)}
