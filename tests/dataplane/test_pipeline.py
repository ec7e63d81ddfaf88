"""One chat turn through the pipeline, on a real SQLite store."""
from __future__ import annotations

import threading

import pytest

from dataplane.cache_keys import prepared_question_key
from dataplane.errors import ModelThrottled, StoreUnavailableError
from dataplane.outbound import ListOutbound
from dataplane.pipeline import Identity, chat_turn
from dataplane.stores.base import PreparedAnswer, WindowCharge
from dataplane.windows import current_windows
from tests.dataplane.conftest import ALICE, BOB, MODEL, chat_request, make_policy

alice = Identity(sub=ALICE, username="alice")


def run(gateway, payload, *, identity=alice, channel=None, outbound=None, cancel=None):
    outbound = outbound or ListOutbound()
    record = chat_turn(
        gateway=gateway,
        identity=identity,
        channel=channel or f"/inbound/{identity.sub}",
        payload=payload,
        outbound=outbound,
        cancel=cancel,
    )
    return record, outbound


def usage_of(gateway, sub=ALICE):
    policy = gateway.store.policy_get(sub)
    ten, month = current_windows(gateway.clock(), gateway.config.month_timezone)
    return {
        u.kind: u
        for u in gateway.store.usage_read(
            sub=sub, charges=[WindowCharge(ten, policy.ten_minute), WindowCharge(month, policy.monthly)]
        )
    }


def test_a_turn_streams_converse_events_in_order_and_settles_to_reported_usage(gateway, telemetry):
    record, out = run(gateway, chat_request())

    kinds = [next(k for k in e if k != "conversationId") for e in out.events]
    assert kinds == ["messageStart"] + ["contentBlockDelta"] * 4 + ["contentBlockStop", "messageStop", "metadata"]
    assert all(e["conversationId"] == "conv-1" for e in out.events)
    assert out.texts() == "Hello, world."
    metadata = out.events[-1]["metadata"]
    assert metadata["usage"] == {"inputTokens": 12, "outputTokens": 4, "totalTokens": 16}
    assert metadata["tokenUsage"]["10m"]["used"] == 16
    assert metadata["tokenUsage"]["10m"]["limit"] == 10_000
    assert metadata["tokenUsage"]["month"]["resetsAt"].startswith("2026-12-01T00:00:00")
    usage = usage_of(gateway)
    assert (usage["10m"].total, usage["10m"].reserved) == (16, 0)
    assert (usage["month"].input, usage["month"].output) == (12, 4)
    assert record.outcome == "ok"
    assert record.cache == "miss"
    assert not record.estimated_usage
    assert telemetry.records == [record]
    assert record.cost_usd == pytest.approx(12 / 1000 * 0.0008 + 4 / 1000 * 0.004)


def test_publishing_to_another_users_channel_is_forbidden_and_costs_nothing(gateway, provider):
    record, out = run(gateway, chat_request(), channel=f"/inbound/{BOB}")

    assert out.errors()[0]["type"] == "Forbidden"
    assert provider.calls == []
    assert record.outcome == "refused"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ("{not json", None),
        ([1, 2], None),
        ({"modelId": MODEL}, "messages"),
        (chat_request(extra_field=1), "extra_field"),
        (chat_request(inferenceConfig={"maxTokens": -5}), "inferenceConfig.maxTokens"),
        (chat_request(conversationId="has spaces"), "conversationId"),
        (chat_request(private="yes"), "private"),
        (chat_request(fresh=1), "fresh"),
        ({**chat_request(), "messages": [{"role": "system", "content": [{"text": "x"}]}]}, "messages"),
        (chat_request(text="x" * 100_001), "messages"),
    ],
)
def test_bad_requests_get_a_typed_validation_error(gateway, provider, payload, field):
    record, out = run(gateway, payload)

    [error] = out.errors()
    assert error["type"] == "ValidationError"
    assert error["message"]
    assert error["requestId"] == record.request_id
    if field:
        assert error["field"] == field
    assert provider.calls == []
    assert usage_of(gateway)["10m"].total == 0


def test_a_model_outside_the_allow_list_is_refused(gateway, provider):
    _record, out = run(gateway, chat_request(modelId="amazon.nova-pro-v1:0"))

    assert out.errors()[0]["type"] == "ModelNotAllowed"
    assert "amazon.nova-pro-v1:0" in out.errors()[0]["message"]
    assert provider.calls == []


def test_a_user_without_a_policy_is_told_to_ask_for_access(gateway):
    stranger = Identity(sub="5a5a5a5a-0000-4000-8000-000000000000")
    _, out = run(gateway, chat_request(), identity=stranger)

    assert out.errors()[0]["type"] == "ModelNotAllowed"


