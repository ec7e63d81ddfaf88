"""Budget alerts reach the stack's SNS topic as the control plane's synthesized policy allows."""
from __future__ import annotations

import pytest

from dataplane import aws
from tests.aws.twin import CONTROL_PLANE, AwsTwin
from tests.quotas.test_budget_alerts import spend, with_budget

pytestmark = pytest.mark.django_db(transaction=True)


def test_django_publishes_a_budget_alert_to_the_stacks_topic(aws_twin: AwsTwin, alice, monkeypatch, settings):
    from quotas.budget_alerts import budget_alerts_check

    topic = aws_twin.template.ref(
        next(k for k in aws_twin.template.of_type("AWS::SNS::Topic") if k.startswith("BudgetAlerts"))
    )
    settings.GATEWAY_BUDGET_ALERTS_TOPIC_ARN = topic
    settings.AWS_REGION = aws_twin.template.region
    monkeypatch.setenv("AWS_ENDPOINT_URL_SNS", aws_twin.endpoint_url)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    aws.client.cache_clear()
    store = aws_twin.store()
    monkeypatch.setattr("quotas.store.store_get", lambda: store)
    # Set-up, as CloudFormation and the chat Lambda would leave things (not enforced).
    with_budget(store, alice)
    spend(store, alice, 9_000_000)
    try:
        with aws_twin.acting_as(CONTROL_PLANE):
            [alert] = budget_alerts_check()
    finally:
        aws.client.cache_clear()
    assert alert.threshold == 80
    assert aws_twin.denials == []
    published = [d for d in aws_twin.decisions if d.action == "sns:Publish"]
    assert [(d.principal, d.resource, d.allowed) for d in published] == [(CONTROL_PLANE, topic, True)]
