"""The store contract: every test runs against SQLite and against DynamoDB (moto over HTTP)."""
from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from dataplane.errors import QuotaExceeded
from dataplane.policy import AllowedModel, EffectivePolicy, PooledBudget, WindowLimits, pool_owner
from dataplane.stores.base import (
    CachedAnswer,
    PreparedAnswer,
    StoredAnswers,
    TokenCount,
    WindowCharge,
    pooled_charges,
)
from dataplane.windows import current_windows

SUB = "3f1c9a52-user-alice"


UNLIMITED = WindowLimits()


def charges_at(now: datetime, *, ten=UNLIMITED, month=UNLIMITED, tz: str = "UTC") -> list[WindowCharge]:
    ten_minute, monthly = current_windows(now, tz)
    return [WindowCharge(window=ten_minute, limits=ten), WindowCharge(window=monthly, limits=month)]


def raw_window(store, sub: str, key: str) -> dict[str, int] | None:
    """The stored row/item of one window, as plain ints, read around the store's API."""
    if hasattr(store, "usage_item"):
        item = store.usage_item(sub=sub, window_key=key)
        return None if item is None else {name: int(value["N"]) for name, value in item.items() if "N" in value}
    row = store.usage_row(sub=sub, window_key=key)
    return None if row is None else {name: value for name, value in row.items() if isinstance(value, int)}


def counters(store, charges: list[WindowCharge], sub: str = SUB) -> list[tuple[int, int, int, int]]:
    return [(u.input, u.output, u.total, u.reserved) for u in store.usage_read(sub=sub, charges=charges)]


def policy(version: int, *, sub: str = SUB, name: str = "standard") -> EffectivePolicy:
    return EffectivePolicy(
        sub=sub,
        version=version,
        models=(AllowedModel(model_id="demo.echo", display_name="Echo", provider="demo"),),
        ten_minute=WindowLimits(total=10_000),
        monthly=WindowLimits(total=1_000_000, output=400_000),
        max_tokens_cap=2048,
        policy_name=name,
    )


# -- policies ---------------------------------------------------------------------------------
def test_policy_put_get_list_delete(store):
    assert store.policy_get(SUB) is None
    assert store.policy_put(policy(1)) is True
    assert store.policy_put(policy(1, sub="bob")) is True

    assert store.policy_get(SUB) == policy(1)
    assert [p.sub for p in store.policy_list()] == sorted([SUB, "bob"])

    store.policy_delete(SUB)
    assert store.policy_get(SUB) is None
    assert [p.sub for p in store.policy_list()] == ["bob"]


def test_a_policy_keeps_its_guardrail_and_cache_scope(store):
    from dataclasses import replace

    from dataplane.policy import GuardrailChoice

    guarded = replace(
        policy(1),
        cache_scope="shared",
        guardrail=GuardrailChoice(use_default=False, identifier="gr7abc", version="2", stream_mode="async"),
    )
    store.policy_put(guarded)
    assert store.policy_get(SUB) == guarded
    store.policy_put(replace(policy(2), guardrail=GuardrailChoice()))
    assert store.policy_get(SUB).guardrail == GuardrailChoice()
    assert store.policy_get(SUB).cache_scope == "per_user"


def test_policy_version_guard_older_never_overwrites_and_equal_is_a_no_op(store):
    assert store.policy_put(policy(5, name="five")) is True

    assert store.policy_put(policy(4, name="four")) is False
    assert store.policy_put(policy(5, name="five again")) is False
    assert store.policy_get(SUB).policy_name == "five"

    assert store.policy_put(policy(6, name="six")) is True
    assert store.policy_get(SUB) == policy(6, name="six")


