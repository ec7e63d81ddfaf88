"""The production store: three DynamoDB tables, reached through one low-level boto3 client.

Layout:

- policies: `pk = USER#<sub>`, `version` (N), `document` (S, JSON of the effective policy).
- usage: `pk = <sub>`, `sk = <window key>`, numeric `input`, `output`, `total`, `reserved`,
  `cost`, `requests`, `open` (SS: ids of reservations not settled yet) and `expires_at` (the
  TTL attribute, epoch seconds). A group's pooled budget has the same items under
  `pk = group#<group id>` (month keys only), charged by every member's turns.
- usage also holds cancel markers: `pk = <sub>`, `sk = cancel#<conversation id or *>`,
  `requested_at` (N, epoch ms), `expires_at` (TTL, minutes away).
- cache: `pk = CACHE#<request hash>` → `answer` (S, JSON), `expires_at`; prepared answers
  `pk = PREP#<question key>#<model id or *>` → `text`, `question`, `model_id`, `expires_at`.

A reservation is one `TransactWriteItems`: an `ADD` per window, each guarded by
`attribute_not_exists(c) OR c <= :room` for every capped counter `c`, with `room = limit -
estimate` computed here (condition expressions cannot add). A pooled budget is one more item
of the same transaction. Either every window takes the estimate or none does, and DynamoDB
serialises racing transactions on the same item, so concurrent reservations (a group's
members' too) can never overshoot a limit.
"""
from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from dataplane import aws
from dataplane.errors import StoreUnavailableError
from dataplane.permissions import Need, Resource, need
from dataplane.policy import EffectivePolicy
from dataplane.stores.base import (
    USAGE_ATTRIBUTES,
    CachedAnswer,
    PreparedAnswer,
    Reservation,
    StoredAnswers,
    StoreStats,
    TokenCount,
    WindowCharge,
    WindowUsage,
    cached_answer_document,
    cached_answer_from_document,
    counter_caps,
    quota_exceeded,
    quota_refusal,
    reservation_of,
    window_usage,
)

TTL_ATTRIBUTE = "expires_at"
Clock = Callable[[], datetime]

POLICY_PREFIX = "USER#"
CACHE_PREFIX = "CACHE#"
PREPARED_PREFIX = "PREP#"
ALL_MODELS = "*"
CANCEL_PREFIX = "cancel#"
ALL_CONVERSATIONS = "*"
# A transaction that lost a race with another one on the same item is cancelled with
# `TransactionConflict`; nothing was written, so it is safe to send again (botocore does not).
CONFLICT_RETRIES = 3
BATCH_WRITE_SIZE = 25  # DynamoDB's limit per BatchWriteItem

# What each store operation needs from IAM, per table; deploy/ grants a role the needs of the
# operations its code calls (nothing else), and tests/aws enforces them on every call.
# A transaction is authorised through the actions of its items (an `Update` needs UpdateItem);
# the batch calls need their own actions (BatchGetItem, BatchWriteItem).
STORE_OPERATION_NEEDS: dict[str, tuple[Need, ...]] = {
    "policy_get": (need(Resource.POLICIES_TABLE, "dynamodb:GetItem"),),
    "policy_put": (need(Resource.POLICIES_TABLE, "dynamodb:PutItem"),),
    "policy_delete": (need(Resource.POLICIES_TABLE, "dynamodb:DeleteItem"),),
    "policy_list": (need(Resource.POLICIES_TABLE, "dynamodb:Scan"),),
    "reserve": (need(Resource.USAGE_TABLE, "dynamodb:UpdateItem"),),
    "settle": (need(Resource.USAGE_TABLE, "dynamodb:UpdateItem"),),
    "usage_read": (need(Resource.USAGE_TABLE, "dynamodb:BatchGetItem"),),
    "usage_reset": (need(Resource.USAGE_TABLE, "dynamodb:DeleteItem"),),
    "usage_list": (need(Resource.USAGE_TABLE, "dynamodb:Scan"),),
    "usage_item": (need(Resource.USAGE_TABLE, "dynamodb:GetItem"),),
    "cache_get": (need(Resource.CACHE_TABLE, "dynamodb:GetItem"),),
    "cache_put": (need(Resource.CACHE_TABLE, "dynamodb:PutItem"),),
    "cache_purge": (need(Resource.CACHE_TABLE, "dynamodb:Scan", "dynamodb:BatchWriteItem"),),
    "prepared_get": (need(Resource.CACHE_TABLE, "dynamodb:BatchGetItem"),),
    "prepared_put": (need(Resource.CACHE_TABLE, "dynamodb:PutItem"),),
    "prepared_delete": (need(Resource.CACHE_TABLE, "dynamodb:DeleteItem"),),
    "answers_get": (need(Resource.CACHE_TABLE, "dynamodb:BatchGetItem"),),
    "cancel_request": (need(Resource.USAGE_TABLE, "dynamodb:UpdateItem"),),
    "cancel_requested": (need(Resource.USAGE_TABLE, "dynamodb:BatchGetItem"),),
}


