"""One chat turn: authorize, validate, policy, privacy, prepared/cache, reserve, stream,
settle, record.

`chat_turn` is the one entry point: the AppSync Lambda handler and the Django Channels
consumer both call it with the caller's identity, the channel, the published payload and an
outbound sink. It never raises: every failure becomes a typed error event on the outbound
side and a record in telemetry, and the reservation is always settled.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, TypeVar

from dataplane.cache_keys import canonical_request_key, prepared_question_key
from dataplane.channels import INBOUND, owns_channel
from dataplane.errors import (
    Forbidden,
    GatewayError,
    InternalError,
    ModelNotAllowed,
    QuotaExceeded,
    StoreUnavailableError,
    TimeLimitReached,
    ValidationError,
)
from dataplane.gateway import Gateway
from dataplane.outbound import ClientGoneError, Outbound
from dataplane.policy import AllowedModel, EffectivePolicy
from dataplane.privacy import contains_pii, redact
from dataplane.providers.base import (
    GUARDRAIL_BLOCKED_MESSAGE,
    GuardrailConfig,
    ModelCall,
    ProviderEvent,
    StreamEnd,
    TextDelta,
    ToolUseInput,
    ToolUseStart,
)
from dataplane.providers.guarded import GuardedProvider
from dataplane.requests import ChatRequest, conversation_id_of, decode_payload, parse_chat_request
from dataplane.stopping import TurnStop
from dataplane.stores.base import (
    MIN_USEFUL_ANSWER_TOKENS,
    CachedAnswer,
    Reservation,
    TokenCount,
    WindowCharge,
    WindowUsage,
    answer_room,
    cost_of,
    pooled_charges,
    tightest_refusal,
)
from dataplane.telemetry.record import PROMPT_PREVIEW_CHARS, RequestRecord
from dataplane.tokens import OutputBudget, estimate_messages
from dataplane.tokens import estimate as estimate_tokens
from dataplane.windows import WINDOW_KINDS, current_windows

logger = logging.getLogger("dataplane.pipeline")
_T = TypeVar("_T")

CACHED_CHUNK_CHARS = 64  # a cache hit streams like a model would, in small chunks
# What the lake and the metrics say for a model id the user may not use: the id itself came
# from the client, unchecked, so it must not become a lake value or a metric dimension.
NOT_ALLOWED_MODEL = "not-allowed"
# Bedrock as the guardrail service for models elsewhere (its client serves ApplyGuardrail too).
GUARDRAIL_SERVICE = AllowedModel(
    model_id="bedrock-guardrails", display_name="Amazon Bedrock Guardrails", provider="bedrock"
)


@dataclass(frozen=True)
class Identity:
    """Who is calling: the verified `sub` from Cognito or the Django session."""

    sub: str
    username: str = ""


@dataclass
class _Turn:
    """The mutable state of one turn, shared by its steps."""

    gateway: Gateway
    identity: Identity
    outbound: Outbound
    record: RequestRecord
    started: float
    request: ChatRequest | None = None
    policy: EffectivePolicy | None = None
    model: AllowedModel | None = None
    reservation: Reservation | None = None
    # The answer's maximum length lowered to the room left in the user's windows (None: as asked).
    fitted_max_tokens: int | None = None
    fitted_from: int | None = None
    # The windows as read when a reservation was refused: the refusal's figures and the bars
    # the client draws next come from this one read, so they cannot disagree.
    usage_at_refusal: dict[str, Any] | None = None
    streamed_text: str = ""
    streamed_tool_input: str = ""  # the JSON of the tool calls the model streamed, all calls together
    tool_calls: int = 0
    first_token_at: float | None = None
    settled_usage: list[WindowUsage] | None = None  # the windows as settle left them
    client_gone: bool = False

    @property
    def streamed_output(self) -> str:
        """Everything the model streamed that is billed as output: its text and its tool calls."""
        return self.streamed_text + self.streamed_tool_input

    def send(self, event: dict[str, Any]) -> None:
        if self.client_gone:
            return
        conversation_id = self.request.conversation_id if self.request else self.record.conversation_id
        event["conversationId"] = conversation_id
        try:
            self.outbound.send(event)
        except ClientGoneError:
            self.client_gone = True
            raise


def chat_turn(
    *,
    gateway: Gateway,
    identity: Identity,
    channel: str,
    payload: Any,
    outbound: Outbound,
    cancel: threading.Event | None = None,
    entry: str = "channels",
    stop: TurnStop | None = None,
) -> RequestRecord:
    """Run one chat turn to its end and return its telemetry record.

    `stop` says when to stop early (cancel, time limit); a bare `cancel` event is the
    short form for a door that has nothing else to watch.
    """
    stop = stop or TurnStop(cancel=cancel)
    turn = _new_turn(gateway, identity, outbound, entry)
    try:
        plan = _open(turn, channel, payload, stop)
        if plan is not None:
            _stream(turn, stop, plan)
    except Exception as error:  # noqa: BLE001 - every failure becomes a typed error event
        _failed(turn, error)
    finally:
        _close(turn)
    return turn.record


async def chat_turn_async(
    *,
    gateway: Gateway,
    identity: Identity,
    channel: str,
    payload: Any,
    outbound: Outbound,
    stop: TurnStop,
    store_calls: Executor,
    model_calls: Executor,
    entry: str = "channels",
) -> RequestRecord:
    """`chat_turn` for a door that runs an event loop: the same steps, in the same order,
    with the same billing, but the model's answer is read on the loop when its provider can
    stream asynchronously (`astream`), so concurrent turns cost no thread each.

    The short blocking steps (policy, stored answers, reserve, settle, telemetry) run on
    `store_calls`; a provider that can only stream synchronously (Bedrock through boto3, a
    guardrail-checked model) streams on `model_calls`, as `chat_turn` would. `outbound.send`
    is called on the loop for the streamed part and must not block there; an outbound with
    an async `room()` is awaited after each chunk, so a slow client slows its own turn.
    """
    loop = asyncio.get_running_loop()
    turn = _new_turn(gateway, identity, outbound, entry)

    def on(executor: Executor, step: Callable[..., _T], *args: Any) -> Awaitable[_T]:
        return loop.run_in_executor(executor, functools.partial(step, *args))

    try:
        plan = await on(store_calls, _open, turn, channel, payload, stop)
        if plan is not None:
            if getattr(plan.provider, "astream", None) is None:
                await on(model_calls, _stream, turn, stop, plan)
            else:
                reading = await _read_async(turn, stop, plan)
                await on(store_calls, _finish, turn, plan, reading)
    except Exception as error:  # noqa: BLE001 - every failure becomes a typed error event
        await on(store_calls, _failed, turn, error)
    finally:
        await on(store_calls, _close, turn)
    return turn.record


def _new_turn(gateway: Gateway, identity: Identity, outbound: Outbound, entry: str) -> _Turn:
    record = RequestRecord(request_id=str(uuid.uuid4()), ts=gateway.clock(), user_sub=identity.sub, entry=entry)
    return _Turn(gateway=gateway, identity=identity, outbound=outbound, record=record, started=time.perf_counter())


def _open(turn: _Turn, channel: str, payload: Any, stop: TurnStop) -> _StreamPlan | None:
    """Every step before the model: None when the turn was answered from the store."""
    record, gateway = turn.record, turn.gateway
    payload = decode_payload(payload)
    record.conversation_id = _recordable_id(conversation_id_of(payload))
    _authorize(turn.identity, channel)
    turn.request = parse_chat_request(payload, gateway.config)
    record.conversation_id = _recordable_id(turn.request.conversation_id)
    turn.policy, turn.model = _load_policy(turn)
    if turn.request.uses_tools:
        _require_tool_use(turn)
    may_cache = _privacy_decision(turn)
    if _answer_stored(turn, may_cache):
        return None
    _require_time_left(stop)
    _reserve(turn)
    return _plan_stream(turn, may_cache)


def _failed(turn: _Turn, error: Exception) -> None:
    """What a turn that raised tells its user (typed, never a traceback) and its record."""
    record = turn.record
    if isinstance(error, ClientGoneError):
        record.outcome = "cancelled"
    elif isinstance(error, StoreUnavailableError):
        # The store's own words (table names, role ARNs) are for operators, not users.
        logger.warning("chat turn %s: store unavailable: %s", record.request_id, error.message)
        _fail(turn, InternalError(
            f"The gateway cannot reach its store right now; try again in a moment (reference {record.request_id})."
        ))
    elif isinstance(error, GatewayError):
        _fail(turn, error)
    else:
        # exc_info from the error itself: this may run on another thread than the one that raised.
        logger.error("chat turn %s failed", record.request_id, exc_info=error)
        _fail(turn, InternalError(f"Something went wrong on our side (reference {record.request_id})."))


def _close(turn: _Turn) -> None:
    _settle(turn)
    turn.record.latency_ms = int((time.perf_counter() - turn.started) * 1000)
    turn.gateway.telemetry.emit(turn.record)


# --- steps --------------------------------------------------------------------------------


def _authorize(identity: Identity, channel: str) -> None:
    if not owns_channel(identity.sub, channel, namespace=INBOUND):
        raise Forbidden("You can only publish to your own inbound channel.", channel=channel)


def _recordable_id(client_id: str | None) -> str | None:
    """A client-supplied id as the record may keep it: already shape-checked by the request
    parser, and dropped if it carries personal data (a phone number is a valid id shape)."""
    if client_id is None or contains_pii(client_id):
        return None
    return client_id


def _load_policy(turn: _Turn) -> tuple[EffectivePolicy, AllowedModel]:
    assert turn.request is not None
    policy = turn.gateway.policies.get(turn.identity.sub)
    model = policy.allowed_model(turn.request.model_id) if policy is not None else None
    if model is None:
        turn.record.model_id = NOT_ALLOWED_MODEL
    if policy is None:
        raise ModelNotAllowed("No models are enabled for your account yet. Ask a gateway admin for access.")
    if model is None:
        raise ModelNotAllowed(
            f"You are not allowed to use the model {turn.request.model_id}.", modelId=turn.request.model_id
        )
    turn.record.model_id = model.model_id
    turn.record.provider = model.provider
    return policy, model


def _require_tool_use(turn: _Turn) -> None:
    """Refuse tools before anything is reserved when the model's provider cannot pass them on."""
    assert turn.model is not None
    if not getattr(turn.gateway.provider_for(turn.model), "takes_tools", False):
        raise ValidationError(
            f"The model {turn.model.model_id} cannot call tools; "
            "choose another model or send the request without tools.",
            field="toolConfig", modelId=turn.model.model_id,
        )


