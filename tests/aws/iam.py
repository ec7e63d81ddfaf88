"""IAM policy evaluation with AWS semantics, and the botocore hook that enforces it.

Evaluation (identity-based policies of one principal, no SCPs/boundaries/resource policies,
which the gateway does not use): an explicit Deny wins, else an Allow is needed, else the
request is implicitly denied. Actions match case-insensitively with `*`/`?` wildcards;
resources match ARN segment by segment (a wildcard never spans a `:` between the first six
segments), case-sensitively; `NotAction`/`NotResource` invert the match. Conditions are
evaluated for the operators listed in `_CONDITION_OPERATORS`; any other one raises, so a
policy the twin cannot judge fails loudly instead of passing.
"""
from __future__ import annotations

import fnmatch
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

ALLOWED = "allowed"
EXPLICIT_DENY = "explicit deny"
IMPLICIT_DENY = "implicit deny"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _glob(pattern: str, text: str, *, case_sensitive: bool) -> bool:
    # IAM wildcards are only `*` and `?`; `[` is literal, unlike fnmatch.
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = 0 if case_sensitive else re.IGNORECASE
    return re.fullmatch(regex, text, flags | re.DOTALL) is not None


def action_matches(pattern: str, action: str) -> bool:
    return _glob(pattern, action, case_sensitive=False)


def resource_matches(pattern: str, arn: str) -> bool:
    if pattern == "*":
        return True
    pattern_parts, arn_parts = pattern.split(":", 5), arn.split(":", 5)
    if len(pattern_parts) != 6 or len(arn_parts) != 6:
        return False  # not an ARN pattern of the same shape: IAM matches nothing
    return all(_glob(p, a, case_sensitive=True) for p, a in zip(pattern_parts, arn_parts, strict=True))


def _string_like(values: list[str], actual: str) -> bool:
    return any(fnmatch.fnmatchcase(actual, value) for value in values)


_CONDITION_OPERATORS = {
    "StringEquals": lambda values, actual: actual in values,
    "StringNotEquals": lambda values, actual: actual not in values,
    "StringLike": _string_like,
    "StringNotLike": lambda values, actual: not _string_like(values, actual),
    "ArnEquals": lambda values, actual: actual in values,
    "ArnLike": lambda values, actual: any(resource_matches(v, actual) for v in values),
    "ArnNotLike": lambda values, actual: not any(resource_matches(v, actual) for v in values),
    "Bool": lambda values, actual: actual.lower() in [str(v).lower() for v in values],
}


def _conditions_hold(conditions: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    for operator, keys in conditions.items():
        base, if_exists = (operator[: -len("IfExists")], True) if operator.endswith("IfExists") else (operator, False)
        if base not in _CONDITION_OPERATORS:
            raise NotImplementedError(f"the twin's IAM evaluator does not model condition operator {operator}")
        for key, values in keys.items():
            actual = next((v for k, v in context.items() if k.lower() == key.lower()), None)
            if actual is None:
                # A missing key fails the condition, except for IfExists and the negated operators.
                if if_exists or base.startswith(("StringNot", "ArnNot")):
                    continue
                return False
            if not _CONDITION_OPERATORS[base]([str(v) for v in _as_list(values)], str(actual)):
                return False
    return True


def statement_applies(statement: Mapping[str, Any], action: str, resource: str, context: Mapping[str, str]) -> bool:
    if "Action" in statement:
        action_hit = any(action_matches(p, action) for p in _as_list(statement["Action"]))
    else:
        action_hit = not any(action_matches(p, action) for p in _as_list(statement["NotAction"]))
    if not action_hit:
        return False
    if "Resource" in statement:
        resource_hit = any(resource_matches(p, resource) for p in _as_list(statement["Resource"]))
    else:
        resource_hit = not any(resource_matches(p, resource) for p in _as_list(statement["NotResource"]))
    if not resource_hit:
        return False
    return _conditions_hold(statement.get("Condition", {}), context)


def evaluate(
    statements: Sequence[Mapping[str, Any]], action: str, resource: str, context: Mapping[str, str] | None = None
) -> str:
    """ALLOWED, EXPLICIT_DENY or IMPLICIT_DENY for one action on one resource."""
    context = context or {}
    applying = [s for s in statements if statement_applies(s, action, resource, context)]
    if any(s["Effect"] == "Deny" for s in applying):
        return EXPLICIT_DENY
    if any(s["Effect"] == "Allow" for s in applying):
        return ALLOWED
    return IMPLICIT_DENY


# -- principals and decisions -------------------------------------------------------------------


@dataclass
class Principal:
    """Who the calls are made as: a name the tests use, its ARN as AWS prints it, its policies."""

    name: str
    arn: str
    statements: list[dict[str, Any]]


@dataclass(frozen=True)
class Decision:
    principal: str
    action: str
    resource: str
    outcome: str

    @property
    def allowed(self) -> bool:
        return self.outcome == ALLOWED


@dataclass
class Enforcer:
    """The principal in effect and every decision made for it (the twin's CloudTrail)."""

    principals: dict[str, Principal]
    decisions: list[Decision] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Per thread: the AppSync emulator runs each Lambda invocation in its own thread, as its
    # own role, while the test's thread sets up data as nobody in particular.
    _local: threading.local = field(default_factory=threading.local)

    @property
    def acting(self) -> Principal | None:
        return getattr(self._local, "principal", None)

    @property
    def denials(self) -> list[Decision]:
        return [d for d in self.decisions if not d.allowed]

    def authorize(
        self, principal: str, action: str, resource: str, context: Mapping[str, str] | None = None
    ) -> Decision:
        """Decide (and record) one request; callers outside botocore (the AppSync emulator) use this."""
        found = self.principals[principal]
        decision = Decision(found.name, action, resource, evaluate(found.statements, action, resource, context))
        with self._lock:
            self.decisions.append(decision)
        return decision

    @contextmanager
    def acting_as(self, principal: str) -> Iterator[Principal]:
        """Every botocore call inside is made as `principal` and evaluated before it is sent."""
        previous, self._local.principal = self.acting, self.principals[principal]
        try:
            yield self._local.principal
        finally:
            self._local.principal = previous


def denial_message(principal: Principal, decision: Decision) -> str:
    """Worded like AWS's AccessDenied messages, so code that parses or shows them sees the real thing."""
    why = (
        "with an explicit deny in an identity-based policy"
        if decision.outcome == EXPLICIT_DENY
        else f"because no identity-based policy allows the {decision.action} action"
    )
    return (
        f"User: {principal.arn} is not authorized to perform: {decision.action} on resource: {decision.resource} {why}"
    )
