"""The store port: policies, usage windows, the answer cache and prepared responses.

Two adapters implement it: `DynamoDBStore` (production, boto3) and `SQLiteStore` (the embedded
default). One contract test suite (`tests/dataplane/stores/`) runs against both.

Usage counters of a window always *include* outstanding reservations: `reserve` adds the
estimate to `input`, `output`, `total` and `reserved`; `settle` adds the difference between the
true usage and the estimate, and takes the estimate off `reserved`. So a limit check is one
condition per counter, and concurrent reservations can never overshoot a limit.

A group's pooled budget is a month window like the user's, owned by the group (`group#<id>`):
`reserve` charges it in the same all-or-nothing write as the user's windows, so the members'
turns together can never overshoot it either.
"""
from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol, runtime_checkable

from dataplane.errors import QuotaExceeded
from dataplane.policy import EffectivePolicy, PooledBudget, WindowLimits
from dataplane.windows import GROUP_MONTH, WINDOW_LABELS, Window


@dataclass(frozen=True)
class TokenCount:
    """Tokens of one request (or a window's share of them), and what they cost in micro-USD
    (millionths of a dollar: integers, so DynamoDB's ADD and conditions stay exact)."""

    input: int = 0
    output: int = 0
    cost: int = 0

    @property
    def total(self) -> int:
        return self.input + self.output


@dataclass(frozen=True)
class WindowCharge:
    """One window a reservation must fit in, with the limits that apply to it.

    Its counters are the reserving user's, or, for a pooled budget (`pool`), the group's: the
    same window's row under the pool's owner key.
    """

    window: Window
    limits: WindowLimits
    pool: PooledBudget | None = None

    @property
    def owner(self) -> str:
        """Whose counters: "" for the reserving user, else the pool's owner key."""
        return self.pool.key if self.pool is not None else ""

    def owner_for(self, sub: str) -> str:
        """The owner key of this charge's row when `sub` reserves."""
        return self.owner or sub

    @property
    def slot(self) -> tuple[str, str]:
        """Names this charge's counters among a reservation's (a pool shares the month's key)."""
        return self.owner, self.window.key


def pooled_charges(month: Window, pools: tuple[PooledBudget, ...]) -> list[WindowCharge]:
    """A charge on each pooled budget's counters for `month`, capped by its cost only."""
    window = replace(month, kind=GROUP_MONTH)
    return [WindowCharge(window=window, limits=WindowLimits(cost=pool.cost), pool=pool) for pool in pools]


@dataclass(frozen=True)
class Reservation:
    """What `reserve` took; `settle` needs exactly this to replace it by the true usage."""

    sub: str
    estimate: TokenCount
    window_keys: tuple[str, ...]
    expires_at: tuple[int, ...]
    # Names this reservation's settle, so a settle retried after an ambiguous failure (a
    # timeout after DynamoDB applied it) is applied once, never twice.
    reservation_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # The windows with their limits, so `settle` can return the counters as the usage bars
    # show them (and the turn need not read them again).
    charges: tuple[WindowCharge, ...] = ()
    # Whose counters each window's are, beside `window_keys`: "" the user's, else a pool's key.
    owners: tuple[str, ...] = ()

    def rows(self) -> list[tuple[str, str, int]]:
        """(owner of the row, window key, expiry) of every window this reservation holds."""
        owners = self.owners or ("",) * len(self.window_keys)
        return [
            (owner or self.sub, key, expires_at)
            for owner, key, expires_at in zip(owners, self.window_keys, self.expires_at, strict=True)
        ]


def reservation_of(
    *, sub: str, charges: list[WindowCharge], estimate: TokenCount, reservation_id: str | None = None
) -> Reservation:
    """What `reserve` returns once every charge took the estimate."""
    return Reservation(
        sub=sub,
        estimate=estimate,
        window_keys=tuple(charge.window.key for charge in charges),
        expires_at=tuple(charge.window.expires_at for charge in charges),
        charges=tuple(charges),
        owners=tuple(charge.owner for charge in charges),
        **({"reservation_id": reservation_id} if reservation_id else {}),
    )


