"""The IAM vocabulary in which code that calls AWS declares, next to its calls, what it needs.

Each adapter (the DynamoDB store, the Firehose sink, the Bedrock provider, the AppSync publish,
the Athena report engine) states which IAM actions it needs on which of the gateway's
resources. `deploy/` grants each role exactly the union of what that role's code declares, and
the AWS twin in the tests enforces the synthesized policies on every call, so a new call
without a declaration fails a test instead of a production request.

Plain Python only: the Lambda imports this, so it must not pull in Django or aws_cdk.
"""
from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class Role(enum.Enum):
    """Who makes the call; the values are the construct ids the twin acts as."""

    CHAT_HANDLER = "ChatHandler"  # the data plane: the chat Lambda
    CONTROL_PLANE = "ControlPlane"  # Django: policy sync, usage admin, reports


class Resource(enum.Enum):
    """The gateway's resources, by what they are for; deploy/ maps each to its ARNs."""

    POLICIES_TABLE = "policies table"
    USAGE_TABLE = "usage table"
    CACHE_TABLE = "cache table"
    REQUEST_STREAM = "request log delivery stream"
    MODELS = "Bedrock models and inference profiles"
    GUARDRAILS = "Bedrock guardrails"
    OUTBOUND_NAMESPACE = "outbound channel namespace"
    REPORT_WORKGROUP = "Athena work group"
    LAKE_CATALOG = "lake's Glue catalog, database and table"
    LAKE_BUCKETS = "lake and Athena results buckets"
    REQUEST_LOG_OBJECTS = "request log objects in the lake"
    QUERY_RESULT_OBJECTS = "Athena result objects"
    DIRECTORY_OBJECTS = "users and group_members tables Django publishes in the lake"
    BUDGET_ALERTS_TOPIC = "SNS topic for budget alerts"


@dataclass(frozen=True)
class Need:
    """Some code needs these IAM actions on this resource (`why` ends up in reviews, not IAM)."""

    resource: Resource
    actions: tuple[str, ...]
    why: str = ""


def need(resource: Resource, *actions: str, why: str = "") -> Need:
    return Need(resource=resource, actions=tuple(actions), why=why)


def actions_by_resource(needs: Iterable[Need]) -> dict[Resource, tuple[str, ...]]:
    """The union of the needs, one sorted action list per resource (the shape of a grant)."""
    merged: dict[Resource, set[str]] = {}
    for item in needs:
        merged.setdefault(item.resource, set()).update(item.actions)
    return {resource: tuple(sorted(actions)) for resource, actions in merged.items()}
