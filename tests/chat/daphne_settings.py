"""Settings for a daphne subprocess started by the chat tests and the chat benchmark.

The test settings, except that the data-plane store and the lake are the ones the parent
process uses (so policies it publishes reach the server) and static files are served.
"""
import os

from gateway_project.settings.base import redis_or_local
from gateway_project.settings.test import *  # noqa: F403
from gateway_project.settings.test import REDIS_URL

GATEWAY_SQLITE_PATH = os.environ["CHAT_LIVE_GATEWAY_SQLITE_PATH"]
GATEWAY_LAKE_DIR = os.environ["CHAT_LIVE_GATEWAY_LAKE_DIR"]
SERVE_STATIC = True
# A test's server stops at its end, sometimes with a turn still running: a short grace period.
GATEWAY_SHUTDOWN_GRACE_SECONDS = float(os.environ.get("GATEWAY_SHUTDOWN_GRACE_SECONDS", "1"))

# Like production: with Redis, the cache (the per-user publish allowance) is shared by every
# server process; a prefix per test keeps tests apart.
if REDIS_URL:
    _, CACHES = redis_or_local(REDIS_URL)
    CACHES["default"]["KEY_PREFIX"] = os.environ.get("CHAT_LIVE_CACHE_PREFIX", "live")
