"""Builds the CDK app: configuration from context, the stack, and the cdk-nag checks."""
from __future__ import annotations

import os

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from .config import GatewayConfig
from .stack import GatewayDataPlaneStack

# Feature flags the constructs rely on, set here too so the template is the same whether or
# not the caller (the CLI, a test, a script) passed cdk.json's context: access-log delivery via
# a bucket policy (ACLs are disabled on every bucket), minimal IAM policies.
REQUIRED_FLAGS = {
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
    "@aws-cdk/aws-iam:minimizePolicies": True,
}


def build_app(app: cdk.App | None = None) -> tuple[cdk.App, GatewayDataPlaneStack]:
    app = app or cdk.App()
    for flag, value in REQUIRED_FLAGS.items():
        app.node.set_context(flag, value)
    config = GatewayConfig.from_context(app.node)
    stack = GatewayDataPlaneStack(
        app,
        config.stack_name,
        config=config,
        description="AI gateway serverless data plane (AppSync Events, Lambda, DynamoDB, lake).",
        # Account/region from the CLI's profile; unset means an environment-agnostic template.
        env=cdk.Environment(
            account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
            region=os.environ.get("CDK_DEFAULT_REGION"),
        ),
    )
    cdk.Tags.of(stack).add("project", "ai-gateway")
    # Every AWS Solutions finding is either fixed or acknowledged next to the resource with a
    # reason (gateway_infra/nag.py); an unacknowledged one interrupts `cdk synth`.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app, stack
