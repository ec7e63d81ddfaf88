"""The OpenAI Chat Completions wire format, translated to and from the pipeline's Converse shapes.

The one place where `/v1/chat/completions` meets the data plane: a request body becomes the
payload every other door publishes (`dataplane.requests`), and the events a turn sends to its
outbound sink become completion chunks, a whole completion, or an OpenAI-shaped error. Like
the rest of `dataplane/`, it never imports Django, so any door (Django's, a Lambda function
URL) can use it.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dataplane.errors import ValidationError

# What a turn's stop reason (Converse's words) is called in OpenAI's `finish_reason`.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    "cancelled": "stop",
}

# The pipeline's error types as HTTP statuses and OpenAI error types.
ERROR_STATUS = {
    "ValidationError": (400, "invalid_request_error"),
    "Forbidden": (403, "permission_error"),
    "ModelNotAllowed": (403, "permission_error"),
    "QuotaExceeded": (429, "rate_limit_error"),
    "ModelThrottled": (429, "rate_limit_error"),
    "ModelUnavailable": (503, "api_error"),
    "UpstreamError": (502, "api_error"),
    "TimeLimitReached": (504, "api_error"),
    "InternalError": (500, "api_error"),
}
# A throttled model gives no reset time: a short wait is the honest advice.
THROTTLED_RETRY_AFTER_SECONDS = 5
MAX_STOP_SEQUENCES = 4  # Bedrock's limit, and OpenAI's

_SYSTEM_ROLES = ("system", "developer")
_CONVERSATION_ROLES = ("user", "assistant")
# Parameters that change what the model does and that this gateway cannot honour: refused by
# name, never silently dropped.
_UNSUPPORTED = {
    "tools": "Tool calling is not available through this gateway yet.",
    "tool_choice": "Tool calling is not available through this gateway yet.",
    "functions": "Function calling is not available through this gateway.",
    "function_call": "Function calling is not available through this gateway.",
    "audio": "Audio output is not available through this gateway.",
    "modalities": "Only text output is available through this gateway.",
    "prediction": "Predicted outputs are not available through this gateway.",
    "logit_bias": "logit_bias is not available through this gateway.",
    "top_logprobs": "Log probabilities are not available through this gateway.",
}
# Accepted and ignored: they do not change the answer (`user`, `metadata`, `store`,
# `service_tier`), or only in ways the pipeline does not expose (`seed`).
_IGNORED = {"user", "metadata", "store", "service_tier", "seed", "parallel_tool_calls", "reasoning_effort"}
_KNOWN = {
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "stream",
    "stream_options", "n", "presence_penalty", "frequency_penalty", "logprobs", "response_format",
} | _IGNORED | set(_UNSUPPORTED)


@dataclass(frozen=True)
class CompletionRequest:
    """What the door needs besides the pipeline payload: how to answer."""

    payload: dict[str, Any]  # the pipeline's Converse-shaped chat request
    model: str
    stream: bool
    include_usage: bool


def completion_request(body: Any) -> CompletionRequest:
    """An OpenAI chat completion request as the pipeline's payload; a `ValidationError`
    naming OpenAI's parameter for everything the gateway cannot take."""
    if not isinstance(body, dict):
        raise ValidationError("The request body must be a JSON object.")
    for name, message in _UNSUPPORTED.items():
        if body.get(name) not in (None, [], {}):
            raise ValidationError(message, field=name)
    unknown = sorted(set(body) - _KNOWN)
    if unknown:
        raise ValidationError(f"Unknown parameter(s): {', '.join(unknown)}.", field=unknown[0])
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ValidationError("model is required.", field="model")
    _require_default(body, "n", 1, "Only one choice (n=1) is available through this gateway.")
    _require_default(body, "presence_penalty", 0, "presence_penalty is not available through this gateway.")
    _require_default(body, "frequency_penalty", 0, "frequency_penalty is not available through this gateway.")
    _require_default(body, "logprobs", False, "Log probabilities are not available through this gateway.")
    response_format = body.get("response_format")
    if response_format is not None and response_format != {"type": "text"}:
        raise ValidationError("Only text responses are available through this gateway.", field="response_format")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ValidationError("stream must be true or false.", field="stream")
    include_usage = _include_usage(body.get("stream_options"), stream=stream)

    system, messages = _conversation(body.get("messages"))
    payload: dict[str, Any] = {"modelId": model, "messages": messages}
    if system:
        payload["system"] = system
    inference = _inference(body)
    if inference:
        payload["inferenceConfig"] = inference
    return CompletionRequest(payload=payload, model=model, stream=stream, include_usage=include_usage)


