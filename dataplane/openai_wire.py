"""The OpenAI Chat Completions wire format, translated to and from the pipeline's Converse shapes.

The one place where `/v1/chat/completions` meets the data plane: a request body becomes the
payload every other door publishes (`dataplane.requests`), and the events a turn sends to its
outbound sink become completion chunks, a whole completion, or an OpenAI-shaped error. The
other direction lives here too, for the OpenAI-compatible provider: a Converse conversation
as OpenAI chat messages and tools. Like the rest of `dataplane/`, it never imports Django, so
any door (Django's, a Lambda function URL) can use it.

Tools: OpenAI's `tools` (functions) become Converse's `toolConfig`, an assistant's
`tool_calls` become `toolUse` blocks and `tool` messages `toolResult` blocks, and back. A
function's `strict` flag is accepted but not enforced (Converse has no such mode), and
`tool_choice: "none"` is honoured by not offering the tools, which a conversation that
already holds tool calls cannot do.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from dataplane.errors import ValidationError
from dataplane.tools import check_tool_turns, parse_tool_config

_T = TypeVar("_T")

# What a turn's stop reason (Converse's words) is called in OpenAI's `finish_reason`.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    "cancelled": "stop",
    "tool_use": "tool_calls",
}
# The pipeline's request fields (Converse's names) as OpenAI's parameters, for errors.
OPENAI_PARAMS = {
    "modelId": "model",
    "toolConfig": "tools",
    "toolConfig.tools": "tools",
    "toolConfig.toolChoice": "tool_choice",
    "inferenceConfig.maxTokens": "max_completion_tokens",
    "inferenceConfig.temperature": "temperature",
    "inferenceConfig.topP": "top_p",
    "inferenceConfig.stopSequences": "stop",
}
# OpenAI's tool_choice words as Converse's toolChoice, and back.
TOOL_CHOICES: dict[str, dict[str, Any]] = {"auto": {"auto": {}}, "required": {"any": {}}}

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
    "stream_options", "n", "presence_penalty", "frequency_penalty", "logprobs", "response_format", "tools",
    "tool_choice",
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
    _refuse_what_cannot_be_honoured(body)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ValidationError("model is required.", field="model")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ValidationError("stream must be true or false.", field="stream")
    include_usage = _include_usage(body.get("stream_options"), stream=stream)

    system, messages = _conversation(body.get("messages"))
    payload: dict[str, Any] = {"modelId": model, "messages": messages}
    if system:
        payload["system"] = system
    tool_config = _tool_config(body.get("tools"), body.get("tool_choice"), messages)
    _in_openai_words(check_tool_turns, messages, tool_config)
    if tool_config is not None:
        payload["toolConfig"] = tool_config
    inference = _inference(body)
    if inference:
        payload["inferenceConfig"] = inference
    return CompletionRequest(payload=payload, model=model, stream=stream, include_usage=include_usage)


def _refuse_what_cannot_be_honoured(body: dict[str, Any]) -> None:
    for name, message in _UNSUPPORTED.items():
        if body.get(name) not in (None, [], {}):
            raise ValidationError(message, field=name)
    unknown = sorted(set(body) - _KNOWN)
    if unknown:
        raise ValidationError(f"Unknown parameter(s): {', '.join(unknown)}.", field=unknown[0])
    _require_default(body, "n", 1, "Only one choice (n=1) is available through this gateway.")
    _require_default(body, "presence_penalty", 0, "presence_penalty is not available through this gateway.")
    _require_default(body, "frequency_penalty", 0, "frequency_penalty is not available through this gateway.")
    _require_default(body, "logprobs", False, "Log probabilities are not available through this gateway.")
    response_format = body.get("response_format")
    if response_format is not None and response_format != {"type": "text"}:
        raise ValidationError("Only text responses are available through this gateway.", field="response_format")


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
    role are joined (a `tool` message is a user's tool result), since Converse needs user and
    assistant to alternate."""
    if not isinstance(raw, list) or not raw:
        raise ValidationError("messages must be a non-empty list.", field="messages")
    system_parts: list[str] = []
    messages: list[dict[str, Any]] = []
    for index, message in enumerate(raw):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise ValidationError(f"{where} must be an object.", field="messages")
        role = message.get("role")
        if role in _SYSTEM_ROLES:
            system_parts.append(_text(message.get("content"), where))
            continue
        if role == "tool":
            role, blocks = "user", [_tool_result(message, where)]
        elif role == "user":
            blocks = [{"text": _text(message.get("content"), where)}]
        elif role == "assistant":
            blocks = _assistant_blocks(message, where)
        elif role == "function":
            raise ValidationError("Function messages are not available through this gateway; use tools.",
                                  field="messages")
        else:
            raise ValidationError(f"{where}.role must be system, developer, user, assistant or tool.",
                                  field="messages")
        _append(messages, role, blocks)
    if not messages:
        raise ValidationError("messages must hold at least one user message.", field="messages")
    return "\n\n".join(part for part in system_parts if part), messages


