"""The settings table is the one source: Django reads every row through it, `.env.example` is
generated from it, and Django's door into the data plane is built once per settings."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings

from dataplane.settings_table import DATA_PLANE_SETTINGS, ConfigError, Setting, value_of
from gateway_project.gateway import gateway
from gateway_project.settings import env_example
from gateway_project.settings.table import SETTINGS

ROOT = Path(__file__).resolve().parents[2]
# Rows read under another Django name (DJANGO_DEBUG is DEBUG, ...) or by the data plane's own
# code rather than Django (OPENAI_API_KEY), and the two URLs turned into other settings.
_NOT_A_DJANGO_NAME = (
    "DJANGO_", "OPENAI_API_KEY", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND",
)


def test_env_example_is_generated_from_the_table():
    assert env_example.main(["--check"]) == 0, "run: python -m gateway_project.settings.env_example"


def test_env_example_lists_every_row_and_its_default():
    text = env_example.env_example()
    assert [line.split("=", 1)[0] for line in text.splitlines() if line and not line.startswith("#")] == [
        setting.name for setting in SETTINGS
    ]
    assert "\nGATEWAY_TELEMETRY_SINK=lake\n" in text  # one default for Django and the data plane
    assert "\nCELERY_TASK_ALWAYS_EAGER=\n" in text  # mode-dependent: empty, each mode keeps its own
    assert "default false; local: true; test: true." in " ".join(text.replace("# ", "").split())


def _distinct_value(setting: Setting, index: int) -> tuple[str, object]:
    if setting.kind == "bool":
        return ("false", False) if setting.mode_defaults.get("local", setting.default) else ("true", True)
    if setting.kind == "int":
        return str(1000 + index), 1000 + index
    if setting.kind == "float":
        return str(index + 0.5), index + 0.5
    if setting.kind == "list":
        return f"a{index},b{index}", [f"a{index}", f"b{index}"]
    if setting.name.endswith(("_PATH", "_DIR")):  # resolved against the project folder
        return f"var/value-{index}", str(ROOT / "var" / f"value-{index}")
    return f"value-{index}", f"value-{index}"


def test_django_reads_each_setting_from_the_environment_through_the_table():
    rows = [s for s in SETTINGS if not s.name.startswith(_NOT_A_DJANGO_NAME)]
    raw, expected = {}, {}
    for index, setting in enumerate(rows):
        raw[setting.name], expected[setting.name] = _distinct_value(setting, index)
    code = (
        "import json, django; django.setup(); from django.conf import settings as s;"
        f"print(json.dumps({{name: getattr(s, name) for name in {sorted(raw)!r}}}))"
    )
    base = {k: v for k, v in os.environ.items() if k not in {s.name for s in SETTINGS}}
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**base, **raw, "PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": "gateway_project.settings.local"},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == expected


def test_a_bad_value_names_the_variable():
    cache_seconds = next(s for s in DATA_PLANE_SETTINGS if s.name == "GATEWAY_POLICY_CACHE_SECONDS")
    with pytest.raises(ConfigError, match="GATEWAY_POLICY_CACHE_SECONDS must be a number"):
        value_of(cache_seconds, {"GATEWAY_POLICY_CACHE_SECONDS": "soon"})
    with pytest.raises(ConfigError, match="must not be negative"):
        value_of(cache_seconds, {"GATEWAY_POLICY_CACHE_SECONDS": "-1"})


def test_the_gateway_is_built_once_and_again_when_its_settings_change():
    first = gateway()
    assert gateway() is first
    with override_settings(GATEWAY_POLICY_CACHE_SECONDS=7.5):
        changed = gateway()
        assert changed is not first
        assert changed.config.policy_cache_seconds == 7.5
    assert gateway() is not changed
    assert gateway().config.policy_cache_seconds == first.config.policy_cache_seconds
    with override_settings(CHAT_PUBLISH_BURST=3):  # not a data-plane setting: the gateway stays
        kept = gateway()
        assert gateway() is kept