# -- reserve and settle -----------------------------------------------------------------------
def test_reserve_then_settle_replaces_the_estimate_by_the_true_usage(store, store_clock):
    charges = charges_at(store_clock(), ten=WindowLimits(total=10_000), month=WindowLimits(total=100_000))

    reservation = store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=120, output=1024))
    assert counters(store, charges) == [(120, 1024, 1144, 1144)] * 2
    assert reservation.window_keys == (charges[0].window.key, charges[1].window.key)

    settled = store.settle(reservation=reservation, actual=TokenCount(input=118, output=311))
    assert counters(store, charges) == [(118, 311, 429, 0)] * 2
    # What settle returns is what the usage bars show, so the turn reads nothing more.
    assert settled == store.usage_read(sub=SUB, charges=charges)

    second = store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=10, output=100))
    settled = store.settle(reservation=second, actual=TokenCount(input=10, output=150))  # more than estimated
    assert counters(store, charges) == [(128, 461, 589, 0)] * 2
    assert [(u.kind, u.total, u.reserved, u.limits) for u in settled] == [
        ("10m", 589, 0, WindowLimits(total=10_000)),
        ("month", 589, 0, WindowLimits(total=100_000)),
    ]
    assert raw_window(store, SUB, charges[0].window.key)["requests"] == 2


def test_racing_reservations_admit_exactly_as_many_as_fit(store, store_clock):
    # limit 1000, estimate 70: 14 fit (980), the 15th would make 1050.
    charges = charges_at(store_clock(), ten=WindowLimits(total=1000), month=WindowLimits(total=50_000))
    estimate = TokenCount(input=20, output=50)
    start = threading.Barrier(50)
    admitted: list[int] = []
    refused: list[QuotaExceeded] = []
    unexpected: list[BaseException] = []

    def racer(n: int) -> None:
        start.wait()
        try:
            store.reserve(sub=SUB, charges=charges, estimate=estimate)
            admitted.append(n)
        except QuotaExceeded as refusal:
            refused.append(refusal)
        except BaseException as error:  # noqa: BLE001 - any failure in a racer is reported below
            unexpected.append(error)

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert unexpected == []
    assert len(admitted) == 14
    assert len(refused) == 36
    assert {r.details["window"] for r in refused} == {"10m"}
    assert counters(store, charges) == [(280, 700, 980, 980)] * 2


@pytest.mark.parametrize(
    ("ten", "month", "refused_window", "limit"),
    [
        (WindowLimits(total=10_000), WindowLimits(total=300), "month", 300),
        (WindowLimits(total=300), WindowLimits(total=10_000), "10m", 300),
    ],
    ids=["fits-10m-not-month", "fits-month-not-10m"],
)
def test_a_window_without_room_refuses_and_leaves_both_untouched(store, store_clock, ten, month, refused_window, limit):
    charges = charges_at(store_clock(), ten=ten, month=month)
    store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=50, output=150))

    with pytest.raises(QuotaExceeded) as refusal:
        store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=50, output=100))

    window = next(c.window for c in charges if c.window.kind == refused_window)
    assert refusal.value.details == {
        "window": refused_window,
        "resetsAt": window.resets_at.isoformat(),
        "limit": limit,
        "used": 200,
        # The reservation's figures travel with the refusal, so a client can explain it.
        "code": "window_full",
        "counter": "total",
        "reserved": 200,
        "inputTokens": 50,
        "maxTokens": 100,
        "needed": 150,
    }
    assert window.resets_at.isoformat() in refusal.value.message
    assert counters(store, charges) == [(50, 150, 200, 200)] * 2


def test_a_request_bigger_than_a_whole_limit_is_refused_without_touching_the_store(store, store_clock):
    charges = charges_at(store_clock(), ten=WindowLimits(total=1000), month=WindowLimits(total=100_000))

    with pytest.raises(QuotaExceeded) as refusal:
        store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=200, output=4096))

    assert refusal.value.details["window"] == "10m"
    assert refusal.value.details["limit"] == 1000
    assert (refusal.value.details["code"], refusal.value.details["used"], refusal.value.details["needed"]) == (
        "request_over_limit", None, 4296
    )
    assert store.stats.conditional_writes == 0
    assert counters(store, charges) == [(0, 0, 0, 0)] * 2


