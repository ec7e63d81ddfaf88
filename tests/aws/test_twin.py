"""The twin is the template made concrete: resources, environment and principals come from it."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.aws.calls import UnmappedOperationError
from tests.aws.twin import CHAT_HANDLER, CONTROL_PLANE, AwsTwin, authorize
from tests.deploy.synth import REPO_ROOT, Synth


def test_tables_are_created_with_the_templates_keys_and_ttl(aws_twin: AwsTwin, stack_synth: Synth) -> None:
    dynamodb = aws_twin.client("dynamodb")
    for logical_id, resource in stack_synth.resources("AWS::DynamoDB::Table").items():
        name = aws_twin.template.ref(logical_id)
        described = dynamodb.describe_table(TableName=name)["Table"]
        assert described["KeySchema"] == resource["Properties"]["KeySchema"]
        ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        expected = resource["Properties"].get("TimeToLiveSpecification")
        assert (ttl.get("AttributeName") if ttl["TimeToLiveStatus"] == "ENABLED" else None) == (
            expected["AttributeName"] if expected else None
        )


def test_stream_and_buckets_exist_as_the_template_names_them(aws_twin: AwsTwin, stack_synth: Synth) -> None:
    firehose = aws_twin.client("firehose")
    described = firehose.describe_delivery_stream(DeliveryStreamName=aws_twin.resources.delivery_stream)
    destination = described["DeliveryStreamDescription"]["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert destination["BucketARN"] == f"arn:aws:s3:::{aws_twin.resources.lake_bucket}"
    assert destination["Prefix"].startswith("lake/requests/")
    buckets = {b["Name"] for b in aws_twin.client("s3").list_buckets()["Buckets"]}
    assert {aws_twin.template.ref(k) for k in stack_synth.resources("AWS::S3::Bucket")} <= buckets


def test_the_chat_environment_is_the_functions_environment_resolved(aws_twin: AwsTwin, stack_synth: Synth) -> None:
    from gateway_infra.functions import CHAT_HANDLER as CHAT_HANDLER_PATH

    (variables,) = [
        r["Properties"]["Environment"]["Variables"]
        for r in stack_synth.resources("AWS::Lambda::Function").values()
        if r["Properties"]["Handler"] == CHAT_HANDLER_PATH
    ]
    assert set(aws_twin.chat_env) == set(variables)
    assert aws_twin.chat_env["GATEWAY_USAGE_TABLE"] == aws_twin.resources.usage_table
    assert aws_twin.chat_env["GATEWAY_EVENTS_HTTP_ENDPOINT"] == aws_twin.resources.events_http_endpoint
    assert all("{" not in value for value in aws_twin.chat_env.values())  # nothing left unresolved


def test_process_wide_cached_clients_are_enforced_too(aws_twin: AwsTwin) -> None:
    from botocore.exceptions import ClientError

    from dataplane import aws

    cached = aws.client("dynamodb", aws.ClientSettings(
        region="us-east-1", endpoint_url=aws_twin.endpoint_url,
        aws_access_key_id="testing", aws_secret_access_key="testing", aws_session_token="testing",
    ))
    with aws_twin.acting_as(CHAT_HANDLER), pytest.raises(ClientError) as raised:
        cached.scan(TableName=aws_twin.resources.usage_table)
    assert raised.value.response["Error"]["Code"] == "AccessDeniedException"
    cached.scan(TableName=aws_twin.resources.usage_table)  # outside acting_as: not enforced (set-up)


def test_a_call_the_twin_cannot_map_fails_instead_of_passing(aws_twin: AwsTwin) -> None:
    with aws_twin.acting_as(CONTROL_PLANE), pytest.raises(UnmappedOperationError, match="dynamodb:ListBackups"):
        aws_twin.client("dynamodb").list_backups()


def test_authorize_serves_non_botocore_callers(aws_twin: AwsTwin) -> None:
    namespace = aws_twin.resources.outbound_namespace_arn
    assert authorize(CHAT_HANDLER, "appsync:EventPublish", namespace).allowed
    assert aws_twin.channel_namespace_arn("outbound") == namespace
    inbound = aws_twin.channel_namespace_arn("inbound")
    assert not authorize(CHAT_HANDLER, "appsync:EventPublish", inbound).allowed
    assert not authorize(CONTROL_PLANE, "appsync:EventPublish", namespace).allowed
    assert [d.resource for d in aws_twin.denials] == [inbound, namespace]


def test_python_m_tests_aws_prints_the_twins_endpoint_and_lambda_environment() -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "tests.aws", "--once"],
        check=False,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    lines = finished.stdout.splitlines()
    assert any(line.startswith("# moto endpoint (all services): http://127.0.0.1:") for line in lines)
    env = dict(line.split("=", 1) for line in lines if not line.startswith("#"))
    assert env["GATEWAY_STORE"] == "dynamodb"
    assert env["GATEWAY_DYNAMODB_ENDPOINT_URL"].startswith("http://127.0.0.1:")
