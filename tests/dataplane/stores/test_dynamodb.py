"""What only the DynamoDB adapter has: real client calls, the table layout, retries on conflicts."""
from __future__ import annotations

from collections import Counter

import botocore.exceptions
import pytest
from botocore.stub import Stubber

from dataplane.errors import QuotaExceeded, StoreUnavailableError
from dataplane.policy import WindowLimits, pool_owner
from dataplane.stores.base import TokenCount
from dataplane.stores.dynamodb import TTL_ATTRIBUTE, DynamoDBStore
from tests.dataplane.stores.test_contract import SUB, charges_at, pooled_at, raw_window


def record_calls(store: DynamoDBStore) -> Counter:
    """Count the API calls the client really makes (one per operation, retries excluded)."""
    calls: Counter = Counter()

    def before_call(model, **_):
        calls[model.name] += 1

    store.client.meta.events.register("before-call.dynamodb.*", before_call)
    return calls


def test_reserve_is_one_transaction_and_settle_one_write(dynamodb_store, store_clock):
    calls = record_calls(dynamodb_store)
    charges = charges_at(store_clock(), ten=WindowLimits(total=1000), month=WindowLimits(total=100_000))

    reservation = dynamodb_store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=100, output=500))
    assert calls == Counter(TransactWriteItems=1)

    settled = dynamodb_store.settle(reservation=reservation, actual=TokenCount(input=100, output=20))
    # One update per window that returns the counters it left: nothing is read back.
    assert calls == Counter(TransactWriteItems=1, UpdateItem=2)
    assert [(u.total, u.reserved) for u in settled] == [(120, 0), (120, 0)]

    dynamodb_store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=100, output=500))
    with pytest.raises(QuotaExceeded) as refusal:
        dynamodb_store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=100, output=500))
    assert calls == Counter(TransactWriteItems=3, UpdateItem=2)  # the refusal's `used` came back with the cancellation
    assert refusal.value.details["used"] == 720

    with pytest.raises(QuotaExceeded):
        dynamodb_store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=100, output=5000))
    assert calls == Counter(TransactWriteItems=3, UpdateItem=2)  # bigger than the limit: no call at all


def test_prepared_get_is_one_batch_read(dynamodb_store):
    calls = record_calls(dynamodb_store)
    dynamodb_store.prepared_get(question_key="q", model_id="model.a")
    assert calls == Counter(BatchGetItem=1)


def test_answers_get_is_one_batch_read_of_the_cache_table(dynamodb_store):
    calls = record_calls(dynamodb_store)
    dynamodb_store.answers_get(question_key="q", model_id="model.a", cache_key="k")
    assert calls == Counter(BatchGetItem=1)


def test_tables_have_the_documented_keys_and_ttl(dynamodb_store):
    client = dynamodb_store.client
    schemas = {
        table: client.describe_table(TableName=table)["Table"]
        for table in (dynamodb_store.policies_table, dynamodb_store.usage_table, dynamodb_store.cache_table)
    }
    assert [k["AttributeName"] for k in schemas[dynamodb_store.policies_table]["KeySchema"]] == ["pk"]
    assert [(k["AttributeName"], k["KeyType"]) for k in schemas[dynamodb_store.usage_table]["KeySchema"]] == [
        ("pk", "HASH"),
        ("sk", "RANGE"),
    ]
    assert all(s["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST" for s in schemas.values())
    for table in (dynamodb_store.usage_table, dynamodb_store.cache_table):
        ttl = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", TTL_ATTRIBUTE)


def test_policy_items_follow_the_layout(dynamodb_store):
    from tests.dataplane.stores.test_contract import policy

    dynamodb_store.policy_put(policy(7))
    item = dynamodb_store.client.get_item(
        TableName=dynamodb_store.policies_table, Key={"pk": {"S": f"USER#{SUB}"}}
    )["Item"]
    assert item["version"] == {"N": "7"}
    assert '"policy_name": "standard"' in item["document"]["S"]


def test_a_transaction_conflict_is_retried_and_succeeds(store_clock):
    store = DynamoDBStore(
        policies_table="p", usage_table="u", cache_table="c", region="us-east-1",
        client=_offline_client(), clock=store_clock,
    )
    charges = charges_at(store_clock(), ten=WindowLimits(total=1000))
    with Stubber(store.client) as stub:
        stub.add_client_error(
            "transact_write_items",
            service_error_code="TransactionCanceledException",
            response_meta={},
            modeled_fields={"CancellationReasons": [{"Code": "TransactionConflict"}, {"Code": "None"}]},
        )
        stub.add_response("transact_write_items", {})
        store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=1, output=1))
        stub.assert_no_pending_responses()
    assert store.stats.conditional_writes == 2


def test_other_cancellations_are_store_errors_not_refusals(store_clock):
    store = DynamoDBStore(
        policies_table="p", usage_table="u", cache_table="c", region="us-east-1",
        client=_offline_client(), clock=store_clock,
    )
    charges = charges_at(store_clock(), ten=WindowLimits(total=1000))
    with Stubber(store.client) as stub:
        stub.add_client_error(
            "transact_write_items",
            service_error_code="TransactionCanceledException",
            modeled_fields={"CancellationReasons": [{"Code": "ThrottlingError"}, {"Code": "None"}]},
        )
        with pytest.raises(StoreUnavailableError, match="ThrottlingError"):
            store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=1, output=1))


