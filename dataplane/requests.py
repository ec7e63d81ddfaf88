"""The chat request a client publishes, parsed and validated.

The shape follows Bedrock's Converse API so a client written for Bedrock needs no mapping:
`{"messages": [{"role": "user", "content": [{"text": "..."}]}], "modelId": "...",
"conversationId": "...", "system": "...", "inferenceConfig": {"maxTokens": 512,
"temperature": 0.2}, "toolConfig": {...}, "private": false, "fresh": false}` (`fresh`: answer
from the model, not from the cache, as a "regenerate" button wants; the new answer may still
be cached; `toolConfig` and the tool blocks in messages: `dataplane.tools`). Every failure is
a `ValidationError` whose message names the field.
"""
from __future__ import annotations

import itertools
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from dataplane.config import GatewayConfig
from dataplane.errors import ValidationError
from dataplane.inference import inference_config
from dataplane.model_ids import MODEL_ID_CHARACTERS, MODEL_ID_MAX_CHARS, MODEL_ID_PATTERN
from dataplane.tools import block_text, check_tool_turns, parse_tool_block, parse_tool_config

_CONVERSATION_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_ALLOWED_FIELDS = {
    "messages", "modelId", "conversationId", "system", "inferenceConfig", "toolConfig", "private", "fresh", "action",
}
_INFERENCE_FIELDS = {"maxTokens", "temperature", "topP", "stopSequences"}
MAX_STOP_SEQUENCES = 4


@dataclass(frozen=True)
class ChatRequest:
    model_id: str
    conversation_id: str
    messages: list[dict[str, Any]]
    system: str | None
    max_tokens: int | None
    temperature: float | None
    top_p: float | None
    stop_sequences: tuple[str, ...]
    private: bool
    fresh: bool = False
    tool_config: dict[str, Any] | None = None  # Converse's toolConfig: the tools the model may call

    @property
    def last_user_text(self) -> str:
        return _text_of(self.messages[-1])

    @property
    def uses_tools(self) -> bool:
        return self.tool_config is not None

    def all_text(self) -> str:
        """Everything the model reads, tool calls and results included (for the privacy check)."""
        parts = [self.system or ""] + [
            block_text(block) for message in self.messages for block in message["content"]
        ]
        return "\n".join(parts)

    def inference_config(self, max_tokens: int) -> dict[str, Any]:
        return inference_config(
            max_tokens=max_tokens, temperature=self.temperature, top_p=self.top_p, stop_sequences=self.stop_sequences
        )


def conversation_id_of(payload: Any) -> str | None:
    """Best effort, for error events about a payload that failed validation."""
    if isinstance(payload, dict):
        value = payload.get("conversationId")
        if isinstance(value, str) and _CONVERSATION_ID.match(value):
            return value
    return None


def cancel_target(payload: Any) -> str | None:
    """The conversation a `{"action": "cancel", "conversationId": ...}` event stops ("" when
    it names none: every running turn of the caller), or None when the event is not a cancel."""
    if isinstance(payload, dict) and payload.get("action") == "cancel":
        conversation_id = payload.get("conversationId")
        return conversation_id if isinstance(conversation_id, str) and conversation_id else ""
    return None


