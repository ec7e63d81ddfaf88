"""Channel names and who owns them.

Each user has two channels named after their `sub`: `/inbound/<sub>` (they publish chat
requests) and `/outbound/<sub>` (they subscribe to answers). Names follow AppSync Events'
rules: a namespace and up to four more segments, each 1-50 letters, digits or dashes.
"""
from __future__ import annotations

import re
from typing import Any

INBOUND = "inbound"
OUTBOUND = "outbound"
# AppSync Events caps one event at 240 KB and one publish at five events; a chat request is one
# event, whichever door it came through.
MAX_EVENT_BYTES = 240 * 1024
MAX_EVENTS_PER_PUBLISH = 5
_SEGMENT = re.compile(r"^[A-Za-z0-9-]{1,50}$")
MAX_SEGMENTS = 5


class ChannelNameError(ValueError):
    pass


def channel_segments(channel: object) -> list[str]:
    """Split and check a channel path; raises `ChannelNameError` with the broken rule."""
    if not isinstance(channel, str) or not channel.startswith("/"):
        raise ChannelNameError("A channel is a path that starts with '/', like /outbound/<your id>.")
    segments = channel[1:].split("/")
    if len(segments) > MAX_SEGMENTS:
        raise ChannelNameError(f"A channel has at most {MAX_SEGMENTS} segments.")
    for index, segment in enumerate(segments):
        if segment == "*" and index == len(segments) - 1:
            continue  # a trailing wildcard, as in a subscription to /outbound/*
        if not _SEGMENT.match(segment):
            raise ChannelNameError("Channel segments are 1-50 letters, digits or dashes.")
    return segments


def owns_channel(sub: str, channel: str, *, namespace: str) -> bool:
    """True when `channel` is exactly `/<namespace>/<sub>`."""
    try:
        segments = channel_segments(channel)
    except ChannelNameError:
        return False
    return bool(sub) and segments == [namespace, sub]


def may_subscribe(sub: str, channel: str) -> bool:
    """The subscribe rule of both doors: exactly the caller's own `/outbound/<sub>`."""
    return owns_channel(sub, channel, namespace=OUTBOUND)


def caller_sub(identity: Any) -> str:
    """The caller's `sub` from the `identity` AppSync hands a handler (a Cognito user's
    claims); IAM callers have none, so they own no channel."""
    if not isinstance(identity, dict):
        return ""
    claims = identity.get("claims")
    if not isinstance(claims, dict):
        claims = {}
    return str(identity.get("sub") or claims.get("sub") or "")


def inbound_channel(sub: str) -> str:
    """Where `sub` publishes chat requests."""
    return f"/{INBOUND}/{sub}"


def outbound_channel(sub: str) -> str:
    """Where `sub` subscribes to answers."""
    return f"/{OUTBOUND}/{sub}"


def outbound_group_name(sub: str) -> str:
    """The Channels group a user's outbound channel maps to (group names allow no '/')."""
    return f"outbound.{sub}"
