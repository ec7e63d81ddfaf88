"""What the Django control plane may do in this account, as one managed policy.

Django syncs policies to the policies table, resets usage windows, purges the answer cache and
manages prepared answers, and runs the analysts' reports on Athena. When a principal ARN is
given (context `gateway:controlPlanePrincipalArn`, e.g. the role of the host or task running
Django), a role it may assume is created with this policy attached.
"""
from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from .nag import acknowledge, resource_finding

from .lake import ATHENA_RESULTS_PREFIX, LAKE_PREFIX, AnalyticsLake
from .tables import GatewayTables


class ControlPlaneAccess(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        tables: GatewayTables,
        lake: AnalyticsLake,
        principal_arn: str | None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)

        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            description="AI gateway control plane (Django): policy sync, usage admin, reports.",
            statements=[
                *self._store_statements(tables),
                *self._report_statements(stack, lake),
            ],
        )
        # Object-level S3 actions take object ARNs; these are prefix-scoped in named buckets.
        acknowledge(
            self.policy,
            "AwsSolutions-IAM5",
            "Object-level S3 actions need an object ARN pattern; they are limited to the lake's "
            "request prefix (read) and the Athena results prefix (write) of two named buckets.",
            findings=[resource_finding(self, arn) for arn in self._object_arns(lake)],
        )

        self.role: iam.Role | None = None
        if principal_arn:
            self.role = iam.Role(
                self,
                "Role",
                assumed_by=iam.ArnPrincipal(principal_arn),
                description="Assumed by the Django control plane of the AI gateway.",
                managed_policies=[self.policy],
            )

    @staticmethod
    def _store_statements(tables: GatewayTables) -> list[iam.PolicyStatement]:
        def on(table: dynamodb.ITable, sid: str, *actions: str) -> iam.PolicyStatement:
            return iam.PolicyStatement(
                sid=sid,
                actions=[f"dynamodb:{action}" for action in actions],
                resources=[table.table_arn],
            )

        return [
            # Publish/withdraw effective policies; read them back for the drift check and the
            # full resync (Scan), conditional on version so an older sync never wins.
            on(
                tables.policies,
                "SyncPolicies",
                "GetItem", "Query", "Scan", "PutItem", "UpdateItem", "DeleteItem",
                "BatchWriteItem",
            ),
            # Live usage view (Query/Scan over a window) and the admins' window reset.
            on(tables.usage, "AdministerUsage", "GetItem", "Query", "Scan", "UpdateItem"),
            # Cache purge (Scan + delete) and prepared answers, which admins write into the same
            # table under `PREP#` keys, hence PutItem.
            on(
                tables.cache,
                "AdministerCache",
                "GetItem", "Query", "Scan", "PutItem", "DeleteItem", "BatchWriteItem",
            ),
        ]

    @staticmethod
    def _report_statements(stack: Stack, lake: AnalyticsLake) -> list[iam.PolicyStatement]:
        workgroup_arn = stack.format_arn(
            service="athena", resource="workgroup", resource_name=lake.workgroup.name
        )
        catalog_arn = stack.format_arn(service="glue", resource="catalog")
        database_arn = stack.format_arn(
            service="glue", resource="database", resource_name=lake.database_name
        )
        table_arn = stack.format_arn(
            service="glue",
            resource="table",
            resource_name=f"{lake.database_name}/{lake.table_name}",
        )
        lake_bucket, results_bucket = lake.lake_bucket, lake.results_bucket
        return [
            iam.PolicyStatement(
                sid="RunReports",
                actions=[
                    "athena:StartQueryExecution",
                    "athena:GetQueryExecution",
                    "athena:GetQueryResults",
                    "athena:StopQueryExecution",
                    "athena:GetWorkGroup",
                ],
                resources=[workgroup_arn],
            ),
            iam.PolicyStatement(
                sid="ReadLakeCatalog",
                actions=[
                    "glue:GetDatabase",
                    "glue:GetTable",
                    "glue:GetTables",
                    "glue:GetPartition",
                    "glue:GetPartitions",
                ],
                resources=[catalog_arn, database_arn, table_arn],
            ),
            iam.PolicyStatement(
                sid="ListLakeAndResults",
                actions=["s3:ListBucket", "s3:GetBucketLocation"],
                resources=[lake_bucket.bucket_arn, results_bucket.bucket_arn],
            ),
            iam.PolicyStatement(
                sid="ReadRequestLog",
                actions=["s3:GetObject"],
                resources=[ControlPlaneAccess._object_arns(lake)[0]],
            ),
            iam.PolicyStatement(
                sid="WriteQueryResults",
                actions=[
                    "s3:GetObject",
                    "s3:PutObject",
                    "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts",
                ],
                resources=[ControlPlaneAccess._object_arns(lake)[1]],
            ),
        ]

    @staticmethod
    def _object_arns(lake: AnalyticsLake) -> tuple[str, str]:
        """(lake request objects, Athena result objects)."""
        return (
            lake.lake_bucket.arn_for_objects(f"{LAKE_PREFIX}*"),
            lake.results_bucket.arn_for_objects(f"{ATHENA_RESULTS_PREFIX}*"),
        )
