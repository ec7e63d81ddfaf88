"""The one table of the gateway's settings: name, type, default and help for each.

Everything else is derived from it: the data plane's `GatewayConfig` (the Lambda reads
`os.environ`, Django passes its settings), Django's settings (`gateway_project/settings/table.py`
adds the control plane's rows), `.env.example` (`python -m gateway_project.settings.env_example`)
and the environment the CDK stack gives the chat Lambda (`stack`). No Django here: the
Lambda imports this module.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from dataplane.telemetry.emf import METRICS_NAMESPACE, SERVICE_NAME

Kind = Literal["str", "int", "float", "bool", "list"]

# `Setting.stack` for a value the stack takes from one of its constructs (a table's name, an
# endpoint), not a literal.
WIRED = "<wired by the stack>"


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names it."""


@dataclass(frozen=True)
class Setting:
    name: str
    kind: Kind
    default: Any
    help: str
    section: str
    # What the CDK stack sets for the chat Lambda: None = nothing (the default above applies
    # there too), WIRED = a construct's value, anything else = that literal.
    stack: str | None = None
    # Modes (`local`, `test`, `production`) whose default differs from `default`; a mode in
    # `required_in` has none: start-up stops naming the variable.
    mode_defaults: Mapping[str, Any] = field(default_factory=dict)
    required_in: tuple[str, ...] = ()
    # Django derives the default from this other setting (the help says how); `.env.example`
    # leaves such a value empty.
    depends_on: str = ""
    # False for what only the Lambda reads (Powertools); such rows stay out of `.env.example`.
    django: bool = True


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _parse_bool(setting: Setting, raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text not in _TRUE | _FALSE:
        raise ConfigError(f"{setting.name} must be true or false, got {raw!r}")
    return text in _TRUE


def parse(setting: Setting, raw: object) -> Any:
    """`raw` (a string from the environment, or an already typed value) as `setting.kind`."""
    if setting.kind == "str":
        return str(raw)
    if setting.kind == "bool":
        return _parse_bool(setting, raw)
    if setting.kind == "list":
        items = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
        return [str(item).strip() for item in items if str(item).strip()]
    number = int if setting.kind == "int" else float
    try:
        parsed = number(raw)  # type: ignore[arg-type,call-overload]  # raw is checked by the except
    except (TypeError, ValueError):
        raise ConfigError(f"{setting.name} must be a number, got {raw!r}") from None
    if parsed < 0:
        raise ConfigError(f"{setting.name} must not be negative, got {raw!r}")
    return parsed


def is_unset(raw: object) -> bool:
    """Unset and empty are the same: `NAME=` in a `.env` keeps the default."""
    return raw is None or raw == ""


def value_of(setting: Setting, values: Mapping[str, object], *, mode: str = "") -> Any:
    """The setting's value from `values` (an environment), else its default for `mode`."""
    raw = values.get(setting.name)
    if not is_unset(raw):
        return parse(setting, raw)
    if mode in setting.required_in:
        raise ConfigError(f"Set the {setting.name} environment variable")
    return setting.mode_defaults.get(mode, setting.default)


_DATA_PLANE = "the data plane (Django's in-process chat and the chat Lambda)"

DATA_PLANE_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "GATEWAY_STORE", "str", "sqlite",
        "Store for policies, usage windows and the answer cache: sqlite (embedded default) or dynamodb. "
        "Django defaults to dynamodb when GATEWAY_CHAT_TRANSPORT=appsync, so its usage bars read what the "
        "Lambda writes.",
        _DATA_PLANE, stack="dynamodb", depends_on="GATEWAY_CHAT_TRANSPORT",
    ),
    Setting("GATEWAY_SQLITE_PATH", "str", "var/dataplane.sqlite3",
            "The SQLite store's file (relative paths are under the project folder).", _DATA_PLANE),
    Setting("GATEWAY_POLICIES_TABLE", "str", "gateway-policies", "DynamoDB table names (the CDK outputs).",
            _DATA_PLANE, stack=WIRED),
    Setting("GATEWAY_USAGE_TABLE", "str", "gateway-usage", "", _DATA_PLANE, stack=WIRED),
    Setting("GATEWAY_CACHE_TABLE", "str", "gateway-cache", "", _DATA_PLANE, stack=WIRED),
    Setting("GATEWAY_DYNAMODB_ENDPOINT_URL", "str", "",
            "Only for a local DynamoDB-compatible server; empty = AWS.", _DATA_PLANE),
    Setting("AWS_REGION", "str", "us-east-1",
            "AWS region of the tables, Bedrock and Firehose (Lambda sets it itself).", _DATA_PLANE),
    Setting("GATEWAY_MONTH_TIMEZONE", "str", "UTC",
            "Calendar months of the monthly quota are counted in this time zone (the stack's monthTimezone).",
            _DATA_PLANE, stack=WIRED),
    Setting("GATEWAY_CACHE_TTL_SECONDS", "int", 24 * 3600, "How long a cached answer is served.", _DATA_PLANE),
    Setting("GATEWAY_POLICY_CACHE_SECONDS", "float", 5.0,
            "How long a process keeps a user's policy in memory before re-reading it "
            "(admin changes reach the data plane within this time).",
            _DATA_PLANE),
    Setting(
        "GATEWAY_TELEMETRY_SINK", "list", ["lake"],
        "Where request records go (comma list): stdout (JSON lines and CloudWatch EMF metrics), "
        "lake (Parquet files laid out like the S3 lake, dt=<UTC day>; the local reports read them), firehose, none.",
        _DATA_PLANE, stack="stdout,firehose",
    ),
    Setting("GATEWAY_LAKE_DIR", "str", "var/lake", "The local lake (the lake sink and the DuckDB reports).",
            _DATA_PLANE),
    Setting("GATEWAY_FIREHOSE_STREAM", "str", "", "The Firehose delivery stream of the firehose sink.",
            _DATA_PLANE, stack=WIRED),
    Setting("GATEWAY_METRICS_NAMESPACE", "str", METRICS_NAMESPACE,
            "CloudWatch namespace of the gateway's metrics (the stack's dashboard and alarms read it).",
            _DATA_PLANE, stack=METRICS_NAMESPACE),
    Setting("GATEWAY_BEDROCK_ENDPOINT_URL", "str", "",
            "Bedrock runtime endpoint override (tests and VPC endpoints); empty = AWS default.", _DATA_PLANE),
    Setting("GATEWAY_BEDROCK_CONNECT_TIMEOUT", "float", 5.0, "Bedrock client connect timeout (s).", _DATA_PLANE),
    Setting("GATEWAY_BEDROCK_READ_TIMEOUT", "float", 60.0,
            "Bedrock client read timeout (s): the longest pause between two chunks of an answer.", _DATA_PLANE),
    Setting("GATEWAY_BEDROCK_MAX_ATTEMPTS", "int", 3, "Bedrock calls in all, the first included.", _DATA_PLANE),
    Setting("GATEWAY_DEMO_CHUNK_DELAY", "float", 0.02,
            "Seconds between the offline demo model's chunks (so streaming is visible).", _DATA_PLANE),
    Setting(
        "GATEWAY_EVENTS_HTTP_ENDPOINT", "str", "",
        "AppSync Events HTTP endpoint (https://<id>.appsync-api.<region>.amazonaws.com/event): the Lambda "
        "streams answers back through it; the appsync chat transport names it too.",
        _DATA_PLANE, stack=WIRED,
    ),
    Setting("GATEWAY_GUARDRAIL_ID", "str", "",
            "The stack's default Bedrock guardrail (CDK outputs); empty: policies that choose it get none.",
            _DATA_PLANE, stack=WIRED),
    Setting("GATEWAY_GUARDRAIL_VERSION", "str", "", "", _DATA_PLANE, stack=WIRED),
    Setting("OPENAI_API_KEY", "str", "",
            "API key for OpenAI-compatible self-hosted models (dataplane/providers/openai_compatible.py).",
            _DATA_PLANE),
    Setting("POWERTOOLS_SERVICE_NAME", "str", f"{SERVICE_NAME}-chat", "Powertools' service name.",
            _DATA_PLANE, stack=WIRED, django=False),
    Setting("POWERTOOLS_METRICS_NAMESPACE", "str", METRICS_NAMESPACE, "Powertools' metrics namespace.",
            _DATA_PLANE, stack=METRICS_NAMESPACE, django=False),
)

DATA_PLANE_BY_NAME: dict[str, Setting] = {setting.name: setting for setting in DATA_PLANE_SETTINGS}


def default_of(name: str) -> Any:
    """The table's default of a data-plane setting (for the dataclass fields of `GatewayConfig`)."""
    value = DATA_PLANE_BY_NAME[name].default
    return tuple(value) if isinstance(value, list) else value


def stack_environment(wired: Mapping[str, str]) -> dict[str, str]:
    """The chat Lambda's environment: every row with a `stack` value, `wired` supplying the
    construct-made ones. A wired name missing from `wired`, or one the table does not list,
    stops the synth."""
    expected = {s.name for s in DATA_PLANE_SETTINGS if s.stack == WIRED}
    if set(wired) != expected:
        raise ConfigError(
            f"The stack wires {sorted(set(wired) - expected)} that the settings table does not mark as wired, "
            f"and misses {sorted(expected - set(wired))}"
        )
    return {
        s.name: wired[s.name] if s.stack == WIRED else str(s.stack) for s in DATA_PLANE_SETTINGS if s.stack is not None
    }
