"""Keys for the answer cache and for prepared responses.

The cache key covers the *whole* request that shapes an answer: model id, system prompt, every
message (not only the last one) and the inference parameters. Two conversations that differ
only in an earlier message must never share an answer.
"""
from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from typing import Any

_SPACES = re.compile(r"\s+")
_TRAILING_PUNCTUATION = re.compile(r"[\s?!.。？！…]+$")


def canonical_request_key(
    *,
    model_id: str,
    system: str | None,
    messages: list[dict[str, Any]],
    inference: dict[str, Any],
    owner: str | None = None,
) -> str:
    """`owner` is the user's sub for a per-user cache, None for the shared one: a per-user
    answer can only ever be replayed to the user who asked."""
    canonical = json.dumps(
        {
            "modelId": model_id,
            "system": system or "",
            "messages": messages,
            "inferenceConfig": inference,
            **({"owner": owner} if owner is not None else {}),
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def normalise_question(question: str) -> str:
    text = unicodedata.normalize("NFKC", question).lower()
    text = _SPACES.sub(" ", text).strip()
    return _TRAILING_PUNCTUATION.sub("", text)


def prepared_question_key(question: str) -> str:
    """Prepared answers match the question up to case, spacing and trailing punctuation."""
    return hashlib.sha256(normalise_question(question).encode("utf-8")).hexdigest()
