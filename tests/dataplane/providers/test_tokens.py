"""The token estimate: cheap, deterministic, roughly right across scripts, monotonic."""
from __future__ import annotations

from dataplane.tokens import MESSAGE_OVERHEAD_TOKENS, content_text, estimate, estimate_messages

ENGLISH = "The quick brown fox jumps over the lazy dog while the gateway meters every token it sees."
KOREAN = "안녕하세요. 오늘 회의 일정을 알려 주세요."
CODE = 'def add(a: int, b: int) -> int:\n    return {"sum": a + b}["sum"]\n'


def test_empty_text_costs_nothing():
    assert estimate("") == 0


def test_english_is_about_four_characters_per_token():
    assert estimate(ENGLISH) == 23  # 88 letters/spaces at 1/4 + one period at 1/2 = 22.5
    assert len(ENGLISH) / 5 <= estimate(ENGLISH) <= len(ENGLISH) / 3


def test_korean_is_about_one_token_per_syllable():
    hangul = sum(1 for ch in KOREAN if "\uac00" <= ch <= "\ud7a3")
    assert hangul == 17
    assert estimate(KOREAN) == 20  # 17 syllables + 5 spaces at 1/4 + 2 periods at 1/2 = 19.25


def test_code_costs_more_per_character_than_prose():
    assert estimate(CODE) / len(CODE) > estimate(ENGLISH) / len(ENGLISH)
    assert estimate(CODE) == 21  # 47 letters/spaces at 1/4 + 18 symbols at 1/2 = 20.75


def test_estimate_is_deterministic_and_monotonic():
    text = ENGLISH + KOREAN + CODE + "😀 Ωμέγα"
    costs = [estimate(text[:n]) for n in range(len(text) + 1)]
    assert costs == sorted(costs)
    assert estimate(text) == estimate(text)


def test_messages_count_text_blocks_system_and_framing():
    messages = [
        {"role": "user", "content": [{"text": "abcd"}, {"image": {"format": "png"}}, {"text": "efgh"}]},
        {"role": "assistant", "content": "ijkl"},
    ]
    assert content_text(messages[0]["content"]) == "abcdefgh"
    expected = (2 + MESSAGE_OVERHEAD_TOKENS) + (1 + MESSAGE_OVERHEAD_TOKENS) + (1 + MESSAGE_OVERHEAD_TOKENS)
    assert estimate_messages(messages, system="mnop") == expected
    assert estimate_messages([]) == 0
