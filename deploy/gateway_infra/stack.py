"""The serverless data plane as one stack: auth, events API, functions, tables, lake,
monitoring and the control plane's access, wired together."""
from __future__ import annotations

from typing import Any

from aws_cdk import Aws, Stack
from constructs import Construct

from dataplane.permissions import Resource, Role

from .auth import GatewayAuth, default_domain_prefix
from .config import GatewayConfig
from .control_plane import BudgetAlertsTopic, ControlPlaneAccess
from .events_api import ChatEventsApi
from .functions import ChatHandlerWiring, GatewayFunctions
from .guardrail import DefaultGuardrail
from .lake import ATHENA_RESULTS_PREFIX, LAKE_PREFIX, LAKE_ROOT_PREFIX, AnalyticsLake
from .monitoring import GatewayMonitoring
from .nag import acknowledge
from .outputs import add_env_outputs
from .permissions import BedrockAccess, bedrock_model_arns, role_needs, statements_for, wildcard_arns
from .tables import GatewayTables
from .waf import EventsApiFirewall


class GatewayDataPlaneStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: GatewayConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # The Firehose L2 always adds a CIDR mapping (used only for Redshift/Splunk
        # destinations); an unused mapping is harmless.
        acknowledge(
            self,
            "CloudFormation-Validate::W7001",
            "Unused CIDR mapping added by the Firehose L2 construct for other destination types.",
        )

        tables = GatewayTables(self, "Tables", retain_data=config.retain_data)
        lake = AnalyticsLake(
            self,
            "Lake",
            retain_data=config.retain_data,
            bytes_scanned_cutoff=config.athena_bytes_scanned_cutoff,
        )
        auth = GatewayAuth(
            self,
            "Auth",
            domain_prefix=config.cognito_domain_prefix or default_domain_prefix(config.stack_name),
            callback_urls=config.callback_urls,
            logout_urls=config.logout_urls,
            retain_data=config.retain_data,
        )
        # The API exists before the functions (the chat handler needs its HTTP endpoint) and
        # gets its namespaces after them (each namespace needs its handler).
        events = ChatEventsApi(self, "Events", user_pool=auth.user_pool)
        EventsApiFirewall(
            self,
            "Firewall",
            api_arn=events.api.api_arn,
            rate_limit=config.waf_rate_limit,
            rate_window_seconds=config.waf_rate_window_seconds,
        )
        guardrail = DefaultGuardrail(self, "Guardrail", name=f"{config.stack_name}-default")
        functions = GatewayFunctions(
            self,
            "Functions",
            wiring=ChatHandlerWiring(
                tables=tables,
                delivery_stream=lake.delivery_stream,
                events_http_endpoint=events.http_endpoint,
                month_timezone=config.month_timezone,
                guardrail_id=guardrail.guardrail_id,
                guardrail_version=guardrail.version_number,
            ),
            powertools_layer_arn=config.powertools_layer_arn,
            chat_reserved_concurrency=config.chat_reserved_concurrency,
        )
        events.add_chat_namespaces(
            chat_handler=functions.chat_handler,
            subscribe_authorizer=functions.subscribe_authorizer,
        )
        budget_alerts = BudgetAlertsTopic(self, "BudgetAlerts")
        # Each role is granted what its code declares, on this stack's resources.
        arns = resource_arns(
            self,
            tables=tables,
            lake=lake,
            events=events,
            budget_alerts=budget_alerts,
            bedrock=BedrockAccess(
                inference_regions=config.bedrock_inference_regions,
                global_inference=config.bedrock_global_inference,
            ),
        )
        chat_needs = role_needs(Role.CHAT_HANDLER)
        functions.grant_chat_data_plane(
            statements_for(chat_needs, arns), wildcard_arns=wildcard_arns(chat_needs, arns)
        )

        GatewayMonitoring(
            self,
            "Monitoring",
            chat_handler=functions.chat_handler,
            subscribe_authorizer=functions.subscribe_authorizer,
            failed_chat_invocations=functions.failed_chat_invocations,
            refusal_burst_threshold=config.refusal_burst_threshold,
            alarm_email=config.alarm_email,
        )
        control_plane_needs = role_needs(Role.CONTROL_PLANE)
        control_plane = ControlPlaneAccess(
            self,
            "ControlPlane",
            statements=statements_for(control_plane_needs, arns),
            wildcard_arns=wildcard_arns(control_plane_needs, arns),
            principal_arn=config.control_plane_principal_arn,
        )

        add_env_outputs(
            self,
            {
                "GATEWAY_POLICIES_TABLE": tables.policies.table_name,
                "GATEWAY_USAGE_TABLE": tables.usage.table_name,
                "GATEWAY_CACHE_TABLE": tables.cache.table_name,
                "GATEWAY_EVENTS_HTTP_ENDPOINT": events.http_endpoint,
                "GATEWAY_EVENTS_REALTIME_ENDPOINT": events.realtime_endpoint,
                "COGNITO_USER_POOL_ID": auth.user_pool.user_pool_id,
                "COGNITO_CLIENT_ID": auth.web_client.user_pool_client_id,
                "COGNITO_DOMAIN": auth.domain_url,
                "ATHENA_WORKGROUP": lake.workgroup.ref,
                "ATHENA_OUTPUT_LOCATION": lake.results_location,
                "ATHENA_DATABASE": lake.database_name,
                "GATEWAY_FIREHOSE_STREAM": lake.delivery_stream.delivery_stream_name,
                # Where Django publishes the users/group_members tables the reports join.
                "GATEWAY_LAKE_BUCKET": lake.lake_bucket.bucket_name,
                "GATEWAY_LAKE_PREFIX": LAKE_ROOT_PREFIX,
                "AWS_REGION": Aws.REGION,
                "CONTROL_PLANE_POLICY_ARN": control_plane.policy.managed_policy_arn,
                # Django must cut months where the data plane does, or the two disagree on usage.
                "GATEWAY_MONTH_TIMEZONE": config.month_timezone,
                "GATEWAY_GUARDRAIL_ID": guardrail.guardrail_id,
                "GATEWAY_GUARDRAIL_VERSION": guardrail.version_number,
                "GATEWAY_BUDGET_ALERTS_TOPIC_ARN": budget_alerts.topic.topic_arn,
            },
        )


