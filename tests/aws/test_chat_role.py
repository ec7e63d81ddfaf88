"""The chat Lambda, run as its synthesized role: every AWS call it makes must be allowed.

The handler is the real Lambda entry (`dataplane.handlers.appsync_chat.handler`) with the
environment the template gives it; DynamoDB and Firehose are the twin's (moto), Bedrock the
local event-stream server. Only the outbound side is a list here, and it asks the twin for
`appsync:EventPublish` on each publish as the AppSync emulator does.
"""
from __future__ import annotations

import uuid
from typing import Any

import pytest

from dataplane.handlers import appsync_chat
from dataplane.outbound import ListOutbound
from dataplane.stores.base import StoredAnswers, TokenCount, WindowCharge
from dataplane.windows import current_windows
from tests.aws.twin import CHAT_HANDLER, CONTROL_PLANE, AwsTwin
from tests.dataplane.conftest import MODEL, chat_request, make_policy
from tests.dataplane.handlers.test_appsync_handlers import LambdaContext, appsync_event


class PublishingOutbound(ListOutbound):
    """Keeps the events, and authorises each publish the way AppSync would (SigV4 → IAM)."""

    def __init__(self, twin: AwsTwin) -> None:
        super().__init__()
        self.twin = twin

    def send(self, event: dict[str, Any]) -> None:
        decision = self.twin.authorize(CHAT_HANDLER, "appsync:EventPublish", self.twin.resources.outbound_namespace_arn)
        assert decision.allowed, decision
        super().send(event)


@pytest.fixture
def sub(aws_twin: AwsTwin) -> str:
    """A user of this test only, with a published policy allowing the Bedrock model."""
    sub = f"user-{uuid.uuid4().hex[:12]}"
    with aws_twin.acting_as(CONTROL_PLANE):
        aws_twin.store().policy_put(make_policy(sub))
    aws_twin.forget_decisions()
    return sub


@pytest.fixture
def chat_lambda(aws_twin: AwsTwin, bedrock_server, monkeypatch):
    """Runs one publish through the Lambda handler as a cold container would; returns its outbound."""
    for name, value in aws_twin.lambda_environment(bedrock_endpoint_url=bedrock_server.url).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(appsync_chat, "_gateway", None)  # cold start: the gateway reads the env

    def publish(sub: str, text: str = "What is a token?") -> PublishingOutbound:
        outbound = PublishingOutbound(aws_twin)
        monkeypatch.setattr(appsync_chat, "outbound_factory", lambda gateway, sub: outbound)
        event = appsync_event(
            sub=sub,
            channel=f"/inbound/{sub}",
            operation="PUBLISH",
            events=[{"id": "1", "payload": chat_request(text)}],
        )
        with aws_twin.acting_as(CHAT_HANDLER):
            appsync_chat.handler(event, LambdaContext())
        return outbound

    return publish


def arn_of_table(twin: AwsTwin, name: str) -> str:
    return f"arn:aws:dynamodb:{twin.template.region}:{twin.template.account}:table/{name}"


def test_a_chat_turn_through_the_lambda_handler_makes_only_allowed_calls(aws_twin: AwsTwin, chat_lambda, sub) -> None:
    outbound = chat_lambda(sub)

    assert outbound.errors() == []
    assert outbound.texts() == "Echo: What is a token?"
    assert aws_twin.denials == []
    resources = aws_twin.resources
    made = {(d.action, d.resource) for d in aws_twin.decisions}
    assert {
        ("dynamodb:GetItem", arn_of_table(aws_twin, resources.policies_table)),
        ("dynamodb:BatchGetItem", arn_of_table(aws_twin, resources.cache_table)),  # prepared and cached answers
        ("dynamodb:UpdateItem", arn_of_table(aws_twin, resources.usage_table)),  # reserve, settle
        ("dynamodb:PutItem", arn_of_table(aws_twin, resources.cache_table)),
        ("firehose:PutRecord", f"arn:aws:firehose:us-east-1:123456789012:deliverystream/{resources.delivery_stream}"),
        ("bedrock:InvokeModelWithResponseStream", f"arn:aws:bedrock:us-east-1::foundation-model/{MODEL}"),
        ("appsync:EventPublish", resources.outbound_namespace_arn),
    } <= made