def _append(messages: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Add one message's blocks, joined to the previous message when it has the same role
    (texts that meet are joined by a blank line)."""
    if not messages or messages[-1]["role"] != role:
        messages.append({"role": role, "content": blocks})
        return
    content = messages[-1]["content"]
    for block in blocks:
        if "text" in block and content and "text" in content[-1]:
            content[-1] = {"text": content[-1]["text"] + "\n\n" + block["text"]}
        else:
            content.append(block)


def _assistant_blocks(message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    calls = message.get("tool_calls")
    content = message.get("content")
    text = "" if content is None and calls else _text(content, where)
    blocks: list[dict[str, Any]] = [{"text": text}] if text or not calls else []
    if calls is None:
        return blocks
    if not isinstance(calls, list):
        raise ValidationError(f"{where}.tool_calls must be a list.", field="messages")
    for number, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or call.get("type", "function") != "function":
            raise ValidationError(f"{where}.tool_calls[{number}] must be a function call.", field="messages")
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except (TypeError, ValueError):
            arguments = None
        if not isinstance(arguments, dict):
            raise ValidationError(f"{where}.tool_calls[{number}].function.arguments must be a JSON object.",
                                  field="messages")
        blocks.append({"toolUse": {"toolUseId": call.get("id"), "name": function.get("name"), "input": arguments}})
    return blocks


def _tool_result(message: dict[str, Any], where: str) -> dict[str, Any]:
    return {
        "toolResult": {
            "toolUseId": message.get("tool_call_id"),
            "content": [{"text": _text(message.get("content"), where)}],
        }
    }


def _tool_config(tools: Any, choice: Any, messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """OpenAI's `tools` and `tool_choice` as Converse's `toolConfig` (None: no tools)."""
    if tools in (None, []):
        if choice not in (None, "none"):
            raise ValidationError("tool_choice needs tools.", field="tool_choice")
        return None
    if not isinstance(tools, list):
        raise ValidationError("tools must be a list of functions.", field="tools")
    specs = [_tool_spec(tool, index) for index, tool in enumerate(tools)]
    if choice == "none":
        if any("text" not in block for message in messages for block in message["content"]):
            raise ValidationError(
                'tool_choice "none" is not available in a conversation that holds tool calls.', field="tool_choice"
            )
        return None
    config: dict[str, Any] = {"tools": specs}
    if choice is not None:
        config["toolChoice"] = _converse_tool_choice(choice)
    return _in_openai_words(parse_tool_config, config)


def _in_openai_words(check: Callable[..., _T], *args: Any) -> _T:
    """One of the pipeline's own checks (the same as every door's), its refusal in OpenAI's words."""
    try:
        return check(*args)
    except ValidationError as error:
        words = error.message.replace("toolConfig.toolChoice", "tool_choice").replace("toolConfig.tools", "tools")
        raise ValidationError(words, field=openai_param(error.details.get("field"))) from None


def _tool_spec(tool: Any, index: int) -> dict[str, Any]:
    function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
    if not isinstance(function, dict):
        raise ValidationError(f"tools[{index}] must be a function tool.", field="tools")
    spec: dict[str, Any] = {
        "name": function.get("name"),
        "inputSchema": {"json": function.get("parameters") or {"type": "object", "properties": {}}},
    }
    if function.get("description"):
        spec["description"] = function["description"]
    return {"toolSpec": spec}


