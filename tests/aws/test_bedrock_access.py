"""Bedrock grants for inference profiles, through the twin's evaluator.

A cross-region profile (`us.`, `eu.`, `apac.`) is authorised on the profile in the calling
region and on the foundation model in whichever region Bedrock routes to; a `global.` profile
on the profile and on the region-less foundation-model ARN. The calls are real boto3
`converse_stream` calls to the local Bedrock server, made as the chat role.
"""
from __future__ import annotations

import aws_cdk as cdk
import pytest
from botocore.exceptions import ClientError
from gateway_infra.permissions import BedrockAccess, bedrock_model_arns

from tests.aws.template import Template
from tests.aws.twin import CHAT_HANDLER, AwsTwin

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"


def converse(client, model_id: str) -> str:
    response = client.converse_stream(modelId=model_id, messages=[{"role": "user", "content": [{"text": "Hi"}]}])
    return "".join(
        event["contentBlockDelta"]["delta"].get("text", "")
        for event in response["stream"]
        if "contentBlockDelta" in event
    )


def models_statement_for(twin: AwsTwin, access: BedrockAccess) -> list[dict]:
    """The chat role's statements with the Bedrock grant a deployment with `access` would get."""
    stack = cdk.Stack(cdk.App(), "Probe")
    arns = Template({"Resources": {}}, stack_name="Probe", region=twin.template.region).resolve(
        stack.resolve(bedrock_model_arns(stack, access))
    )
    return [
        {**s, "Resource": arns} if s.get("Sid") == "Models" else s for s in twin.principal(CHAT_HANDLER).statements
    ]


@pytest.mark.parametrize(
    ("model_id", "route_region", "model_arn"),
    [
        (HAIKU, None, f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU}"),
        (f"us.{HAIKU}", "us-west-2", f"arn:aws:bedrock:us-west-2::foundation-model/{HAIKU}"),
        (f"eu.{HAIKU}", "eu-west-3", f"arn:aws:bedrock:eu-west-3::foundation-model/{HAIKU}"),
        (f"global.{SONNET}", None, f"arn:aws:bedrock:::foundation-model/{SONNET}"),
    ],
)
def test_the_deployed_grant_allows_profiles_wherever_they_route(
    aws_twin: AwsTwin, bedrock_client, model_id: str, route_region: str | None, model_arn: str
) -> None:
    aws_twin.calls.bedrock_route_region = route_region
    with aws_twin.acting_as(CHAT_HANDLER):
        assert converse(bedrock_client, model_id) == "Echo: Hi"
    assert aws_twin.denials == []
    checked = [d.resource for d in aws_twin.decisions]
    assert checked[-1] == model_arn
    if "." in model_id.split("anthropic")[0]:  # a profile: checked on the profile first
        assert checked[0] == f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/{model_id}"


@pytest.mark.parametrize(
    ("model_id", "route_region", "denied_arn"),
    [
        (f"us.{HAIKU}", "us-west-2", f"arn:aws:bedrock:us-west-2::foundation-model/{HAIKU}"),
        (f"global.{SONNET}", None, f"arn:aws:bedrock:::foundation-model/{SONNET}"),
    ],
)
def test_negative_control_the_old_stack_region_only_grant_denies_profiles(
    aws_twin: AwsTwin, bedrock_client, model_id: str, route_region: str | None, denied_arn: str
) -> None:
    aws_twin.calls.bedrock_route_region = route_region
    old = models_statement_for(aws_twin, BedrockAccess(inference_regions=(), global_inference=False))
    with (
        aws_twin.statements_replaced(CHAT_HANDLER, old),
        aws_twin.acting_as(CHAT_HANDLER),
        pytest.raises(ClientError) as raised,
    ):
        converse(bedrock_client, model_id)
    assert raised.value.response["Error"]["Code"] == "AccessDeniedException"
    assert f"bedrock:InvokeModelWithResponseStream on resource: {denied_arn}" in str(raised.value)
    assert [d.resource for d in aws_twin.denials] == [denied_arn]


def test_a_deployment_narrowed_to_listed_regions_allows_only_those(aws_twin: AwsTwin, bedrock_client) -> None:
    narrowed = models_statement_for(aws_twin, BedrockAccess(inference_regions=("us-east-2",), global_inference=False))
    with aws_twin.statements_replaced(CHAT_HANDLER, narrowed), aws_twin.acting_as(CHAT_HANDLER):
        aws_twin.calls.bedrock_route_region = "us-east-2"
        assert converse(bedrock_client, f"us.{HAIKU}") == "Echo: Hi"
        aws_twin.calls.bedrock_route_region = "us-west-2"
        with pytest.raises(ClientError, match="AccessDeniedException"):
            converse(bedrock_client, f"us.{HAIKU}")
    assert [d.resource for d in aws_twin.denials] == [f"arn:aws:bedrock:us-west-2::foundation-model/{HAIKU}"]


GUARDRAIL = {"guardrailIdentifier": "gr7abc123", "guardrailVersion": "1", "streamProcessingMode": "sync"}


def converse_guarded(client, model_id: str) -> str:
    response = client.converse_stream(
        modelId=model_id, messages=[{"role": "user", "content": [{"text": "Hi"}]}], guardrailConfig=GUARDRAIL
    )
    return "".join(
        event["contentBlockDelta"]["delta"].get("text", "")
        for event in response["stream"]
        if "contentBlockDelta" in event
    )


def test_a_guarded_call_is_authorised_on_the_guardrail_too(aws_twin: AwsTwin, bedrock_client) -> None:
    with aws_twin.acting_as(CHAT_HANDLER):
        assert converse_guarded(bedrock_client, HAIKU) == "Echo: Hi"
    assert aws_twin.denials == []
    assert ("bedrock:ApplyGuardrail", "arn:aws:bedrock:us-east-1:123456789012:guardrail/gr7abc123") in [
        (d.action, d.resource) for d in aws_twin.decisions
    ]


def test_negative_control_without_the_guardrail_grant_a_guarded_call_is_denied(
    aws_twin: AwsTwin, bedrock_client
) -> None:
    without = [s for s in aws_twin.principal(CHAT_HANDLER).statements if s.get("Sid") != "Guardrails"]
    with aws_twin.statements_replaced(CHAT_HANDLER, without), aws_twin.acting_as(CHAT_HANDLER):
        assert converse(bedrock_client, HAIKU) == "Echo: Hi"  # unguarded calls need no guardrail grant
        with pytest.raises(ClientError) as raised:
            converse_guarded(bedrock_client, HAIKU)
    assert "bedrock:ApplyGuardrail" in str(raised.value)
    assert [d.resource for d in aws_twin.denials] == ["arn:aws:bedrock:us-east-1:123456789012:guardrail/gr7abc123"]


def test_apply_guardrail_for_other_models_is_authorised_on_the_guardrail(aws_twin: AwsTwin, bedrock_client) -> None:
    with aws_twin.acting_as(CHAT_HANDLER):
        response = bedrock_client.apply_guardrail(
            guardrailIdentifier="gr7abc123", guardrailVersion="1", source="INPUT", content=[{"text": {"text": "Hi"}}]
        )
    assert response["action"] == "NONE"
    assert [(d.action, d.resource) for d in aws_twin.decisions] == [
        ("bedrock:ApplyGuardrail", "arn:aws:bedrock:us-east-1:123456789012:guardrail/gr7abc123")
    ]
    assert aws_twin.denials == []
