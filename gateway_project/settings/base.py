"""Settings shared by every mode. Each mode module (`local`, `production`, `test`) imports this.

Every environment variable is read through `setting(NAME)`: its type, default and help live in
one table (`gateway_project/settings/table.py`), from which `.env.example` is generated.
"""
from __future__ import annotations

from pathlib import Path

import environ

from gateway_project.settings.table import reader

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
# A developer's `.env` is read when present; real environment variables win over it.
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
setting = reader(mode="")

SECRET_KEY = setting("DJANGO_SECRET_KEY")
DEBUG = setting("DJANGO_DEBUG")
ALLOWED_HOSTS: list[str] = setting("DJANGO_ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS: list[str] = setting("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "gateway_project.apps.GatewayAdminConfig",  # django.contrib.admin with the gateway's site
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
    "api",
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
    "default": env.db_url_config(setting("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"),
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
TIME_ZONE = setting("DJANGO_TIME_ZONE")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
# The ASGI app serves static files itself in the embedded default (see asgi.py).
SERVE_STATIC = setting("DJANGO_SERVE_STATIC")

# --- accounts (django-allauth) ----------------------------------------------------------
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"
ACCOUNT_LOGOUT_REDIRECT_URL = "/accounts/login/"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = setting("ACCOUNT_EMAIL_VERIFICATION")
ACCOUNT_ALLOW_SIGNUPS = setting("ACCOUNT_ALLOW_SIGNUPS")
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "accounts.adapters.SocialAccountAdapter"
SOCIALACCOUNT_ONLY = False
SOCIALACCOUNT_LOGIN_ON_GET = False

# Amazon Cognito is switched on when its three settings are present (see .env.example).
COGNITO_DOMAIN = setting("COGNITO_DOMAIN")
COGNITO_CLIENT_ID = setting("COGNITO_CLIENT_ID")
COGNITO_CLIENT_SECRET = setting("COGNITO_CLIENT_SECRET")
COGNITO_ENABLED = bool(COGNITO_DOMAIN and COGNITO_CLIENT_ID)
# Keep each Cognito user's refresh token (allauth's SocialToken): with the appsync chat
# transport, Django refreshes the ID token the page hands to AppSync (accounts/cognito_tokens.py).
SOCIALACCOUNT_STORE_TOKENS = COGNITO_ENABLED
# A cached ID token is refreshed when it has less than this left (the page asks again well
# before expiry, so it never presents a token about to lapse).
COGNITO_ID_TOKEN_REFRESH_MARGIN_SECONDS = setting("COGNITO_ID_TOKEN_REFRESH_MARGIN_SECONDS")
COGNITO_TOKEN_TIMEOUT_SECONDS = setting("COGNITO_TOKEN_TIMEOUT_SECONDS")
SOCIALACCOUNT_PROVIDERS: dict = {}
if COGNITO_ENABLED:
    SOCIALACCOUNT_PROVIDERS["amazon_cognito"] = {
        "DOMAIN": COGNITO_DOMAIN,
        "APPS": [{"client_id": COGNITO_CLIENT_ID, "secret": COGNITO_CLIENT_SECRET, "key": ""}],
    }

# --- channels and cache -----------------------------------------------------------------
REDIS_LAYER_CONNECTIONS = 2000  # per process; Redis's own default limit is 10,000 clients


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
            # redis-py's async pool refuses a 101st concurrent command (MaxConnectionsError), and
            # a refused send ends a turn as if its user had left: with 1,000 users streaming on
            # one process that lost 217 answers (bench/ws_chat.py). Redis itself takes 10,000.
            "CONFIG": {
                "hosts": [{"address": redis_url, "socket_timeout": 15, "max_connections": REDIS_LAYER_CONNECTIONS}],
                "capacity": 20000,
                "expiry": 30,
            },
        }
    }
    caches = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}}
    return layers, caches


REDIS_URL = setting("REDIS_URL")
CHANNEL_LAYERS, CACHES = redis_or_local(REDIS_URL)

# --- celery -----------------------------------------------------------------------------
CELERY_BROKER_URL = setting("CELERY_BROKER_URL") or REDIS_URL or "memory://localhost/"
CELERY_RESULT_BACKEND = setting("CELERY_RESULT_BACKEND") or REDIS_URL or "cache+memory://"
CELERY_TASK_ALWAYS_EAGER = setting("CELERY_TASK_ALWAYS_EAGER")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = setting("CELERY_TASK_TIME_LIMIT")
CELERY_TASK_SOFT_TIME_LIMIT = setting("CELERY_TASK_SOFT_TIME_LIMIT")
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE

# --- where the chat page connects -----------------------------------------------------------
# local: Django's own /event/realtime (session cookie). appsync: the deployed AppSync Events
# API (the stack's endpoints), authorised by the user's Cognito ID token.
GATEWAY_CHAT_TRANSPORT = setting("GATEWAY_CHAT_TRANSPORT")
GATEWAY_EVENTS_REALTIME_ENDPOINT = setting("GATEWAY_EVENTS_REALTIME_ENDPOINT")
GATEWAY_CHAT_LOCAL_FALLBACK = setting("GATEWAY_CHAT_LOCAL_FALLBACK")