def test_input_and_output_caps_are_enforced_apart_from_total(store, store_clock):
    charges = charges_at(store_clock(), ten=WindowLimits(input=100, output=1000), month=WindowLimits(total=100_000))
    store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=90, output=10))

    with pytest.raises(QuotaExceeded) as too_much_input:
        store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=20, output=10))
    assert too_much_input.value.details == {
        "window": "10m",
        "resetsAt": charges[0].window.resets_at.isoformat(),
        "limit": 100,
        "used": 90,
        "code": "window_full",
        "counter": "input",
        "reserved": 100,
        "inputTokens": 20,
        "maxTokens": 10,
        "needed": 20,
    }
    assert "input" in too_much_input.value.message

    store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=10, output=900))  # exactly at both caps
    with pytest.raises(QuotaExceeded) as too_much_output:
        store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=0, output=91))
    assert (too_much_output.value.details["limit"], too_much_output.value.details["used"]) == (1000, 910)
    assert counters(store, charges)[0] == (100, 910, 1010, 1010)  # total itself is uncapped


def test_every_window_item_carries_the_ttl_of_its_window(store, store_clock):
    charges = charges_at(store_clock(), ten=WindowLimits(total=10_000), month=WindowLimits(total=100_000))
    reservation = store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=1, output=2))
    store.settle(reservation=reservation, actual=TokenCount(input=1, output=1))

    for charge in charges:
        row = raw_window(store, SUB, charge.window.key)
        assert row["expires_at"] == charge.window.expires_at
        assert row["expires_at"] > int(charge.window.resets_at.timestamp())  # outlives its window
    assert reservation.expires_at == tuple(c.window.expires_at for c in charges)


# -- windows roll over ------------------------------------------------------------------------
def test_the_ten_minute_window_rolls_over_on_the_boundary(store, store_clock):
    limits = {"ten": WindowLimits(total=100), "month": WindowLimits(total=1000)}
    before = datetime(2026, 11, 29, 5, 19, 59, tzinfo=UTC)
    full = charges_at(before, **limits)
    store.reserve(sub=SUB, charges=full, estimate=TokenCount(input=40, output=60))
    with pytest.raises(QuotaExceeded) as refusal:
        store.reserve(sub=SUB, charges=full, estimate=TokenCount(input=1, output=0))
    assert refusal.value.details["resetsAt"] == "2026-11-29T05:20:00+00:00"

    after = charges_at(datetime(2026, 11, 29, 5, 20, 0, tzinfo=UTC), **limits)
    assert after[0].window.key == "10m#2026-11-29T05:20" != full[0].window.key
    store.reserve(sub=SUB, charges=after, estimate=TokenCount(input=40, output=60))

    assert counters(store, after) == [(40, 60, 100, 100), (80, 120, 200, 200)]  # same month
    assert counters(store, full)[0] == (40, 60, 100, 100)  # the old window keeps its usage


def test_the_month_rolls_over_at_midnight_in_the_configured_time_zone(store):
    limits = {"ten": WindowLimits(total=10_000), "month": WindowLimits(total=500)}
    # 14:59:59 UTC on 30 November is 23:59:59 in Seoul; one second later December starts there
    # while it is still November in UTC.
    last_second = datetime(2026, 11, 30, 14, 59, 59, tzinfo=UTC)
    november = charges_at(last_second, tz="Asia/Seoul", **limits)
    assert november[1].window.key == "month#2026-11"
    store.reserve(sub=SUB, charges=november, estimate=TokenCount(input=100, output=400))
    with pytest.raises(QuotaExceeded) as refusal:
        store.reserve(sub=SUB, charges=november, estimate=TokenCount(input=1, output=0))
    assert refusal.value.details["window"] == "month"
    assert refusal.value.details["resetsAt"] == "2026-12-01T00:00:00+09:00"

    december = charges_at(datetime(2026, 11, 30, 15, 0, 0, tzinfo=UTC), tz="Asia/Seoul", **limits)
    assert december[1].window.key == "month#2026-12"
    assert charges_at(datetime(2026, 11, 30, 15, 0, 0, tzinfo=UTC))[1].window.key == "month#2026-11"
    store.reserve(sub=SUB, charges=december, estimate=TokenCount(input=100, output=400))

    assert counters(store, december)[1] == (100, 400, 500, 500)
    assert counters(store, november)[1] == (100, 400, 500, 500)


