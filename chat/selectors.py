"""Reads for the chat page: who the user is, which models they may use, how much they used.

The data plane's published policy and its usage windows are the truth here (the same the
pipeline enforces), so the page never disagrees with the gateway about a quota.
"""
from __future__ import annotations

from typing import Any

from dataplane.errors import StoreUnavailable
from dataplane.pipeline import window_usage
from gateway_project.gateway import gateway


def me_for(*, user: Any) -> dict[str, Any]:
    current = gateway()
    policy = current.policies.get(user.sub)
    models = [
        {"id": model.model_id, "name": model.display_name, "provider": model.provider}
        for model in (policy.models if policy else ())
    ]
    usage: dict[str, Any] = {}
    if policy is not None:
        try:
            usage = window_usage(current, user.sub, policy)
        except StoreUnavailable:
            usage = {}
    return {
        "sub": user.sub,
        "username": user.get_username(),
        "displayName": user.get_full_name() or user.get_username(),
        "models": models,
        "usage": usage,
        "channels": {"inbound": f"/inbound/{user.sub}", "outbound": f"/outbound/{user.sub}"},
    }