def test_over_quota_is_refused_before_the_model_is_called_naming_window_and_reset(gateway, provider):
    gateway.store.policy_put(make_policy(ALICE, version=2, ten_minute=50))
    gateway.policies.forget()

    record, out = run(gateway, chat_request(inferenceConfig={"maxTokens": 100}))

    [error] = out.errors()
    assert error["type"] == "QuotaExceeded"
    assert error["window"] == "10m"
    assert error["resetsAt"].startswith("2026-11-29T05:20:00")
    assert error["limit"] == 50
    assert "10-minute" in error["message"]
    assert provider.calls == []
    assert record.outcome == "refused"
    assert record.refusal_window == "10m"
    assert usage_of(gateway)["10m"].total == 0


def test_the_policy_caps_max_tokens(gateway, provider):
    gateway.store.policy_put(make_policy(ALICE, version=2, max_tokens_cap=64))
    gateway.policies.forget()

    run(gateway, chat_request(inferenceConfig={"maxTokens": 4000}))

    assert provider.calls[0].max_tokens == 64


def test_a_repeated_request_is_answered_from_the_cache_at_no_token_cost(gateway, provider, telemetry):
    run(gateway, chat_request())
    record, out = run(gateway, chat_request())

    assert len(provider.calls) == 1
    assert out.texts() == "Hello, world."
    assert record.cache == "hit"
    assert record.saved_tokens == 16
    assert record.total_tokens == 0
    assert out.events[-1]["metadata"]["usage"]["totalTokens"] == 0
    assert usage_of(gateway)["10m"].total == 16


def test_requests_differing_only_in_an_earlier_message_do_not_share_a_cache_entry(gateway, provider):
    def conversation(first: str) -> dict:
        return {
            "modelId": MODEL,
            "conversationId": "conv-2",
            "messages": [
                {"role": "user", "content": [{"text": first}]},
                {"role": "assistant", "content": [{"text": "Sure."}]},
                {"role": "user", "content": [{"text": "And in French?"}]},
            ],
        }

    run(gateway, conversation("Say hello."))
    record, _ = run(gateway, conversation("Say goodbye."))

    assert len(provider.calls) == 2
    assert record.cache == "miss"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (chat_request(text="Write to kim.minji@example.co.kr about it"), "pii"),
        (chat_request(text="My number is 010-1234-5678"), "pii"),
        (chat_request(private=True), "client"),
    ],
)
def test_private_requests_are_neither_read_from_nor_written_to_the_cache(gateway, provider, payload, reason):
    run(gateway, payload)
    record, _ = run(gateway, payload)

    assert len(provider.calls) == 2
    assert record.cache == "bypass"
    assert record.privacy_reason == reason


def test_a_never_cache_policy_bypasses_the_cache(gateway, provider):
    gateway.store.policy_put(make_policy(ALICE, version=2, never_cache=True))
    gateway.policies.forget()
    run(gateway, chat_request())
    record, _ = run(gateway, chat_request())

    assert len(provider.calls) == 2
    assert record.privacy_reason == "policy"


def test_a_fresh_request_asks_the_model_again_and_its_answer_replaces_the_cached_one(gateway, provider):
    run(gateway, chat_request())
    record, out = run(gateway, chat_request(fresh=True))

    # "Regenerate": the model is called again and billed, although an answer was cached.
    assert len(provider.calls) == 2
    assert record.cache == "miss"
    assert record.total_tokens == 16
    assert out.texts() == "Hello, world."
    assert usage_of(gateway)["10m"].total == 32
    later, _ = run(gateway, chat_request())
    assert later.cache == "hit"
    assert len(provider.calls) == 2


def test_a_fresh_request_still_gets_the_prepared_answer(gateway, provider):
    question_key = prepared_question_key("what is the ai gateway")
    gateway.store.prepared_put(PreparedAnswer(question_key=question_key, model_id="", text="It governs LLM use."))

    record, _ = run(gateway, chat_request(text="What is the AI gateway?", fresh=True))

    assert provider.calls == []
    assert record.cache == "prepared"


def test_prepared_responses_win_over_the_model(gateway, provider):
    gateway.store.prepared_put(
        PreparedAnswer(
            question_key=prepared_question_key("what is the ai gateway"), model_id="", text="It governs LLM use."
        )
    )

    record, out = run(gateway, chat_request(text="What is the AI gateway?"))

    assert provider.calls == []
    assert out.texts() == "It governs LLM use."
    assert record.cache == "prepared"
    assert record.total_tokens == 0


def test_a_client_that_leaves_half_way_is_billed_for_what_streamed(gateway, provider):
    provider.usage = None
    record, _out = run(gateway, chat_request(), outbound=ListOutbound(gone_after=3))

    assert record.outcome == "cancelled"
    assert record.estimated_usage
    assert record.output_tokens > 0
    assert provider.closed == 1
    usage = usage_of(gateway)["10m"]
    assert usage.reserved == 0
    assert usage.total == record.total_tokens > 0


def test_cancel_stops_the_stream_and_bills_what_streamed(gateway, provider):
    cancel = threading.Event()

    class CancelAfterTwoDeltas(ListOutbound):
        def send(self, event):
            super().send(event)
            if sum("contentBlockDelta" in e for e in self.events) == 2:
                cancel.set()

    record, out = run(gateway, chat_request(), outbound=CancelAfterTwoDeltas(), cancel=cancel)

    assert record.outcome == "cancelled"
    assert out.texts() == "Hello, "
    assert out.events[-2]["messageStop"]["stopReason"] == "cancelled"
    assert usage_of(gateway)["10m"].reserved == 0


