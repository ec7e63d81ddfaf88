"""Deployment settings, read once from CDK context (`cdk.json` or `cdk deploy -c key=value`).

Every knob a deployer may turn lives here with its default, so the constructs receive plain
typed values and never read context themselves. Values passed with `-c` arrive as strings,
hence the small parsers.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
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

DEFAULT_DJANGO_URL = "http://localhost:8000"
# Where allauth's amazon_cognito provider receives the authorization code, under Django's URL.
CALLBACK_PATH = "/accounts/amazon-cognito/login/callback/"
# WAF's allowed evaluation windows of a rate-based rule (seconds) and its smallest limit.
WAF_RATE_WINDOWS = (60, 120, 300, 600)
WAF_MIN_RATE_LIMIT = 10


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
    # Requests one IP may make to the Events API per window before WAF blocks it (SigV4-signed
    # publishes of the chat handler are not counted; see waf.py).
    waf_rate_limit: int = 2000
    waf_rate_window_seconds: int = 300

    @classmethod
    def from_context(cls, node: Node) -> GatewayConfig:
        def get(key: str, default: Any = None) -> Any:
            value = node.try_get_context(PREFIX + key)
            return default if value in (None, "") else value

        django_url = _as_django_url(str(get("djangoUrl", DEFAULT_DJANGO_URL)))
        return cls(
            stack_name=str(get("stackName", "AIGatewayDataPlane")),
            retain_data=_as_bool(get("retainData", True)),
            month_timezone=_as_time_zone(str(get("monthTimezone", "UTC"))),
            cognito_domain_prefix=get("cognitoDomainPrefix"),
            callback_urls=_as_list(get("callbackUrls", (django_url + CALLBACK_PATH,))),
            logout_urls=_as_list(get("logoutUrls", (django_url + "/",))),
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
            waf_rate_limit=_as_rate_limit(get("wafRateLimit", 2000)),
            waf_rate_window_seconds=_as_rate_window(get("wafRateWindowSeconds", 300)),
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


def _as_django_url(url: str) -> str:
    """Django's public URL, from which the Cognito client's callback and sign-out URLs follow."""
    parsed = urlsplit(url.strip())
    # Cognito accepts plain http only for localhost.
    local = parsed.hostname in ("localhost", "127.0.0.1")
    if (parsed.scheme != "https" and not (parsed.scheme == "http" and local)) or not parsed.hostname:
        raise ConfigError(
            f"{PREFIX}djangoUrl must be Django's https:// address (http only for localhost), got {url!r}"
        )
    if parsed.path.strip("/") or parsed.query or parsed.fragment:
        raise ConfigError(f"{PREFIX}djangoUrl is a scheme and host only, like https://gateway.example.com, got {url!r}")
    return f"{parsed.scheme}://{parsed.netloc}"


def _as_rate_limit(value: Any) -> int:
    try:
        limit = int(value)
    except (TypeError, ValueError):
        limit = 0
    if limit < WAF_MIN_RATE_LIMIT:
        raise ConfigError(
            f"{PREFIX}wafRateLimit must be a whole number of at least {WAF_MIN_RATE_LIMIT}, got {value!r}"
        )
    return limit


def _as_rate_window(value: Any) -> int:
    try:
        window = int(value)
    except (TypeError, ValueError):
        window = 0
    if window not in WAF_RATE_WINDOWS:
        allowed = ", ".join(str(w) for w in WAF_RATE_WINDOWS)
        raise ConfigError(f"{PREFIX}wafRateWindowSeconds must be one of {allowed}, got {value!r}")
    return window


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def _as_list(value: Any) -> tuple[str, ...]:
    """A list from cdk.json, or from `-c key=a,b` / `-c 'key=["a","b"]'` on the command line."""
    if isinstance(value, str):
        text = value.strip()
        value = json.loads(text) if text.startswith("[") else [part.strip() for part in text.split(",") if part.strip()]
    return tuple(str(item) for item in value)


def _as_optional_int(value: Any) -> int | None:
    return None if value is None else int(value)