def parse_json(text: str | bytes) -> Any:
    """`json.loads` for text from outside: nesting too deep for the parser (`[` repeated
    100,000 times) is refused like any other invalid JSON, as a ValueError, instead of
    escaping as a RecursionError that no caller expects."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def decode_payload(payload: Any) -> Any:
    """AppSync hands events over parsed; other doors may pass the JSON text."""
    if isinstance(payload, (str, bytes)):
        try:
            return parse_json(payload)
        except ValueError:  # UnicodeDecodeError is one too
            raise ValidationError("The event is not valid JSON.") from None
    return payload


def parse_chat_request(payload: Any, config: GatewayConfig) -> ChatRequest:
    payload = decode_payload(payload)
    if not isinstance(payload, dict):
        raise ValidationError("A chat request must be a JSON object.")
    unknown = set(payload) - _ALLOWED_FIELDS
    if unknown:
        raise ValidationError(f"Unknown field(s): {', '.join(sorted(unknown))}.", field=sorted(unknown)[0])
    try:
        size = len(json.dumps(payload, ensure_ascii=False).encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate ("\ud800" in the JSON): no model can read it
        raise ValidationError("The request holds text that is not valid Unicode.", field="messages") from None
    if size > config.max_request_bytes:
        raise ValidationError(
            f"The request is {size} bytes; the limit is {config.max_request_bytes}.", field="messages"
        )

    model_id = payload.get("modelId")
    if not isinstance(model_id, str) or not model_id.strip():
        raise ValidationError("modelId is required.", field="modelId")
    if not MODEL_ID_PATTERN.match(model_id):
        raise ValidationError(
            f"modelId is {MODEL_ID_CHARACTERS}, starting with a letter or digit, "
            f"at most {MODEL_ID_MAX_CHARS} characters.",
            field="modelId",
        )

    conversation_id = payload.get("conversationId") or str(uuid.uuid4())
    if not isinstance(conversation_id, str) or not _CONVERSATION_ID.match(conversation_id):
        raise ValidationError(
            "conversationId must be 1-128 letters, digits or . _ : -", field="conversationId"
        )

    messages = _parse_messages(payload.get("messages"), config)
    system = _parse_system(payload.get("system"), config)
    tool_config = parse_tool_config(payload.get("toolConfig"))
    check_tool_turns(messages, tool_config)
    max_tokens, temperature, top_p, stops = _parse_inference(payload.get("inferenceConfig"))
    return ChatRequest(
        model_id=model_id,
        conversation_id=conversation_id,
        messages=messages,
        system=system,
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=top_p,
        stop_sequences=stops,
        private=_flag(payload, "private"),
        fresh=_flag(payload, "fresh"),
        tool_config=tool_config,
    )


def _flag(payload: dict[str, Any], name: str) -> bool:
    value = payload.get(name, False)
    if not isinstance(value, bool):
        raise ValidationError(f"{name} must be true or false.", field=name)
    return value


def _parse_messages(raw: Any, config: GatewayConfig) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise ValidationError("messages must be a non-empty list.", field="messages")
    if len(raw) > config.max_messages:
        raise ValidationError(f"At most {config.max_messages} messages per request.", field="messages")
    messages = [_parse_message(message, f"messages[{index}]", config) for index, message in enumerate(raw)]
    if messages[0]["role"] != "user" or messages[-1]["role"] != "user":
        raise ValidationError("A conversation starts and ends with a user message.", field="messages")
    for previous, current in itertools.pairwise(messages):
        if previous["role"] == current["role"]:
            raise ValidationError("Messages must alternate between user and assistant.", field="messages")
    return messages


def _parse_message(message: Any, where: str, config: GatewayConfig) -> dict[str, Any]:
    if not isinstance(message, dict) or set(message) - {"role", "content"}:
        raise ValidationError(f"{where} must be an object with role and content.", field="messages")
    role = message.get("role")
    if role not in ("user", "assistant"):
        raise ValidationError(f"{where}.role must be 'user' or 'assistant'.", field="messages")
    content = message.get("content")
    if isinstance(content, str):  # a convenience many clients expect
        content = [{"text": content}]
    if not isinstance(content, list) or not content:
        raise ValidationError(f"{where}.content must be a non-empty list of text blocks.", field="messages")
    blocks = [_parse_block(block, role, where, config) for block in content]
    if any("text" not in block for block in blocks):
        # Beside a tool call or result, a blank text block says nothing (and Bedrock refuses it).
        return {"role": role, "content": [b for b in blocks if "text" not in b or b["text"].strip()]}
    if not "".join(b["text"] for b in blocks).strip():
        raise ValidationError(f"{where} is empty.", field="messages")
    return {"role": role, "content": blocks}


def _parse_block(block: Any, role: str, where: str, config: GatewayConfig) -> dict[str, Any]:
    if not isinstance(block, dict):
        raise ValidationError(f"{where}.content holds a block that is not an object.", field="messages")
    if set(block) != {"text"}:
        return parse_tool_block(block, role=role, where=where)
    if not isinstance(block["text"], str):
        raise ValidationError(f'{where}.content holds a block that is not {{"text": ...}}.', field="messages")
    if len(block["text"]) > config.max_message_chars:
        raise ValidationError(f"{where} is longer than {config.max_message_chars} characters.", field="messages")
    return {"text": block["text"]}


def _parse_system(system: Any, config: GatewayConfig) -> str | None:
    if system is None:
        return None
    if not isinstance(system, str):
        raise ValidationError("system must be a string.", field="system")
    if len(system) > config.max_message_chars:
        raise ValidationError(f"system is longer than {config.max_message_chars} characters.", field="system")
    return system or None


def _parse_inference(raw: Any) -> tuple[int | None, float | None, float | None, tuple[str, ...]]:
    if raw is None:
        return None, None, None, ()
    if not isinstance(raw, dict):
        raise ValidationError("inferenceConfig must be an object.", field="inferenceConfig")
    unknown = set(raw) - _INFERENCE_FIELDS
    if unknown:
        raise ValidationError(
            f"Unknown inferenceConfig field(s): {', '.join(sorted(unknown))}.", field="inferenceConfig"
        )
    max_tokens = raw.get("maxTokens")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise ValidationError(
            "inferenceConfig.maxTokens must be a positive integer.", field="inferenceConfig.maxTokens"
        )
    temperature = _unit_interval(raw.get("temperature"), "temperature")
    top_p = _unit_interval(raw.get("topP"), "topP")
    stops = raw.get("stopSequences") or []
    if (
        not isinstance(stops, list)
        or len(stops) > MAX_STOP_SEQUENCES
        or not all(isinstance(s, str) and s for s in stops)
    ):
        raise ValidationError(
            f"inferenceConfig.stopSequences must be up to {MAX_STOP_SEQUENCES} non-empty strings.",
            field="inferenceConfig.stopSequences",
        )
    return max_tokens, temperature, top_p, tuple(stops)


def _unit_interval(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValidationError(f"inferenceConfig.{name} must be a number from 0 to 1.", field=f"inferenceConfig.{name}")
    return float(value)


def _text_of(message: dict[str, Any]) -> str:
    return "".join(block.get("text", "") for block in message.get("content", []))
