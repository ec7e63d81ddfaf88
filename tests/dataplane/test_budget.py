"""A policy's monthly cost budget, enforced like a token window: priced at the catalogue's
prices, reserved with the answer's maximum, settled to what was billed, refused in dollars."""
from __future__ import annotations

from dataplane.pipeline import Identity
from dataplane.policy import WindowLimits
from dataplane.stores.base import TokenCount, WindowCharge, cost_of
from dataplane.windows import current_windows
from tests.dataplane.conftest import ALICE, chat_request, make_policy
from tests.dataplane.test_pipeline import run, usage_of

alice = Identity(sub=ALICE, username="alice")
# make_policy's model costs $0.0008 per 1k input tokens and $0.004 per 1k output tokens:
# 0.8 and 4 micro-USD per token.


def with_budget(gateway, micro_usd: int) -> None:
    policy = make_policy(ALICE, version=2)
    gateway.store.policy_put(
        type(policy)(**{**policy.__dict__, "monthly": WindowLimits(total=100_000, cost=micro_usd)})
    )
    gateway.policies.forget()


def spend(gateway, micro_usd: int) -> None:
    """What earlier turns this month cost."""
    policy = gateway.store.policy_get(ALICE)
    ten, month = current_windows(gateway.clock(), gateway.config.month_timezone)
    charges = [WindowCharge(ten, policy.ten_minute), WindowCharge(month, policy.monthly)]
    reservation = gateway.store.reserve(sub=ALICE, charges=charges, estimate=TokenCount(input=1, output=1, cost=1))
    gateway.store.settle(reservation=reservation, actual=TokenCount(input=1, output=1, cost=micro_usd))


def test_a_turn_is_charged_its_cost_at_catalogue_prices(gateway, provider):
    with_budget(gateway, 1_000_000)  # $1
    record, out = run(gateway, chat_request(inferenceConfig={"maxTokens": 100}))
    assert out.errors() == []
    expected = cost_of(input_tokens=record.input_tokens, output_tokens=record.output_tokens,
                       price_in_per_1k=0.0008, price_out_per_1k=0.004)
    month = usage_of(gateway)["month"]
    assert expected > 0
    assert month.cost == expected  # the reservation's cost was replaced by the billed one
    assert month.to_wire()["costUsd"] == round(expected / 1_000_000, 6)
    assert month.to_wire()["budgetUsd"] == 1.0


def test_a_spent_budget_refuses_in_dollars(gateway, provider):
    with_budget(gateway, 10_000)  # $0.01
    spend(gateway, 9_990)
    record, out = run(gateway, chat_request(inferenceConfig={"maxTokens": 100}))
    [error] = out.errors()
    assert error["type"] == "QuotaExceeded"
    assert (error["code"], error["counter"], error["window"]) == ("budget_spent", "cost", "month")
    assert error["budgetUsd"] == 0.01
    assert error["usedUsd"] == 0.00999
    assert "budget of $0.01 is spent" in error["message"]
    assert record.outcome == "refused"
    assert provider.calls == []  # the model was never called


def test_a_budget_with_a_little_left_lowers_the_maximum(gateway, provider):
    with_budget(gateway, 10_000)
    spend(gateway, 10_000 - 400)  # 400 micro-USD left: about 80 output tokens after the input
    _, out = run(gateway, chat_request(inferenceConfig={"maxTokens": 1000}))
    assert out.errors() == []
    start = next(event for event in out.events if "messageStart" in event)
    assert start["reservation"]["requestedMaxTokens"] == 1000
    assert 64 <= start["reservation"]["maxTokens"] < 100
    assert usage_of(gateway)["month"].cost <= 10_000  # never over the budget