def _offline_client():
    from dataplane import aws

    # Stubbed: the endpoint is never contacted.
    return aws.new_client(
        "dynamodb",
        aws.ClientSettings(
            endpoint_url="http://127.0.0.1:9", aws_access_key_id="testing", aws_secret_access_key="testing"
        ),
    )


def test_a_retried_settle_is_applied_once_and_still_returns_the_counters(dynamodb_store, store_clock):
    """A settle retried after an ambiguous failure (DynamoDB applied it, the answer was lost)
    must not count twice; the server enforces it, so this runs against it."""
    charges = charges_at(store_clock(), ten=WindowLimits(total=10_000), month=WindowLimits(total=100_000))
    first = dynamodb_store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=10, output=50))
    second = dynamodb_store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=10, output=50))

    once = dynamodb_store.settle(reservation=first, actual=TokenCount(input=10, output=5))
    again = dynamodb_store.settle(reservation=first, actual=TokenCount(input=10, output=5))  # a retry

    assert once == again
    assert [(u.total, u.reserved) for u in again] == [(75, 60), (75, 60)]  # 15 used, the second's 60 held
    dynamodb_store.settle(reservation=second, actual=TokenCount(input=10, output=5))
    assert [(u.total, u.reserved) for u in dynamodb_store.usage_read(sub=SUB, charges=charges)] == [(30, 0), (30, 0)]


def test_a_settle_cut_between_its_windows_is_completed_once_by_the_retry(dynamodb_store, store_clock, monkeypatch):
    charges = charges_at(store_clock(), ten=WindowLimits(total=10_000), month=WindowLimits(total=100_000))
    reservation = dynamodb_store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=10, output=50))
    update_item = dynamodb_store.client.update_item
    updates: list[str] = []

    def second_window_times_out(**params):
        updates.append(params["Key"]["sk"]["S"])
        if len(updates) == 2:
            raise botocore.exceptions.ReadTimeoutError(endpoint_url="http://dynamodb")
        return update_item(**params)

    with monkeypatch.context() as patch:
        patch.setattr(dynamodb_store.client, "update_item", second_window_times_out)
        with pytest.raises(StoreUnavailableError):
            dynamodb_store.settle(reservation=reservation, actual=TokenCount(input=10, output=5))
    # Meanwhile the month still holds the estimate: an over-charge, never an under-charge.
    assert [(u.total, u.reserved) for u in dynamodb_store.usage_read(sub=SUB, charges=charges)] == [(15, 0), (60, 60)]

    settled = dynamodb_store.settle(reservation=reservation, actual=TokenCount(input=10, output=5))  # the retry

    assert [(u.total, u.reserved) for u in settled] == [(15, 0), (15, 0)]
    assert [(u.total, u.reserved) for u in dynamodb_store.usage_read(sub=SUB, charges=charges)] == [(15, 0), (15, 0)]


def test_a_settle_after_its_window_was_reset_counts_only_what_was_used(dynamodb_store, store_clock):
    charges = charges_at(store_clock(), ten=WindowLimits(total=10_000), month=WindowLimits(total=100_000))
    reservation = dynamodb_store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=10, output=50))
    dynamodb_store.usage_reset(sub=SUB, window_key=charges[0].window.key)

    settled = dynamodb_store.settle(reservation=reservation, actual=TokenCount(input=10, output=5))
    again = dynamodb_store.settle(reservation=reservation, actual=TokenCount(input=10, output=5))

    assert [(u.total, u.reserved) for u in settled] == [(15, 0), (15, 0)] == [(u.total, u.reserved) for u in again]
    assert raw_window(dynamodb_store, SUB, charges[0].window.key)["expires_at"] == charges[0].window.expires_at


def test_a_pooled_budget_is_one_more_item_of_the_same_transaction_and_settles_once(dynamodb_store, store_clock):
    calls = record_calls(dynamodb_store)
    charges = pooled_at(store_clock())
    reservation = dynamodb_store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=10, output=50, cost=300))
    assert calls == Counter(TransactWriteItems=1)  # the member's two windows and the pool, all or none
    pool_item = dynamodb_store.usage_item(sub=pool_owner(7), window_key=charges[2].window.key)
    assert pool_item["open"] == {"SS": [reservation.reservation_id]}
    assert int(pool_item[TTL_ATTRIBUTE]["N"]) == charges[2].window.expires_at

    once = dynamodb_store.settle(reservation=reservation, actual=TokenCount(input=10, output=5, cost=100))
    again = dynamodb_store.settle(reservation=reservation, actual=TokenCount(input=10, output=5, cost=100))  # a retry
    assert once == again
    assert calls == Counter(TransactWriteItems=1, GetItem=1, UpdateItem=6)  # GetItem: the look above
    assert raw_window(dynamodb_store, pool_owner(7), charges[2].window.key)["cost"] == 100
