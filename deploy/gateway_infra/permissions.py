"""IAM statements built from what the code declares it calls (`dataplane.permissions`).

Nothing here lists actions for the gateway's own resources: each role gets one statement per
resource with exactly the actions its code declares (`dataplane.roles` for the chat Lambda,
`quotas.permissions` + `analytics.permissions` for Django). This module only knows where each
resource is (its ARNs in this stack) and which of them are wildcards that cdk-nag must be told
about.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import Aws, Stack
from aws_cdk import aws_iam as iam

from dataplane.permissions import Need, Resource, Role, actions_by_resource

# Regions a value of `gateway:bedrockInferenceRegions` may use to mean "any region".
ANY_REGION = "*"


def role_needs(role: Role) -> tuple[Need, ...]:
    """Every need the code running as `role` declares."""
    if role is Role.CHAT_HANDLER:
        from dataplane.roles import chat_handler_needs

        return chat_handler_needs()
    from analytics.permissions import DIRECTORY_PUBLISH_NEEDS, REPORT_ENGINE_NEEDS
    from quotas.permissions import BUDGET_ALERT_NEEDS, control_plane_store_needs

    return (*control_plane_store_needs(), *REPORT_ENGINE_NEEDS, *DIRECTORY_PUBLISH_NEEDS, *BUDGET_ALERT_NEEDS)


@dataclass(frozen=True)
class BedrockAccess:
    """Where a chat turn's model calls may land (CDK context, see config.py and README.md).

    - inference_regions: regions whose foundation models a cross-region (`us.`, `eu.`, `apac.`)
      profile may route to, besides the stack's own; `("*",)` means any region.
    - global_inference: `global.` profiles route to any commercial region; AWS authorises the
      routed call on the region-less `arn:aws:bedrock:::foundation-model/*` ARN.
    """

    inference_regions: tuple[str, ...] = ()
    global_inference: bool = False


def bedrock_model_arns(stack: Stack, access: BedrockAccess) -> list[str]:
    """Every model a chat turn may address, as narrow as Bedrock's ARNs allow.

    Model ids are chosen by admins at run time (the allow-list lives in Django, and is enforced
    by the data plane before the call), so the model part of each ARN is a wildcard:
    - foundation-model/*: public models (their ARNs carry no account), in the stack's region
      and every region a cross-region profile may route to;
    - the region-less foundation-model/* for `global.` profiles;
    - inference-profile/*, application-inference-profile/*: profiles, invoked in this region;
    - imported-model/*: private models imported into this account/region.
    """
    partition = Aws.PARTITION
    if ANY_REGION in access.inference_regions:
        regions: tuple[str, ...] = (ANY_REGION,)
    else:
        regions = (stack.region, *access.inference_regions)
    arns = [f"arn:{partition}:bedrock:{region}::foundation-model/*" for region in regions]
    if access.global_inference:
        arns.append(f"arn:{partition}:bedrock:::foundation-model/*")
    arns += [
        f"arn:{partition}:bedrock:{stack.region}:{stack.account}:{kind}/*"
        for kind in ("inference-profile", "application-inference-profile", "imported-model")
    ]
    return arns


def statement_id(resource: Resource) -> str:
    """`Resource.POLICIES_TABLE` → `PoliciesTable`: one statement per resource, named for it."""
    return "".join(word.capitalize() for word in resource.name.split("_"))


def statements_for(
    needs: Sequence[Need], arns: Mapping[Resource, Sequence[str]]
) -> list[iam.PolicyStatement]:
    """One Allow statement per resource the needs name, with exactly the declared actions."""
    return [
        iam.PolicyStatement(
            sid=statement_id(resource), actions=list(actions), resources=list(arns[resource])
        )
        for resource, actions in sorted(actions_by_resource(needs).items(), key=lambda kv: kv[0].name)
    ]


def wildcard_arns(needs: Sequence[Need], arns: Mapping[Resource, Sequence[str]]) -> list[str]:
    """The granted ARNs that end in a wildcard (for the cdk-nag acknowledgments)."""
    return [
        arn
        for resource in actions_by_resource(needs)
        for arn in arns[resource]
        if arn.endswith("*")
    ]


BEDROCK_NAG_REASON = (
    "Model ids are chosen at run time from the admins' allow-list (enforced by the data plane "
    "before any call), so the model segment of the Bedrock ARN is a wildcard; the statement "
    "is still scoped to one action, the configured regions and the model resource types. "
    "Likewise a policy may name any guardrail of this account (guardrail/*), for the one "
    "action bedrock:ApplyGuardrail."
)