def test_the_second_identical_turn_is_a_cache_hit_with_no_denial(aws_twin: AwsTwin, chat_lambda, sub) -> None:
    chat_lambda(sub)
    again = chat_lambda(sub)
    assert again.texts() == "Echo: What is a token?"
    assert again.events[-1]["metadata"]["cache"] == "hit"
    assert aws_twin.denials == []


def test_the_request_record_reaches_the_lake_bucket_through_firehose(aws_twin: AwsTwin, chat_lambda, sub) -> None:
    chat_lambda(sub, "Where do records go?")
    s3 = aws_twin.client("s3")
    listed = s3.list_objects_v2(Bucket=aws_twin.resources.lake_bucket, Prefix="lake/requests/")
    bodies = [
        s3.get_object(Bucket=aws_twin.resources.lake_bucket, Key=o["Key"])["Body"].read()
        for o in listed.get("Contents", [])
    ]
    assert any(sub.encode() in body for body in bodies)


def test_store_calls_of_a_turn_as_the_chat_role(aws_twin: AwsTwin, sub: str) -> None:
    store = aws_twin.store()
    with aws_twin.acting_as(CHAT_HANDLER):
        policy = store.policy_get(sub)
        ten_minute, month = current_windows(store._clock(), "UTC")
        charges = [WindowCharge(ten_minute, policy.ten_minute), WindowCharge(month, policy.monthly)]
        reservation = store.reserve(sub=sub, charges=charges, estimate=TokenCount(input=20, output=100))
        settled, _ = store.settle(reservation=reservation, actual=TokenCount(input=20, output=5))
        assert (
            store.answers_get(question_key="nothing-prepared", model_id=MODEL, cache_key="nothing-cached")
            == StoredAnswers()
        )
        ten, _ = store.usage_read(sub=sub, charges=charges)
    assert ten.total == settled.total == 25
    assert aws_twin.denials == []


def without_action(statements: list[dict], sid: str, action: str) -> list[dict]:
    def trimmed(statement: dict) -> dict:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        return {**statement, "Action": [a for a in actions if a != action]}

    return [trimmed(s) if s.get("Sid") == sid else s for s in statements]


def test_negative_control_the_old_chat_policy_fails_the_prepared_lookup(aws_twin: AwsTwin, chat_lambda, sub) -> None:
    # Before the fix the chat role had GetItem/PutItem on the cache table but not BatchGetItem.
    old = without_action(aws_twin.principal(CHAT_HANDLER).statements, "CacheTable", "dynamodb:BatchGetItem")
    with aws_twin.statements_replaced(CHAT_HANDLER, old):
        outbound = chat_lambda(sub)

    assert outbound.texts() == ""
    assert outbound.errors(), "the turn should have failed"
    (denial,) = aws_twin.denials
    assert denial.action == "dynamodb:BatchGetItem"
    assert denial.resource == arn_of_table(aws_twin, aws_twin.resources.cache_table)


def test_a_denied_call_fails_like_aws_with_access_denied(aws_twin: AwsTwin, sub: str) -> None:
    from dataplane.errors import StoreUnavailableError

    store = aws_twin.store()
    with aws_twin.acting_as(CHAT_HANDLER), pytest.raises(StoreUnavailableError) as raised:
        store.usage_reset(sub=sub, window_key="10m#2026-11-29T05:10")  # Django's job, not the Lambda's
    message = str(raised.value)
    principal = aws_twin.principal(CHAT_HANDLER).arn
    assert "AccessDeniedException" in message
    assert (
        f"User: {principal} is not authorized to perform: dynamodb:DeleteItem on resource: "
        f"{arn_of_table(aws_twin, aws_twin.resources.usage_table)} because no identity-based policy allows "
        "the dynamodb:DeleteItem action"
    ) in message
