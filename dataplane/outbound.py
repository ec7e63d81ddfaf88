"""The outbound port: where a turn's events go (the user's `/outbound/<sub>` channel)."""
from __future__ import annotations

from typing import Any, Protocol


class ClientGoneError(Exception):
    """Raised by an outbound sink when nobody listens any more (the client went away)."""


class Outbound(Protocol):
    def send(self, event: dict[str, Any]) -> None: ...


class ListOutbound:
    """Collects events in a list: for tests, the benchmark and the HTTP door."""

    def __init__(self, *, gone_after: int | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.gone_after = gone_after

    def send(self, event: dict[str, Any]) -> None:
        if self.gone_after is not None and len(self.events) >= self.gone_after:
            raise ClientGoneError("client disconnected")
        self.events.append(event)

    def texts(self) -> str:
        return "".join(e["contentBlockDelta"]["delta"].get("text", "") for e in self.events if "contentBlockDelta" in e)

    def errors(self) -> list[dict[str, Any]]:
        return [e["error"] for e in self.events if "error" in e]
