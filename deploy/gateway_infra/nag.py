"""Acknowledging cdk-nag findings (cdk-nag 3.x: CDK's native `Validations.acknowledge`).

cdk-nag 3 reports each finding as `RuleId[Finding]` (e.g. `AwsSolutions-IAM5[Resource::*]`)
and suppresses exactly what is acknowledged, so a new wildcard cannot hide behind an old
acknowledgment. An acknowledgment covers the construct it is made on and its children. Every
call carries the reason; the call site has a comment saying why the finding is acceptable.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct


def acknowledge(
    construct: IConstruct, rule_id: str, reason: str, *, findings: Iterable[str] = ()
) -> None:
    ids = [f"{rule_id}[{finding}]" for finding in findings] or [rule_id]
    for finding_id in ids:
        Validations.of(construct).acknowledge(Acknowledgment(id=finding_id, reason=reason))


def resource_finding(scope: IConstruct, value: str) -> str:
    """The finding cdk-nag prints for a policy resource, e.g. `Resource::<Bucket1234.Arn>/*`.

    cdk-nag renders `Ref`/`Fn::GetAtt` as `<Name>`/`<Name.Attr>` inside the joined string;
    computing it from the same value the policy uses keeps the acknowledgment exact whether
    the stack is environment-agnostic or pinned to an account and region.
    """
    return "Resource::" + _render(Stack.of(scope).resolve(value))


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        return f"<{logical_id}.{attribute}>"
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_render(part) for part in parts)
    raise ValueError(f"cannot render {value!r} as a cdk-nag finding")
