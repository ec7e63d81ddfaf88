"""A turn's inference parameters in Converse's shape (`inferenceConfig`): the one builder.

The request's parameters, the answer cache's key and both providers' request bodies all come
from here, so a parameter the gateway accepts can never reach one of them and miss another.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Converse's names, and what an OpenAI-compatible chat completion calls each.
OPENAI_NAMES = {"maxTokens": "max_tokens", "temperature": "temperature", "topP": "top_p", "stopSequences": "stop"}


def inference_config(
    *, max_tokens: int, temperature: float | None, top_p: float | None, stop_sequences: Sequence[str]
) -> dict[str, Any]:
    """Converse's `inferenceConfig`: `maxTokens` always, the others only when given."""
    config: dict[str, Any] = {"maxTokens": max_tokens}
    if temperature is not None:
        config["temperature"] = temperature
    if top_p is not None:
        config["topP"] = top_p
    if stop_sequences:
        config["stopSequences"] = list(stop_sequences)
    return config


def openai_parameters(config: dict[str, Any]) -> dict[str, Any]:
    """The same parameters under an OpenAI-compatible chat completion's names."""
    return {OPENAI_NAMES[name]: value for name, value in config.items()}
