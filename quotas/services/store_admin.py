"""Operations an admin runs on the store directly (no outbox: they act on live data)."""
from __future__ import annotations

from typing import Any

from quotas import store as store_port
from quotas.selectors import effective_policy_compute, usage_charges


def usage_window_reset(*, user: Any, window: str) -> str:
    """Zero the user's current `window` ("10m" or "month"); returns the window key reset."""
    policy = effective_policy_compute(user=user)
    charges = {charge.window.kind: charge.window for charge in usage_charges(policy=policy)}
    if window not in charges:
        raise ValueError(f"Unknown window {window!r}; expected one of {sorted(charges)}")
    key = charges[window].key
    store_port.store_get().usage_reset(sub=user.sub, window_key=key)
    return key


def answer_cache_purge() -> int:
    """Delete every cached answer (prepared responses stay); returns how many."""
    return store_port.store_get().cache_purge()
