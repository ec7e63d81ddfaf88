""" "Test this model": one small real call to a catalogue model through the data plane's provider.

The call goes through the same `provider_for` the chat pipeline uses (Bedrock ConverseStream,
an OpenAI-compatible server, or the demo model), with the gateway's own configuration and
credentials, so a missing credential, a denied model or a wrong endpoint shows here before a
user meets it. No quota is charged and nothing is logged to the lake: it is an admin's probe.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from dataplane.errors import GatewayError
from dataplane.providers import ModelCall, StreamEnd, TextDelta, provider_for
from gateway_project.gateway import gateway_config
from quotas.models import ModelCatalogueEntry
from quotas.selectors import catalogue_entry_allowed_model

TEST_PROMPT = "Reply with one short sentence: are you working?"
TEST_MAX_TOKENS = 32
EXCERPT_CHARS = 120


@dataclass(frozen=True)
class ModelTestResult:
    model_id: str
    ok: bool
    excerpt: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_ms: int = 0
    error_type: str = ""
    error: str = ""


def catalogue_model_test(*, entry: ModelCatalogueEntry, prompt: str = TEST_PROMPT) -> ModelTestResult:
    """Call `entry` once with a short prompt and a small maximum; never raises a gateway error."""
    call = ModelCall(
        model_id=entry.model_id,
        messages=[{"role": "user", "content": [{"text": prompt}]}],
        max_tokens=min(TEST_MAX_TOKENS, entry.default_max_tokens),
        endpoint=entry.endpoint_url,
    )
    began = time.monotonic()
    answer: list[str] = []
    end: StreamEnd | None = None
    try:
        provider = provider_for(catalogue_entry_allowed_model(entry=entry), gateway_config())
        for event in provider.stream(call):
            if isinstance(event, TextDelta):
                answer.append(event.text)
            elif isinstance(event, StreamEnd):
                end = event
    except GatewayError as error:
        return ModelTestResult(
            model_id=entry.model_id,
            ok=False,
            latency_ms=_elapsed_ms(began),
            error_type=error.type,
            error=error.message,
        )
    text = " ".join("".join(answer).split())
    return ModelTestResult(
        model_id=entry.model_id,
        ok=True,
        excerpt=text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…",
        input_tokens=end.input_tokens if end else None,
        output_tokens=end.output_tokens if end else None,
        latency_ms=_elapsed_ms(began),
    )


def _elapsed_ms(began: float) -> int:
    return int((time.monotonic() - began) * 1000)