def _privacy_decision(turn: _Turn) -> bool:
    """May this request read or write the answer cache? Records why not."""
    assert turn.request is not None
    assert turn.policy is not None
    text = turn.request.all_text()
    if turn.policy.never_cache:
        turn.record.privacy_reason = "policy"
    elif turn.request.private:
        turn.record.privacy_reason = "client"
    elif contains_pii(text):
        turn.record.privacy_reason = "pii"
    # Decided after the privacy decision: a private or personal-data request leaves no
    # preview at all (redaction is only the second line of defence for what is written).
    if turn.policy.log_prompts and turn.record.privacy_reason not in ("client", "pii"):
        turn.record.prompt_preview = redact(turn.request.last_user_text)[:PROMPT_PREVIEW_CHARS]
    if turn.record.privacy_reason:
        turn.record.cache = "bypass"
        return False
    if turn.request.uses_tools:
        # An answer in a tool-using exchange is an agent's next step, not a reusable answer:
        # the cache is not consulted ("skipped"), nor written.
        return False
    turn.record.cache = "miss"
    return True


def _answer_stored(turn: _Turn, may_cache: bool) -> bool:
    """Answer from the store when it can: admin-curated answers win over the cache and the
    model (they hold no user data, so privacy allows them); the cache only when privacy lets
    this request touch it. Both are looked up in one read. Never for a request that offers
    tools: its client waits for the model's calls."""
    assert turn.request is not None
    assert turn.model is not None
    if turn.request.uses_tools:
        return False
    stored = turn.gateway.store.answers_get(
        question_key=prepared_question_key(turn.request.last_user_text),
        model_id=turn.model.model_id,
        # A fresh request (regenerate) skips the cache, not the admins' prepared answers.
        cache_key=_cache_key(turn) if may_cache and not turn.request.fresh else None,
    )
    if stored.prepared is not None:
        turn.record.cache = "prepared"
        turn.record.provider = "prepared"
        _replay(turn, stored.prepared.text, stop_reason="end_turn", saved=TokenCount())
        return True
    if stored.cached is not None:
        turn.record.cache = "hit"
        turn.record.provider = "cache"
        _replay(turn, stored.cached.text, stop_reason=stored.cached.stop_reason, saved=stored.cached.usage)
        return True
    return False


