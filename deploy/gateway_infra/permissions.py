"""IAM statements shared by more than one principal (the chat Lambda and the Django app)."""
from __future__ import annotations

from aws_cdk import Aws, Stack
from aws_cdk import aws_iam as iam

# ConverseStream is authorised by this one action.
BEDROCK_STREAM_ACTIONS = ("bedrock:InvokeModelWithResponseStream",)


def bedrock_model_arns(stack: Stack, *, extra_regions: tuple[str, ...] = ()) -> list[str]:
    """Every model a chat turn may address, as narrow as Bedrock's ARNs allow.

    Model ids are chosen by admins at run time (the allow-list lives in Django, and is enforced
    by the data plane before the call), so the model part of each ARN is a wildcard:
    - foundation-model/*: public models; foundation-model ARNs carry no account. A
      cross-region inference profile forwards to the same model in other regions, so those
      regions are listed too (context `gateway:bedrockExtraRegions`).
    - inference-profile/*, application-inference-profile/*: profiles in this account/region.
    - imported-model/*: private models imported into this account/region (custom model import).
    """
    partition = Aws.PARTITION
    regions = (stack.region, *extra_regions)
    arns = [f"arn:{partition}:bedrock:{region}::foundation-model/*" for region in regions]
    arns += [
        f"arn:{partition}:bedrock:{stack.region}:{stack.account}:{kind}/*"
        for kind in ("inference-profile", "application-inference-profile", "imported-model")
    ]
    return arns


def bedrock_stream_statement(stack: Stack, *, extra_regions: tuple[str, ...]) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid="InvokeAllowListedModels",
        actions=list(BEDROCK_STREAM_ACTIONS),
        resources=bedrock_model_arns(stack, extra_regions=extra_regions),
    )


BEDROCK_NAG_REASON = (
    "Model ids are chosen at run time from the admins' allow-list (enforced by the data plane "
    "before any call), so the model segment of the Bedrock ARN is a wildcard; the statement "
    "is still scoped to one action, this account's region(s) and the model resource types."
)