def test_a_model_failing_mid_stream_gives_a_typed_error_and_bills_the_streamed_part(gateway, provider):
    provider.fail_after, provider.error = 2, ModelThrottled("The model is busy; try again in a moment.")

    record, out = run(gateway, chat_request())

    [error] = out.errors()
    assert error["type"] == "ModelThrottled"
    assert out.texts() == "Hello, "
    assert record.outcome == "error"
    assert record.error_type == "ModelThrottled"
    assert record.output_tokens > 0
    usage = usage_of(gateway)["10m"]
    assert usage.reserved == 0
    assert usage.total == record.total_tokens


def test_a_store_outage_is_an_internal_error_not_a_crash(gateway, provider, monkeypatch):
    def down(**kwargs):
        raise StoreUnavailableError(
            "DynamoDB TransactWriteItems on prod-usage failed: AccessDenied for arn:aws:iam::1:role/x"
        )

    monkeypatch.setattr(gateway.store, "reserve", down)

    record, out = run(gateway, chat_request())

    [error] = out.errors()
    assert error["type"] == "InternalError"
    assert "arn:aws" not in error["message"]
    assert "prod-usage" not in error["message"]
    assert record.request_id in error["message"]
    assert provider.calls == []
    assert record.outcome == "error"


def test_an_unexpected_bug_becomes_an_internal_error_with_a_reference(gateway, provider):
    provider.fail_after, provider.error = 1, None

    def broken(call):
        raise RuntimeError("boom")
        yield  # pragma: no cover

    provider.stream = broken
    record, out = run(gateway, chat_request())

    [error] = out.errors()
    assert error["type"] == "InternalError"
    assert record.request_id in error["message"]
    assert "boom" not in error["message"]
    assert usage_of(gateway)["10m"].reserved == 0


def test_a_warm_turn_reads_no_policy_from_the_store(gateway):
    run(gateway, chat_request(text="first"))
    before = gateway.store.stats.by_operation.get("policy_get", 0)
    assert before == 1  # the cold turn read it once

    run(gateway, chat_request(text="second"))

    assert gateway.store.stats.by_operation.get("policy_get", 0) == before


def test_a_failing_cache_write_does_not_fail_a_delivered_answer(gateway, monkeypatch):
    def down(*args, **kwargs):
        raise StoreUnavailableError("store down")

    monkeypatch.setattr(gateway.store, "cache_put", down)

    record, out = run(gateway, chat_request())

    assert out.errors() == []
    assert record.outcome == "ok"
    assert out.texts() == "Hello, world."


def test_a_model_that_ignores_max_tokens_is_cut_at_the_reservation_and_billed_within_it(gateway, provider):
    """A model streaming ~310 tokens against maxTokens 200 (and a window of 230) used to be
    billed all 310; the gateway stops the stream and the window never passes its limit."""
    gateway.store.policy_put(make_policy(ALICE, version=2, ten_minute=230))
    gateway.policies.forget()
    provider.chunks = ["word " * 8] * 31  # about 10 tokens a chunk, 310 in all
    provider.usage = (9, 310)  # what the model would report, had it reached its end

    record, out = run(gateway, chat_request("hi", inferenceConfig={"maxTokens": 200}))

    assert record.outcome == "ok"
    assert record.stop_reason == "max_tokens"
    assert provider.closed == 1  # the gateway stopped reading from the model
    assert record.output_tokens <= 200
    assert record.total_tokens <= 230
    assert usage_of(gateway)["10m"].total == record.total_tokens
    assert out.events[-1]["metadata"]["usage"]["outputTokens"] == record.output_tokens


def test_reported_output_beyond_the_maximum_is_not_billed(gateway, provider):
    provider.chunks = ["short answer"]
    provider.usage = (9, 500)  # a model that miscounts, or ignored maxTokens between chunks

    record, _ = run(gateway, chat_request(inferenceConfig={"maxTokens": 50}))

    assert (record.input_tokens, record.output_tokens) == (9, 50)
    assert usage_of(gateway)["10m"].total == 59


def test_a_model_that_honours_max_tokens_is_never_cut_for_the_estimators_caution(gateway, provider):
    from dataplane.tokens import estimate

    # The estimate errs high; say it counts this answer a fifth over the model's own count,
    # which stops exactly at maxTokens. The gateway must let all of it through.
    provider.chunks = ["Les élèves ont répondu: « déjà vu ». "] * 6
    model_count = int(estimate("".join(provider.chunks)) / 1.2)
    provider.usage = (9, model_count)

    record, out = run(gateway, chat_request(inferenceConfig={"maxTokens": model_count}))

    assert record.stop_reason == "end_turn"
    assert out.texts() == "".join(provider.chunks)
    assert record.output_tokens == model_count