def _cache_key(turn: _Turn) -> str:
    assert turn.request is not None
    assert turn.model is not None
    assert turn.policy is not None
    return canonical_request_key(
        owner=None if turn.policy.cache_scope == "shared" else turn.identity.sub,
        model_id=turn.model.model_id,
        system=turn.request.system,
        messages=turn.request.messages,
        inference=turn.request.inference_config(_max_tokens(turn)),
    )


def _replay(turn: _Turn, text: str, *, stop_reason: str, saved: TokenCount) -> None:
    """Stream a stored answer as Converse events; it costs the user no model tokens."""
    turn.record.saved_tokens = saved.total
    turn.record.stop_reason = stop_reason
    turn.send({"messageStart": {"role": "assistant"}, "requestId": turn.record.request_id})
    for start in range(0, len(text), CACHED_CHUNK_CHARS):
        _send_delta(turn, text[start : start + CACHED_CHUNK_CHARS])
    turn.send({"contentBlockStop": {"contentBlockIndex": 0}})
    turn.send({"messageStop": {"stopReason": stop_reason}})
    turn.send(_metadata_event(turn, TokenCount()))


def _max_tokens(turn: _Turn) -> int:
    assert turn.request is not None
    assert turn.model is not None
    assert turn.policy is not None
    if turn.fitted_max_tokens is not None:
        return turn.fitted_max_tokens
    wanted = turn.request.max_tokens or turn.model.default_max_tokens
    if turn.policy.max_tokens_cap:
        wanted = min(wanted, turn.policy.max_tokens_cap)
    return max(1, wanted)


