"""Deployment settings, read once from CDK context (`cdk.json` or `cdk deploy -c key=value`).

Every knob a deployer may turn lives here with its default, so the constructs receive plain
typed values and never read context themselves. Values passed with `-c` arrive as strings,
hence the small parsers.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from constructs import Node

PREFIX = "gateway:"

# The public Powertools layer, published per region; AWS keeps an SSM public parameter per
# released version. Pinned to the version in requirements-dev.txt so the Lambda runs the same
# Powertools the tests ran.
POWERTOOLS_VERSION = "3.37.0"
POWERTOOLS_LAYER_PARAMETER = (
    f"/aws/service/powertools/python/arm64/python3.12/{POWERTOOLS_VERSION}"
)

DEFAULT_CALLBACK_URLS = ("http://localhost:8000/accounts/amazon-cognito/login/callback/",)
DEFAULT_LOGOUT_URLS = ("http://localhost:8000/",)


@dataclass(frozen=True)
class GatewayConfig:
    stack_name: str
    # True: tables and buckets survive `cdk destroy` and DynamoDB deletion protection is on.
    retain_data: bool
    month_timezone: str
    cognito_domain_prefix: str | None
    callback_urls: tuple[str, ...]
    logout_urls: tuple[str, ...]
    powertools_layer_arn: str | None
    # Regions a cross-region inference profile (`us.`, `eu.`, `apac.`) may route to, besides
    # the stack's own; ("*",) means any region. `global.` profiles need their own switch.
    bedrock_inference_regions: tuple[str, ...]
    bedrock_global_inference: bool
    control_plane_principal_arn: str | None
    athena_bytes_scanned_cutoff: int
    refusal_burst_threshold: int
    alarm_email: str | None
    # Caps concurrent chat turns (and so Bedrock calls and spend); None: the account's pool.
    chat_reserved_concurrency: int | None

    @classmethod
    def from_context(cls, node: Node) -> "GatewayConfig":
        def get(key: str, default: Any = None) -> Any:
            value = node.try_get_context(PREFIX + key)
            return default if value in (None, "") else value

        return cls(
            stack_name=str(get("stackName", "AIGatewayDataPlane")),
            retain_data=_as_bool(get("retainData", True)),
            month_timezone=_as_time_zone(str(get("monthTimezone", "UTC"))),
            cognito_domain_prefix=get("cognitoDomainPrefix"),
            callback_urls=_as_list(get("callbackUrls", DEFAULT_CALLBACK_URLS)),
            logout_urls=_as_list(get("logoutUrls", DEFAULT_LOGOUT_URLS)),
            powertools_layer_arn=get("powertoolsLayerArn"),
            bedrock_inference_regions=_as_list(
                get("bedrockInferenceRegions", get("bedrockExtraRegions", ("*",)))
            ),
            bedrock_global_inference=_as_bool(get("bedrockGlobalInference", True)),
            control_plane_principal_arn=get("controlPlanePrincipalArn"),
            athena_bytes_scanned_cutoff=int(get("athenaBytesScannedCutoff", 10 * 1024**3)),
            refusal_burst_threshold=int(get("refusalBurstThreshold", 50)),
            alarm_email=get("alarmEmail"),
            chat_reserved_concurrency=_as_optional_int(get("chatReservedConcurrency")),
        )


class ConfigError(ValueError):
    """A context value is unusable; the message names the key (synth stops on it)."""


def _as_time_zone(name: str) -> str:
    # The data plane refuses an unknown zone at cold start (dataplane.config); failing here
    # instead stops the deploy, not every chat turn after it.
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{PREFIX}monthTimezone must be an IANA time zone such as 'UTC' or "
            f"'Europe/Berlin', got {name!r}"
        ) from None
    return name


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def _as_list(value: Any) -> tuple[str, ...]:
    """A list from cdk.json, or from `-c key=a,b` / `-c 'key=["a","b"]'` on the command line."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            value = json.loads(text)
        else:
            value = [part.strip() for part in text.split(",") if part.strip()]
    return tuple(str(item) for item in value)


def _as_optional_int(value: Any) -> int | None:
    return None if value is None else int(value)
