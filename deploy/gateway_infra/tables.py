"""The three DynamoDB tables the data plane reads and the control plane syncs to.

Key layout: policies `pk=USER#<sub>`; usage `pk=<sub>`, `sk=10m#...|month#...`;
cache `pk=<request hash>` or `PREP#...` for prepared answers.
"""
from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from dataplane.stores.dynamodb import TTL_ATTRIBUTE

from .nag import acknowledge

__all__ = ["TTL_ATTRIBUTE", "GatewayTables"]


class GatewayTables(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, retain_data: bool) -> None:
        super().__init__(scope, construct_id)
        self._retain_data = retain_data

        # Policies are the control plane's synced truth; a bad sync or a mistaken delete should
        # be recoverable to the second, so point-in-time recovery is on.
        self.policies = self._table("Policies", sort_key=None, ttl=False, pitr=True)
        # Usage rows are short-lived counters (a window plus a grace period) that TTL removes;
        # cache rows are reproducible. PITR would back up data that expires by design.
        self.usage = self._table("Usage", sort_key="sk", ttl=True, pitr=False)
        self.cache = self._table("Cache", sort_key=None, ttl=True, pitr=False)

        for table in (self.usage, self.cache):
            acknowledge(
                table,
                "AwsSolutions-DDB3",
                "Rows expire by TTL (usage windows, cached answers) and are rebuilt by normal "
                "traffic; point-in-time recovery would only back up data designed to disappear. "
                "The policies table keeps PITR on.",
            )

    def _table(
        self, name: str, *, sort_key: str | None, ttl: bool, pitr: bool
    ) -> dynamodb.Table:
        return dynamodb.Table(
            self,
            name,
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=(
                dynamodb.Attribute(name=sort_key, type=dynamodb.AttributeType.STRING)
                if sort_key
                else None
            ),
            # Traffic follows office hours and chat bursts; on-demand costs nothing at rest.
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=pitr
            ),
            time_to_live_attribute=TTL_ATTRIBUTE if ttl else None,
            deletion_protection=self._retain_data,
            removal_policy=RemovalPolicy.RETAIN if self._retain_data else RemovalPolicy.DESTROY,
        )
