"""The offline demo model: a clearly labelled stand-in that needs no AWS and no network.

It streams a short deterministic answer (it says what it is, echoes a summary of the user's
last message and renders a little markdown so the chat page's rendering can be seen), in
several chunks, and bills honestly: input and output tokens are `dataplane.tokens` estimates
of exactly what it read and streamed. `max_tokens` is respected by cutting the answer at the
budget, with stop reason `max_tokens`, as a real model would.
"""
from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable

from dataplane import tokens
from dataplane.providers.base import ModelCall, ProviderEvent, ProviderStream, StreamEnd, TextDelta

# The offline model every installation has: `seed_demo` puts it in the catalogue.
DEMO_MODEL_ID = "demo.echo-v1"
DEMO_MODEL_NAME = "Demo model (offline)"  # the catalogue's display name
DEMO_PROVIDER_NAME = "Demo (offline)"  # the provider, as the catalogue's provider choice names it
DEFAULT_CHUNK_DELAY_SECONDS = 0.02  # visible streaming in the chat page
WORDS_PER_CHUNK = 3
SUMMARY_CHARS = 160


class DemoProvider:
    """Streams the demo answer; `chunk_delay` seconds pass between chunks (0 in tests)."""

    name = DEMO_PROVIDER_NAME

    def __init__(
        self,
        *,
        chunk_delay: float = DEFAULT_CHUNK_DELAY_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.chunk_delay = chunk_delay
        self._sleep = sleep

    def stream(self, call: ModelCall) -> ProviderStream:
        started = time.monotonic()
        answer = demo_answer(call)
        allowed = within_budget(answer, max(call.max_tokens, 0))
        for index, chunk in enumerate(split_into_chunks(allowed)):
            if index and self.chunk_delay > 0:
                self._sleep(self.chunk_delay)
            yield TextDelta(chunk)
        yield _end(call, answer, allowed, started)

    async def astream(self, call: ModelCall) -> AsyncIterator[ProviderEvent]:
        """The same answer, paced on the event loop instead of a sleeping thread."""
        started = time.monotonic()
        answer = demo_answer(call)
        allowed = within_budget(answer, max(call.max_tokens, 0))
        for index, chunk in enumerate(split_into_chunks(allowed)):
            if index:
                # Also without a delay: a turn hands the loop over between chunks, like a
                # socket read would, so other connections are served meanwhile.
                await asyncio.sleep(self.chunk_delay)
            yield TextDelta(chunk)
        yield _end(call, answer, allowed, started)


def _end(call: ModelCall, answer: str, allowed: str, started: float) -> StreamEnd:
    return StreamEnd(
        stop_reason="end_turn" if allowed == answer else "max_tokens",
        input_tokens=tokens.estimate_messages(call.messages, call.system),
        output_tokens=tokens.estimate(allowed),
        latency_ms=int((time.monotonic() - started) * 1000),
    )


def demo_answer(call: ModelCall) -> str:
    asked = _summary(_last_user_text(call.messages))
    words = len(_last_user_text(call.messages).split())
    return (
        f"Hello! I am the **offline demo model** (`{call.model_id}`). I do not call a real language "
        "model: every answer follows this template, so the gateway can be tried without AWS.\n\n"
        f"You asked: \u201c{asked}\u201d\n\n"
        "What this answer shows:\n"
        "- **streaming**: it arrives in several chunks;\n"
        "- **markdown**: bold text, lists and code blocks render;\n"
        "- **metering**: its input and output tokens count against your quota.\n\n"
        "```text\n"
        f"your message: {words} words, {tokens.estimate(_last_user_text(call.messages))} tokens (estimated)\n"
        "```\n\n"
        "Ask an administrator to allow a Bedrock model for real answers."
    )


def _last_user_text(messages: list[dict]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return tokens.content_text(message.get("content"))
    return ""


def _summary(text: str) -> str:
    flat = " ".join(text.split())
    if not flat:
        return "(no text)"
    return flat if len(flat) <= SUMMARY_CHARS else flat[: SUMMARY_CHARS - 1].rstrip() + "\u2026"


def within_budget(text: str, max_tokens: int) -> str:
    """The longest prefix of `text` whose estimate fits `max_tokens` (the estimate is
    monotonic in the prefix length, so bisection finds it)."""
    if tokens.estimate(text) <= max_tokens:
        return text
    low, high = 0, len(text)  # estimate(text[:low]) fits, estimate(text[:high]) does not
    while high - low > 1:
        middle = (low + high) // 2
        if tokens.estimate(text[:middle]) <= max_tokens:
            low = middle
        else:
            high = middle
    return text[:low]


def split_into_chunks(text: str) -> list[str]:
    """A few words per chunk, whitespace kept, so the chunks join back to `text` exactly."""
    pieces = re.findall(r"\s+|\S+\s*", text)
    return ["".join(pieces[i : i + WORDS_PER_CHUNK]) for i in range(0, len(pieces), WORDS_PER_CHUNK)]
