"""The answer's maximum length fits the room left; a refusal carries the figures the bars show."""
from __future__ import annotations

from dataplane.pipeline import Identity
from dataplane.stores.base import MIN_USEFUL_ANSWER_TOKENS, TokenCount, WindowCharge
from dataplane.windows import current_windows
from tests.dataplane.conftest import ALICE, chat_request, make_policy
from tests.dataplane.test_pipeline import run, usage_of

alice = Identity(sub=ALICE, username="alice")
TEN_WORDS = "How do I write a short polite email to my manager?"


def use_tokens(gateway, total: int) -> None:
    """Tokens the user already spent in both windows (a settled earlier turn)."""
    policy = gateway.store.policy_get(ALICE)
    ten, month = current_windows(gateway.clock(), gateway.config.month_timezone)
    charges = [WindowCharge(ten, policy.ten_minute), WindowCharge(month, policy.monthly)]
    reservation = gateway.store.reserve(sub=ALICE, charges=charges, estimate=TokenCount(input=1, output=1))
    gateway.store.settle(reservation=reservation, actual=TokenCount(input=total // 2, output=total - total // 2))


def start_of(out) -> dict:
    return next(event for event in out.events if "messageStart" in event)


def test_a_short_question_under_a_small_limit_is_answered_with_a_shorter_maximum(gateway, provider):
    # The case: limit 300, nothing used, and the model's default maximum is 1,024.
    gateway.store.policy_put(make_policy(ALICE, version=2, ten_minute=300))
    gateway.policies.forget()

    record, out = run(gateway, chat_request(TEN_WORDS, inferenceConfig={"maxTokens": 1024}))

    assert out.errors() == []
    assert record.outcome == "ok"
    reservation = start_of(out)["reservation"]
    assert reservation["requestedMaxTokens"] == 1024
    assert reservation["inputTokens"] + reservation["maxTokens"] == reservation["totalTokens"] == 300
    assert provider.calls[0].max_tokens == reservation["maxTokens"]


def test_part_used_quota_lowers_the_maximum_instead_of_refusing(gateway, provider):
    # The second case: 872 of 1,500 used (a green bar), then refused as "reached".
    gateway.store.policy_put(make_policy(ALICE, version=2, ten_minute=1500))
    gateway.policies.forget()
    use_tokens(gateway, 872)

    _, out = run(gateway, chat_request(TEN_WORDS, inferenceConfig={"maxTokens": 1024}))

    assert out.errors() == []
    assert start_of(out)["reservation"]["totalTokens"] == 1500 - 872
    assert usage_of(gateway)["10m"].reserved == 0  # settled at the end


def test_a_maximum_that_fits_is_reserved_as_asked(gateway, provider):
    _, out = run(gateway, chat_request(inferenceConfig={"maxTokens": 100}))

    reservation = start_of(out)["reservation"]
    assert reservation["maxTokens"] == reservation["requestedMaxTokens"] == 100


def test_too_little_room_is_refused_with_the_figures_the_bars_get(gateway, provider):
    gateway.store.policy_put(make_policy(ALICE, version=2, ten_minute=1500))
    gateway.policies.forget()
    use_tokens(gateway, 1500 - MIN_USEFUL_ANSWER_TOKENS)  # room left: less than the floor after the input

    record, out = run(gateway, chat_request(TEN_WORDS, inferenceConfig={"maxTokens": 1024}))

    [refusal] = [event for event in out.events if "error" in event]
    error, bars = refusal["error"], refusal["tokenUsage"]["10m"]
    assert provider.calls == []
    assert record.outcome == "refused"
    assert (error["code"], error["window"], error["limit"]) == ("window_full", "10m", 1500)
    assert error["used"] == bars["used"] == 1500 - MIN_USEFUL_ANSWER_TOKENS
    assert bars["limit"] == 1500
    assert error["maxTokens"] == 1024
    assert error["needed"] == error["inputTokens"] + 1024
    assert error["reserved"] == bars["reserved"] == 0


def test_the_refusal_tells_an_api_client_what_was_reserved_and_what_to_do(gateway, provider):
    gateway.store.policy_put(make_policy(ALICE, version=2, ten_minute=1500))
    gateway.policies.forget()
    use_tokens(gateway, 1480)

    _, out = run(gateway, chat_request(TEN_WORDS, inferenceConfig={"maxTokens": 1024}))

    message = out.errors()[0]["message"]
    assert "1,480 of 1,500 used (20 left)" in message
    assert "maxTokens 1,024" in message
    assert "smaller maxTokens" in message
    assert "2026-11-29T05:20:00" in message