# --- the gateway's data plane, as Django runs it (gateway_project/gateway.py) ----------------
# With the appsync transport the bars must read the windows the Lambda writes: DynamoDB.
GATEWAY_STORE = (
    setting("GATEWAY_STORE", default="dynamodb") if GATEWAY_CHAT_TRANSPORT == "appsync" else setting("GATEWAY_STORE")
)
GATEWAY_SQLITE_PATH = str(BASE_DIR / setting("GATEWAY_SQLITE_PATH"))
GATEWAY_DYNAMODB_ENDPOINT_URL = setting("GATEWAY_DYNAMODB_ENDPOINT_URL")
GATEWAY_POLICIES_TABLE = setting("GATEWAY_POLICIES_TABLE")
GATEWAY_USAGE_TABLE = setting("GATEWAY_USAGE_TABLE")
GATEWAY_CACHE_TABLE = setting("GATEWAY_CACHE_TABLE")
AWS_REGION = setting("AWS_REGION")
GATEWAY_MONTH_TIMEZONE = setting("GATEWAY_MONTH_TIMEZONE")
GATEWAY_CACHE_TTL_SECONDS = setting("GATEWAY_CACHE_TTL_SECONDS")
GATEWAY_POLICY_CACHE_SECONDS = setting("GATEWAY_POLICY_CACHE_SECONDS")
GATEWAY_TELEMETRY_SINK = setting("GATEWAY_TELEMETRY_SINK")
GATEWAY_LAKE_DIR = str(BASE_DIR / setting("GATEWAY_LAKE_DIR"))
GATEWAY_FIREHOSE_STREAM = setting("GATEWAY_FIREHOSE_STREAM")
GATEWAY_METRICS_NAMESPACE = setting("GATEWAY_METRICS_NAMESPACE")
GATEWAY_BEDROCK_ENDPOINT_URL = setting("GATEWAY_BEDROCK_ENDPOINT_URL")
GATEWAY_BEDROCK_CONNECT_TIMEOUT = setting("GATEWAY_BEDROCK_CONNECT_TIMEOUT")
GATEWAY_BEDROCK_READ_TIMEOUT = setting("GATEWAY_BEDROCK_READ_TIMEOUT")
GATEWAY_BEDROCK_MAX_ATTEMPTS = setting("GATEWAY_BEDROCK_MAX_ATTEMPTS")
GATEWAY_DEMO_CHUNK_DELAY = setting("GATEWAY_DEMO_CHUNK_DELAY")
GATEWAY_EVENTS_HTTP_ENDPOINT = setting("GATEWAY_EVENTS_HTTP_ENDPOINT")
GATEWAY_GUARDRAIL_ID = setting("GATEWAY_GUARDRAIL_ID")
GATEWAY_GUARDRAIL_VERSION = setting("GATEWAY_GUARDRAIL_VERSION")
GATEWAY_TURN_WORKERS = setting("GATEWAY_TURN_WORKERS")
GATEWAY_STORE_WORKERS = setting("GATEWAY_STORE_WORKERS")
GATEWAY_SHUTDOWN_GRACE_SECONDS = setting("GATEWAY_SHUTDOWN_GRACE_SECONDS")

# --- chat (the AppSync-Events-style WebSocket and POST /event) -----------------------------
CHAT_KEEPALIVE_SECONDS = setting("CHAT_KEEPALIVE_SECONDS")
CHAT_FRAME_WINDOW_MS = setting("CHAT_FRAME_WINDOW_MS")  # chat/outbound.py
CHAT_PUBLISH_BURST = setting("CHAT_PUBLISH_BURST")  # chat/flood.py
CHAT_PUBLISH_PER_SECOND = setting("CHAT_PUBLISH_PER_SECOND")
CHAT_RATE_LIMIT_CACHE = "default"  # the Django cache holding the allowances
CHAT_ABUSE_STRIKES = setting("CHAT_ABUSE_STRIKES")

# --- analytics (Athena in AWS, DuckDB on the local lake otherwise) --------------------------
ANALYTICS_ENGINE = setting("ANALYTICS_ENGINE")
ATHENA_WORKGROUP = setting("ATHENA_WORKGROUP")
ATHENA_DATABASE = setting("ATHENA_DATABASE")
ATHENA_OUTPUT_LOCATION = setting("ATHENA_OUTPUT_LOCATION")
ATHENA_ENDPOINT_URL = setting("ATHENA_ENDPOINT_URL")
GATEWAY_LAKE_BUCKET = setting("GATEWAY_LAKE_BUCKET")
GATEWAY_LAKE_PREFIX = setting("GATEWAY_LAKE_PREFIX")
GATEWAY_BASE_URL = setting("GATEWAY_BASE_URL")
GATEWAY_REPORT_TIMEZONE = setting("GATEWAY_REPORT_TIMEZONE") or GATEWAY_MONTH_TIMEZONE
GATEWAY_REPORT_RUNS_IN_BACKGROUND = setting("GATEWAY_REPORT_RUNS_IN_BACKGROUND")
GATEWAY_BUDGET_ALERTS_TOPIC_ARN = setting("GATEWAY_BUDGET_ALERTS_TOPIC_ARN")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": setting("DJANGO_LOG_LEVEL")},
    "loggers": {"daphne": {"level": "WARNING"}, "django.channels.server": {"level": "WARNING"}},
}
