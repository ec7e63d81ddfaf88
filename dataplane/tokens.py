"""A cheap, deterministic estimate of how many tokens a text costs.

Used to reserve quota before a model is called, and as the bill when a model sends no usage
(the demo provider, OpenAI-compatible servers that ignore `include_usage`). It is not a
tokenizer: it errs slightly high so that a reservation rarely falls short of the true bill.

Weights, in quarter tokens per character:

| characters | weight | why |
| --- | --- | --- |
| ASCII letters, digits, whitespace | 1 (≈ 4 chars/token) | English prose in BPE vocabularies |
| ASCII punctuation and symbols | 2 | code and markup split these into their own tokens |
| other letters (accented Latin, Cyrillic, Greek, Arabic, ...) | 2 | split into byte pairs more often |
| CJK ideographs, Hangul, kana, full-width forms | 4 (1 token) | about one token per character |
| emoji and other symbols outside ASCII | 4 | usually one token or more |

The estimate is monotonic: a longer prefix of a text never costs fewer tokens, which lets the
demo provider cut an answer at a token budget by bisection.
"""
from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from dataplane.tools import block_text, tool_config_text

# Per-message framing (role marker, separators) that chat templates add around each turn.
MESSAGE_OVERHEAD_TOKENS = 3

_QUARTERS_PER_TOKEN = 4

_WIDE_RANGES: tuple[tuple[int, int], ...] = (
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x2E80, 0x2FDF),  # CJK radicals
    (0x3000, 0x303F),  # CJK symbols and punctuation
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3130, 0x318F),  # Hangul compatibility Jamo
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xA960, 0xA97F),  # Hangul Jamo extended A
    (0xAC00, 0xD7AF),  # Hangul syllables
    (0xD7B0, 0xD7FF),  # Hangul Jamo extended B
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF00, 0xFFEF),  # half-width and full-width forms
    (0x20000, 0x3FFFF),  # CJK extensions B and later
)


def _is_wide(code_point: int) -> bool:
    return any(low <= code_point <= high for low, high in _WIDE_RANGES)


def _quarters(char: str) -> int:
    code_point = ord(char)
    if char.isascii():
        return 1 if (char.isalnum() or char.isspace()) else 2
    if _is_wide(code_point):
        return 4
    category = unicodedata.category(char)
    if category.startswith(("L", "M", "N")):
        return 2
    if category.startswith("Z"):
        return 1
    return 4  # emoji, dingbats, other symbols


def estimate(text: str) -> int:
    """Estimated tokens of `text`; 0 for the empty string."""
    quarters = sum(_quarters(char) for char in text)
    return -(-quarters // _QUARTERS_PER_TOKEN)


class OutputBudget:
    """The answer's reserved maximum, spent as text streams in.

    A model that ignores `maxTokens` would otherwise stream on and be billed past what was
    reserved; the pipeline lets through only the text that fits and then stops the stream.
    The estimate errs high, so the budget allows it `SLACK` over the maximum: a model that
    honours `maxTokens` by its own count is never cut short for the estimator's caution (the
    bill is capped at the maximum all the same).
    """

    SLACK = 1.25

    def __init__(self, max_tokens: int) -> None:
        self._room = int(max_tokens * self.SLACK * _QUARTERS_PER_TOKEN)  # quarter tokens, like `estimate`

    @property
    def spent(self) -> bool:
        return self._room <= 0

    def take(self, text: str) -> str:
        """The longest prefix of `text` that still fits (all of it, usually)."""
        for index, char in enumerate(text):
            self._room -= _quarters(char)
            if self._room < 0:
                self._room = 0
                return text[:index]
        return text


def content_text(content: object) -> str:
    """The text of one Converse message's `content` (a string or a list of blocks).

    Only `text` blocks count; images, documents and tool blocks have no text to estimate.
    """
    if isinstance(content, str):
        return content
    if isinstance(content, Iterable) and not isinstance(content, (bytes, dict)):
        return "".join(
            block["text"] for block in content if isinstance(block, dict) and isinstance(block.get("text"), str)
        )
    return ""


def estimate_messages(
    messages: Iterable[dict], system: str | None = None, tool_config: dict | None = None
) -> int:
    """Estimated input tokens of a Converse request: every message's text and tool blocks,
    the system prompt, the tools' definitions, and a small per-message framing overhead."""
    total = estimate(system) + MESSAGE_OVERHEAD_TOKENS if system else 0
    if tool_config:
        total += estimate(tool_config_text(tool_config)) + MESSAGE_OVERHEAD_TOKENS
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            total += estimate(content)
        elif isinstance(content, Iterable) and not isinstance(content, (bytes, dict)):
            total += estimate("".join(block_text(block) for block in content))
        total += MESSAGE_OVERHEAD_TOKENS
    return total
