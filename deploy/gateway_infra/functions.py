"""The two Lambda functions of the data plane, both running the repo's `dataplane/` package.

- chat handler: AppSync Events invokes it (asynchronously) for every publish on `/inbound/*`;
  it runs one chat turn and streams the answer to `/outbound/<sub>` over HTTP.
- subscribe authorizer: AppSync Events calls it synchronously on every subscribe, in both
  namespaces; it allows exactly `/outbound/<the caller's sub>`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from dataplane.settings_table import stack_environment
from dataplane.telemetry.emf import METRICS_NAMESPACE, SERVICE_NAME

from .config import POWERTOOLS_LAYER_PARAMETER
from .dependencies import build_layer_directory
from .nag import acknowledge, resource_finding
from .permissions import BEDROCK_NAG_REASON
from .tables import GatewayTables

REPO_ROOT = Path(__file__).resolve().parents[2]

CHAT_HANDLER = "dataplane.handlers.appsync_chat.handler"
SUBSCRIBE_AUTHORIZER_HANDLER = "dataplane.handlers.appsync_subscribe.handler"


# The asset is the repo root so that the zip holds `dataplane/...` at its top level, which is
# what the handler paths import. Everything else (Django apps, tests, venvs, the CDK app
# itself) is excluded; the pattern order matters: exclude all, re-include the package, then
# drop bytecode from inside it.
DATAPLANE_ASSET_EXCLUDE = (
    "*",
    ".*",  # `*` does not match dot-files (.git, .venv, caches)
    "!dataplane",
    "!dataplane/**",
    "**/__pycache__",
    "**/*.pyc",
    "**/.pytest_cache",
)

@dataclass(frozen=True)
class ChatHandlerWiring:
    tables: GatewayTables
    delivery_stream: firehose.DeliveryStream
    events_http_endpoint: str
    month_timezone: str
    guardrail_id: str
    guardrail_version: str


class GatewayFunctions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        wiring: ChatHandlerWiring,
        powertools_layer_arn: str | None,
        chat_reserved_concurrency: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        code = lambda_.Code.from_asset(str(REPO_ROOT), exclude=list(DATAPLANE_ASSET_EXCLUDE))
        # Powertools comes from AWS's public layer, not the zip: no Docker bundling needed, and
        # the layer is built for this exact runtime/architecture. Override the ARN with context
        # `gateway:powertoolsLayerArn` (e.g. in a region where the SSM parameter is missing).
        layer_arn = powertools_layer_arn or ssm.StringParameter.value_for_string_parameter(
            self, POWERTOOLS_LAYER_PARAMETER
        )
        powertools = lambda_.LayerVersion.from_layer_version_arn(self, "Powertools", layer_arn)
        # The detector's libraries (phonenumbers, python-stdnum), pure Python, pinned.
        self.dependencies = lambda_.LayerVersion(
            self,
            "DataPlaneDependencies",
            code=lambda_.Code.from_asset(str(build_layer_directory())),
            compatible_runtimes=[lambda_.Runtime.PYTHON_3_12],
            compatible_architectures=[lambda_.Architecture.ARM_64],
            description="phonenumberslite and python-stdnum for the data plane's personal-data detector.",
        )

        self.chat_handler = self._function(
            "ChatHandler",
            handler=CHAT_HANDLER,
            code=code,
            layers=[powertools, self.dependencies],
            # A turn streams a long answer for up to a few minutes (Bedrock's own stream timeout
            # is far longer); five minutes bounds a stuck stream while leaving headroom.
            timeout=Duration.minutes(5),
            # Memory buys CPU on Lambda: 512 MB keeps JSON/SigV4 work per chunk off the latency
            # path, while the function itself mostly waits on network I/O.
            memory_size=512,
            environment=self._chat_environment(wiring),
            description="Runs one governed chat turn per inbound AppSync Events publish.",
            reserved_concurrent_executions=chat_reserved_concurrency,
        )
        # AppSync invokes the chat handler asynchronously (EVENT). Lambda would retry a failed
        # async invoke twice, re-running a chat turn the user already saw fail (and billing it
        # again), so retries are off; a request still queued after two minutes is stale.
        # Invocations that fail or expire land in a queue (with the publish in it) instead
        # of vanishing; the monitoring alarms on it.
        self.failed_chat_invocations = self._failed_invocations_queue()
        self.chat_handler.configure_async_invoke(
            retry_attempts=0,
            max_event_age=Duration.minutes(2),
            on_failure=destinations.SqsDestination(self.failed_chat_invocations),
        )

        self.subscribe_authorizer = self._function(
            "SubscribeAuthorizer",
            handler=SUBSCRIBE_AUTHORIZER_HANDLER,
            code=code,
            layers=[powertools],
            # Compares two strings; it sits on the subscribe path, so it must answer fast or
            # fail fast. The smallest memory size is plenty.
            timeout=Duration.seconds(5),
            memory_size=128,
            environment={
                "POWERTOOLS_SERVICE_NAME": f"{SERVICE_NAME}-subscribe",
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            },
            description="Lets a user subscribe only to /outbound/<their sub>.",
        )

    def _failed_invocations_queue(self) -> sqs.Queue:
        queue = sqs.Queue(
            self,
            "FailedChatInvocations",
            # The records hold users' prompts: encrypted, TLS only, kept long enough to look.
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(
            queue,
            "AwsSolutions-SQS3",
            "This queue is itself the dead end of failed chat invocations (the Lambda "
            "on-failure destination); operators read it, nothing consumes it.",
        )
        return queue

    @property
    def chat_role(self) -> iam.IRole:
        assert self.chat_handler.role is not None
        return self.chat_handler.role

    def _chat_environment(self, wiring: ChatHandlerWiring) -> dict[str, str]:
        """The settings table's `stack` column (dataplane/settings_table.py), with this stack's
        resources filled in; everything else the handler reads keeps the table's default."""
        return stack_environment(
            {
                "GATEWAY_POLICIES_TABLE": wiring.tables.policies.table_name,
                "GATEWAY_USAGE_TABLE": wiring.tables.usage.table_name,
                "GATEWAY_CACHE_TABLE": wiring.tables.cache.table_name,
                "GATEWAY_EVENTS_HTTP_ENDPOINT": wiring.events_http_endpoint,
                "GATEWAY_FIREHOSE_STREAM": wiring.delivery_stream.delivery_stream_name,
                "GATEWAY_MONTH_TIMEZONE": wiring.month_timezone,
                "GATEWAY_GUARDRAIL_ID": wiring.guardrail_id,
                "GATEWAY_GUARDRAIL_VERSION": wiring.guardrail_version,
                "POWERTOOLS_SERVICE_NAME": f"{SERVICE_NAME}-chat",
            }
        )

    def _function(self, construct_id: str, **props: object) -> lambda_.Function:
        log_group = logs.LogGroup(
            self,
            f"{construct_id}Logs",
            retention=logs.RetentionDays.ONE_MONTH,
            # Operational logs; the durable record of every request is the S3 lake.
            removal_policy=RemovalPolicy.DESTROY,
        )
        # An explicit role instead of the default one, which would attach the managed
        # AWSLambdaBasicExecutionRole (logs:* on every log group in the account).
        role = iam.Role(
            self,
            f"{construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Execution role of the AI gateway {construct_id}.",
        )
        log_group.grant_write(role)
        function = lambda_.Function(
            self,
            construct_id,
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=lambda_.Architecture.ARM_64,
            role=role,
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            tracing=lambda_.Tracing.ACTIVE,
            **props,  # type: ignore[arg-type]
        )
        acknowledge(
            function,
            "AwsSolutions-L1",
            "Python 3.12 is pinned on purpose: the public Powertools layer variant "
            "(python3.12-arm64) and the data plane's tested interpreter must match; the runtime "
            "is bumped together with both.",
        )
        # X-Ray's PutTraceSegments/PutTelemetryRecords support no resource-level scoping.
        acknowledge(
            role,
            "AwsSolutions-IAM5",
            "Active X-Ray tracing needs xray:PutTraceSegments/PutTelemetryRecords, which have "
            "no resource-level permissions; nothing else in this role is unscoped.",
            findings=["Resource::*"],
        )
        return function

    def grant_chat_data_plane(
        self, statements: list[iam.PolicyStatement], *, wildcard_arns: list[str]
    ) -> None:
        """Attach the statements derived from the chat turn's declared needs (permissions.py)."""
        policy = iam.Policy(self, "ChatHandlerDataPlaneAccess", statements=statements)
        policy.attach_to_role(self.chat_role)
        # The model segment of Bedrock ARNs cannot be narrowed at deploy time (see permissions.py).
        acknowledge(
            policy,
            "AwsSolutions-IAM5",
            BEDROCK_NAG_REASON,
            findings=[resource_finding(self, arn) for arn in wildcard_arns],
        )
