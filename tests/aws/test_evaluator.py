"""The twin's IAM evaluator on hand-written policies: AWS's evaluation rules, one by one."""
from __future__ import annotations

import pytest

from tests.aws.iam import ALLOWED, EXPLICIT_DENY, IMPLICIT_DENY, evaluate

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/usage"


def allow(action, resource, **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def test_nothing_allowed_is_an_implicit_deny() -> None:
    assert evaluate([], "dynamodb:GetItem", TABLE) == IMPLICIT_DENY
    assert evaluate([allow("dynamodb:GetItem", TABLE)], "dynamodb:BatchGetItem", TABLE) == IMPLICIT_DENY


def test_an_explicit_deny_wins_over_any_allow() -> None:
    statements = [allow("dynamodb:*", "*"), {"Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": TABLE}]
    assert evaluate(statements, "dynamodb:DeleteItem", TABLE) == EXPLICIT_DENY
    assert evaluate(statements, "dynamodb:GetItem", TABLE) == ALLOWED


def test_action_names_match_case_insensitively_with_wildcards() -> None:
    statements = [allow(["DynamoDB:getitem", "dynamodb:Batch?etItem", "firehose:Put*"], "*")]
    for action in ("dynamodb:GetItem", "dynamodb:BatchGetItem", "firehose:PutRecordBatch"):
        assert evaluate(statements, action, TABLE) == ALLOWED, action
    assert evaluate(statements, "dynamodb:BatchWriteItem", TABLE) == IMPLICIT_DENY


def test_resources_match_case_sensitively_and_wildcards_stay_in_their_arn_segment() -> None:
    statements = [allow("dynamodb:GetItem", "arn:aws:dynamodb:*:123456789012:table/us*")]
    assert evaluate(statements, "dynamodb:GetItem", TABLE) == ALLOWED
    assert evaluate(statements, "dynamodb:GetItem", TABLE.replace("usage", "Usage")) == IMPLICIT_DENY
    assert evaluate(statements, "dynamodb:GetItem", TABLE.replace("123456789012", "999999999999")) == IMPLICIT_DENY
    # `*` in the region segment does not reach into the account segment.
    spanning = [allow("bedrock:InvokeModel", "arn:aws:bedrock:*:foundation-model/*")]
    assert evaluate(spanning, "bedrock:InvokeModel", "arn:aws:bedrock:us-east-1::foundation-model/m") == IMPLICIT_DENY
    # An empty segment (the region-less foundation-model ARN) is matched by `*`.
    regional = [allow("bedrock:InvokeModel", "arn:aws:bedrock:*::foundation-model/*")]
    assert evaluate(regional, "bedrock:InvokeModel", "arn:aws:bedrock:::foundation-model/m") == ALLOWED


def test_not_action_and_not_resource_invert_the_match() -> None:
    statements = [{"Effect": "Allow", "NotAction": "dynamodb:Delete*", "NotResource": "arn:aws:s3:::*"}]
    assert evaluate(statements, "dynamodb:GetItem", TABLE) == ALLOWED
    assert evaluate(statements, "dynamodb:DeleteItem", TABLE) == IMPLICIT_DENY
    assert evaluate(statements, "s3:GetObject", "arn:aws:s3:::bucket/key") == IMPLICIT_DENY


def test_conditions_are_evaluated_and_unknown_operators_fail_loudly() -> None:
    statements = [allow("bedrock:InvokeModel", "*", Condition={"StringEquals": {"aws:RequestedRegion": "us-east-1"}})]
    assert evaluate(statements, "bedrock:InvokeModel", "*", {"aws:RequestedRegion": "us-east-1"}) == ALLOWED
    assert evaluate(statements, "bedrock:InvokeModel", "*", {"aws:RequestedRegion": "eu-west-1"}) == IMPLICIT_DENY
    assert evaluate(statements, "bedrock:InvokeModel", "*") == IMPLICIT_DENY  # key absent
    odd = [allow("s3:GetObject", "*", Condition={"NumericLessThan": {"s3:max-keys": "10"}})]
    with pytest.raises(NotImplementedError, match="NumericLessThan"):
        evaluate(odd, "s3:GetObject", "*")
