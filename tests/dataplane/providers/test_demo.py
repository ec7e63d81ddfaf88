"""The offline demo model: labelled, deterministic, honest about tokens, within max_tokens."""
from __future__ import annotations

import pytest

from dataplane import tokens
from dataplane.providers.base import ModelCall, StreamEnd, TextDelta
from dataplane.providers.demo import DEMO_MODEL_ID, DemoProvider


def _call(text: str = "How do token quotas work?", **kwargs) -> ModelCall:
    messages = [
        {"role": "user", "content": [{"text": "earlier question"}]},
        {"role": "assistant", "content": [{"text": "earlier answer"}]},
        {"role": "user", "content": [{"text": text}]},
    ]
    return ModelCall(model_id=DEMO_MODEL_ID, messages=messages, **kwargs)


def _run(call: ModelCall, provider: DemoProvider | None = None) -> tuple[str, list[TextDelta], StreamEnd]:
    events = list((provider or DemoProvider(chunk_delay=0)).stream(call))
    deltas, end = [d for d in events[:-1] if isinstance(d, TextDelta)], events[-1]
    assert len(deltas) == len(events) - 1
    assert isinstance(end, StreamEnd)
    return "".join(d.text for d in deltas), deltas, end


def test_answer_is_labelled_offline_and_echoes_the_question():
    text, deltas, end = _run(_call("How do token quotas work?"))

    assert "offline demo model" in text
    assert "How do token quotas work?" in text
    assert "- **streaming**" in text
    assert "```text" in text
    assert len(deltas) > 5
    assert end.stop_reason == "end_turn"


def test_counts_are_honest():
    call = _call("Summarise our leave policy, please.", system="You are helpful.")

    text, _, end = _run(call)

    assert end.output_tokens == tokens.estimate(text)
    assert end.input_tokens == tokens.estimate_messages(call.messages, call.system)


def test_answer_is_deterministic():
    first, _, _ = _run(_call(), DemoProvider(chunk_delay=0))
    again, _, _ = _run(_call(), DemoProvider(chunk_delay=0))  # a fresh instance: no state carried over
    other, _, _ = _run(_call("What is a context window?"))
    assert first == again
    assert other != first


def test_long_questions_are_summarised():
    text, _, _ = _run(_call("word " * 500))

    assert "\u2026" in text
    assert len(text) < 1200


@pytest.mark.parametrize("max_tokens", [0, 1, 7, 30])
def test_max_tokens_is_respected(max_tokens):
    full, _, _ = _run(_call())
    text, _, end = _run(_call(max_tokens=max_tokens))

    assert end.stop_reason == "max_tokens"
    assert end.output_tokens == tokens.estimate(text) <= max_tokens
    assert full.startswith(text)
    assert tokens.estimate(full[: len(text) + 1]) > max_tokens  # cut at the budget, not before


def test_chunks_are_paced_by_the_delay():
    pauses: list[float] = []
    provider = DemoProvider(chunk_delay=0.02, sleep=pauses.append)

    _, deltas, _ = _run(_call(), provider)

    assert pauses == [0.02] * (len(deltas) - 1)