def _require_default(body: dict[str, Any], name: str, default: Any, message: str) -> None:
    value = body.get(name)
    if value is not None and value != default:
        raise ValidationError(message, field=name)


def _include_usage(options: Any, *, stream: bool) -> bool:
    if options is None:
        return False
    if not stream:
        raise ValidationError("stream_options is only allowed with stream: true.", field="stream_options")
    if not isinstance(options, dict) or set(options) - {"include_usage", "include_obfuscation"}:
        raise ValidationError('stream_options is {"include_usage": true|false}.', field="stream_options")
    include = options.get("include_usage", False)
    if not isinstance(include, bool):
        raise ValidationError("stream_options.include_usage must be true or false.", field="stream_options")
    return include


def _conversation(raw: Any) -> tuple[str, list[dict[str, Any]]]:
    """System and developer messages become the system prompt; consecutive messages of one
    role are joined, since Converse needs user and assistant to alternate."""
    if not isinstance(raw, list) or not raw:
        raise ValidationError("messages must be a non-empty list.", field="messages")
    system_parts: list[str] = []
    messages: list[dict[str, Any]] = []
    for index, message in enumerate(raw):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise ValidationError(f"{where} must be an object.", field="messages")
        role = message.get("role")
        if message.get("tool_calls") or role in ("tool", "function"):
            raise ValidationError("Tool calling is not available through this gateway yet.", field="messages")
        text = _text(message.get("content"), where)
        if role in _SYSTEM_ROLES:
            system_parts.append(text)
        elif role in _CONVERSATION_ROLES:
            if messages and messages[-1]["role"] == role:
                messages[-1]["content"][0]["text"] += "\n\n" + text
            else:
                messages.append({"role": role, "content": [{"text": text}]})
        else:
            raise ValidationError(f"{where}.role must be system, developer, user or assistant.", field="messages")
    if not messages:
        raise ValidationError("messages must hold at least one user message.", field="messages")
    return "\n\n".join(part for part in system_parts if part), messages


def _text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise ValidationError(f"{where}.content may only hold text parts.", field="messages")
            parts.append(part["text"])
        return "".join(parts)
    raise ValidationError(f"{where}.content must be a string or a list of text parts.", field="messages")


def _inference(body: dict[str, Any]) -> dict[str, Any]:
    inference: dict[str, Any] = {}
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ValidationError("max_completion_tokens must be a positive integer.", field="max_completion_tokens")
        inference["maxTokens"] = max_tokens
    for openai_name, converse_name in (("temperature", "temperature"), ("top_p", "topP")):
        value = body.get(openai_name)
        if value is None:
            continue
        # Bedrock's models take 0-1; OpenAI allows temperatures up to 2. Refused, not rescaled:
        # a caller who asks for 1.5 should learn that it cannot have it.
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValidationError(f"{openai_name} must be a number from 0 to 1 on this gateway.", field=openai_name)
        inference[converse_name] = value
    stop = body.get("stop")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        well_formed = isinstance(stops, list) and all(isinstance(s, str) and s for s in stops)
        if not well_formed or len(stops) > MAX_STOP_SEQUENCES:
            raise ValidationError("stop must be a string or up to 4 strings.", field="stop")
        if stops:
            inference["stopSequences"] = stops
    return inference


