"""What `seed_demo` puts in an empty installation: a catalogue, a default policy, a demo group,
prepared answers and the periodic drain. Creating only what is missing keeps admins' edits."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

DEMO_MODEL: dict[str, Any] = {
    "provider": "demo",
    "model_id": "demo.echo-v1",
    "display_name": "Demo model (offline)",
    "available_to_all": True,
    "default_max_tokens": 512,
    "price_in_per_1k": Decimal("0"),
    "price_out_per_1k": Decimal("0"),
}

# On-demand prices in us-east-1 (USD per 1,000 tokens), as published by AWS.
BEDROCK_MODELS = [
    ("us.anthropic.claude-sonnet-4-20250514-v1:0", "Claude Sonnet 4", 2048, "0.003", "0.015"),
    ("us.anthropic.claude-3-5-haiku-20241022-v1:0", "Claude 3.5 Haiku", 2048, "0.0008", "0.004"),
    ("us.amazon.nova-pro-v1:0", "Amazon Nova Pro", 2048, "0.0008", "0.0032"),
    ("us.amazon.nova-lite-v1:0", "Amazon Nova Lite", 2048, "0.00006", "0.00024"),
    ("us.meta.llama3-1-70b-instruct-v1:0", "Llama 3.1 70B Instruct", 2048, "0.00072", "0.00072"),
]

DEFAULT_POLICY = {
    "name": "Standard",
    "description": "Everyone without a group policy or an override.",
    "ten_minute_total": 20_000,
    "monthly_total": 1_000_000,
    "max_tokens_cap": 4096,
}

DEMO_GROUP = "Demo users"

PREPARED_ANSWERS = [
    (
        "What is the AI gateway?",
        "The AI gateway sits between you and the language models your organisation allows. It checks "
        "which models you may use, keeps your token usage within your 10-minute and monthly quotas, "
        "answers repeated questions from its cache, and logs every request for cost and usage reports.",
    ),
    (
        "How many tokens can I use?",
        "Your limits depend on your policy. The usage bars next to the chat show your current "
        "10-minute window and this month, with the time each one resets.",
    ),
]