def _input_estimate(turn: _Turn) -> int:
    assert turn.request is not None
    return estimate_messages(turn.request.messages, turn.request.system, turn.request.tool_config)


def _require_time_left(stop: TurnStop) -> None:
    if stop.out_of_time():
        raise TimeLimitReached("The gateway has no time left to answer this request; send it again.")


def _reserve(turn: _Turn) -> None:
    """Reserve the input estimate plus the answer's maximum length in both windows, and its
    cost in the month of each pooled budget of the user's groups.

    When the maximum does not fit but the room left is still worth an answer (at least
    MIN_USEFUL_ANSWER_TOKENS), the maximum is lowered to that room and the client is told
    (`reservation.requestedMaxTokens` in messageStart); below that the turn is refused with
    the figures of one usage read. The happy path stays one conditional write.
    """
    assert turn.policy is not None
    estimate = _priced(turn, input_tokens=_input_estimate(turn), output_tokens=_max_tokens(turn))
    charges = current_charges(turn.gateway, turn.policy)
    charges += pooled_charges(charges[1].window, turn.policy.pools)
    store, sub = turn.gateway.store, turn.identity.sub
    try:
        turn.reservation = store.reserve(sub=sub, charges=charges, estimate=estimate)
    except QuotaExceeded:
        usages = store.usage_read(sub=sub, charges=charges)
    else:
        return
    room = min(answer_room(usages, estimate.input), _budget_room(turn, usages, estimate.input), estimate.output)
    if room >= MIN_USEFUL_ANSWER_TOKENS:
        try:
            fitted = _priced(turn, input_tokens=estimate.input, output_tokens=room)
            turn.reservation = store.reserve(sub=sub, charges=charges, estimate=fitted)
        except QuotaExceeded:  # another turn of this user took the room meanwhile
            usages = store.usage_read(sub=sub, charges=charges)
        else:
            if room < estimate.output:
                turn.fitted_max_tokens, turn.fitted_from = room, estimate.output
            return
    turn.usage_at_refusal = _usage_bars(usages)
    raise tightest_refusal(charges, usages, estimate)


