"""What the chat Lambda's role must allow: the union of what its code declares.

A chat turn reads the policy, watches for a cancel marker (and a cancel leaves one), looks up
prepared and cached answers (one read), reserves and settles both
usage windows, reads them back for the usage bars, writes the cache, streams from Bedrock,
publishes to AppSync and ships its record to Firehose. `deploy/` grants exactly this.
"""
from __future__ import annotations

from dataplane.appsync import APPSYNC_PUBLISH_NEEDS
from dataplane.permissions import Need
from dataplane.providers.bedrock import BEDROCK_NEEDS
from dataplane.stores.dynamodb import store_needs
from dataplane.telemetry.sinks import FIREHOSE_SINK_NEEDS

# The store operations `dataplane.pipeline`, `dataplane.gateway` and `dataplane.inbound` call
# (a test reads those modules and fails when this list and the calls disagree).
CHAT_TURN_STORE_OPERATIONS = (
    "cancel_request",
    "cancel_requested",
    "policy_get",
    "answers_get",
    "reserve",
    "settle",
    "cache_put",
    "usage_read",
)


def chat_handler_needs() -> tuple[Need, ...]:
    return (
        *store_needs(CHAT_TURN_STORE_OPERATIONS),
        *FIREHOSE_SINK_NEEDS,
        *BEDROCK_NEEDS,
        *APPSYNC_PUBLISH_NEEDS,
    )