@dataclass(frozen=True)
class WindowUsage:
    """A window's counters as read from the store, with its limits and reset time."""

    kind: str
    key: str
    input: int
    output: int
    total: int
    reserved: int
    limits: WindowLimits
    resets_at: datetime
    cost: int = 0  # micro-USD, reservations included like the token counters

    def to_wire(self) -> dict:
        wire = {
            "window": self.kind,
            "used": self.total,
            "limit": self.limits.total,
            "input": self.input,
            "output": self.output,
            "reserved": self.reserved,
            "resetsAt": self.resets_at.isoformat(),
        }
        if self.limits.cost is not None:
            wire["costUsd"] = micro_usd_to_usd(self.cost)
            wire["budgetUsd"] = micro_usd_to_usd(self.limits.cost)
        return wire


@dataclass(frozen=True)
class CachedAnswer:
    text: str
    usage: TokenCount  # what the model spent producing it: the saving of each hit
    model_id: str
    stop_reason: str = "end_turn"


@dataclass(frozen=True)
class PreparedAnswer:
    question_key: str  # hash of the normalised question
    model_id: str  # "" for every model
    text: str
    question: str = ""
    expires_at: int | None = None  # epoch seconds; None never expires


@dataclass(frozen=True)
class StoredAnswers:
    """What one turn's lookup found: the prepared answer (it wins) and the cached one."""

    prepared: PreparedAnswer | None = None
    cached: CachedAnswer | None = None


@dataclass
class StoreStats:
    """Round trips this store made, for the benchmark and the warm-path test."""

    reads: int = 0
    writes: int = 0
    conditional_writes: int = 0
    by_operation: dict[str, int] = field(default_factory=dict)

    def count(self, operation: str, *, kind: str) -> None:
        self.by_operation[operation] = self.by_operation.get(operation, 0) + 1
        if kind == "read":
            self.reads += 1
        elif kind == "conditional_write":
            self.conditional_writes += 1
        else:
            self.writes += 1


@runtime_checkable
class Store(Protocol):
    stats: StoreStats

    # -- policies (written only by the control plane's sync) ------------------------------
    def policy_get(self, sub: str) -> EffectivePolicy | None: ...

    def policy_put(self, policy: EffectivePolicy) -> bool:
        """Write unless the stored version is newer or equal; True when written."""

    def policy_delete(self, sub: str) -> None: ...

    def policy_list(self) -> list[EffectivePolicy]: ...

    # -- usage windows --------------------------------------------------------------------
    def reserve(self, *, sub: str, charges: list[WindowCharge], estimate: TokenCount) -> Reservation:
        """Add `estimate` to every window in `charges`, all or none.

        Raises `QuotaExceeded` naming the first window that has no room (with its reset time),
        leaving every window untouched.
        """

    def settle(self, *, reservation: Reservation, actual: TokenCount) -> list[WindowUsage]:
        """Replace the reservation by the true usage in the same windows; returns those windows'
        counters after the settle (for the usage bars), one per `reservation.charges`."""

    def usage_read(self, *, sub: str, charges: list[WindowCharge]) -> list[WindowUsage]: ...

    def usage_reset(self, *, sub: str, window_key: str) -> None: ...

    def usage_list(self, *, window_key: str) -> dict[str, TokenCount]:
        """Every owner's usage in one window (for the admins' live view and budget alerts):
        users by their sub, and pooled budgets by their owner key (`group#<id>`)."""

    # -- answer cache ---------------------------------------------------------------------
    def cache_get(self, key: str) -> CachedAnswer | None: ...

    def cache_put(self, key: str, answer: CachedAnswer, *, ttl_seconds: int) -> None: ...

    def cache_purge(self) -> int:
        """Delete every cached answer (not prepared ones); returns how many."""

    # -- prepared responses ---------------------------------------------------------------
    def prepared_get(self, *, question_key: str, model_id: str) -> PreparedAnswer | None:
        """The answer scoped to `model_id` if any, else the one for every model."""

    def prepared_put(self, answer: PreparedAnswer) -> None: ...

    def prepared_delete(self, *, question_key: str, model_id: str) -> None: ...

    # -- one turn's lookup ----------------------------------------------------------------
    def answers_get(self, *, question_key: str, model_id: str, cache_key: str | None) -> StoredAnswers:
        """`prepared_get` and `cache_get` in one read; `cache_key` None (a request privacy keeps
        away from the cache) looks up the prepared answer only."""

    # -- cancel markers -------------------------------------------------------------------
    # In Lambda each publish is its own invocation, so a cancel cannot reach the invocation
    # streaming the turn except through the store: it leaves a short-lived marker there and
    # the running turn looks for it between chunks.
    def cancel_request(self, *, sub: str, conversation_id: str, ttl_seconds: int) -> None:
        """Mark the user's turns of `conversation_id` ("" for every conversation) as cancelled
        as of now (the store's clock); the marker disappears after `ttl_seconds`."""

    def cancel_requested(self, *, sub: str, conversation_id: str, since: datetime) -> bool:
        """True when a cancel of this conversation, or of all the user's conversations, was
        requested at or after `since` (a cancel older than the turn is not for it)."""