def test_settle_after_the_window_rolled_over_updates_the_original_windows(store):
    limits = {"ten": WindowLimits(total=10_000), "month": WindowLimits(total=100_000)}
    started = charges_at(datetime(2026, 11, 29, 5, 19, 50, tzinfo=UTC), **limits)
    reservation = store.reserve(sub=SUB, charges=started, estimate=TokenCount(input=10, output=1000))

    finished = charges_at(datetime(2026, 11, 29, 5, 21, 0, tzinfo=UTC), **limits)
    store.settle(reservation=reservation, actual=TokenCount(input=10, output=20))

    assert counters(store, started) == [(10, 20, 30, 0)] * 2
    assert counters(store, finished)[0] == (0, 0, 0, 0)


# -- reading and resetting usage --------------------------------------------------------------
def test_usage_read_of_untouched_windows_is_zero_with_limits_and_reset_times(store, store_clock):
    charges = charges_at(
        store_clock(), ten=WindowLimits(total=1000, output=800), month=WindowLimits(total=50_000), tz="Asia/Seoul"
    )
    usage = store.usage_read(sub="nobody-yet", charges=charges)

    assert [u.to_wire() for u in usage] == [
        {"window": "10m", "used": 0, "limit": 1000, "input": 0, "output": 0, "reserved": 0,
         "resetsAt": "2026-11-29T05:20:00+00:00"},
        {"window": "month", "used": 0, "limit": 50_000, "input": 0, "output": 0, "reserved": 0,
         "resetsAt": "2026-12-01T00:00:00+09:00"},
    ]
    assert usage[0].limits == WindowLimits(total=1000, output=800)
    assert [u.key for u in usage] == ["10m#2026-11-29T05:10", "month#2026-11"]


def test_usage_reset_clears_one_window_only(store, store_clock):
    charges = charges_at(store_clock(), ten=WindowLimits(total=100), month=WindowLimits(total=10_000))
    reservation = store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=30, output=70))
    store.settle(reservation=reservation, actual=TokenCount(input=30, output=70))

    store.usage_reset(sub=SUB, window_key=charges[0].window.key)

    assert counters(store, charges) == [(0, 0, 0, 0), (30, 70, 100, 0)]
    store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=30, output=70))  # room again


def test_usage_list_shows_every_user_in_one_window(store, store_clock):
    charges = charges_at(store_clock())
    for sub, tokens in (("alice", TokenCount(1, 2)), ("bob", TokenCount(30, 40))):
        reservation = store.reserve(sub=sub, charges=charges, estimate=TokenCount(100, 100))
        store.settle(reservation=reservation, actual=tokens)

    assert store.usage_list(window_key=charges[0].window.key) == {"alice": TokenCount(1, 2), "bob": TokenCount(30, 40)}
    assert store.usage_list(window_key="10m#1999-01-01T00:00") == {}


# -- answer cache -----------------------------------------------------------------------------
ANSWER = CachedAnswer(text="Paris.", usage=TokenCount(input=12, output=3), model_id="demo.echo", stop_reason="end_turn")


def test_cache_put_get_and_expiry(store, store_clock):
    assert store.cache_get("k1") is None
    store.cache_put("k1", ANSWER, ttl_seconds=60)
    assert store.cache_get("k1") == ANSWER

    store_clock.advance(seconds=59)
    assert store.cache_get("k1") == ANSWER
    store_clock.advance(seconds=1)
    assert store.cache_get("k1") is None  # expired, even if not deleted yet

    store.cache_put("k1", ANSWER, ttl_seconds=60)  # a fresh answer replaces the expired one
    assert store.cache_get("k1") == ANSWER


def test_cache_purge_deletes_cached_answers_and_keeps_prepared_ones(store):
    prepared = PreparedAnswer(question_key="q-hours", model_id="", text="9 to 5.", question="Opening hours?")
    store.prepared_put(prepared)
    for n in range(30):  # more than one DynamoDB batch of 25
        store.cache_put(f"key-{n}", ANSWER, ttl_seconds=3600)

    assert store.cache_purge() == 30

    assert store.cache_get("key-0") is None
    assert store.cache_get("key-29") is None
    assert store.prepared_get(question_key="q-hours", model_id="demo.echo") == prepared
    assert store.cache_purge() == 0


