"""Settings shared by every mode. Each mode module (`local`, `production`, `test`) imports this.

Every variable read here is documented in `.env.example`. App-level tunables of the gateway are
read at call time through `gateway_project.gateway`, so `override_settings` works in tests.
"""
from __future__ import annotations

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
# A developer's `.env` is read when present; real environment variables win over it.
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS: list[str] = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS: list[str] = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.amazon_cognito",
    "django_celery_beat",
    "accounts",
    "quotas",
    "analytics",
    "chat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # After sessions (the chosen language lives there), before CommonMiddleware.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.languages.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "gateway_project.urls"
ASGI_APPLICATION = "gateway_project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.roles",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
# The browser's Accept-Language picks one of these unless the user chose one (session/cookie).
LANGUAGES = [("en", "English"), ("ko", "한국어")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
# The ASGI app serves static files itself in the embedded default (see asgi.py).
SERVE_STATIC = env.bool("DJANGO_SERVE_STATIC", default=False)

# --- accounts (django-allauth) ----------------------------------------------------------
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"
ACCOUNT_LOGOUT_REDIRECT_URL = "/accounts/login/"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = env("ACCOUNT_EMAIL_VERIFICATION", default="none")
ACCOUNT_ALLOW_SIGNUPS = env.bool("ACCOUNT_ALLOW_SIGNUPS", default=True)
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "accounts.adapters.SocialAccountAdapter"
SOCIALACCOUNT_ONLY = False
SOCIALACCOUNT_LOGIN_ON_GET = False

# Amazon Cognito is switched on when its three settings are present (see .env.example).
COGNITO_DOMAIN = env("COGNITO_DOMAIN", default="")
COGNITO_CLIENT_ID = env("COGNITO_CLIENT_ID", default="")
COGNITO_CLIENT_SECRET = env("COGNITO_CLIENT_SECRET", default="")
COGNITO_ENABLED = bool(COGNITO_DOMAIN and COGNITO_CLIENT_ID)
# Keep each Cognito user's refresh token (allauth's SocialToken): with the appsync chat
# transport, Django refreshes the ID token the page hands to AppSync (accounts/cognito_tokens.py).
SOCIALACCOUNT_STORE_TOKENS = COGNITO_ENABLED
# A cached ID token is refreshed when it has less than this left (the page asks again well
# before expiry, so it never presents a token about to lapse).
COGNITO_ID_TOKEN_REFRESH_MARGIN_SECONDS = env.int("COGNITO_ID_TOKEN_REFRESH_MARGIN_SECONDS", default=300)
COGNITO_TOKEN_TIMEOUT_SECONDS = env.float("COGNITO_TOKEN_TIMEOUT_SECONDS", default=10.0)
SOCIALACCOUNT_PROVIDERS: dict = {}
if COGNITO_ENABLED:
    SOCIALACCOUNT_PROVIDERS["amazon_cognito"] = {
        "DOMAIN": COGNITO_DOMAIN,
        "APPS": [{"client_id": COGNITO_CLIENT_ID, "secret": COGNITO_CLIENT_SECRET, "key": ""}],
    }

# --- channels and cache -----------------------------------------------------------------
def redis_or_local(redis_url: str) -> tuple[dict, dict]:
    """The channel layer and the cache: Redis when there is one, so every server process
    shares them (answers, cancels and the per-user publish allowance); else process-local."""
    if not redis_url:
        return (
            {"default": {"BACKEND": "chat.layers.ProcessLocalChannelLayer"}},
            {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        )
    layers = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py's default 5 s read timeout equals the layer's receive wait, so an idle
            # connection would be dropped; one process's connections share one queue, so its
            # capacity must hold every in-flight chunk (measured in bench/ws_chat.py).
            "CONFIG": {"hosts": [{"address": redis_url, "socket_timeout": 15}], "capacity": 20000, "expiry": 30},
        }
    }
    caches = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}}
    return layers, caches


REDIS_URL = env("REDIS_URL", default="")
CHANNEL_LAYERS, CACHES = redis_or_local(REDIS_URL)

# --- celery -----------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL or "memory://localhost/")
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=REDIS_URL or "cache+memory://")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=15 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=14 * 60)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE

