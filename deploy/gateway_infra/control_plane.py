"""What the Django control plane may do in this account, as one managed policy.

Django syncs policies to the policies table, shows and resets usage windows, purges the answer
cache and manages prepared answers, and runs the analysts' reports on Athena. The statements
come from what that code declares (`quotas.permissions`, `analytics.permissions`), built in
permissions.py. When a principal ARN is given (context `gateway:controlPlanePrincipalArn`, e.g.
the role of the host or task running Django), a role it may assume is created with this policy
attached.

It also owns the budget-alert topic Django publishes to (operators subscribe what they like:
e-mail, chat webhooks through a Lambda, a ticketing queue).
"""
from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from .nag import acknowledge, resource_finding


class BudgetAlertsTopic(Construct):
    """Where Django publishes budget alerts (80 % and 100 % of a user's monthly budget)."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        # The AWS-managed SNS key: only Django (in this account) publishes, and the managed
        # key's policy already lets the account's principals use it through SNS.
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name="AI gateway budget alerts",
            master_key=kms.Alias.from_alias_name(self, "SnsKey", "alias/aws/sns"),
            enforce_ssl=True,
        )


class ControlPlaneAccess(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        statements: list[iam.PolicyStatement],
        wildcard_arns: list[str],
        principal_arn: str | None,
    ) -> None:
        super().__init__(scope, construct_id)

        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            description="AI gateway control plane (Django): policy sync, usage admin, reports.",
            statements=statements,
        )
        # Object-level S3 actions take object ARNs; these are prefix-scoped in named buckets.
        acknowledge(
            self.policy,
            "AwsSolutions-IAM5",
            "Object-level S3 actions need an object ARN pattern; they are limited to the lake's "
            "request prefix (read) and the Athena results prefix (write) of two named buckets.",
            findings=[resource_finding(self, arn) for arn in wildcard_arns],
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
