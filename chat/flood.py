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

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import caches

KEY_PREFIX = "chat:publishes"


def _window_seconds() -> float:
    rate = max(float(settings.CHAT_PUBLISH_PER_SECOND), 1e-6)
    return max(1.0, settings.CHAT_PUBLISH_BURST / rate)


async def publish_allowed(sub: str) -> bool:
    """Count one publish for `sub`; False once the user's allowance in this window is spent."""
    return await sync_to_async(_count_publish, thread_sensitive=False)(sub) <= settings.CHAT_PUBLISH_BURST


def _count_publish(sub: str) -> int:
    # The synchronous `incr` is the atomic one (a lock in local memory, INCR on Redis); the
    # cache's async `aincr` is a get and a set, and concurrent publishes were lost in between
    # (bench/attacks.py counted 124 accepted of a burst of 10).
    window = _window_seconds()
    cache = caches[settings.CHAT_RATE_LIMIT_CACHE]
    key = f"{KEY_PREFIX}:{sub}:{int(time.time() // window)}"
    cache.add(key, 0, timeout=int(window) + 1)
    try:
        return cache.incr(key)
    except ValueError:  # the key expired between add and incr: this is the window's first
        cache.add(key, 1, timeout=int(window) + 1)
        return 1