# --- the gateway's data plane, as Django runs it (see gateway_project/gateway.py) -----------
# --- where the chat page connects -----------------------------------------------------------
# local: Django's own /event/realtime (session cookie). appsync: the deployed AppSync Events
# API (the stack's endpoints below), authorised by the user's Cognito ID token.
GATEWAY_CHAT_TRANSPORT = env("GATEWAY_CHAT_TRANSPORT", default="local")
GATEWAY_EVENTS_HTTP_ENDPOINT = env("GATEWAY_EVENTS_HTTP_ENDPOINT", default="")
GATEWAY_EVENTS_REALTIME_ENDPOINT = env("GATEWAY_EVENTS_REALTIME_ENDPOINT", default="")
# appsync only: a user without a Cognito identity (a local account, e.g. the bootstrap admin)
# chats through Django's own WebSocket instead of being told to sign in with Cognito.
GATEWAY_CHAT_LOCAL_FALLBACK = env.bool("GATEWAY_CHAT_LOCAL_FALLBACK", default=False)
# With the appsync transport the bars must read the windows the Lambda writes: DynamoDB.
GATEWAY_STORE = env("GATEWAY_STORE", default="dynamodb" if GATEWAY_CHAT_TRANSPORT == "appsync" else "sqlite")
GATEWAY_SQLITE_PATH = env("GATEWAY_SQLITE_PATH", default=str(BASE_DIR / "var" / "dataplane.sqlite3"))
GATEWAY_DYNAMODB_ENDPOINT_URL = env("GATEWAY_DYNAMODB_ENDPOINT_URL", default="")
GATEWAY_POLICIES_TABLE = env("GATEWAY_POLICIES_TABLE", default="gateway-policies")
GATEWAY_USAGE_TABLE = env("GATEWAY_USAGE_TABLE", default="gateway-usage")
GATEWAY_CACHE_TABLE = env("GATEWAY_CACHE_TABLE", default="gateway-cache")
AWS_REGION = env("AWS_REGION", default="us-east-1")
GATEWAY_MONTH_TIMEZONE = env("GATEWAY_MONTH_TIMEZONE", default="UTC")
GATEWAY_CACHE_TTL_SECONDS = env.int("GATEWAY_CACHE_TTL_SECONDS", default=24 * 3600)
GATEWAY_POLICY_CACHE_SECONDS = env.float("GATEWAY_POLICY_CACHE_SECONDS", default=5.0)
GATEWAY_TELEMETRY_SINK = env("GATEWAY_TELEMETRY_SINK", default="lake")  # comma list: stdout,lake,firehose
GATEWAY_LAKE_DIR = env("GATEWAY_LAKE_DIR", default=str(BASE_DIR / "var" / "lake"))
GATEWAY_FIREHOSE_STREAM = env("GATEWAY_FIREHOSE_STREAM", default="")
GATEWAY_METRICS_NAMESPACE = env("GATEWAY_METRICS_NAMESPACE", default="AIGateway")
GATEWAY_BEDROCK_ENDPOINT_URL = env("GATEWAY_BEDROCK_ENDPOINT_URL", default="")
# Threads per web process for models that only stream synchronously (Bedrock); the demo and
# OpenAI-compatible models stream on the event loop, without a thread or a cap (chat/turns.py).
GATEWAY_TURN_WORKERS = env.int("GATEWAY_TURN_WORKERS", default=32)
# Threads per web process for a turn's short blocking steps (policy, reserve, settle, telemetry).
GATEWAY_STORE_WORKERS = env.int("GATEWAY_STORE_WORKERS", default=8)
GATEWAY_DEMO_CHUNK_DELAY = env("GATEWAY_DEMO_CHUNK_DELAY", default="")  # seconds between demo chunks
GATEWAY_BEDROCK_READ_TIMEOUT = env("GATEWAY_BEDROCK_READ_TIMEOUT", default="")
GATEWAY_BEDROCK_MAX_ATTEMPTS = env("GATEWAY_BEDROCK_MAX_ATTEMPTS", default="")
# The stack's default Bedrock guardrail (stack outputs); policies choosing "the stack's default" use it.
GATEWAY_GUARDRAIL_ID = env("GATEWAY_GUARDRAIL_ID", default="")
GATEWAY_GUARDRAIL_VERSION = env("GATEWAY_GUARDRAIL_VERSION", default="")

# --- chat (the AppSync-Events-style WebSocket and POST /event) -----------------------------
CHAT_KEEPALIVE_SECONDS = env.float("CHAT_KEEPALIVE_SECONDS", default=60.0)  # "ka" interval
# After a turn's first token, text chunks arriving within this window leave as one frame
# (chat/outbound.py); 0 sends each chunk as it comes. 50 ms is 20 updates a second.
CHAT_FRAME_WINDOW_MS = env.float("CHAT_FRAME_WINDOW_MS", default=50.0)
# Per user, across connections, the HTTP door and processes (chat/flood.py).
CHAT_PUBLISH_BURST = env.int("CHAT_PUBLISH_BURST", default=10)  # publishes a user may burst
CHAT_PUBLISH_PER_SECOND = env.float("CHAT_PUBLISH_PER_SECOND", default=2.0)  # sustained rate
CHAT_RATE_LIMIT_CACHE = "default"  # the Django cache holding the allowances
CHAT_ABUSE_STRIKES = env.int("CHAT_ABUSE_STRIKES", default=50)  # refusals in a row before closing

# --- analytics (Athena in AWS, DuckDB on the local lake otherwise) --------------------------
ANALYTICS_ENGINE = env("ANALYTICS_ENGINE", default="duckdb")  # duckdb | athena
ATHENA_WORKGROUP = env("ATHENA_WORKGROUP", default="primary")
ATHENA_DATABASE = env("ATHENA_DATABASE", default="ai_gateway")
ATHENA_OUTPUT_LOCATION = env("ATHENA_OUTPUT_LOCATION", default="")
ATHENA_ENDPOINT_URL = env("ATHENA_ENDPOINT_URL", default="")
# Where Django publishes the `users` and `group_members` tables the reports join on Athena.
GATEWAY_LAKE_BUCKET = env("GATEWAY_LAKE_BUCKET", default="")
GATEWAY_LAKE_PREFIX = env("GATEWAY_LAKE_PREFIX", default="lake/")
# The address people open the site at: links in e-mailed report runs.
GATEWAY_BASE_URL = env("GATEWAY_BASE_URL", default="http://127.0.0.1:8000")
# Reports count calendar days in this zone unless a run names another one.
GATEWAY_REPORT_TIMEZONE = env("GATEWAY_REPORT_TIMEZONE", default=GATEWAY_MONTH_TIMEZONE or TIME_ZONE)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {"daphne": {"level": "WARNING"}, "django.channels.server": {"level": "WARNING"}},
}
