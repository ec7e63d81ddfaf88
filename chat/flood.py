"""Publish flood control, per user: every WebSocket connection, the HTTP door and every
server process draw on one allowance.

The allowance is a fixed window in Django's cache (Redis when `REDIS_URL` is set, so all
processes share it): at most `CHAT_PUBLISH_BURST` publishes per `burst / rate` seconds, which
is the sustained `CHAT_PUBLISH_PER_SECOND`. A per-connection bucket let one user open 40
connections and get 40 allowances; a count keyed by the user cannot be multiplied that way.
`add` then `incr` are atomic on Redis and on the local-memory cache, so racing publishes are
counted once each.
"""
from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import caches

KEY_PREFIX = "chat:publishes"


def _window_seconds() -> float:
    rate = max(float(settings.CHAT_PUBLISH_PER_SECOND), 1e-6)
    return max(1.0, settings.CHAT_PUBLISH_BURST / rate)


async def publish_allowed(sub: str) -> bool:
    """Count one publish for `sub`; False once the user's allowance in this window is spent."""
    window = _window_seconds()
    cache = caches[settings.CHAT_RATE_LIMIT_CACHE]
    key = f"{KEY_PREFIX}:{sub}:{int(time.time() // window)}"
    await cache.aadd(key, 0, timeout=int(window) + 1)
    try:
        count = await cache.aincr(key)
    except ValueError:  # the key expired between add and incr: this is the window's first
        await cache.aadd(key, 1, timeout=int(window) + 1)
        count = 1
    return count <= settings.CHAT_PUBLISH_BURST
