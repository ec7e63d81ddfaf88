"""Every environment variable the project reads: the data plane's rows
(`dataplane.settings_table`) and the control plane's, in the order `.env.example` lists them.

The settings modules read each variable with `reader(mode=...)`, which takes the type and the
default from here; `python -m gateway_project.settings.env_example` writes `.env.example` from
the same rows (a test fails when the file is stale).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from dataplane.settings_table import DATA_PLANE_SETTINGS, ConfigError, Setting, value_of

DJANGO = "Django"
SERVICES = "database, Redis and Celery"
ACCOUNTS = "accounts"
TRANSPORT = "where the chat page connects"
CHAT = "chat"
ANALYTICS = "analytics"

_CONTROL_PLANE_SETTINGS: tuple[Setting, ...] = (
    Setting("DJANGO_SETTINGS_MODULE", "str", "gateway_project.settings.local",
            "Which settings: gateway_project.settings.local (manage.py, asgi), .production or .test.", DJANGO),
    Setting("DJANGO_SECRET_KEY", "str", "",
            "Django's secret key; local has a development-only fallback.", DJANGO,
            mode_defaults={"local": "local-dev-only-not-secret-7d1f0c9a2b"}, required_in=("production",)),
    Setting("DJANGO_DEBUG", "bool", False,
            "Never on in front of users: no traceback may reach them.", DJANGO),
    Setting("DJANGO_ALLOWED_HOSTS", "list", ["127.0.0.1", "localhost"],
            "Host names the site answers to (comma list).", DJANGO,
            required_in=("production",)),
    Setting("DJANGO_CSRF_TRUSTED_ORIGINS", "list", [], "Origins trusted for CSRF (comma list).", DJANGO),
    Setting("DJANGO_TIME_ZONE", "str", "UTC", "Django's time zone (dates in the admin, Celery's schedules).", DJANGO),
    Setting("DJANGO_LOG_LEVEL", "str", "INFO", "Root log level.", DJANGO),
    Setting("DJANGO_SERVE_STATIC", "bool", False,
            "Serve static files from the ASGI app (always on in local; production uses WhiteNoise).", DJANGO),
    Setting("DJANGO_CONN_MAX_AGE", "int", 60, "Production only: seconds a database connection is reused.", DJANGO),
    Setting("DJANGO_SECURE_SSL_REDIRECT", "bool", True, "Production only: redirect HTTP to HTTPS.", DJANGO),
    Setting("DJANGO_SECURE_HSTS_SECONDS", "int", 31536000, "Production only: HSTS max-age.", DJANGO),
    Setting("DJANGO_EMAIL_BACKEND", "str", "django.core.mail.backends.smtp.EmailBackend",
            "Production only (local prints e-mails to the console).", DJANGO),
    Setting("DATABASE_URL", "str", "",
            "Django's database, e.g. postgres://user@127.0.0.1:5432/gateway; empty: the SQLite file "
            "var/db.sqlite3.", SERVICES, required_in=("production",)),
    Setting("REDIS_URL", "str", "",
            "Redis for the channel layer, the cache and Celery's broker, e.g. redis://127.0.0.1:6379/0; "
            "empty: process-local layer and cache.", SERVICES, required_in=("production",)),
    Setting("CELERY_BROKER_URL", "str", "", "Empty: REDIS_URL, else an in-memory broker.", SERVICES),
    Setting("CELERY_RESULT_BACKEND", "str", "", "Empty: REDIS_URL, else in memory.", SERVICES),
    Setting("CELERY_TASK_ALWAYS_EAGER", "bool", False,
            "Run Celery tasks in the web process (production never does).", SERVICES,
            mode_defaults={"local": True, "test": True}),
    Setting("CELERY_TASK_TIME_LIMIT", "int", 15 * 60, "Hard time limit of a task (s).", SERVICES),
    Setting("CELERY_TASK_SOFT_TIME_LIMIT", "int", 14 * 60, "Soft time limit of a task (s).", SERVICES),
    Setting("ACCOUNT_ALLOW_SIGNUPS", "bool", True, "Whether people may sign up with a local account.", ACCOUNTS,
            mode_defaults={"production": False}),
    Setting("ACCOUNT_EMAIL_VERIFICATION", "str", "none", "allauth's e-mail verification: none, optional, mandatory.",
            ACCOUNTS, mode_defaults={"production": "mandatory"}),
    Setting("COGNITO_DOMAIN", "str", "",
            "Amazon Cognito login switches on when COGNITO_DOMAIN and COGNITO_CLIENT_ID are set (the CDK stack "
            "prints them); the callback URL is /accounts/amazon-cognito/login/callback/.", ACCOUNTS),
    Setting("COGNITO_CLIENT_ID", "str", "", "", ACCOUNTS),
    Setting("COGNITO_CLIENT_SECRET", "str", "", "", ACCOUNTS),
    Setting("COGNITO_ID_TOKEN_REFRESH_MARGIN_SECONDS", "int", 300,
            "The chat page's ID token is refreshed (refresh_token grant) when fewer seconds than this are left.",
            ACCOUNTS),
    Setting("COGNITO_TOKEN_TIMEOUT_SECONDS", "float", 10.0, "Timeout of a call to Cognito's token endpoint (s).",
            ACCOUNTS),
    Setting("GATEWAY_CHAT_TRANSPORT", "str", "local",
            "local: Django's own WebSocket. appsync: the deployed AppSync Events API with the user's Cognito ID "
            "token; needs GATEWAY_EVENTS_REALTIME_ENDPOINT, GATEWAY_EVENTS_HTTP_ENDPOINT and COGNITO_* "
            "(deploy/outputs_to_env.py prints them all), and makes GATEWAY_STORE default to dynamodb.", TRANSPORT),
    Setting("GATEWAY_EVENTS_REALTIME_ENDPOINT", "str", "", "The AppSync Events realtime (WebSocket) endpoint.",
            TRANSPORT),
    Setting("GATEWAY_CHAT_LOCAL_FALLBACK", "bool", False,
            "appsync only: local accounts (no Cognito identity) chat through Django's WebSocket instead of being "
            "asked to sign in with Cognito.", TRANSPORT),
)

_AFTER_DATA_PLANE: tuple[Setting, ...] = (
    Setting("GATEWAY_TURN_WORKERS", "int", 32,
            "Demo and OpenAI-compatible models stream on the web process's event loop (no thread per turn, no "
            "cap); models that only stream synchronously (Bedrock) stream in a pool of this many threads per web "
            "process.", DATA_PLANE_SETTINGS[0].section),
    Setting("GATEWAY_STORE_WORKERS", "int", 8,
            "Threads per web process for a turn's short blocking steps (policy, reserve, settle, telemetry; on "
            "/v1 also the API key's lookup and usage count).",
            DATA_PLANE_SETTINGS[0].section),
    Setting("GATEWAY_SHUTDOWN_GRACE_SECONDS", "float", 20.0,
            "A stopping web process (SIGTERM) lets its running chat turns finish for up to this long, then stops the "
            "rest, which settle what they streamed (5 s more); keep it below the orchestrator's stop timeout.",
            DATA_PLANE_SETTINGS[0].section),
    Setting("CHAT_KEEPALIVE_SECONDS", "float", 60.0, "Keep-alive (`ka`) interval of the chat WebSocket.", CHAT),
    Setting("CHAT_FRAME_WINDOW_MS", "float", 50.0,
            "After a turn's first token, text chunks arriving within this many ms leave as one frame (the first "
            "token is never held back); 0 sends every chunk on its own.", CHAT),
    Setting("CHAT_PUBLISH_BURST", "int", 10,
            "The publish allowance per user, shared by all their connections, the HTTP door and every server "
            "process (through the cache: Redis when REDIS_URL is set): at most BURST publishes per "
            "BURST/PER_SECOND seconds.", CHAT),
    Setting("CHAT_PUBLISH_PER_SECOND", "float", 2.0, "The sustained publish rate of that allowance.", CHAT),
    Setting("CHAT_ABUSE_STRIKES", "int", 50, "Refused frames in a row that close a connection (code 4429).", CHAT),
    Setting("GATEWAY_BUDGET_ALERTS_TOPIC_ARN", "str", "",
            "Budget alerts (80 % and 100 % of a user's monthly budget) go by e-mail to the user and the gateway "
            "admins, and to this SNS topic when set (the stack's output of the same name).", CHAT),
    Setting("ANALYTICS_ENGINE", "str", "duckdb", "duckdb (the local lake, embedded default) or athena.", ANALYTICS),
    Setting("ATHENA_WORKGROUP", "str", "primary", "", ANALYTICS),
    Setting("ATHENA_DATABASE", "str", "ai_gateway", "", ANALYTICS),
    Setting("ATHENA_OUTPUT_LOCATION", "str", "", "s3:// location of query results (required with athena).", ANALYTICS),
    Setting("ATHENA_ENDPOINT_URL", "str", "", "Athena endpoint override (tests); empty = AWS.", ANALYTICS),
    Setting("GATEWAY_LAKE_BUCKET", "str", "",
            "On AWS, Django publishes the users/group_members tables the reports join here (stack outputs).",
            ANALYTICS),
    Setting("GATEWAY_LAKE_PREFIX", "str", "lake/", "", ANALYTICS),
    Setting("GATEWAY_REPORT_TIMEZONE", "str", "",
            "Reports count calendar days in this zone unless a run names another; empty: GATEWAY_MONTH_TIMEZONE.",
            ANALYTICS),
    Setting("GATEWAY_BASE_URL", "str", "http://127.0.0.1:8000", "The site's address: links in e-mailed report runs.",
            ANALYTICS),
    Setting("GATEWAY_REPORT_RUNS_IN_BACKGROUND", "bool", True,
            'With eager Celery (the embedded default), "Run now" runs the report on a background thread (at '
            "most two at once) so the page returns at once and shows progress. No effect with a Celery worker.",
            ANALYTICS, mode_defaults={"test": False}),
)

SETTINGS: tuple[Setting, ...] = (
    _CONTROL_PLANE_SETTINGS + tuple(s for s in DATA_PLANE_SETTINGS if s.django) + _AFTER_DATA_PLANE
)
BY_NAME: dict[str, Setting] = {setting.name: setting for setting in SETTINGS}

_UNSET: Any = object()


def reader(*, mode: str, environ: Mapping[str, str] = os.environ) -> Callable[..., Any]:
    """`setting(NAME)` for one settings module: the variable, typed, or its default in `mode`.

    `default=` is only for a default that depends on another setting (GATEWAY_STORE follows the
    chat transport); the table's help says so. Problems stop start-up naming the variable.
    """

    def setting(name: str, *, default: Any = _UNSET) -> Any:
        row = BY_NAME[name]
        try:
            if default is not _UNSET and environ.get(name, "") == "":
                return default
            return value_of(row, environ, mode=mode)
        except ConfigError as error:
            raise ImproperlyConfigured(str(error)) from None

    return setting