# -- conversions shared by the adapters ---------------------------------------------------

def window_usage(charge: WindowCharge, counters: dict[str, int]) -> WindowUsage:
    return WindowUsage(
        kind=charge.window.kind,
        key=charge.window.key,
        input=int(counters.get("input", 0)),
        output=int(counters.get("output", 0)),
        total=int(counters.get("total", 0)),
        reserved=int(counters.get("reserved", 0)),
        limits=charge.limits,
        resets_at=charge.window.resets_at,
        cost=int(counters.get("cost", 0)),
    )


def cached_answer_document(answer: CachedAnswer) -> dict:
    return {
        "text": answer.text,
        "usage": {"input": answer.usage.input, "output": answer.usage.output},
        "model_id": answer.model_id,
        "stop_reason": answer.stop_reason,
    }


def cached_answer_from_document(doc: dict) -> CachedAnswer:
    usage = doc.get("usage") or {}
    return CachedAnswer(
        text=str(doc["text"]),
        usage=TokenCount(input=int(usage.get("input", 0)), output=int(usage.get("output", 0))),
        model_id=str(doc.get("model_id", "")),
        stop_reason=str(doc.get("stop_reason", "end_turn")),
    )


# -- quota arithmetic shared by every adapter ----------------------------------------------
# Both adapters must refuse the same request for the same reason, so the checks live here and
# the adapters only differ in how they read counters and apply the change.

COUNTERS = ("total", "input", "output", "cost")  # each may be capped by a window's limits
USAGE_ATTRIBUTES = ("input", "output", "total", "reserved", "cost")  # what a window row holds
MICRO_USD_PER_USD = 1_000_000


def micro_usd_to_usd(micro: int) -> float:
    return round(micro / MICRO_USD_PER_USD, 6)


def usd_to_micro_usd(usd: float) -> int:
    return round(usd * MICRO_USD_PER_USD)


def cost_of(*, input_tokens: int, output_tokens: int, price_in_per_1k: float, price_out_per_1k: float) -> int:
    """What tokens cost at the catalogue's prices, in micro-USD, rounded up (a budget is never
    under-charged by rounding)."""
    per_token = MICRO_USD_PER_USD / 1000
    return math.ceil(input_tokens * price_in_per_1k * per_token + output_tokens * price_out_per_1k * per_token)


@dataclass(frozen=True)
class CounterCap:
    """One capped counter of one window: a reservation fits while `used + needed <= limit`."""

    counter: str  # "total" | "input" | "output" | "cost"
    limit: int
    needed: int

    @property
    def room(self) -> int:
        """The largest current value that still admits `needed` (what DynamoDB conditions on)."""
        return self.limit - self.needed


