"""Settings for the test suite.

PostgreSQL and Redis are used for real when `DATABASE_URL` / `REDIS_URL` point at them (CI and
this machine do); otherwise SQLite and the in-memory layer. Each pytest process gets its own
test database name, so parallel runs on one server do not trample each other.
"""
import os
import tempfile

from gateway_project.settings.base import *  # noqa: F403
from gateway_project.settings.base import DATABASES
from gateway_project.settings.table import reader

setting = reader(mode="test")

SECRET_KEY = "test-only-secret-key-not-for-production-0123456789abcdef"  # noqa: S105 - tests only
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = setting("CELERY_TASK_ALWAYS_EAGER")
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Tests that request a run read its result at once; the browser test of "Run now" turns this on.
GATEWAY_REPORT_RUNS_IN_BACKGROUND = setting("GATEWAY_REPORT_RUNS_IN_BACKGROUND")
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

DATABASES["default"].setdefault("TEST", {})
if DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"]["NAME"] = f"test_gateway_{os.getpid()}"

_scratch = tempfile.mkdtemp(prefix="gateway-test-")
GATEWAY_SQLITE_PATH = os.path.join(_scratch, "dataplane.sqlite3")
GATEWAY_LAKE_DIR = os.path.join(_scratch, "lake")
GATEWAY_POLICY_CACHE_SECONDS = 0.0

# Process-local cache: allauth's login throttles and the publish allowances must not leak
# between test runs through a shared Redis. Tests of the Redis cache build their own.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