# -- prepared answers -------------------------------------------------------------------------
def test_prepared_answer_scoped_to_the_model_beats_the_one_for_every_model(store):
    everyone = PreparedAnswer(question_key="q1", model_id="", text="general answer", question="Who are you?")
    scoped = PreparedAnswer(question_key="q1", model_id="model.a", text="model A answer", question="Who are you?")
    store.prepared_put(everyone)
    store.prepared_put(scoped)

    assert store.prepared_get(question_key="q1", model_id="model.a") == scoped
    assert store.prepared_get(question_key="q1", model_id="model.b") == everyone
    assert store.prepared_get(question_key="other", model_id="model.a") is None

    store.prepared_delete(question_key="q1", model_id="model.a")
    assert store.prepared_get(question_key="q1", model_id="model.a") == everyone
    store.prepared_delete(question_key="q1", model_id="")
    assert store.prepared_get(question_key="q1", model_id="model.a") is None


def test_expired_prepared_answers_are_ignored(store, store_clock):
    now = int(store_clock().timestamp())
    everyone = PreparedAnswer(question_key="q2", model_id="", text="still valid", expires_at=now + 3600)
    store.prepared_put(everyone)
    store.prepared_put(PreparedAnswer(question_key="q2", model_id="model.a", text="stale", expires_at=now))

    assert store.prepared_get(question_key="q2", model_id="model.a") == everyone

    store_clock.advance(hours=1)
    assert store.prepared_get(question_key="q2", model_id="model.a") is None


# -- one turn's lookup: prepared and cached answers together -----------------------------------
def test_answers_get_finds_the_prepared_and_the_cached_answer_in_one_read(store, store_clock):
    now = int(store_clock().timestamp())
    everyone = PreparedAnswer(question_key="q3", model_id="", text="for every model")
    scoped = PreparedAnswer(question_key="q3", model_id="model.a", text="for model A", expires_at=now + 60)
    store.prepared_put(everyone)
    store.prepared_put(scoped)
    store.cache_put("k3", ANSWER, ttl_seconds=60)
    store.stats = type(store.stats)()

    assert store.answers_get(question_key="q3", model_id="model.a", cache_key="k3") == StoredAnswers(scoped, ANSWER)
    assert store.answers_get(question_key="q3", model_id="model.b", cache_key="k3") == StoredAnswers(everyone, ANSWER)
    assert store.answers_get(question_key="nope", model_id="model.a", cache_key="k3") == StoredAnswers(None, ANSWER)
    assert store.answers_get(question_key="nope", model_id="model.a", cache_key="other") == StoredAnswers()
    assert store.stats.by_operation == {"answers_get": 4}
    assert store.stats.reads == 4


def test_answers_get_without_a_cache_key_never_returns_a_cached_answer(store):
    store.cache_put("k4", ANSWER, ttl_seconds=60)
    assert store.answers_get(question_key="q4", model_id="model.a", cache_key=None) == StoredAnswers()


def test_answers_get_ignores_expired_answers(store, store_clock):
    now = int(store_clock().timestamp())
    everyone = PreparedAnswer(question_key="q5", model_id="", text="still valid")
    store.prepared_put(everyone)
    store.prepared_put(PreparedAnswer(question_key="q5", model_id="model.a", text="stale", expires_at=now + 30))
    store.cache_put("k5", ANSWER, ttl_seconds=60)

    store_clock.advance(seconds=60)
    assert store.answers_get(question_key="q5", model_id="model.a", cache_key="k5") == StoredAnswers(everyone, None)


# -- round trips ------------------------------------------------------------------------------
def test_reserve_and_settle_are_one_round_trip_each(store, store_clock):
    charges = charges_at(store_clock(), ten=WindowLimits(total=1000), month=WindowLimits(total=100_000))

    reservation = store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=100, output=500))
    assert (store.stats.conditional_writes, store.stats.writes, store.stats.reads) == (1, 0, 0)

    store.settle(reservation=reservation, actual=TokenCount(input=100, output=50))
    # SQLite returns the settled counters from the same statement; DynamoDB's transaction
    # returns no values, so it reads them back: at most the one read the turn needed anyway.
    assert (store.stats.conditional_writes, store.stats.writes) == (1, 1)
    assert store.stats.reads <= 1

    store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=100, output=500))
    with pytest.raises(QuotaExceeded):
        store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=100, output=500))
    assert store.stats.by_operation == {"reserve": 3, "settle": 1 + store.stats.reads}


