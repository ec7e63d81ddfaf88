"""The provider port: a model that streams an answer.

Adapters: `BedrockProvider` (ConverseStream through boto3), `OpenAICompatibleProvider`
(self-hosted models over HTTP, server-sent events) and `DemoProvider` (offline, for the
embedded default). Each yields `TextDelta`s in order (and, for a model that calls tools,
`ToolUseStart` and `ToolUseInput` events), then exactly one `StreamEnd` with the model's own
usage figures when it reported them. A provider whose models can call tools says so with
`takes_tools = True`. Failures raise the gateway's typed errors
(`ModelThrottled`, `ModelUnavailable`, `UpstreamError`, `ValidationError`), mapped from the
provider's error *codes*, never from message text.
"""
from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, Protocol

from dataplane.inference import inference_config

# What the user reads when a guardrail blocks; the stack's guardrail answers with the same
# words, so the pipeline adds them only when a guardrail said something else (or nothing).
GUARDRAIL_BLOCKED_MESSAGE = "This request or answer was blocked by the content policy."


@dataclass(frozen=True)
class GuardrailConfig:
    """A resolved Bedrock guardrail for one call (Converse's `guardrailConfig`)."""

    identifier: str
    version: str
    stream_mode: str = "sync"  # Bedrock's streamProcessingMode: sync | async


@dataclass(frozen=True)
class GuardrailVerdict:
    """What ApplyGuardrail said about one text: `blocked` by a policy, personal data found
    (masked in `text` when the guardrail anonymises it), and the text to go on with."""

    blocked: bool
    found_pii: bool
    text: str


@dataclass(frozen=True)
class ModelCall:
    """What the pipeline asks of a model; `messages` and `system` are Converse-shaped."""

    model_id: str
    messages: list[dict]
    system: str | None = None
    max_tokens: int = 1024
    temperature: float | None = None
    top_p: float | None = None
    stop_sequences: tuple[str, ...] = ()
    endpoint: str = ""  # base URL for OpenAI-compatible providers
    guardrail: GuardrailConfig | None = None  # Bedrock only; other providers ignore it
    tool_config: dict[str, Any] | None = None  # Converse's toolConfig (`dataplane.tools`)

    def inference_config(self) -> dict[str, Any]:
        """Converse's `inferenceConfig` for this call (`dataplane.inference`)."""
        return inference_config(
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            stop_sequences=self.stop_sequences,
        )


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolUseStart:
    """The model calls a tool: the `call`-th call of this answer (from 0)."""

    call: int
    tool_use_id: str
    name: str


@dataclass(frozen=True)
class ToolUseInput:
    """A piece of the JSON text of the `call`-th tool call's input, as the model streams it."""

    call: int
    text: str


@dataclass(frozen=True)
class StreamEnd:
    stop_reason: str = "end_turn"
    input_tokens: int | None = None  # None when the model sent no usage
    output_tokens: int | None = None
    latency_ms: int | None = None
    extra: dict = field(default_factory=dict)
    # What a guardrail found, from its trace: it intervened, or it saw personal data (which it
    # may have masked) — either way the answer must not be cached.
    guardrail_intervened: bool = False
    guardrail_found_pii: bool = False


ProviderEvent = TextDelta | ToolUseStart | ToolUseInput | StreamEnd
# A generator, not just an iterator: the pipeline closes it to stop reading from the model.
ProviderStream = Generator[ProviderEvent, None, None]


class Provider(Protocol):
    name: str

    def stream(self, call: ModelCall) -> ProviderStream: ...
