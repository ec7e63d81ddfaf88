"""Dashboard and alarms over the data plane's own metrics (namespace AIGateway) and Lambda's.

The data plane emits its metrics in CloudWatch Embedded Metric Format with a `ModelId`
dimension. Models are chosen by admins at run time, so widgets use SEARCH expressions (one
line per model, whatever models exist) and alarms use Metrics Insights queries, which sum a
metric across every dimension combination; neither needs the model list at deploy time.
"""
from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from dataplane.telemetry.emf import METRICS_NAMESPACE

# Counted by the chat handler when a publish failed outside a turn (see
# dataplane/handlers/appsync_chat.py); only `service` as dimension, no ModelId.
HANDLER_FAILURE_METRIC = "ChatHandlerFailures"

PERIOD = Duration.minutes(5)
MODEL_DIMENSION = "ModelId"

TOKEN_METRICS = ("InputTokens", "OutputTokens", "TotalTokens")
LATENCY_METRICS = ("TimeToFirstTokenMs", "LatencyMs")
COUNT_METRICS = ("Refusals", "CacheHits", "Errors", "ModelThrottled", "GuardrailInterventions")
GATEWAY_METRICS = TOKEN_METRICS + LATENCY_METRICS + COUNT_METRICS


def per_model(metric_name: str, statistic: str, label: str | None = None) -> cloudwatch.MathExpression:
    """One line per model that reported `metric_name`.

    Not the exact-schema form `{AIGateway,ModelId}`: that would miss series carrying an extra
    dimension (Powertools adds `service`), and the dashboard should not break on that.
    """
    return cloudwatch.MathExpression(
        expression=(
            f"SEARCH('Namespace=\"{METRICS_NAMESPACE}\" MetricName=\"{metric_name}\" "
            f"{MODEL_DIMENSION}', '{statistic}', {int(PERIOD.to_seconds())})"
        ),
        label=label or metric_name,
        period=PERIOD,
    )


def across_models(metric_name: str) -> cloudwatch.MathExpression:
    """The 5-minute sum of `metric_name` over all models: what an alarm watches."""
    return cloudwatch.MathExpression(
        expression=f'SELECT SUM("{metric_name}") FROM "{METRICS_NAMESPACE}"',  # noqa: S608 - Metrics Insights
        label=f"{metric_name} (all models)",
        period=PERIOD,
    )


class GatewayMonitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        chat_handler: lambda_.IFunction,
        subscribe_authorizer: lambda_.IFunction,
        failed_chat_invocations: sqs.IQueue,
        refusal_burst_threshold: int,
        alarm_email: str | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.alarm_topic = self._alarm_topic(alarm_email)
        self.dashboard = self._dashboard(chat_handler)
        self.alarms = self._alarms(
            chat_handler=chat_handler,
            subscribe_authorizer=subscribe_authorizer,
            failed_chat_invocations=failed_chat_invocations,
            refusal_burst_threshold=refusal_burst_threshold,
        )
        action = cloudwatch_actions.SnsAction(self.alarm_topic)
        for alarm in self.alarms:
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)

    def _alarm_topic(self, alarm_email: str | None) -> sns.Topic:
        # CloudWatch can only publish to an encrypted topic if the key's policy lets it; the
        # AWS-managed aws/sns key cannot be edited, so the topic has its own key.
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description="Encrypts the AI gateway alarm topic.",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" means this key
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            )
        )
        topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name="AI gateway alarms",
            master_key=key,
            enforce_ssl=True,
        )
        if alarm_email:
            topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        return topic

    def _dashboard(self, chat_handler: lambda_.IFunction) -> cloudwatch.Dashboard:
        def graph(title: str, metrics: list[cloudwatch.IMetric], **kwargs: object) -> cloudwatch.GraphWidget:
            return cloudwatch.GraphWidget(title=title, left=metrics, width=12, height=6, **kwargs)  # type: ignore[arg-type]

        dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"{Stack.of(self).stack_name}-gateway",
            default_interval=Duration.hours(6),
        )
        dashboard.add_widgets(
            graph("Tokens by model (total)", [per_model("TotalTokens", "Sum")], stacked=True),
            graph(
                "Input and output tokens by model",
                [per_model("InputTokens", "Sum"), per_model("OutputTokens", "Sum")],
            ),
        )
        dashboard.add_widgets(
            graph("Time to first token p90 (ms)", [per_model("TimeToFirstTokenMs", "p90")]),
            graph("Turn latency p90 (ms)", [per_model("LatencyMs", "p90")]),
        )
        dashboard.add_widgets(
            graph("Quota refusals", [per_model("Refusals", "Sum")]),
            graph("Cache hits (model calls saved)", [per_model("CacheHits", "Sum")]),
        )
        dashboard.add_widgets(
            graph(
                "Guardrail interventions (blocked prompts and answers)", [per_model("GuardrailInterventions", "Sum")]
            ),
        )
        dashboard.add_widgets(
            graph(
                "Errors and Bedrock throttling",
                [per_model("Errors", "Sum"), per_model("ModelThrottled", "Sum")],
            ),
            graph(
                "Chat handler",
                [
                    chat_handler.metric_invocations(period=PERIOD),
                    chat_handler.metric_errors(period=PERIOD),
                    chat_handler.metric_throttles(period=PERIOD),
                ],
                right=[chat_handler.metric_duration(period=PERIOD, statistic="p90")],
            ),
        )
        return dashboard

    def _alarms(
        self,
        *,
        chat_handler: lambda_.IFunction,
        subscribe_authorizer: lambda_.IFunction,
        failed_chat_invocations: sqs.IQueue,
        refusal_burst_threshold: int,
    ) -> list[cloudwatch.Alarm]:
        def alarm(
            construct_id: str, metric: cloudwatch.IMetric, threshold: float, description: str
        ) -> cloudwatch.Alarm:
            return cloudwatch.Alarm(
                self,
                construct_id,
                metric=metric,
                threshold=threshold,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                # No traffic is not a failure.
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=description,
            )

        return [
            # Domain failures are answered to the user by the handler; a Lambda error means an
            # exception escaped it, so even one is worth a look.
            alarm(
                "ChatHandlerErrors",
                chat_handler.metric_errors(period=PERIOD, statistic="Sum"),
                1,
                "The chat handler raised an unhandled exception.",
            ),
            alarm(
                "ChatHandlerFailures",
                cloudwatch.MathExpression(
                    expression=f'SELECT SUM("{HANDLER_FAILURE_METRIC}") FROM "{METRICS_NAMESPACE}"',  # noqa: S608
                    label="Chat handler failures outside a turn",
                    period=PERIOD,
                ),
                1,
                "A publish failed outside a chat turn (configuration, store or publish back); "
                "the user got an error event if one could be sent.",
            ),
            alarm(
                "FailedChatInvocations",
                failed_chat_invocations.metric_approximate_number_of_messages_visible(
                    period=PERIOD, statistic="Maximum"
                ),
                1,
                "Chat invocations failed or expired and wait in the on-failure queue.",
            ),
            # Refusals are normal answers (not Lambda errors): this only counts failures.
            alarm(
                "SubscribeAuthorizerErrors",
                subscribe_authorizer.metric_errors(period=PERIOD, statistic="Sum"),
                1,
                "The subscribe authorizer failed: users cannot receive answers.",
            ),
            alarm(
                "TurnErrors",
                across_models("Errors"),
                5,
                "Chat turns are ending in errors (provider, store or publish failures).",
            ),
            alarm(
                "BedrockThrottling",
                across_models("ModelThrottled"),
                5,
                "Bedrock is throttling model calls: raise the service quota or use a "
                "cross-region inference profile.",
            ),
            alarm(
                "RefusalBurst",
                across_models("Refusals"),
                refusal_burst_threshold,
                "Many quota refusals at once: a limit may be set too low, or a client loops.",
            ),
        ]