# -- cancel markers ---------------------------------------------------------------------------
def test_a_cancel_reaches_turns_of_that_conversation_started_before_it(store, store_clock):
    started = store_clock()
    assert not store.cancel_requested(sub=SUB, conversation_id="conv-1", since=started)

    store_clock.advance(seconds=2)
    store.cancel_request(sub=SUB, conversation_id="conv-1", ttl_seconds=600)

    assert store.cancel_requested(sub=SUB, conversation_id="conv-1", since=started)
    assert not store.cancel_requested(sub=SUB, conversation_id="conv-2", since=started)
    assert not store.cancel_requested(sub="someone-else", conversation_id="conv-1", since=started)


def test_a_cancel_older_than_the_turn_does_not_stop_it(store, store_clock):
    store.cancel_request(sub=SUB, conversation_id="conv-1", ttl_seconds=600)
    store_clock.advance(seconds=1)

    assert not store.cancel_requested(sub=SUB, conversation_id="conv-1", since=store_clock())


def test_a_cancel_without_conversation_reaches_every_conversation_of_the_user(store, store_clock):
    started = store_clock()
    store.cancel_request(sub=SUB, conversation_id="", ttl_seconds=600)

    assert store.cancel_requested(sub=SUB, conversation_id="conv-1", since=started)
    assert store.cancel_requested(sub=SUB, conversation_id="conv-9", since=started)
    assert not store.cancel_requested(sub="someone-else", conversation_id="conv-1", since=started)


def test_a_cancel_marker_expires(store, store_clock):
    started = store_clock()
    store.cancel_request(sub=SUB, conversation_id="conv-1", ttl_seconds=60)
    store_clock.advance(seconds=61)

    assert not store.cancel_requested(sub=SUB, conversation_id="conv-1", since=started)


def test_cancel_markers_are_not_usage(store, store_clock):
    charges = charges_at(store_clock())
    store.cancel_request(sub=SUB, conversation_id="conv-1", ttl_seconds=600)

    assert counters(store, charges) == [(0, 0, 0, 0), (0, 0, 0, 0)]
    assert store.usage_list(window_key=charges[0].window.key) == {}


# -- cost budgets ------------------------------------------------------------------------------
def test_a_cost_budget_is_a_capped_counter_like_tokens(store):
    now = datetime(2026, 11, 29, 5, 12, 30, tzinfo=UTC)
    charges = charges_at(now, month=WindowLimits(cost=1_000))
    first = store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=10, output=10, cost=600))
    with pytest.raises(QuotaExceeded) as refused:
        store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=10, output=10, cost=600))
    assert refused.value.details["counter"] == "cost"
    assert refused.value.details["used"] == 600
    settled = store.settle(reservation=first, actual=TokenCount(input=5, output=5, cost=250))
    assert [usage.cost for usage in settled] == [250, 250]
    assert [usage.cost for usage in store.usage_read(sub=SUB, charges=charges)] == [250, 250]
    store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=10, output=10, cost=600))  # fits now
    with pytest.raises(QuotaExceeded) as too_big:
        store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=1, output=1, cost=5_000))
    assert too_big.value.details["code"] == "request_over_budget"


# -- pooled budgets of groups -------------------------------------------------------------------
RESEARCH = PooledBudget(key=pool_owner(7), name="Research", cost=1_000)
BOB = "5d2e8b71-user-bob"


def pooled_at(now: datetime, pool: PooledBudget = RESEARCH, *, month=UNLIMITED) -> list[WindowCharge]:
    """A member's two windows and the group's pooled month."""
    charges = charges_at(now, month=month)
    return charges + pooled_charges(charges[1].window, (pool,))


