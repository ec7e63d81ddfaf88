"""Pytest plugin: the synthesized stack (once per session) and the AWS twin built from it.

    def test_a_chat_turn(aws_twin, bedrock_server, monkeypatch):
        for name, value in aws_twin.lambda_environment(bedrock_endpoint_url=bedrock_server.url).items():
            monkeypatch.setenv(name, value)
        with aws_twin.acting_as("ChatHandler"):
            ...  # every botocore call here is authorised against the chat role's policies
        assert aws_twin.denials == []

Calls that are not botocore (an AppSync SigV4 publish) ask `tests.aws.twin.authorize(principal,
action, resource)`.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.aws.twin import AwsTwin
    from tests.deploy.synth import Synth


@pytest.fixture(scope="session")
def stack_synth() -> Synth:
    """The CDK app synthesized with cdk.json's context: the template everything reads."""
    from tests.deploy.synth import Synth

    return Synth()


@pytest.fixture(scope="session")
def aws_twin_session(stack_synth: Synth, dynamodb_server: str) -> Iterator[AwsTwin]:
    from tests.aws.template import Template
    from tests.aws.twin import AwsTwin

    twin = AwsTwin.start(Template(stack_synth.json, stack_name=stack_synth.stack_name), dynamodb_server)
    try:
        yield twin
    finally:
        twin.stop()


@pytest.fixture
def aws_twin(aws_twin_session: AwsTwin) -> Iterator[AwsTwin]:
    """The session's twin with a fresh decision log and empty tables."""
    aws_twin_session.forget_decisions()
    aws_twin_session.empty_tables()
    yield aws_twin_session
    assert aws_twin_session.enforcer.acting is None, "a test left an acting_as block open"
