"""Django's door into the data plane: one place that turns settings into a `Gateway`.

The config is read and validated once and the `Gateway` built from it is kept for the process,
so the store's connections and the policy cache are shared by every request. A change of any
data-plane setting (`override_settings` in tests) drops it; the next call builds it again.
"""
from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from dataplane.config import GatewayConfig
from dataplane.gateway import Gateway
from dataplane.settings_table import DATA_PLANE_SETTINGS

# What Django passes to the data plane: the rows of the table that Django reads.
_SETTING_NAMES = frozenset(setting.name for setting in DATA_PLANE_SETTINGS if setting.django)

_lock = threading.Lock()
# The built gateway, under "current" (a dict, so resetting needs no `global`).
_built: dict[str, Gateway] = {}


def gateway_config() -> GatewayConfig:
    return gateway().config


def gateway() -> Gateway:
    """The process-wide `dataplane.gateway.Gateway` for the current settings."""
    built = _built.get("current")
    if built is not None:
        return built
    with _lock:
        if "current" not in _built:
            config = GatewayConfig.from_mapping({name: getattr(settings, name, "") for name in _SETTING_NAMES})
            _built["current"] = Gateway.from_config(config)
        return _built["current"]


def gateway_reset() -> None:
    """Forget the built gateway; the next `gateway()` reads the settings again."""
    with _lock:
        _built.clear()


@receiver(setting_changed)
def _gateway_setting_changed(*, setting: str, **kwargs: Any) -> None:
    # Django's own signal for settings changing under a running process (override_settings);
    # the gateway is derived from these settings, so it is derived again.
    if setting in _SETTING_NAMES:
        gateway_reset()


def gateway_store():
    """The data-plane store (SQLite or DynamoDB) the control plane publishes policies to."""
    return gateway().store
