"""A user's effective policy: what the control plane publishes and the data plane enforces."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class WindowLimits:
    """Token limits of one window kind, and its cost budget in micro-USD. `None` means "no
    cap" for that counter."""

    total: int | None = None
    input: int | None = None
    output: int | None = None
    cost: int | None = None

    @classmethod
    def from_document(cls, doc: dict[str, Any] | None) -> WindowLimits:
        doc = doc or {}
        return cls(
            total=_opt_int(doc.get("total")),
            input=_opt_int(doc.get("input")),
            output=_opt_int(doc.get("output")),
            cost=_opt_int(doc.get("cost")),
        )


# A pooled budget's counters live in the usage store under this owner, beside the users' own.
POOL_OWNER_PREFIX = "group#"


def pool_owner(group_id: int | str) -> str:
    """The owner key of a group's pooled counters (`group#<id>`): the id, not the name, so a
    renamed group keeps its month's spending."""
    return f"{POOL_OWNER_PREFIX}{group_id}"


def is_pool_owner(owner: str) -> bool:
    """True for the owner key of a pooled budget's counters, False for a user's sub."""
    return owner.startswith(POOL_OWNER_PREFIX)


@dataclass(frozen=True)
class PooledBudget:
    """A group's monthly budget shared by all its members, in micro-USD: every turn of a member
    is charged to it as well as to the member's own windows."""

    key: str  # the owner of its counters, `pool_owner(group id)`
    name: str  # the group's name, for the refusal
    cost: int

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> PooledBudget:
        return cls(key=str(doc["key"]), name=str(doc.get("name") or doc["key"]), cost=int(doc["cost"]))


@dataclass(frozen=True)
class AllowedModel:
    model_id: str
    display_name: str
    provider: str  # "bedrock" | "openai" | "demo"
    default_max_tokens: int = 1024
    price_in_per_1k: float = 0.0
    price_out_per_1k: float = 0.0
    endpoint: str = ""  # base URL for OpenAI-compatible providers

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> AllowedModel:
        return cls(
            model_id=str(doc["model_id"]),
            display_name=str(doc.get("display_name") or doc["model_id"]),
            provider=str(doc.get("provider", "bedrock")),
            default_max_tokens=int(doc.get("default_max_tokens", 1024)),
            price_in_per_1k=float(doc.get("price_in_per_1k", 0) or 0),
            price_out_per_1k=float(doc.get("price_out_per_1k", 0) or 0),
            endpoint=str(doc.get("endpoint", "") or ""),
        )


CACHE_SCOPES = ("per_user", "shared")
# An answer cached for one user is replayed only to that user unless a policy says otherwise:
# a shared cache replays one user's answer to anyone who asks the same question.
DEFAULT_CACHE_SCOPE = "per_user"
GUARDRAIL_STREAM_MODES = ("sync", "async")


@dataclass(frozen=True)
class GuardrailChoice:
    """Which Bedrock guardrail a policy applies: the stack's default, or a named one.

    `identifier`/`version` are empty for the stack's default (the data plane reads it from
    GATEWAY_GUARDRAIL_ID/GATEWAY_GUARDRAIL_VERSION). `stream_mode` is Bedrock's
    streamProcessingMode: "sync" checks each chunk before it is sent (safer, slower first
    token); "async" streams at once and checks in the background.
    """

    use_default: bool = True
    identifier: str = ""
    version: str = ""
    stream_mode: str = "sync"

    @classmethod
    def from_document(cls, doc: dict[str, Any] | None) -> GuardrailChoice | None:
        if not doc:
            return None
        # An unknown mode (a newer control plane) falls back to the one that checks before sending.
        mode = doc.get("stream_mode")
        stream_mode = mode if isinstance(mode, str) and mode in GUARDRAIL_STREAM_MODES else "sync"
        return cls(
            use_default=bool(doc.get("use_default", True)),
            identifier=str(doc.get("identifier") or ""),
            version=str(doc.get("version") or ""),
            stream_mode=stream_mode,
        )


@dataclass(frozen=True)
class EffectivePolicy:
    """Everything the data plane needs to decide on one user's request.

    `version` grows monotonically; a store never replaces a policy by an older version.
    """

    sub: str
    version: int
    models: tuple[AllowedModel, ...] = ()
    ten_minute: WindowLimits = field(default_factory=WindowLimits)
    monthly: WindowLimits = field(default_factory=WindowLimits)
    max_tokens_cap: int | None = None  # upper bound on a request's maxTokens
    never_cache: bool = False
    log_prompts: bool = False  # prompt previews in logs, redacted and truncated
    policy_name: str = ""
    cache_scope: str = DEFAULT_CACHE_SCOPE  # "per_user" | "shared"
    guardrail: GuardrailChoice | None = None  # None: no guardrail
    pools: tuple[PooledBudget, ...] = ()  # the pooled budgets of the user's groups

    def allowed_model(self, model_id: str) -> AllowedModel | None:
        for model in self.models:
            if model.model_id == model_id:
                return model
        return None

    def to_document(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["models"] = [asdict(m) for m in self.models]
        doc["pools"] = [asdict(pool) for pool in self.pools]
        if not self.pools:
            del doc["pools"]  # a document without pools reads as it did before they existed
        return doc

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> EffectivePolicy:
        return cls(
            sub=str(doc["sub"]),
            version=int(doc["version"]),
            models=tuple(AllowedModel.from_document(m) for m in doc.get("models", [])),
            ten_minute=WindowLimits.from_document(doc.get("ten_minute")),
            monthly=WindowLimits.from_document(doc.get("monthly")),
            max_tokens_cap=_opt_int(doc.get("max_tokens_cap")),
            never_cache=bool(doc.get("never_cache", False)),
            log_prompts=bool(doc.get("log_prompts", False)),
            policy_name=str(doc.get("policy_name", "")),
            cache_scope=_cache_scope(doc.get("cache_scope")),
            guardrail=GuardrailChoice.from_document(doc.get("guardrail")),
            pools=tuple(PooledBudget.from_document(pool) for pool in doc.get("pools") or ()),
        )


def _cache_scope(value: Any) -> str:
    # An unknown or missing scope (an older control plane) falls back to the safe one.
    return value if value in CACHE_SCOPES else DEFAULT_CACHE_SCOPE


def _opt_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    return int(value)
