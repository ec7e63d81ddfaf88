"""Model identifiers the gateway accepts: their common shape and each provider's rules.

`MODEL_ID_PATTERN` is what any model id looks like (the chat request and the report filters
check it: printable, no spaces or quotes, at most `MODEL_ID_MAX_CHARS`, which is what the
catalogue stores); `model_id_problem` adds the provider's rules for the admin's catalogue,
with messages an admin can act on.

Bedrock ids come in three shapes: foundation model ids (`anthropic.claude-3-5-haiku-20241022-v1:0`),
cross-region inference profiles (the same with a geography prefix, `us.amazon.nova-pro-v1:0`) and
ARNs of private or provisioned resources. The provider segment is not checked against a list:
Bedrock adds model providers often, and a stale list would refuse real models.
"""
from __future__ import annotations

import re
from collections.abc import Callable

from dataplane.providers.demo import DEMO_MODEL_ID

# Geography prefixes of Bedrock's system-defined cross-region inference profiles.
INFERENCE_PROFILE_PREFIXES: tuple[str, ...] = ("us", "eu", "apac", "global", "us-gov", "jp", "au", "ca")

MODEL_ID_MAX_CHARS = 255
# Bedrock model ids, inference-profile ids and ARNs, demo and OpenAI-style names.
MODEL_ID_PATTERN = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{{0,{MODEL_ID_MAX_CHARS - 1}}}$")
MODEL_ID_CHARACTERS = "letters, digits and . _ : / @ + -"

_NAME = r"[a-z0-9][a-z0-9-]*(?::[a-z0-9]+){0,2}"
_FOUNDATION = re.compile(rf"^(?P<vendor>[a-z0-9][a-z0-9-]*)\.{_NAME}$")
_PROFILE = re.compile(rf"^(?P<geo>[a-z-]+)\.(?P<vendor>[a-z0-9][a-z0-9-]*)\.{_NAME}$")
ARN_RESOURCE_TYPES: tuple[str, ...] = (
    "imported-model",
    "custom-model",
    "provisioned-model",
    "inference-profile",
    "application-inference-profile",
)
_ARN = re.compile(
    r"^arn:aws(?:-[a-z]+)*:bedrock:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d):(?P<account>\d{12}):"
    r"(?P<type>[a-z-]+)/(?P<resource>[A-Za-z0-9][A-Za-z0-9._:/-]*)$"
)
_DEMO = re.compile(r"^demo\.[a-z0-9][a-z0-9._-]*$")


def model_id_problem(*, provider: str, model_id: str) -> str | None:
    """Why `model_id` is not a valid id for `provider`, or None when it is."""
    if not model_id:
        return "Enter a model id."
    if len(model_id) > MODEL_ID_MAX_CHARS:
        return f"A model id has at most {MODEL_ID_MAX_CHARS} characters."
    if model_id != model_id.strip():
        return "The model id must not start or end with spaces."
    rule = _PROVIDER_RULES.get(provider)
    return rule(model_id) if rule else f"Unknown provider “{provider}”."


def _demo_problem(model_id: str) -> str | None:
    if _DEMO.match(model_id):
        return None
    return f"Demo model ids start with “demo.”, e.g. “{DEMO_MODEL_ID}”."


def _openai_problem(model_id: str) -> str | None:
    if MODEL_ID_PATTERN.match(model_id):
        return None
    return (
        f"Use {MODEL_ID_CHARACTERS} only (at most {MODEL_ID_MAX_CHARS} characters), "
        "e.g. “gpt-4o-mini” or “meta-llama/Llama-3.1-8B-Instruct”."
    )


def _arn_problem(model_id: str) -> str | None:
    match = _ARN.match(model_id)
    if not match:
        return (
            "Not a Bedrock ARN. Expected arn:aws:bedrock:<region>:<12-digit account>:<type>/<id>, "
            "e.g. arn:aws:bedrock:us-east-1:123456789012:imported-model/abc123."
        )
    if match["type"] not in ARN_RESOURCE_TYPES:
        return f"Bedrock ARNs must name one of: {', '.join(ARN_RESOURCE_TYPES)} (got “{match['type']}”)."
    return None


def _bedrock_problem(model_id: str) -> str | None:
    if model_id.startswith("arn:"):
        return _arn_problem(model_id)
    if _FOUNDATION.match(model_id):
        return None
    profile = _PROFILE.match(model_id)
    if profile and profile["geo"] in INFERENCE_PROFILE_PREFIXES:
        return None
    if profile:
        return (
            f"Unknown inference-profile prefix “{profile['geo']}.”; "
            f"expected one of {', '.join(p + '.' for p in INFERENCE_PROFILE_PREFIXES)}"
        )
    return (
        "Not a Bedrock model id. Use a foundation model id (anthropic.claude-3-5-haiku-20241022-v1:0), "
        "an inference profile (us.amazon.nova-pro-v1:0) or an ARN."
    )


_PROVIDER_RULES: dict[str, Callable[[str], str | None]] = {
    "demo": _demo_problem,
    "openai": _openai_problem,
    "bedrock": _bedrock_problem,
}
