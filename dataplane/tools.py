"""Tool use in Converse's shapes: the tools a request offers, and the blocks that carry calls
and their results through a conversation.

A request offers tools in `toolConfig` (`{"tools": [{"toolSpec": {"name", "description",
"inputSchema": {"json": {...}}}}], "toolChoice": {"auto": {}} | {"any": {}} | {"tool":
{"name": ...}}}`). The model answers with `toolUse` blocks (`{"toolUseId", "name", "input"}`)
in an assistant message; the client runs the tools and sends each outcome back as a
`toolResult` block (`{"toolUseId", "content": [{"text"} | {"json"}], "status"}`) in the next
user message. The gateway passes all of it through unchanged; what it must know is here:
the shapes it accepts, and the text it estimates and checks for personal data.
"""
from __future__ import annotations

import json
import re
from typing import Any

from dataplane.errors import ValidationError

MAX_TOOLS = 128  # Bedrock's and OpenAI's limit on tools per request
# Bedrock's rule for a tool's name, which OpenAI's functions share.
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_TOOL_USE_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # Bedrock's rule
_RESULT_STATUSES = ("success", "error")


def parse_tool_config(raw: Any) -> dict[str, Any] | None:
    """A request's `toolConfig`, checked and normalised; None when it offers no tools."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - {"tools", "toolChoice"}:
        raise ValidationError(
            "toolConfig must be an object with tools and, optionally, toolChoice.", field="toolConfig"
        )
    tools = raw.get("tools")
    if not isinstance(tools, list) or not tools or len(tools) > MAX_TOOLS:
        raise ValidationError(f"toolConfig.tools must list 1 to {MAX_TOOLS} tools.", field="toolConfig.tools")
    specs = [_tool_spec(tool, f"toolConfig.tools[{index}]") for index, tool in enumerate(tools)]
    names = [spec["toolSpec"]["name"] for spec in specs]
    if len(set(names)) != len(names):
        raise ValidationError("Each tool needs a name of its own.", field="toolConfig.tools")
    config: dict[str, Any] = {"tools": specs}
    choice = raw.get("toolChoice")
    if choice is not None:
        config["toolChoice"] = _tool_choice(choice, names)
    return config


def _tool_spec(tool: Any, where: str) -> dict[str, Any]:
    spec = tool.get("toolSpec") if isinstance(tool, dict) and set(tool) == {"toolSpec"} else None
    if not isinstance(spec, dict) or set(spec) - {"name", "description", "inputSchema"}:
        raise ValidationError(f'{where} must be {{"toolSpec": {{"name", "description", "inputSchema"}}}}.',
                              field="toolConfig.tools")
    name = spec.get("name")
    if not isinstance(name, str) or not TOOL_NAME.match(name):
        raise ValidationError(f"{where}: a tool's name is 1-64 letters, digits, _ or -.", field="toolConfig.tools")
    description = spec.get("description")
    if description is not None and not isinstance(description, str):
        raise ValidationError(f"{where}: description must be a string.", field="toolConfig.tools")
    schema = spec.get("inputSchema")
    if not isinstance(schema, dict) or set(schema) != {"json"} or not isinstance(schema["json"], dict):
        raise ValidationError(f'{where}: inputSchema must be {{"json": <a JSON schema object>}}.',
                              field="toolConfig.tools")
    checked: dict[str, Any] = {"name": name, "inputSchema": {"json": schema["json"]}}
    if description:
        checked["description"] = description
    return {"toolSpec": checked}


def _tool_choice(choice: Any, names: list[str]) -> dict[str, Any]:
    if choice in ({"auto": {}}, {"any": {}}):
        return dict(choice)
    named = choice.get("tool") if isinstance(choice, dict) and set(choice) == {"tool"} else None
    if isinstance(named, dict) and set(named) == {"name"} and named["name"] in names:
        return {"tool": {"name": named["name"]}}
    raise ValidationError(
        'toolConfig.toolChoice is {"auto": {}}, {"any": {}} or {"tool": {"name": <one of the tools>}}.',
        field="toolConfig.toolChoice",
    )


def parse_tool_block(block: dict[str, Any], *, role: str, where: str) -> dict[str, Any]:
    """One `toolUse` (assistant) or `toolResult` (user) content block, checked."""
    if set(block) == {"toolUse"} and role == "assistant":
        return {"toolUse": _tool_use(block["toolUse"], where)}
    if set(block) == {"toolResult"} and role == "user":
        return {"toolResult": _tool_result(block["toolResult"], where)}
    kind = next(iter(block), "")
    if kind in ("toolUse", "toolResult"):
        owner = "assistant" if kind == "toolUse" else "user"
        raise ValidationError(f"{where}: a {kind} block belongs in an {owner} message.", field="messages")
    raise ValidationError(f"{where}.content holds a block that is not text, toolUse or toolResult.", field="messages")


def _tool_use(use: Any, where: str) -> dict[str, Any]:
    if not isinstance(use, dict) or set(use) != {"toolUseId", "name", "input"}:
        raise ValidationError(f"{where}: toolUse is {{toolUseId, name, input}}.", field="messages")
    _require_id(use["toolUseId"], where)
    if not isinstance(use["name"], str) or not TOOL_NAME.match(use["name"]):
        raise ValidationError(f"{where}: toolUse.name is not a tool name.", field="messages")
    if not isinstance(use["input"], dict):
        raise ValidationError(f"{where}: toolUse.input must be a JSON object.", field="messages")
    return {"toolUseId": use["toolUseId"], "name": use["name"], "input": use["input"]}


def _tool_result(result: Any, where: str) -> dict[str, Any]:
    shaped = isinstance(result, dict) and {"toolUseId", "content"} <= set(result) <= {"toolUseId", "content", "status"}
    if not shaped:
        raise ValidationError(f"{where}: toolResult is {{toolUseId, content, status}}.", field="messages")
    _require_id(result["toolUseId"], where)
    content = result["content"]
    if not isinstance(content, list) or not all(_result_part(part) for part in content):
        raise ValidationError(f'{where}: toolResult.content is a list of {{"text"}} or {{"json"}} parts.',
                              field="messages")
    checked: dict[str, Any] = {"toolUseId": result["toolUseId"], "content": content}
    if "status" in result:
        if result["status"] not in _RESULT_STATUSES:
            raise ValidationError(f"{where}: toolResult.status is success or error.", field="messages")
        checked["status"] = result["status"]
    return checked


def _result_part(part: Any) -> bool:
    if not isinstance(part, dict) or len(part) != 1:
        return False
    if "text" in part:
        return isinstance(part["text"], str)
    return "json" in part


def _require_id(value: Any, where: str) -> None:
    if not isinstance(value, str) or not _TOOL_USE_ID.match(value):
        raise ValidationError(f"{where}: toolUseId is 1-64 letters, digits, _ or -.", field="messages")


def check_tool_turns(messages: list[dict[str, Any]], tool_config: dict[str, Any] | None) -> None:
    """Tool blocks need the tools offered (Bedrock refuses them otherwise), and every result
    answers a call the conversation made."""
    called: set[str] = set()
    for index, message in enumerate(messages):
        for block in message["content"]:
            if ("toolUse" in block or "toolResult" in block) and tool_config is None:
                raise ValidationError(
                    f"messages[{index}] holds tool calls or results, but the request offers no tools.",
                    field="toolConfig",
                )
            if "toolUse" in block:
                called.add(block["toolUse"]["toolUseId"])
            elif "toolResult" in block and block["toolResult"]["toolUseId"] not in called:
                raise ValidationError(
                    f"messages[{index}] answers the tool call {block['toolResult']['toolUseId']}, "
                    "which no earlier assistant message made.",
                    field="messages",
                )


def block_text(block: Any) -> str:
    """What a model reads in one content block, as text: the text itself, or a tool block's
    JSON (for estimating tokens and looking for personal data)."""
    if not isinstance(block, dict):
        return ""
    if isinstance(block.get("text"), str):
        return block["text"]
    if isinstance(block.get("toolUse"), dict):
        use = block["toolUse"]
        return f"{use.get('name', '')} {_json(use.get('input'))}"
    if isinstance(block.get("toolResult"), dict):
        parts = block["toolResult"].get("content") or []
        return "\n".join(
            part["text"] if isinstance(part.get("text"), str) else _json(part.get("json"))
            for part in parts
            if isinstance(part, dict)
        )
    return ""


def tool_config_text(tool_config: dict[str, Any] | None) -> str:
    """The tools' definitions as the model reads them (they count as input)."""
    return _json(tool_config) if tool_config else ""


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
