"""A policy's monthly cost budget, enforced like a token window: priced at the catalogue's
prices, reserved with the answer's maximum, settled to what was billed, refused in dollars."""
from __future__ import annotations

from dataclasses import replace

from dataplane.pipeline import Identity
from dataplane.policy import PooledBudget, WindowLimits, pool_owner
from dataplane.stores.base import TokenCount, WindowCharge, cost_of, pooled_charges
from dataplane.windows import current_windows
from tests.dataplane.conftest import ALICE, BOB, chat_request, make_policy
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


# -- a group's pooled budget ---------------------------------------------------------------------
RESEARCH = PooledBudget(key=pool_owner(7), name="Research", cost=1_000)  # $0.001 for the whole group
bob = Identity(sub=BOB, username="bob")


def in_research(gateway) -> None:
    """Alice and Bob share Research's pool; each has a personal budget of $1, plenty here."""
    for sub in (ALICE, BOB):
        policy = make_policy(sub, version=2, pools=(RESEARCH,))
        gateway.store.policy_put(replace(policy, monthly=WindowLimits(total=100_000, cost=1_000_000)))
    gateway.policies.forget()


def pool_usage(gateway):
    _, month = current_windows(gateway.clock(), gateway.config.month_timezone)
    [usage] = gateway.store.usage_read(sub=ALICE, charges=pooled_charges(month, (RESEARCH,)))
    return usage


def test_a_member_is_refused_when_the_others_spent_the_pool(gateway, provider):
    in_research(gateway)
    provider.usage = (1000, 50)  # billed: 1000 x 0.8 + 50 x 4 = 1,000 micro-USD, the whole pool
    _, out = run(gateway, chat_request(inferenceConfig={"maxTokens": 100}))
    assert out.errors() == []
    assert (pool_usage(gateway).cost, pool_usage(gateway).reserved) == (1_000, 0)

    record, out = run(gateway, chat_request(inferenceConfig={"maxTokens": 100}), identity=bob)

    [error] = out.errors()
    assert (error["code"], error["counter"], error["window"], error["group"]) == (
        "budget_spent", "cost", "group_month", "Research"
    )
    assert "The Research group's shared monthly budget of $0.00 is spent" in error["message"]
    assert record.outcome == "refused"
    assert record.refusal_window == "group_month"
    assert usage_of(gateway, BOB)["month"].cost == 0  # Bob's own budget is untouched
    assert len(provider.calls) == 1  # only Alice's turn reached the model


def test_a_pool_with_a_little_left_lowers_the_maximum(gateway, provider):
    in_research(gateway)
    provider.usage = (500, 0)  # billed 400 micro-USD: 600 left in the pool
    run(gateway, chat_request(inferenceConfig={"maxTokens": 100}))

    _, out = run(gateway, chat_request(inferenceConfig={"maxTokens": 1000}), identity=bob)

    assert out.errors() == []
    start = next(event for event in out.events if "messageStart" in event)
    assert start["reservation"]["requestedMaxTokens"] == 1000
    assert 64 <= start["reservation"]["maxTokens"] < 150
    assert pool_usage(gateway).cost <= RESEARCH.cost  # never over the pool


def test_a_failed_turn_gives_the_pool_back_its_estimate(gateway, provider):
    from dataplane.errors import ModelThrottled

    in_research(gateway)
    provider.fail_after, provider.error = 0, ModelThrottled("The model is busy; try again in a moment.")
    _, out = run(gateway, chat_request(inferenceConfig={"maxTokens": 100}))
    assert out.errors()[0]["type"] == "ModelThrottled"
    assert (pool_usage(gateway).cost, pool_usage(gateway).reserved) == (0, 0)
