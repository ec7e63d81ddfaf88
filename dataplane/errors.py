"""The closed list of errors a chat turn can end with.

Every failure that reaches a client is one of these types, with a human-readable message.
The `type` strings are part of the wire protocol: clients switch on them.
"""
from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    """Base of every error the gateway reports to a client."""

    type: str = "InternalError"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_wire(self, *, request_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "message": self.message, "requestId": request_id}
        body.update(self.details)
        return body


class ValidationError(GatewayError):
    type = "ValidationError"


class Forbidden(GatewayError):
    """The caller does not own the channel it tried to use."""

    type = "Forbidden"


class ModelNotAllowed(GatewayError):
    type = "ModelNotAllowed"


class QuotaExceeded(GatewayError):
    """A reservation did not fit; `window` names which one and `resetsAt` when it resets."""

    type = "QuotaExceeded"


class ModelThrottled(GatewayError):
    type = "ModelThrottled"


class ModelUnavailable(GatewayError):
    type = "ModelUnavailable"


class UpstreamError(GatewayError):
    type = "UpstreamError"


class TimeLimitReached(GatewayError):
    """The gateway's own time limit for one turn ran out (the Lambda's timeout, less a margin
    to settle); what streamed is billed."""

    type = "TimeLimitReached"


class InternalError(GatewayError):
    type = "InternalError"


class StoreUnavailableError(GatewayError):
    """The store (DynamoDB or SQLite) could not be reached; reported to clients as internal."""

    type = "InternalError"


ERROR_TYPES: tuple[str, ...] = (
    "ValidationError",
    "Forbidden",
    "ModelNotAllowed",
    "QuotaExceeded",
    "ModelThrottled",
    "ModelUnavailable",
    "UpstreamError",
    "TimeLimitReached",
    "InternalError",
)
