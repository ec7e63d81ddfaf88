"""Each settings mode loads; production refuses to start without its secrets and passes
`check --deploy` cleanly when they are given."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "gateway_project.settings.production",
    "DJANGO_SECRET_KEY": "x7#kq2!vR9$mLp4@wZ8^tN1&cB6*hJ3(yF5)dS0_gA-eU+iO=lK~nM" * 2,
    "DJANGO_ALLOWED_HOSTS": "gateway.example.com",
    "DATABASE_URL": "postgres://gateway:secret@db.internal:5432/gateway",
    "REDIS_URL": "redis://cache.internal:6379/0",
}


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL"))}
    # A developer's .env must not leak into what these tests prove.
    base["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("gateway_project.settings.local", ["sqlite3", "ProcessLocalChannelLayer", "True"]),
        # Without DATABASE_URL / REDIS_URL the suite runs on SQLite and the process-local layer.
        ("gateway_project.settings.test", ["sqlite3", "ProcessLocalChannelLayer", "True"]),
    ],
)
def test_settings_modes_load(module, expected):
    code = (
        "import django; django.setup(); from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE'].rsplit('.',1)[-1],"
        " s.CHANNEL_LAYERS['default']['BACKEND'].rsplit('.',1)[-1],"
        " s.CELERY_TASK_ALWAYS_EAGER)"
    )
    result = run_python(code, {"DJANGO_SETTINGS_MODULE": module})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == expected


def test_production_settings_load_with_their_variables():
    code = (
        "import django; django.setup(); from django.conf import settings as s;"
        "print(s.DEBUG, s.DATABASES['default']['ENGINE'], s.CHANNEL_LAYERS['default']['BACKEND'], s.CELERY_BROKER_URL)"
    )
    result = run_python(code, PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "False",
        "django.db.backends.postgresql",
        "channels_redis.core.RedisChannelLayer",
        "redis://cache.internal:6379/0",
    ]


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "DJANGO_ALLOWED_HOSTS"])
def test_production_names_a_missing_variable_at_start_up(missing):
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}
    result = run_python("import django; django.setup()", env)
    assert result.returncode != 0
    assert f"Set the {missing} environment variable" in result.stderr


# What deploy/outputs_to_env.py prints, plus the one line that moves the chat page to AppSync.
APPSYNC_ENV = {
    "GATEWAY_CHAT_TRANSPORT": "appsync",
    "GATEWAY_EVENTS_HTTP_ENDPOINT": "https://abc.appsync-api.eu-west-1.amazonaws.com/event",
    "GATEWAY_EVENTS_REALTIME_ENDPOINT": "wss://abc.appsync-realtime-api.eu-west-1.amazonaws.com/event/realtime",
    "COGNITO_DOMAIN": "https://gateway-123456789012.auth.eu-west-1.amazoncognito.com",
    "COGNITO_CLIENT_ID": "4example5client6id",
    "COGNITO_CLIENT_SECRET": "from-the-secret-store",
}


@pytest.mark.parametrize("extra", [{}, APPSYNC_ENV], ids=["local transport", "appsync transport"])
def test_check_deploy_is_clean_in_production(extra):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "DEBUG"],
        check=False,
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "COGNITO_"))},
            **PRODUCTION_ENV,
            **extra,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_appsync_transport_without_its_endpoints_stops_the_check():
    env = {**PRODUCTION_ENV, **APPSYNC_ENV, "GATEWAY_EVENTS_REALTIME_ENDPOINT": ""}
    result = run_python(
        "import django; django.setup(); from django.core.management import call_command; call_command('check')", env
    )
    assert result.returncode != 0
    assert "GATEWAY_CHAT_TRANSPORT=appsync needs GATEWAY_EVENTS_REALTIME_ENDPOINT" in result.stderr


def test_a_bad_gateway_setting_is_a_clear_error():
    from dataplane.config import ConfigError, GatewayConfig

    with pytest.raises(ConfigError, match="GATEWAY_STORE"):
        GatewayConfig.from_mapping({"GATEWAY_STORE": "redis"})
    with pytest.raises(ConfigError, match="GATEWAY_MONTH_TIMEZONE"):
        GatewayConfig.from_mapping({"GATEWAY_MONTH_TIMEZONE": "Mars/Olympus"})
    with pytest.raises(ConfigError, match="GATEWAY_CACHE_TTL_SECONDS"):
        GatewayConfig.from_mapping({"GATEWAY_CACHE_TTL_SECONDS": "a day"})