def test_a_turn_is_charged_to_the_pool_as_well_as_to_the_member(store, store_clock):
    charges = pooled_at(store_clock())
    reservation = store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=10, output=90, cost=400))

    month_key = charges[1].window.key
    assert raw_window(store, pool_owner(7), month_key)["cost"] == 400  # the group's row, month key
    assert [(u.kind, u.cost) for u in store.usage_read(sub=SUB, charges=charges)] == [
        ("10m", 400), ("month", 400), ("group_month", 400)
    ]
    settled = store.settle(reservation=reservation, actual=TokenCount(input=10, output=30, cost=150))
    assert [(u.kind, u.cost, u.reserved) for u in settled] == [
        ("10m", 150, 0), ("month", 150, 0), ("group_month", 150, 0)
    ]
    # Another member's own windows are theirs; the pool is the same counter.
    assert [(u.kind, u.cost) for u in store.usage_read(sub=BOB, charges=charges)] == [
        ("10m", 0), ("month", 0), ("group_month", 150)
    ]


def test_a_pool_spent_by_another_member_refuses_and_takes_nothing(store, store_clock):
    charges = pooled_at(store_clock(), month=WindowLimits(cost=1_000_000))
    bobs = store.reserve(sub=BOB, charges=charges, estimate=TokenCount(input=10, output=90, cost=700))
    store.settle(reservation=bobs, actual=TokenCount(input=10, output=90, cost=900))

    with pytest.raises(QuotaExceeded) as refused:
        store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=10, output=90, cost=200))

    details = refused.value.details
    assert (details["code"], details["counter"], details["window"]) == ("budget_spent", "cost", "group_month")
    assert (details["group"], details["budgetUsd"], details["usedUsd"]) == ("Research", 0.001, 0.0009)
    assert "Research group's shared monthly budget" in refused.value.message
    # All or nothing: the member's own windows took nothing either.
    assert [(u.cost, u.total) for u in store.usage_read(sub=SUB, charges=charges)] == [(0, 0), (0, 0), (900, 100)]
    store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=1, output=1, cost=100))  # what is left fits


def test_a_request_bigger_than_the_whole_pool_is_refused_naming_the_group(store, store_clock):
    charges = pooled_at(store_clock())
    with pytest.raises(QuotaExceeded) as refused:
        store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=1, output=1, cost=5_000))
    assert refused.value.details["code"] == "request_over_budget"
    assert refused.value.details["window"] == "group_month"
    assert "Research" in refused.value.message
    assert raw_window(store, pool_owner(7), charges[2].window.key) is None


def test_racing_members_cannot_overspend_the_pool(store, store_clock):
    # pool 1000 micro-USD, 70 a turn: 14 fit (980), the 15th would make 1050.
    charges = pooled_at(store_clock())
    estimate = TokenCount(input=20, output=50, cost=70)
    start = threading.Barrier(30)
    admitted: list[str] = []
    refused: list[QuotaExceeded] = []
    unexpected: list[BaseException] = []

    def member(n: int) -> None:
        start.wait()
        try:
            store.reserve(sub=f"member-{n}", charges=charges, estimate=estimate)
            admitted.append(f"member-{n}")
        except QuotaExceeded as refusal:
            refused.append(refusal)
        except BaseException as error:  # noqa: BLE001 - any failure in a racer is reported below
            unexpected.append(error)

    threads = [threading.Thread(target=member, args=(n,)) for n in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert unexpected == []
    assert (len(admitted), len(refused)) == (14, 16)
    assert {r.details["window"] for r in refused} == {"group_month"}
    assert raw_window(store, pool_owner(7), charges[2].window.key)["cost"] == 980


def test_a_member_of_two_pools_is_charged_to_both(store, store_clock):
    design = PooledBudget(key=pool_owner(8), name="Design", cost=500)
    charges = pooled_at(store_clock()) + pooled_charges(charges_at(store_clock())[1].window, (design,))
    store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=1, output=1, cost=300))
    with pytest.raises(QuotaExceeded) as refused:  # Research has 700 left, Design only 200
        store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=1, output=1, cost=300))
    assert refused.value.details["group"] == "Design"
    assert [u.cost for u in store.usage_read(sub=SUB, charges=charges)] == [300, 300, 300, 300]
