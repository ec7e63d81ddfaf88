"""Lambda: the onSubscribe handler of both namespaces (AppSync calls it synchronously).

A subscriber may listen to exactly `/outbound/<their own sub>`: not a bare `/outbound`, not
a deeper path, not a wildcard, and nothing in `inbound` (where every user's prompts arrive).

A refusal is a normal answer, `{"error": "..."}`, which AppSync turns into a
`subscribe_error`. Raising (Powertools' UnauthorizedException) would refuse too, but as a
failed invocation: every normal refusal would count as a Lambda error and wake the alarm that
is there for real failures. Only `dataplane.channels` is imported: this sits on every
subscribe and must start fast.
"""
from __future__ import annotations

import logging
from typing import Any

from dataplane.channels import caller_sub, may_subscribe

logger = logging.getLogger("dataplane.subscribe")
logger.setLevel(logging.INFO)

REFUSAL = "You can only subscribe to your own outbound channel, /outbound/<your id>."


def handler(event: dict[str, Any], context: Any) -> dict[str, str] | None:
    channel = str(((event.get("info") or {}).get("channel") or {}).get("path") or "")
    sub = caller_sub(event.get("identity"))
    if may_subscribe(sub, channel):
        return None
    logger.warning("refused subscription to %s by %s", channel, sub or "a caller without a sub")
    return {"error": REFUSAL}