# --- the answer -------------------------------------------------------------------------------


@dataclass
class CompletionBuilder:
    """Turns one turn's outbound events into OpenAI chunks (streaming) or one completion."""

    model: str
    created: int
    include_usage: bool = False
    completion_id: str = "chatcmpl-gateway"
    text: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, int] | None = None
    error: dict[str, Any] | None = None

    def chunks(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """The chunks one pipeline event becomes (often none)."""
        if "messageStart" in event:
            if event.get("requestId"):
                self.completion_id = f"chatcmpl-{event['requestId']}"
            return [self._chunk({"role": "assistant", "content": ""})]
        if "contentBlockDelta" in event:
            text = event["contentBlockDelta"]["delta"].get("text", "")
            self.text.append(text)
            return [self._chunk({"content": text})] if text else []
        if "messageStop" in event:
            self.finish_reason = FINISH_REASONS.get(event["messageStop"].get("stopReason", ""), "stop")
            return []
        if "metadata" in event:
            usage = event["metadata"].get("usage") or {}
            self.usage = openai_usage(usage)
            chunks = [self._chunk({}, finish_reason=self.finish_reason or "stop")]
            if self.include_usage:
                chunks.append({**self._envelope(), "choices": [], "usage": self.usage})
            return chunks
        if "error" in event:
            self.error = event["error"]
        return []

    def completion(self) -> dict[str, Any]:
        return {
            **self._envelope("chat.completion"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(self.text), "refusal": None},
                    "finish_reason": self.finish_reason or "stop",
                    "logprobs": None,
                }
            ],
            "usage": self.usage or openai_usage({}),
        }

    def _envelope(self, kind: str = "chat.completion.chunk") -> dict[str, Any]:
        return {"id": self.completion_id, "object": kind, "created": self.created, "model": self.model}

    def _chunk(self, delta: dict[str, Any], *, finish_reason: str | None = None) -> dict[str, Any]:
        chunk = {
            **self._envelope(),
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
        }
        if self.include_usage:
            chunk["usage"] = None  # as OpenAI does: only the last chunk carries usage
        return chunk


def openai_usage(usage: dict[str, Any]) -> dict[str, int]:
    prompt, completion = int(usage.get("inputTokens", 0)), int(usage.get("outputTokens", 0))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def sse(data: dict[str, Any] | str) -> bytes:
    """One server-sent event; `[DONE]` ends the stream as OpenAI's does."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"data: {text}\n\n".encode()


@dataclass(frozen=True)
class ErrorResponse:
    status: int
    body: dict[str, Any]
    retry_after: int | None = None


def error_response(error: dict[str, Any], *, now: datetime) -> ErrorResponse:
    """A pipeline error event's body (`{"type", "message", ...}`) as OpenAI's error shape;
    a quota refusal says in `Retry-After` when its window resets."""
    error_type = str(error.get("type", "InternalError"))
    status, openai_type = ERROR_STATUS.get(error_type, (500, "api_error"))
    retry_after = None
    if error_type == "QuotaExceeded":
        retry_after = _seconds_until(error.get("resetsAt"), now)
    elif error_type == "ModelThrottled":
        retry_after = THROTTLED_RETRY_AFTER_SECONDS
    body = {
        "error": {
            "message": str(error.get("message", "")),
            "type": openai_type,
            "param": error.get("field"),
            "code": _snake(error_type),
        }
    }
    return ErrorResponse(status=status, body=body, retry_after=retry_after)


def _seconds_until(moment: Any, now: datetime) -> int | None:
    try:
        resets_at = datetime.fromisoformat(moment)
    except (TypeError, ValueError):
        return None
    return max(1, math.ceil((resets_at - now).total_seconds()))


def gateway_error_body(*, message: str, openai_type: str, code: str, param: str | None = None) -> dict[str, Any]:
    """An error the door raises itself (authentication, method, body)."""
    return {"error": {"message": message, "type": openai_type, "param": param, "code": code}}


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))