def _priced(turn: _Turn, *, input_tokens: int, output_tokens: int) -> TokenCount:
    """Tokens with their cost at the model's catalogue prices."""
    assert turn.model is not None
    cost = cost_of(
        input_tokens=input_tokens, output_tokens=output_tokens,
        price_in_per_1k=turn.model.price_in_per_1k, price_out_per_1k=turn.model.price_out_per_1k,
    )
    return TokenCount(input=input_tokens, output=output_tokens, cost=cost)


def _budget_room(turn: _Turn, usages: list[WindowUsage], input_tokens: int) -> int:
    """The longest answer the cost budgets still pay for after the input (a large number when
    no window has a budget or the model's answers are free)."""
    assert turn.model is not None
    room = 1 << 31
    price_per_output_token = turn.model.price_out_per_1k * 1000  # micro-USD
    for usage in usages:
        if usage.limits.cost is None:
            continue
        left = usage.limits.cost - usage.cost - _priced(turn, input_tokens=input_tokens, output_tokens=0).cost
        if left < 0:
            return 0
        if price_per_output_token > 0:
            room = min(room, int(left // price_per_output_token))
    return room


def _reservation_event(turn: _Turn) -> dict[str, Any]:
    """What this turn holds in the user's windows while it runs, for the bars and to explain
    a lowered maximum."""
    assert turn.reservation is not None
    estimate = turn.reservation.estimate
    return {
        "inputTokens": estimate.input,
        "maxTokens": estimate.output,
        "totalTokens": estimate.total,
        # What the request would have reserved: more than maxTokens when it was lowered to fit.
        "requestedMaxTokens": turn.fitted_from or estimate.output,
    }


@dataclass(frozen=True)
class _StreamPlan:
    """What to ask which model, once the turn holds its reservation."""

    call: ModelCall
    provider: Any  # a Provider; one with `astream` can also be read on an event loop
    may_cache: bool


@dataclass
class _Reading:
    """How reading the model's stream went."""

    budget: OutputBudget
    end: StreamEnd | None = None
    stopped: str | None = None


def _plan_stream(turn: _Turn, may_cache: bool) -> _StreamPlan:
    assert turn.request is not None
    assert turn.model is not None
    call = ModelCall(
        model_id=turn.model.model_id,
        messages=turn.request.messages,
        system=turn.request.system,
        max_tokens=_max_tokens(turn),
        temperature=turn.request.temperature,
        top_p=turn.request.top_p,
        stop_sequences=turn.request.stop_sequences,
        endpoint=turn.model.endpoint,
        guardrail=_guardrail(turn),
        tool_config=turn.request.tool_config,
    )
    turn.record.guardrail_action = "none" if call.guardrail else None
    provider = turn.gateway.provider_for(turn.model)
    if call.guardrail is not None and turn.model.provider != "bedrock":
        checker = turn.gateway.provider_for(GUARDRAIL_SERVICE)
        provider = GuardedProvider(provider, checker=checker, guardrail=call.guardrail)  # type: ignore[arg-type]
    reservation = _reservation_event(turn)
    turn.send({"messageStart": {"role": "assistant"}, "requestId": turn.record.request_id, "reservation": reservation})
    return _StreamPlan(call=call, provider=provider, may_cache=may_cache)


def _stream(turn: _Turn, stop: TurnStop, plan: _StreamPlan) -> None:
    reading = _Reading(budget=OutputBudget(plan.call.max_tokens))
    stream = plan.provider.stream(plan.call)
    try:
        for event in stream:
            if not _take(turn, stop, reading, event):
                break
    finally:
        stream.close()  # a cancelled or cut turn stops reading from the model at once
    _finish(turn, plan, reading)


async def _read_async(turn: _Turn, stop: TurnStop, plan: _StreamPlan) -> _Reading:
    reading = _Reading(budget=OutputBudget(plan.call.max_tokens))
    room = getattr(turn.outbound, "room", None)
    stream = plan.provider.astream(plan.call)
    try:
        async for event in stream:
            if not _take(turn, stop, reading, event):
                break
            if room is not None:
                await room()
    finally:
        await stream.aclose()  # a cancelled or cut turn stops reading from the model at once
    return reading


def _take(turn: _Turn, stop: TurnStop, reading: _Reading, event: ProviderEvent) -> bool:
    """Forward one event of the model's stream; False when reading must stop."""
    reading.stopped = stop.reason()
    if reading.stopped is not None:
        return False
    if isinstance(event, TextDelta | ToolUseInput):
        text = reading.budget.take(event.text)
        if text and isinstance(event, ToolUseInput):
            _send_tool_input(turn, event.call, text)
        elif text:
            _send_delta(turn, text)
        if reading.budget.spent:
            # The reserved maximum is streamed: a model that ignores maxTokens is cut
            # here, and its answer is billed as streamed, within the reservation.
            reading.end = StreamEnd(stop_reason="max_tokens")
            return False
    elif isinstance(event, ToolUseStart):
        _send_tool_start(turn, event)
    elif isinstance(event, StreamEnd):
        reading.end = event
    return True


def _finish(turn: _Turn, plan: _StreamPlan, reading: _Reading) -> None:
    """After the model: bill, settle, end the answer, cache it when allowed."""
    end, stopped, may_cache = reading.end, reading.stopped, plan.may_cache
    if stopped == "out_of_time":
        # `chat_turn` settles what streamed and sends this as the turn's last event.
        turn.record.stop_reason = "time_limit"
        raise TimeLimitReached(
            "The answer was cut off at the gateway's time limit; what arrived is billed. "
            "Ask for a shorter answer or continue in a new message."
        )
    if stopped == "cancelled":
        turn.record.outcome = "cancelled"
    if end is not None and (end.guardrail_intervened or end.guardrail_found_pii):
        may_cache = _guardrail_acted(turn, end)
    _bill_reported(turn, end, max_output=plan.call.max_tokens)
    turn.record.stop_reason = end.stop_reason if end else "cancelled"
    actual = _settle(turn)
    turn.send({"contentBlockStop": {"contentBlockIndex": 0}})
    for call in range(turn.tool_calls):
        turn.send({"contentBlockStop": {"contentBlockIndex": _tool_block_index(call)}})
    turn.send({"messageStop": {"stopReason": turn.record.stop_reason}})
    turn.send(_metadata_event(turn, actual))
    if may_cache and end is not None and turn.record.outcome == "ok" and turn.streamed_text:
        if contains_pii(turn.streamed_text):
            # The question was clean but the answer is not (the model recalled or made up
            # someone's details): the user has it; nobody else may get it from the cache.
            turn.record.privacy_reason = "answer_pii"
        else:
            _remember_answer(turn, actual, end.stop_reason)


_WARNED_NO_DEFAULT_GUARDRAIL: set[str] = set()


def _guardrail(turn: _Turn) -> GuardrailConfig | None:
    """The policy's guardrail, resolved: the stack's default comes from the configuration."""
    assert turn.policy is not None
    assert turn.model is not None
    choice = turn.policy.guardrail
    # Bedrock models get it on ConverseStream, OpenAI-compatible ones through ApplyGuardrail;
    # the offline demo model never calls AWS.
    if choice is None or turn.model.provider not in ("bedrock", "openai"):
        return None
    config = turn.gateway.config
    identifier, version = (
        (config.guardrail_id, config.guardrail_version) if choice.use_default else (choice.identifier, choice.version)
    )
    if not identifier:
        # "The stack's default" where the deployment has none (embedded default, or Django
        # without GATEWAY_GUARDRAIL_ID): say so once per policy, not on every turn.
        if turn.policy.policy_name not in _WARNED_NO_DEFAULT_GUARDRAIL:
            _WARNED_NO_DEFAULT_GUARDRAIL.add(turn.policy.policy_name)
            logger.warning("policy %r asks for the default guardrail, but none is configured", turn.policy.policy_name)
        return None
    return GuardrailConfig(identifier=identifier, version=version or "DRAFT", stream_mode=choice.stream_mode)


def _guardrail_acted(turn: _Turn, end: StreamEnd) -> bool:
    """Record what the guardrail did; tell the user plainly when it blocked. Returns False:
    an answer a guardrail blocked or masked is never cached, and its prompt leaves no preview
    (the guardrail found something our detector did not, a name for instance)."""
    turn.record.prompt_preview = None
    turn.record.privacy_reason = "guardrail"
    turn.record.guardrail_action = "intervened" if end.guardrail_intervened else "masked"
    if end.guardrail_intervened and GUARDRAIL_BLOCKED_MESSAGE not in turn.streamed_text:
        # Sent, not added to `streamed_text`: the gateway's own words are not billed output.
        separator = "\n\n" if turn.streamed_text else ""
        turn.send(
            {"contentBlockDelta": {"delta": {"text": separator + GUARDRAIL_BLOCKED_MESSAGE}, "contentBlockIndex": 0}}
        )
    return False


def _remember_answer(turn: _Turn, actual: TokenCount, stop_reason: str) -> None:
    """Cache a complete answer. The user has it already, so a failing write only costs a
    future hit, never this turn."""
    assert turn.model is not None
    answer = CachedAnswer(text=turn.streamed_text, usage=actual, model_id=turn.model.model_id, stop_reason=stop_reason)
    try:
        turn.gateway.store.cache_put(_cache_key(turn), answer, ttl_seconds=turn.gateway.config.cache_ttl_seconds)
    except StoreUnavailableError:
        logger.warning("cache write failed for %s", turn.record.request_id)


def _send_delta(turn: _Turn, text: str) -> None:
    _first_output(turn)
    turn.streamed_text += text
    turn.send({"contentBlockDelta": {"delta": {"text": text}, "contentBlockIndex": 0}})


def _tool_block_index(call: int) -> int:
    """The answer's text is content block 0; its tool calls follow, in the order they began."""
    return 1 + call


def _send_tool_start(turn: _Turn, start: ToolUseStart) -> None:
    _first_output(turn)
    turn.tool_calls = max(turn.tool_calls, start.call + 1)
    turn.send({
        "contentBlockStart": {
            "start": {"toolUse": {"toolUseId": start.tool_use_id, "name": start.name}},
            "contentBlockIndex": _tool_block_index(start.call),
        }
    })


def _send_tool_input(turn: _Turn, call: int, text: str) -> None:
    turn.streamed_tool_input += text
    delta = {"delta": {"toolUse": {"input": text}}, "contentBlockIndex": _tool_block_index(call)}
    turn.send({"contentBlockDelta": delta})


def _first_output(turn: _Turn) -> None:
    if turn.first_token_at is None:
        turn.first_token_at = time.perf_counter()
        turn.record.ttft_ms = int((turn.first_token_at - turn.started) * 1000)


def _bill_reported(turn: _Turn, end: StreamEnd | None, *, max_output: int) -> None:
    """Bill the model's own usage figures, when it sent them; never more output than the
    reserved maximum the gateway let through."""
    if end is not None and end.input_tokens is not None and end.output_tokens is not None:
        turn.record.input_tokens, turn.record.output_tokens = end.input_tokens, min(end.output_tokens, max_output)
        turn.record.estimated_usage = False


def _settle(turn: _Turn) -> TokenCount:
    """Replace the reservation by what is billed; idempotent, so `finally` may call it again.

    The one place of the billing rule: the model's figures when it reported them, else what
    was streamed (estimated), else nothing (a model that failed before answering bills none).
    """
    reservation, turn.reservation = turn.reservation, None
    if reservation is not None and not turn.record.total_tokens and turn.streamed_output:
        turn.record.input_tokens = _input_estimate(turn)
        turn.record.output_tokens = min(estimate_tokens(turn.streamed_output), reservation.estimate.output)
        turn.record.estimated_usage = True
    if turn.model is None:
        actual = TokenCount(input=turn.record.input_tokens, output=turn.record.output_tokens)
    else:
        actual = _priced(turn, input_tokens=turn.record.input_tokens, output_tokens=turn.record.output_tokens)
    if reservation is None:
        return actual
    if turn.model is not None:
        turn.record.cost_usd = round(
            actual.input / 1000 * turn.model.price_in_per_1k + actual.output / 1000 * turn.model.price_out_per_1k, 8
        )
    for attempt in range(3):
        try:
            turn.settled_usage = turn.gateway.store.settle(reservation=reservation, actual=actual)
            break
        except StoreUnavailableError:
            # The estimate stays counted: the user is over-charged, never under-charged.
            logger.warning("settle failed for %s (attempt %d)", turn.record.request_id, attempt + 1)
    return actual


def _metadata_event(turn: _Turn, actual: TokenCount) -> dict[str, Any]:
    return {
        "metadata": {
            "usage": {"inputTokens": actual.input, "outputTokens": actual.output, "totalTokens": actual.total},
            "metrics": {"latencyMs": int((time.perf_counter() - turn.started) * 1000)},
            "tokenUsage": _token_usage(turn),
            "cache": turn.record.cache,
            "modelId": turn.model.model_id if turn.model else None,
            "requestId": turn.record.request_id,
        }
    }


def _token_usage(turn: _Turn) -> dict[str, Any] | None:
    """The user's windows after this turn, for the usage bars: as settle returned them, else
    (no reservation, or a window rolled over since) one store read."""
    if turn.policy is None:
        return None
    charges = current_charges(turn.gateway, turn.policy)
    settled = [usage for usage in turn.settled_usage or () if usage.kind in WINDOW_KINDS]
    if turn.settled_usage is not None and [usage.key for usage in settled] == [charge.window.key for charge in charges]:
        return _usage_bars(settled)
    try:
        return _usage_bars(turn.gateway.store.usage_read(sub=turn.identity.sub, charges=charges))
    except StoreUnavailableError:
        return None


def _usage_bars(usages: list[WindowUsage]) -> dict[str, Any]:
    """The user's own windows as the usage bars take them (pooled budgets have no bar)."""
    return {usage.kind: usage.to_wire() for usage in usages if usage.kind in WINDOW_KINDS}


def current_charges(gateway: Gateway, policy: EffectivePolicy) -> list[WindowCharge]:
    ten_minute, month = current_windows(gateway.clock(), gateway.config.month_timezone)
    return [WindowCharge(ten_minute, policy.ten_minute), WindowCharge(month, policy.monthly)]


def window_usage(gateway: Gateway, sub: str, policy: EffectivePolicy) -> dict[str, Any]:
    charges = current_charges(gateway, policy)
    return {usage.kind: usage.to_wire() for usage in gateway.store.usage_read(sub=sub, charges=charges)}


def _fail(turn: _Turn, error: GatewayError) -> None:
    record = turn.record
    record.error_type = error.type
    if isinstance(error, QuotaExceeded):
        record.outcome = "refused"
        record.refusal_window = error.details.get("window")
    elif isinstance(error, (Forbidden, ModelNotAllowed)) or error.type == "ValidationError":
        record.outcome = "refused"
    elif record.outcome != "cancelled":
        record.outcome = "error"
    actual = _settle(turn)
    body: dict[str, Any] = {"error": error.to_wire(request_id=record.request_id)}
    if turn.policy is not None:
        body["tokenUsage"] = turn.usage_at_refusal or _token_usage(turn)
        if turn.streamed_output:
            body["usage"] = {"inputTokens": actual.input, "outputTokens": actual.output, "totalTokens": actual.total}
    with contextlib.suppress(ClientGoneError):
        turn.send(body)