def resource_arns(
    stack: Stack,
    *,
    tables: GatewayTables,
    lake: AnalyticsLake,
    events: ChatEventsApi,
    budget_alerts: BudgetAlertsTopic,
    bedrock: BedrockAccess,
) -> dict[Resource, list[str]]:
    """Where each resource of the IAM vocabulary lives in this stack."""
    glue_table = f"{lake.database_name}/{lake.table_name}"
    return {
        Resource.POLICIES_TABLE: [tables.policies.table_arn],
        Resource.USAGE_TABLE: [tables.usage.table_arn],
        Resource.CACHE_TABLE: [tables.cache.table_arn],
        Resource.REQUEST_STREAM: [lake.delivery_stream.delivery_stream_arn],
        Resource.MODELS: bedrock_model_arns(stack, bedrock),
        # The stack's default and any named guardrail a policy may choose in this account.
        Resource.GUARDRAILS: [stack.format_arn(service="bedrock", resource="guardrail", resource_name="*")],
        Resource.OUTBOUND_NAMESPACE: [events.outbound.channel_namespace_arn],
        Resource.REPORT_WORKGROUP: [
            stack.format_arn(service="athena", resource="workgroup", resource_name=lake.workgroup.ref)
        ],
        Resource.LAKE_CATALOG: [
            stack.format_arn(service="glue", resource="catalog"),
            stack.format_arn(service="glue", resource="database", resource_name=lake.database_name),
            stack.format_arn(service="glue", resource="table", resource_name=glue_table),
            *(
                stack.format_arn(service="glue", resource="table", resource_name=f"{lake.database_name}/{table}")
                for table in lake.directory_tables
            ),
        ],
        Resource.LAKE_BUCKETS: [lake.lake_bucket.bucket_arn, lake.results_bucket.bucket_arn],
        Resource.REQUEST_LOG_OBJECTS: [lake.lake_bucket.arn_for_objects(f"{LAKE_PREFIX}*")],
        Resource.DIRECTORY_OBJECTS: [
            lake.lake_bucket.arn_for_objects(f"{lake.directory_location(table)}*") for table in lake.directory_tables
        ],
        Resource.QUERY_RESULT_OBJECTS: [
            lake.results_bucket.arn_for_objects(f"{ATHENA_RESULTS_PREFIX}*")
        ],
        Resource.BUDGET_ALERTS_TOPIC: [budget_alerts.topic.topic_arn],
    }