def counter_caps(limits: WindowLimits, estimate: TokenCount) -> list[CounterCap]:
    needed = {"total": estimate.total, "input": estimate.input, "output": estimate.output, "cost": estimate.cost}
    caps = []
    for counter in COUNTERS:
        limit = getattr(limits, counter)
        if limit is not None:
            caps.append(CounterCap(counter=counter, limit=int(limit), needed=needed[counter]))
    return caps


def quota_refusal(
    charges: list[WindowCharge],
    estimate: TokenCount,
    usage_by_slot: dict[tuple[str, str], dict[str, int]] | None = None,
) -> QuotaExceeded | None:
    """The refusal for the first window without room, or None when every window has room.

    `usage_by_slot` holds the counters read, by `WindowCharge.slot`. A request bigger than a
    whole limit is refused first, before any counter is consulted, so the adapters can refuse
    it without a round trip; its `used` is then None (not read).
    """
    for charge in charges:
        for cap in counter_caps(charge.limits, estimate):
            if cap.needed > cap.limit:
                return quota_exceeded(window=charge.window, cap=cap, used=None, estimate=estimate, pool=charge.pool)
    if usage_by_slot is None:
        return None
    for charge in charges:
        used = usage_by_slot.get(charge.slot) or {}
        for cap in counter_caps(charge.limits, estimate):
            current = int(used.get(cap.counter, 0))
            if current > cap.room:
                reserved = int(used.get("reserved", 0))
                return quota_exceeded(
                    window=charge.window, cap=cap, used=current, estimate=estimate, reserved=reserved, pool=charge.pool
                )
    return None


def quota_exceeded(
    *,
    window: Window,
    cap: CounterCap,
    used: int | None,
    estimate: TokenCount | None = None,
    reserved: int = 0,
    pool: PooledBudget | None = None,
) -> QuotaExceeded:
    """The refusal, carrying every figure of the reservation so a client can explain it and
    show the same numbers its usage bars show (`code` and the figures; `message` is English)."""
    if cap.counter == "cost":
        return _budget_exceeded(window=window, cap=cap, used=used, estimate=estimate, pool=pool)
    window_name = WINDOW_LABELS[window.kind].adjective
    tokens = "token" if cap.counter == "total" else f"{cap.counter}-token"
    resets_at = window.resets_at.isoformat()
    figures: dict = {}
    if estimate is not None:
        figures = {"inputTokens": estimate.input, "maxTokens": estimate.output, "needed": cap.needed}
    if used is None:
        message = (
            f"This request may use up to {cap.needed:,} {tokens}s, more than your whole "
            f"{window_name} limit of {cap.limit:,}. Ask for fewer tokens."
        )
        code = "request_over_limit"
    else:
        left = max(0, cap.limit - used)
        reserves = (
            f"this request reserves up to {cap.needed:,} {tokens}s (about {estimate.input:,} of input plus "
            f"maxTokens {estimate.output:,})"
            if estimate is not None
            else f"this request may need up to {cap.needed:,}"
        )
        message = (
            f"Not enough room in your {window_name} {tokens} limit: {used:,} of {cap.limit:,} used "
            f"({left:,} left), and {reserves}. Ask for a smaller maxTokens, send less conversation "
            f"history, or wait until {resets_at}, when the window resets."
        )
        code = "window_full"
    return QuotaExceeded(
        message, code=code, window=window.kind, counter=cap.counter, resetsAt=resets_at,
        limit=cap.limit, used=used, reserved=reserved, **figures,
    )


