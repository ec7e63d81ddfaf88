"""AppSync Events: the WebSocket front door of the serverless data plane.

Channels are `/inbound/<sub>` (users publish chat requests) and `/outbound/<sub>` (the chat
handler streams answers back). Auth modes per namespace carry the coarse rule (users may only
publish inbound and only subscribe outbound; only IAM, i.e. the chat handler, may publish
outbound); the handlers carry the fine rule (the `<sub>` segment must be the caller's own).
"""
from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_appsync as appsync
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from .nag import acknowledge, resource_finding

INBOUND = "inbound"
OUTBOUND = "outbound"

USER_POOL = appsync.AppSyncAuthorizationType.USER_POOL
IAM = appsync.AppSyncAuthorizationType.IAM


class ChatEventsApi(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, user_pool: cognito.IUserPool
    ) -> None:
        super().__init__(scope, construct_id)
        # Own logging role: CDK's default attaches the managed AWSAppSyncPushToCloudWatchLogs
        # policy, which allows writing to every log group in the account.
        logs_role = iam.Role(
            self,
            "ApiLogsRole",
            assumed_by=iam.ServicePrincipal("appsync.amazonaws.com"),
            description="Lets the AI gateway events API write its own error log.",
        )
        self.api = appsync.EventApi(
            self,
            "Api",
            api_name=f"{Stack.of(self).stack_name}-chat",
            authorization_config=appsync.EventApiAuthConfig(
                auth_providers=[
                    appsync.AppSyncAuthProvider(
                        authorization_type=USER_POOL,
                        cognito_config=appsync.AppSyncCognitoConfig(user_pool=user_pool),
                    ),
                    appsync.AppSyncAuthProvider(authorization_type=IAM),
                ],
                connection_auth_mode_types=[USER_POOL, IAM],
                # Namespaces below override these; the defaults are the safe side.
                default_publish_auth_mode_types=[IAM],
                default_subscribe_auth_mode_types=[USER_POOL],
            ),
        )
        # Logging is set on the L1: the L2's `log_config` always adds a LogRetention custom
        # resource (a Node.js Lambda with account-wide log permissions) just to set a
        # retention that the explicit log group below already has.
        cfn_api = self.api.node.default_child
        assert isinstance(cfn_api, appsync.CfnApi)
        cfn_api.add_property_override(
            "EventConfig.LogConfig",
            # Errors only: INFO/DEBUG would log every streamed chunk, i.e. the answers.
            {"CloudWatchLogsRoleArn": logs_role.role_arn, "LogLevel": "ERROR"},
        )
        # The log group AppSync writes to, created here so it has a retention (AppSync would
        # otherwise create it on first write, kept forever). It exists seconds after the API,
        # long before the first event is logged.
        self.log_group = logs.LogGroup(
            self,
            "ApiLogs",
            log_group_name=f"/aws/appsync/apis/{self.api.api_id}",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.log_group.grant_write(logs_role)

    @property
    def http_endpoint(self) -> str:
        """Where the chat handler POSTs (SigV4) the chunks it publishes."""
        return f"https://{self.api.http_dns}/event"

    @property
    def realtime_endpoint(self) -> str:
        return f"wss://{self.api.realtime_dns}/event/realtime"

    def add_chat_namespaces(
        self, *, chat_handler: lambda_.IFunction, subscribe_authorizer: lambda_.IFunction
    ) -> None:
        chat_source = self.api.add_lambda_data_source("ChatHandlerSource", chat_handler)
        authorizer_source = self.api.add_lambda_data_source(
            "SubscribeAuthorizerSource", subscribe_authorizer
        )

        self.inbound = self.api.add_channel_namespace(
            "Inbound",
            channel_namespace_name=INBOUND,
            authorization_config=appsync.NamespaceAuthConfig(
                publish_auth_mode_types=[USER_POOL],
                # Nobody listens on inbound (every user's prompts arrive there): no user may
                # subscribe, and a principal granted EventSubscribe anyway meets the
                # authorizer below, which allows `/outbound/<own sub>` only.
                subscribe_auth_mode_types=[IAM],
            ),
            # Direct Lambda integration, invoked asynchronously: the publish is acknowledged at
            # once and the answer arrives on the outbound channel, so a minutes-long stream never
            # holds the publish open.
            publish_handler_config=appsync.HandlerConfig(
                direct=True,
                data_source=chat_source,
                lambda_invoke_type=appsync.LambdaInvokeType.EVENT,
            ),
            subscribe_handler_config=appsync.HandlerConfig(
                direct=True,
                data_source=authorizer_source,
                lambda_invoke_type=appsync.LambdaInvokeType.REQUEST_RESPONSE,
            ),
        )
        self.outbound = self.api.add_channel_namespace(
            "Outbound",
            channel_namespace_name=OUTBOUND,
            authorization_config=appsync.NamespaceAuthConfig(
                publish_auth_mode_types=[IAM],
                subscribe_auth_mode_types=[USER_POOL],
            ),
            # Synchronous: the authorizer's answer decides whether the subscribe succeeds.
            subscribe_handler_config=appsync.HandlerConfig(
                direct=True,
                data_source=authorizer_source,
                lambda_invoke_type=appsync.LambdaInvokeType.REQUEST_RESPONSE,
            ),
        )

        for source, function in (
            (chat_source, chat_handler),
            (authorizer_source, subscribe_authorizer),
        ):
            # CDK's Lambda data source grants invoke on `<function arn>:*` so AppSync may call
            # a version or alias; it is still this one function.
            acknowledge(
                source,
                "AwsSolutions-IAM5",
                "lambda:InvokeFunction on the function's versions and aliases (`<arn>:*`), "
                "granted by CDK's Lambda data source; it names one function.",
                findings=[resource_finding(self, f"{function.function_arn}:*")],
            )
