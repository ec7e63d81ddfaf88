"""Stack outputs named like the Django `.env` keys that consume them.

CloudFormation output ids are alphanumeric only, so `GATEWAY_POLICIES_TABLE` is emitted as
`GATEWAYPOLICIESTABLE`; `env_lines()` (used by `outputs_to_env.py`) maps them back.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # outputs_to_env.py imports this module without paying for a jsii start-up
    from constructs import Construct

ENV_OUTPUTS = (
    "GATEWAY_POLICIES_TABLE",
    "GATEWAY_USAGE_TABLE",
    "GATEWAY_CACHE_TABLE",
    "GATEWAY_EVENTS_HTTP_ENDPOINT",
    "GATEWAY_EVENTS_REALTIME_ENDPOINT",
    "COGNITO_USER_POOL_ID",
    "COGNITO_CLIENT_ID",
    "COGNITO_DOMAIN",
    "ATHENA_WORKGROUP",
    "ATHENA_OUTPUT_LOCATION",
    "ATHENA_DATABASE",
    "GATEWAY_FIREHOSE_STREAM",
    "GATEWAY_LAKE_BUCKET",
    "GATEWAY_LAKE_PREFIX",
    "AWS_REGION",
    "CONTROL_PLANE_POLICY_ARN",
    "GATEWAY_MONTH_TIMEZONE",
    "GATEWAY_GUARDRAIL_ID",
    "GATEWAY_GUARDRAIL_VERSION",
    "GATEWAY_BUDGET_ALERTS_TOPIC_ARN",
)


def output_id(env_name: str) -> str:
    return env_name.replace("_", "")


def add_env_outputs(scope: Construct, values: Mapping[str, str]) -> None:
    from aws_cdk import CfnOutput

    missing = set(ENV_OUTPUTS) - set(values)
    extra = set(values) - set(ENV_OUTPUTS)
    if missing or extra:
        raise ValueError(f"outputs out of sync: missing={sorted(missing)} extra={sorted(extra)}")
    for env_name in ENV_OUTPUTS:
        CfnOutput(scope, output_id(env_name), value=values[env_name], description=env_name)


def env_lines(stack_outputs: Mapping[str, str]) -> list[str]:
    """`KEY=value` lines from one stack's outputs (as in `cdk deploy --outputs-file`)."""
    return [
        f"{env_name}={stack_outputs[output_id(env_name)]}"
        for env_name in ENV_OUTPUTS
        if output_id(env_name) in stack_outputs
    ]