def store_needs(operations: tuple[str, ...]) -> tuple[Need, ...]:
    """The IAM needs of a caller that uses these store operations."""
    return tuple(item for operation in operations for item in STORE_OPERATION_NEEDS[operation])


# `#input` etc.: `input`/`output`/`total` are not reserved words today, but names keep it so.
# A window item's string set of the reservations not settled yet: settle applies only while
# its id is there (and removes it), so a retried settle counts once.
OPEN_RESERVATIONS = "open"
COUNTER_NAMES = {
    "#input": "input",
    "#output": "output",
    "#total": "total",
    "#reserved": "reserved",
    "#cost": "cost",  # micro-USD
    "#requests": "requests",
    "#expires": TTL_ATTRIBUTE,
}


def _counters(item: dict[str, Any]) -> dict[str, int]:
    return {name: _int(item, name) for name in USAGE_ATTRIBUTES}


def _n(value: int) -> dict[str, str]:
    return {"N": str(int(value))}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _int(item: dict[str, Any], name: str) -> int:
    attribute = item.get(name)
    return int(attribute["N"]) if attribute and "N" in attribute else 0


class DynamoDBStore:
    def __init__(
        self,
        *,
        policies_table: str,
        usage_table: str,
        cache_table: str,
        region: str,
        endpoint_url: str | None = None,
        client: Any = None,
        clock: Clock | None = None,
    ) -> None:
        self.policies_table = policies_table
        self.usage_table = usage_table
        self.cache_table = cache_table
        self.region = region
        self.endpoint_url = endpoint_url or None
        self.stats = StoreStats()
        self._client = client
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        """The boto3 client, created on first use (so importing or building a store is free)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    settings = aws.ClientSettings(region=self.region, endpoint_url=self.endpoint_url)
                    self._client = aws.client("dynamodb", settings)
        return self._client

    # -- plumbing -----------------------------------------------------------------------------
    def _count(self, operation: str, kind: str) -> None:
        with self._lock:
            self.stats.count(operation, kind=kind)

    @contextmanager
    def _calling(self, operation: str, table: str) -> Iterator[None]:
        """Every failure to talk to DynamoDB leaves here as `StoreUnavailableError`."""
        try:
            yield
        except (BotoCoreError, ClientError) as error:
            raise aws.store_unavailable(error, service="DynamoDB", operation=operation, resource=table) from error

    def _now_epoch(self) -> int:
        return int(self._clock().timestamp())

    # -- tables (tests and the local dev command; production tables come from CDK) -----------
    def create_tables(self) -> None:
        specs = [
            (self.policies_table, [("pk", "HASH")], False),
            (self.usage_table, [("pk", "HASH"), ("sk", "RANGE")], True),
            (self.cache_table, [("pk", "HASH")], True),
        ]
        for table, keys, has_ttl in specs:
            with self._calling("CreateTable", table):
                try:
                    self.client.create_table(
                        TableName=table,
                        BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": name, "KeyType": kind} for name, kind in keys],
                        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name, _ in keys],
                    )
                except ClientError as error:
                    if aws.error_code(error) != "ResourceInUseException":
                        raise
                self.client.get_waiter("table_exists").wait(
                    TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
                )
                if has_ttl:
                    self.client.update_time_to_live(
                        TableName=table,
                        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
                    )

    def delete_tables(self) -> None:
        for table in (self.policies_table, self.usage_table, self.cache_table):
            with self._calling("DeleteTable", table):
                try:
                    self.client.delete_table(TableName=table)
                except ClientError as error:
                    if aws.error_code(error) != "ResourceNotFoundException":
                        raise

    # -- policies -----------------------------------------------------------------------------
    def policy_get(self, sub: str) -> EffectivePolicy | None:
        with self._calling("GetItem", self.policies_table):
            response = self.client.get_item(TableName=self.policies_table, Key={"pk": _s(POLICY_PREFIX + sub)})
        self._count("policy_get", "read")
        item = response.get("Item")
        return EffectivePolicy.from_document(json.loads(item["document"]["S"])) if item else None

    def policy_put(self, policy: EffectivePolicy) -> bool:
        with self._calling("PutItem", self.policies_table):
            try:
                self.client.put_item(
                    TableName=self.policies_table,
                    Item={
                        "pk": _s(POLICY_PREFIX + policy.sub),
                        "sub": _s(policy.sub),
                        "version": _n(policy.version),
                        "document": _s(json.dumps(policy.to_document())),
                    },
                    ConditionExpression="attribute_not_exists(pk) OR #version < :version",
                    ExpressionAttributeNames={"#version": "version"},
                    ExpressionAttributeValues={":version": _n(policy.version)},
                )
                written = True
            except ClientError as error:
                if aws.error_code(error) != "ConditionalCheckFailedException":
                    raise
                written = False  # the stored version is newer or equal: nothing to do
        self._count("policy_put", "conditional_write")
        return written

    def policy_delete(self, sub: str) -> None:
        with self._calling("DeleteItem", self.policies_table):
            self.client.delete_item(TableName=self.policies_table, Key={"pk": _s(POLICY_PREFIX + sub)})
        self._count("policy_delete", "write")

    def policy_list(self) -> list[EffectivePolicy]:
        items = self._scan("policy_list", self.policies_table)
        policies = [EffectivePolicy.from_document(json.loads(item["document"]["S"])) for item in items]
        return sorted(policies, key=lambda policy: policy.sub)

    # -- usage windows ------------------------------------------------------------------------
    def reserve(self, *, sub: str, charges: list[WindowCharge], estimate: TokenCount) -> Reservation:
        refusal = quota_refusal(charges, estimate)
        if refusal is not None:
            raise refusal  # bigger than a whole limit: no need to ask DynamoDB
        reservation_id = uuid.uuid4().hex
        items = [self._reserve_update(sub, charge, estimate, reservation_id) for charge in charges]
        for attempt in range(CONFLICT_RETRIES + 1):
            if not items:
                break
            self._count("reserve", "conditional_write")
            reasons = self._transact(items)
            if reasons is None:
                break
            codes = [reason.get("Code", "None") for reason in reasons]
            if "ConditionalCheckFailed" in codes:
                raise self._refusal_from(reasons, charges, estimate)
            if "TransactionConflict" not in codes or attempt == CONFLICT_RETRIES:
                raise StoreUnavailableError(
                    f"DynamoDB TransactWriteItems on {self.usage_table} was cancelled: {', '.join(codes)}"
                )
            time.sleep(random.uniform(0, 0.01 * 2**attempt))  # noqa: S311 - jitter, so racers do not collide again
        return reservation_of(sub=sub, charges=charges, estimate=estimate, reservation_id=reservation_id)

    def _transact(self, items: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """Run one transaction; None when it committed, else DynamoDB's cancellation reasons."""
        with self._calling("TransactWriteItems", self.usage_table):
            try:
                self.client.transact_write_items(TransactItems=items)
            except ClientError as error:
                if aws.error_code(error) != "TransactionCanceledException":
                    raise
                return error.response.get("CancellationReasons") or []
            return None

    def _reserve_update(
        self, sub: str, charge: WindowCharge, estimate: TokenCount, reservation_id: str
    ) -> dict[str, Any]:
        values = {
            ":input": _n(estimate.input),
            ":output": _n(estimate.output),
            ":total": _n(estimate.total),
            ":cost": _n(estimate.cost),
            ":one": _n(1),
            ":expires": _n(charge.window.expires_at),
            ":id": {"SS": [reservation_id]},
        }
        conditions = []
        for cap in counter_caps(charge.limits, estimate):
            conditions.append(f"(attribute_not_exists(#{cap.counter}) OR #{cap.counter} <= :room_{cap.counter})")
            values[f":room_{cap.counter}"] = _n(cap.room)
        update: dict[str, Any] = {
            "TableName": self.usage_table,
            "Key": {"pk": _s(charge.owner_for(sub)), "sk": _s(charge.window.key)},
            "UpdateExpression": (
                "ADD #input :input, #output :output, #total :total, #reserved :total, #cost :cost, #requests :one, "
                "#open :id "
                "SET #expires = :expires"
            ),
            "ExpressionAttributeNames": {**COUNTER_NAMES, "#open": OPEN_RESERVATIONS},
            "ExpressionAttributeValues": values,
        }
        if conditions:
            update["ConditionExpression"] = " AND ".join(conditions)
            # The failed item comes back with the cancellation, so the refusal can say how much
            # was used without a second round trip.
            update["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return {"Update": update}

    @staticmethod
    def _refusal_from(reasons: list[dict], charges: list[WindowCharge], estimate: TokenCount) -> Exception:
        usage_by_slot: dict[tuple[str, str], dict[str, int]] = {}
        first_failed = None
        for charge, reason in zip(charges, reasons, strict=False):  # reasons may be missing
            if reason.get("Code") != "ConditionalCheckFailed":
                continue
            first_failed = first_failed or charge
            item = reason.get("Item") or {}
            usage_by_slot[charge.slot] = {name: _int(item, name) for name in USAGE_ATTRIBUTES}
        refusal = quota_refusal(charges, estimate, usage_by_slot)
        if refusal is not None:
            return refusal
        # Not expected (ALL_OLD returns the item as it was checked), but a cancelled
        # transaction took nothing, so the request is refused for the window DynamoDB named.
        if first_failed is None:
            return StoreUnavailableError("DynamoDB cancelled a reservation without naming the window")
        cap = counter_caps(first_failed.limits, estimate)[0]
        return quota_exceeded(
            window=first_failed.window,
            cap=cap,
            used=usage_by_slot[first_failed.slot][cap.counter],
            estimate=estimate,
            pool=first_failed.pool,
        )

    def settle(self, *, reservation: Reservation, actual: TokenCount) -> list[WindowUsage]:
        """One conditional `UpdateItem` per window that hands back the counters it left
        (`ReturnValues`), so nothing is read back.

        Exactly once, per window: `reserve` put the reservation's id in the window's `open`
        set, and the update both requires it and removes it. A retry after an ambiguous
        failure (a timeout after DynamoDB applied it) finds it gone and changes nothing; its
        condition failure returns the item as it is (`ReturnValuesOnConditionCheckFailure`),
        which are the counters the bars need. Unlike the transaction this replaces, the
        windows (and pooled budgets) are settled one after the other: a turn that dies in
        between leaves the later ones charged with its estimate, an over-charge, never an
        under-charge.
        """
        after: dict[tuple[str, str], dict[str, int]] = {}
        for owner, key, expires_at in reservation.rows():
            after[(owner, key)] = self._settle_window(reservation, owner, key, expires_at, actual)
        self._count("settle", "write")
        if not reservation.charges:
            return []
        return [
            window_usage(charge, after.get((charge.owner_for(reservation.sub), charge.window.key), {}))
            for charge in reservation.charges
        ]

    def _settle_window(
        self, reservation: Reservation, owner: str, key: str, expires_at: int, actual: TokenCount
    ) -> dict[str, int]:
        estimate = reservation.estimate
        update: dict[str, Any] = {
            "TableName": self.usage_table,
            "Key": {"pk": _s(owner), "sk": _s(key)},
            "UpdateExpression": (
                "ADD #input :input, #output :output, #total :total, #reserved :unreserve, #cost :cost "
                "DELETE #open :id"
            ),
            "ConditionExpression": "contains(#open, :id_text)",
            "ExpressionAttributeNames": {
                **{name: COUNTER_NAMES[name] for name in ("#input", "#output", "#total", "#reserved", "#cost")},
                "#open": OPEN_RESERVATIONS,
            },
            "ExpressionAttributeValues": {
                ":input": _n(actual.input - estimate.input),
                ":output": _n(actual.output - estimate.output),
                ":total": _n(actual.total - estimate.total),
                ":unreserve": _n(-estimate.total),
                ":cost": _n(actual.cost - estimate.cost),
                ":id": {"SS": [reservation.reservation_id]},
                ":id_text": _s(reservation.reservation_id),
            },
            "ReturnValues": "ALL_NEW",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        with self._calling("UpdateItem", self.usage_table):
            try:
                return _counters(self.client.update_item(**update).get("Attributes", {}))
            except ClientError as error:
                if aws.error_code(error) != "ConditionalCheckFailedException":
                    raise
                item = error.response.get("Item")
        if item:
            return _counters(item)  # settled already (this is a retry): nothing to change
        # The window's row is gone (an admin reset it, or its TTL passed) and the estimate with
        # it: only what was used is due. A retry of this finds the row, settled.
        fresh = {
            "TableName": self.usage_table,
            "Key": {"pk": _s(owner), "sk": _s(key)},
            "UpdateExpression": (
                "ADD #input :input, #output :output, #total :total, #cost :cost "
                "SET #expires = if_not_exists(#expires, :expires)"
            ),
            "ExpressionAttributeNames": {
                name: COUNTER_NAMES[name] for name in ("#input", "#output", "#total", "#cost", "#expires")
            },
            "ExpressionAttributeValues": {
                ":input": _n(actual.input), ":output": _n(actual.output), ":total": _n(actual.total),
                ":cost": _n(actual.cost),
                ":expires": _n(expires_at),
            },
            "ReturnValues": "ALL_NEW",
        }
        with self._calling("UpdateItem", self.usage_table):
            return _counters(self.client.update_item(**fresh).get("Attributes", {}))

    def usage_read(self, *, sub: str, charges: list[WindowCharge]) -> list[WindowUsage]:
        return self._windows_read("usage_read", sub, charges)

    def _windows_read(self, operation: str, sub: str, charges: list[WindowCharge]) -> list[WindowUsage]:
        if not charges:
            return []
        rows = list(dict.fromkeys((charge.owner_for(sub), charge.window.key) for charge in charges))
        keys = [{"pk": _s(owner), "sk": _s(key)} for owner, key in rows]
        items = self._batch_get(operation, self.usage_table, keys, consistent=True)
        by_row = {(item["pk"]["S"], item["sk"]["S"]): item for item in items}
        return [
            window_usage(charge, _counters(by_row.get((charge.owner_for(sub), charge.window.key), {})))
            for charge in charges
        ]

    def usage_reset(self, *, sub: str, window_key: str) -> None:
        # Deleting the item zeroes the window. A request in flight during the reset settles
        # into the fresh item, leaving it off by at most that request's unused estimate.
        with self._calling("DeleteItem", self.usage_table):
            self.client.delete_item(TableName=self.usage_table, Key={"pk": _s(sub), "sk": _s(window_key)})
        self._count("usage_reset", "write")

    def usage_list(self, *, window_key: str) -> dict[str, TokenCount]:
        # A Scan: admins' live view only, rare, and the table is small (rows expire by TTL).
        items = self._scan(
            "usage_list",
            self.usage_table,
            FilterExpression="sk = :key",
            ExpressionAttributeValues={":key": _s(window_key)},
        )
        usage = {
            item["pk"]["S"]: TokenCount(input=_int(item, "input"), output=_int(item, "output"), cost=_int(item, "cost"))
            for item in items
        }
        return dict(sorted(usage.items()))

    def usage_item(self, *, sub: str, window_key: str) -> dict[str, Any] | None:
        """The raw item of one window (for tests and the drift check)."""
        with self._calling("GetItem", self.usage_table):
            response = self.client.get_item(
                TableName=self.usage_table, Key={"pk": _s(sub), "sk": _s(window_key)}, ConsistentRead=True
            )
        return response.get("Item")

    # -- answer cache -------------------------------------------------------------------------
    def cache_get(self, key: str) -> CachedAnswer | None:
        with self._calling("GetItem", self.cache_table):
            response = self.client.get_item(TableName=self.cache_table, Key={"pk": _s(CACHE_PREFIX + key)})
        self._count("cache_get", "read")
        return self._cached_answer(response.get("Item"))

    def _cached_answer(self, item: dict[str, Any] | None) -> CachedAnswer | None:
        # TTL deletes lazily (up to days later), so an expired item may still be there.
        if not item or _int(item, TTL_ATTRIBUTE) <= self._now_epoch():
            return None
        return cached_answer_from_document(json.loads(item["answer"]["S"]))

    def cache_put(self, key: str, answer: CachedAnswer, *, ttl_seconds: int) -> None:
        with self._calling("PutItem", self.cache_table):
            self.client.put_item(
                TableName=self.cache_table,
                Item={
                    "pk": _s(CACHE_PREFIX + key),
                    "answer": _s(json.dumps(cached_answer_document(answer))),
                    TTL_ATTRIBUTE: _n(self._now_epoch() + int(ttl_seconds)),
                },
            )
        self._count("cache_put", "write")

    def cache_purge(self) -> int:
        items = self._scan(
            "cache_purge",
            self.cache_table,
            ProjectionExpression="pk",
            FilterExpression="begins_with(pk, :prefix)",
            ExpressionAttributeValues={":prefix": _s(CACHE_PREFIX)},
        )
        keys = [{"pk": item["pk"]} for item in items]
        for start in range(0, len(keys), BATCH_WRITE_SIZE):
            self._batch_delete(self.cache_table, keys[start : start + BATCH_WRITE_SIZE])
        return len(keys)

    # -- prepared answers ---------------------------------------------------------------------
    def prepared_get(self, *, question_key: str, model_id: str) -> PreparedAnswer | None:
        keys = _prepared_keys(question_key, model_id)
        items = self._batch_get("prepared_get", self.cache_table, keys, consistent=False)
        return self._prepared_answer(question_key, keys, {item["pk"]["S"]: item for item in items})

    def _prepared_answer(self, question_key: str, keys: list[dict], by_pk: dict[str, dict]) -> PreparedAnswer | None:
        """The first of `keys` (most specific scope first) with a live item."""
        now = self._now_epoch()
        for key in keys:
            item = by_pk.get(key["pk"]["S"])
            if item is None:
                continue
            expires_at = int(item[TTL_ATTRIBUTE]["N"]) if TTL_ATTRIBUTE in item else None
            if expires_at is not None and expires_at <= now:
                continue
            return PreparedAnswer(
                question_key=question_key,
                model_id=item.get("model_id", {}).get("S", ""),
                text=item["text"]["S"],
                question=item.get("question", {}).get("S", ""),
                expires_at=expires_at,
            )
        return None

    # Prepared and cached answers share the cache table, so one BatchGetItem reads both.
    def answers_get(self, *, question_key: str, model_id: str, cache_key: str | None) -> StoredAnswers:
        keys = _prepared_keys(question_key, model_id)
        wanted = keys + ([{"pk": _s(CACHE_PREFIX + cache_key)}] if cache_key is not None else [])
        items = self._batch_get("answers_get", self.cache_table, wanted, consistent=False)
        by_pk = {item["pk"]["S"]: item for item in items}
        cached = self._cached_answer(by_pk.get(CACHE_PREFIX + cache_key)) if cache_key is not None else None
        return StoredAnswers(prepared=self._prepared_answer(question_key, keys, by_pk), cached=cached)

    def prepared_put(self, answer: PreparedAnswer) -> None:
        item = {
            "pk": _s(_prepared_pk(answer.question_key, answer.model_id)),
            "model_id": _s(answer.model_id),
            "text": _s(answer.text),
            "question": _s(answer.question),
        }
        if answer.expires_at is not None:
            item[TTL_ATTRIBUTE] = _n(answer.expires_at)
        with self._calling("PutItem", self.cache_table):
            self.client.put_item(TableName=self.cache_table, Item=item)
        self._count("prepared_put", "write")

    def prepared_delete(self, *, question_key: str, model_id: str) -> None:
        with self._calling("DeleteItem", self.cache_table):
            self.client.delete_item(
                TableName=self.cache_table, Key={"pk": _s(_prepared_pk(question_key, model_id))}
            )
        self._count("prepared_delete", "write")

    # -- cancel markers -----------------------------------------------------------------------
    # In the usage table: it is keyed by the user already, has TTL on, and no reader of usage
    # windows looks at `cancel#` sort keys (they read or filter by window key).
    def cancel_request(self, *, sub: str, conversation_id: str, ttl_seconds: int) -> None:
        now = self._clock()
        # UpdateItem (an upsert), the write the chat handler already makes on this table.
        with self._calling("UpdateItem", self.usage_table):
            self.client.update_item(
                TableName=self.usage_table,
                Key={"pk": _s(sub), "sk": _s(_cancel_sk(conversation_id))},
                UpdateExpression="SET #requested_at = :requested_at, #expires = :expires",
                ExpressionAttributeNames={"#requested_at": "requested_at", "#expires": TTL_ATTRIBUTE},
                ExpressionAttributeValues={
                    ":requested_at": _n(int(now.timestamp() * 1000)),
                    ":expires": _n(int(now.timestamp()) + int(ttl_seconds)),
                },
            )
        self._count("cancel_request", "write")

    def cancel_requested(self, *, sub: str, conversation_id: str, since: datetime) -> bool:
        scopes = {_cancel_sk(conversation_id), _cancel_sk("")}
        keys = [{"pk": _s(sub), "sk": _s(sk)} for sk in sorted(scopes)]
        # Consistent: a cancel written a moment ago by another invocation must be seen now.
        items = self._batch_get("cancel_requested", self.usage_table, keys, consistent=True)
        now, since_ms = self._now_epoch(), int(since.timestamp() * 1000)
        return any(_int(item, "requested_at") >= since_ms and _int(item, TTL_ATTRIBUTE) > now for item in items)

    # -- batched reads and writes -------------------------------------------------------------
    def _scan(self, operation: str, table: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        start_key = None
        while True:
            page_params = {"TableName": table, **params}
            if start_key:
                page_params["ExclusiveStartKey"] = start_key
            with self._calling("Scan", table):
                page = self.client.scan(**page_params)
            self._count(operation, "read")
            items.extend(page.get("Items", []))
            start_key = page.get("LastEvaluatedKey")
            if not start_key:
                return items

    def _batch_get(self, operation: str, table: str, keys: list[dict], *, consistent: bool) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {table: {"Keys": keys, "ConsistentRead": consistent}}
        # UnprocessedKeys happen under throttling; a handful of immediate retries, then give up
        # loudly rather than answer from half the keys.
        for _ in range(5):
            with self._calling("BatchGetItem", table):
                response = self.client.batch_get_item(RequestItems=request)
            self._count(operation, "read")
            items.extend(response.get("Responses", {}).get(table, []))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return items
        raise StoreUnavailableError(f"DynamoDB BatchGetItem on {table} left keys unprocessed after 5 attempts")

    def _batch_delete(self, table: str, keys: list[dict]) -> None:
        request: dict[str, Any] = {table: [{"DeleteRequest": {"Key": key}} for key in keys]}
        for _ in range(5):
            with self._calling("BatchWriteItem", table):
                response = self.client.batch_write_item(RequestItems=request)
            self._count("cache_purge", "write")
            request = response.get("UnprocessedItems") or {}
            if not request:
                return
        raise StoreUnavailableError(f"DynamoDB BatchWriteItem on {table} left items unprocessed after 5 attempts")


def _prepared_keys(question_key: str, model_id: str) -> list[dict]:
    """The model-scoped key first, then the one for every model."""
    scopes = [model_id, ALL_MODELS] if model_id and model_id != ALL_MODELS else [ALL_MODELS]
    return [{"pk": _s(_prepared_pk(question_key, scope))} for scope in scopes]


def _prepared_pk(question_key: str, model_id: str) -> str:
    return f"{PREPARED_PREFIX}{question_key}#{model_id or ALL_MODELS}"


def _cancel_sk(conversation_id: str) -> str:
    return CANCEL_PREFIX + (conversation_id or ALL_CONVERSATIONS)
