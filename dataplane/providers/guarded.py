"""A Bedrock guardrail around a model that is not on Bedrock (OpenAI-compatible endpoints),
through the ApplyGuardrail API.

The prompt is checked before the model sees it: blocked, the turn ends with the
content-policy notice and the model is never called (nothing to bill); masked (names, numbers), the model
gets the masked text. The answer is checked once it is complete, since an
OpenAI-compatible stream cannot be held back chunk by chunk the way Bedrock's synchronous
mode does: streamed text cannot be recalled, so a blocked answer is flagged (the user gets
the content-policy notice, the answer is never cached) — the same promise as Bedrock's
asynchronous mode. Only text is checked: the prompt's text blocks and the answer's text; tool
calls and tool results pass as the model and the client sent them.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from dataplane.providers.base import (
    GuardrailConfig,
    GuardrailVerdict,
    ModelCall,
    Provider,
    ProviderStream,
    StreamEnd,
    TextDelta,
)


class GuardrailChecker(Protocol):
    def apply_guardrail(self, guardrail: GuardrailConfig, *, source: str, text: str) -> GuardrailVerdict: ...


class GuardedProvider:
    def __init__(self, model: Provider, *, checker: GuardrailChecker, guardrail: GuardrailConfig) -> None:
        self.model = model
        self.checker = checker
        self.guardrail = guardrail
        self.name = model.name
        self.takes_tools = getattr(model, "takes_tools", False)

    def stream(self, call: ModelCall) -> ProviderStream:
        prompt = _last_user_text(call.messages)
        # A message of tool results only has no text to check.
        checked = self._check("INPUT", prompt)
        if checked.blocked:
            # No text of its own: the pipeline tells the user, and nothing reached a model.
            yield StreamEnd(stop_reason="guardrail_intervened", input_tokens=0, output_tokens=0,
                            guardrail_intervened=True, guardrail_found_pii=checked.found_pii)
            return
        if checked.text != prompt:
            call = replace(call, messages=_with_last_user_text(call.messages, checked.text))
        answer: list[str] = []
        end = StreamEnd()
        stream = self.model.stream(call)
        try:
            for event in stream:
                if isinstance(event, StreamEnd):
                    end = event
                    continue
                if isinstance(event, TextDelta):
                    answer.append(event.text)
                yield event
        finally:
            stream.close()
        verdict = self._check("OUTPUT", "".join(answer))
        yield replace(
            end,
            stop_reason="guardrail_intervened" if verdict.blocked else end.stop_reason,
            guardrail_intervened=verdict.blocked,
            guardrail_found_pii=checked.found_pii or verdict.found_pii,
        )

    def _check(self, source: str, text: str) -> GuardrailVerdict:
        """ApplyGuardrail on one text; blank text (tool calls or results only) passes unasked."""
        if not text.strip():
            return GuardrailVerdict(blocked=False, found_pii=False, text=text)
        return self.checker.apply_guardrail(self.guardrail, source=source, text=text)


def _last_user_text(messages: list[dict]) -> str:
    from dataplane.tokens import content_text

    last = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    return content_text(last.get("content")) if last else ""


def _with_last_user_text(messages: list[dict], text: str) -> list[dict]:
    """The last user message with its text as the guardrail masked it (its tool results kept)."""
    index = max(i for i, m in enumerate(messages) if m.get("role") == "user")
    content = messages[index].get("content")
    others = [b for b in content if isinstance(b, dict) and "text" not in b] if isinstance(content, list) else []
    return [*messages[:index], {"role": "user", "content": [*others, {"text": text}]}, *messages[index + 1 :]]