def _converse_tool_choice(choice: Any) -> dict[str, Any]:
    if isinstance(choice, str) and choice in TOOL_CHOICES:
        return TOOL_CHOICES[choice]
    function = choice.get("function") if isinstance(choice, dict) and choice.get("type") == "function" else None
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return {"tool": {"name": function["name"]}}
    raise ValidationError(
        'tool_choice is "auto", "required", "none" or {"type": "function", "function": {"name": ...}}.',
        field="tool_choice",
    )


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
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    _tool_blocks: dict[int, int] = field(default_factory=dict)  # content block index -> tool_calls index
    finish_reason: str | None = None
    usage: dict[str, int] | None = None
    error: dict[str, Any] | None = None

    def chunks(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """The chunks one pipeline event becomes (often none)."""
        if "messageStart" in event:
            if event.get("requestId"):
                self.completion_id = f"chatcmpl-{event['requestId']}"
            return [self._chunk({"role": "assistant", "content": ""})]
        if "contentBlockStart" in event:
            return self._tool_call_start(event["contentBlockStart"])
        if "contentBlockDelta" in event:
            return self._delta(event["contentBlockDelta"])
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

    def _delta(self, block: dict[str, Any]) -> list[dict[str, Any]]:
        if "toolUse" in block["delta"]:
            return self._tool_call_arguments(block)
        text = block["delta"].get("text", "")
        self.text.append(text)
        return [self._chunk({"content": text})] if text else []

    def _tool_call_start(self, block: dict[str, Any]) -> list[dict[str, Any]]:
        tool_use = (block.get("start") or {}).get("toolUse")
        if not tool_use:
            return []
        index = self._tool_blocks[block["contentBlockIndex"]] = len(self.tool_calls)
        def call() -> dict[str, Any]:  # one for the completion, one for the chunk: the first grows
            function = {"name": tool_use["name"], "arguments": ""}
            return {"id": tool_use["toolUseId"], "type": "function", "function": function}

        self.tool_calls.append(call())
        return [self._chunk({"tool_calls": [{"index": index, **call()}]})]

    def _tool_call_arguments(self, block: dict[str, Any]) -> list[dict[str, Any]]:
        index = self._tool_blocks.get(block["contentBlockIndex"])
        arguments = block["delta"]["toolUse"].get("input", "")
        if index is None or not arguments:
            return []
        self.tool_calls[index]["function"]["arguments"] += arguments
        return [self._chunk({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]})]

    def completion(self) -> dict[str, Any]:
        text = "".join(self.text)
        message: dict[str, Any] = {"role": "assistant", "content": text or None, "refusal": None}
        if self.tool_calls:
            message["tool_calls"] = self.tool_calls
        else:
            message["content"] = text
        return {
            **self._envelope("chat.completion"),
            "choices": [
                {"index": 0, "message": message, "finish_reason": self.finish_reason or "stop", "logprobs": None}
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


# --- a Converse conversation as an OpenAI chat completion request (for upstream servers) ----


def openai_messages(system: str | None, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Converse messages as OpenAI chat messages: `toolUse` blocks become the assistant's
    `tool_calls`, and each `toolResult` block a `tool` message ahead of the user's text."""
    out: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for message in messages:
        content = message.get("content")
        blocks: list[dict[str, Any]] = (
            [{"text": content}] if isinstance(content, str) else [b for b in content or [] if isinstance(b, dict)]
        )
        text = "".join(block["text"] for block in blocks if isinstance(block.get("text"), str))
        if message["role"] == "assistant":
            calls = [_openai_tool_call(block["toolUse"]) for block in blocks if "toolUse" in block]
            if calls:
                out.append({"role": "assistant", "content": text or None, "tool_calls": calls})
                continue
        results = [block["toolResult"] for block in blocks if "toolResult" in block]
        out.extend(
            {"role": "tool", "tool_call_id": result["toolUseId"], "content": _result_text(result)} for result in results
        )
        if text or not results:
            out.append({"role": message["role"], "content": text})
    return out


def _openai_tool_call(tool_use: dict[str, Any]) -> dict[str, Any]:
    function = {"name": tool_use["name"], "arguments": json.dumps(tool_use.get("input") or {}, ensure_ascii=False)}
    return {"id": tool_use["toolUseId"], "type": "function", "function": function}


def _result_text(result: dict[str, Any]) -> str:
    parts = [
        part["text"] if "text" in part else json.dumps(part.get("json"), ensure_ascii=False)
        for part in result.get("content") or []
        if isinstance(part, dict)
    ]
    text = "\n".join(parts)
    # OpenAI's tool messages have no status: a failed tool says so in words.
    return f"Error: {text}" if result.get("status") == "error" else text


def openai_tools(tool_config: dict[str, Any] | None) -> dict[str, Any]:
    """Converse's `toolConfig` as OpenAI's `tools` and `tool_choice` (nothing without tools)."""
    if not tool_config:
        return {}
    tools = []
    for tool in tool_config["tools"]:
        spec = tool["toolSpec"]
        function: dict[str, Any] = {"name": spec["name"], "parameters": spec["inputSchema"]["json"]}
        if spec.get("description"):
            function["description"] = spec["description"]
        tools.append({"type": "function", "function": function})
    fields: dict[str, Any] = {"tools": tools}
    choice = tool_config.get("toolChoice")
    if choice is not None:
        named = choice.get("tool")
        words = [word for word, converse in TOOL_CHOICES.items() if converse == choice]
        fields["tool_choice"] = {"type": "function", "function": {"name": named["name"]}} if named else words[0]
    return fields


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
            "param": openai_param(error.get("field")),
            "code": _snake(error_type),
        }
    }
    return ErrorResponse(status=status, body=body, retry_after=retry_after)


def openai_param(field: Any) -> str | None:
    """The OpenAI parameter a pipeline error's field names (as it is when it has no other name)."""
    if not isinstance(field, str):
        return None
    return OPENAI_PARAMS.get(field, field)


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