def _budget_exceeded(
    *, window: Window, cap: CounterCap, used: int | None, estimate: TokenCount | None, pool: PooledBudget | None
) -> QuotaExceeded:
    """A refusal by the cost budget: its figures are in USD (`budgetUsd`, `usedUsd`,
    `neededUsd`), and `counter` is "cost". A group's pooled budget also names the group
    (`group`), and its `window` is "group_month"."""
    window_name = WINDOW_LABELS[window.kind].adjective
    resets_at = window.resets_at.isoformat()
    budget, needed = micro_usd_to_usd(cap.limit), micro_usd_to_usd(cap.needed)
    figures: dict = {"budgetUsd": budget, "neededUsd": needed}
    if pool is not None:
        figures["group"] = pool.name
    if estimate is not None:
        figures.update(inputTokens=estimate.input, maxTokens=estimate.output)
    whose = f"the {pool.name} group's shared {window_name} budget" if pool is not None else f"your {window_name} budget"
    if used is None:
        message = (
            f"This request may cost up to ${needed:,.4f}, more than the whole of {whose}, ${budget:,.2f}. "
            if pool is not None
            else f"This request may cost up to ${needed:,.4f}, more than your whole {window_name} budget of "
            f"${budget:,.2f}. "
        ) + "Ask for fewer tokens or use a cheaper model."
        code = "request_over_budget"
    else:
        figures["usedUsd"] = micro_usd_to_usd(used)
        message = (
            f"{whose[0].upper()}{whose[1:]} of ${budget:,.2f} is spent: ${micro_usd_to_usd(used):,.4f} "
            f"used, and this request may cost up to ${needed:,.4f}. Use a cheaper model, ask for a shorter answer, "
            f"or wait until {resets_at}, when the budget resets."
        )
        code = "budget_spent"
    return QuotaExceeded(
        message, code=code, window=window.kind, counter="cost", resetsAt=resets_at, limit=cap.limit, used=used,
        **figures,
    )


# -- fitting the answer's maximum length to the room left -----------------------------------
# A reservation is the input estimate plus the answer's maximum length (maxTokens, often a
# model default of 1,024). Refusing because that maximum does not fit, while the bars show
# room left, is what users read as "the quota is lying": the pipeline instead lowers the
# maximum to the room left when that room is still worth an answer, and only refuses below.

MIN_USEFUL_ANSWER_TOKENS = 64


def answer_room(usages: list[WindowUsage], input_tokens: int) -> int:
    """The longest answer every window still has room for after `input_tokens` of input
    (0 when the input alone does not fit); a large number when nothing is capped."""
    room = 1 << 31
    for usage in usages:
        limits = usage.limits
        if limits.input is not None and usage.input + input_tokens > limits.input:
            return 0
        if limits.total is not None:
            room = min(room, limits.total - usage.total - input_tokens)
        if limits.output is not None:
            room = min(room, limits.output - usage.output)
    return max(0, room)


def tightest_refusal(charges: list[WindowCharge], usages: list[WindowUsage], estimate: TokenCount) -> QuotaExceeded:
    """The refusal for the window with the least room, with the figures read in `usages`
    (the same figures the client's bars are then drawn from)."""
    # `usages` are one per charge, in order (as `usage_read` returns them).
    for charge, usage in zip(charges, usages, strict=True):  # a spent budget says so, whatever the token room
        budget = next((cap for cap in counter_caps(usage.limits, estimate) if cap.counter == "cost"), None)
        if budget is not None and usage.cost > budget.room:
            # A request costing more than the whole budget is told so, not that the budget is spent.
            used = None if budget.needed > budget.limit else usage.cost
            return quota_exceeded(window=charge.window, cap=budget, used=used, estimate=estimate, pool=charge.pool)
    charge, usage = min(zip(charges, usages, strict=True), key=lambda pair: answer_room([pair[1]], estimate.input))
    counters = {"total": usage.total, "input": usage.input, "output": usage.output, "cost": usage.cost}
    caps = [cap for cap in counter_caps(usage.limits, estimate) if cap.counter != "cost"] or counter_caps(
        usage.limits, estimate
    )
    cap = next((cap for cap in caps if counters[cap.counter] > cap.room), caps[0])
    return quota_exceeded(
        window=charge.window, cap=cap, used=counters[cap.counter], estimate=estimate, reserved=usage.reserved,
        pool=charge.pool,
    )
