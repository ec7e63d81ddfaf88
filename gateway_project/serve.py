"""Serve the project with daphne, its WebSocket limits set from the chat protocol's own.

daphne closes a connection that sends a WebSocket message over 1 MiB without a word (1006),
while the protocol accepts publish frames up to `MAX_FRAME_BYTES` (five 240 KB events): a
large, valid publish was cut off with no error. Here daphne takes messages up to twice the
protocol's limit, so every frame up to that reaches the app and gets either served or the
protocol's own error; only larger ones are refused by daphne itself (close 1009).

On SIGTERM or SIGINT the server lets its running chat turns finish before it exits, for up
to `GATEWAY_SHUTDOWN_GRACE_SECONDS`, then stops the rest, which settle what streamed
(`gateway_project.turn_pools.drain`): daphne itself would end the loop with them half-way and
their reservations still counted.

Usage: `python -m gateway_project.serve -b 127.0.0.1 -p 8000` (any other daphne option may
follow; the application is always `gateway_project.asgi:application`).
"""
from __future__ import annotations

import asyncio
import sys
from typing import Any

from chat.protocol import MAX_FRAME_BYTES

SERVER_MESSAGE_LIMIT = 2 * MAX_FRAME_BYTES


def daphne_arguments(options: list[str]) -> list[str]:
    limit = str(SERVER_MESSAGE_LIMIT)
    return [
        "--websocket-max-message-size", limit, "--websocket-max-frame-size", limit,
        *options, "gateway_project.asgi:application",
    ]


def main(options: list[str] | None = None) -> None:
    from daphne.cli import CommandLineInterface  # installs Twisted's asyncio reactor
    from twisted.internet import reactor

    reactor.addSystemEventTrigger("before", "shutdown", _drain_turns)  # type: ignore[arg-type]  # zope interface: mypy reads a self

    CommandLineInterface().run(daphne_arguments(sys.argv[1:] if options is None else options))


def _drain_turns() -> Any:
    """Twisted waits for the returned Deferred before it stops the loop."""
    from django.conf import settings
    from twisted.internet.defer import Deferred

    from gateway_project.turn_pools import drain

    return Deferred.fromFuture(asyncio.ensure_future(drain(grace_seconds=settings.GATEWAY_SHUTDOWN_GRACE_SECONDS)))


if __name__ == "__main__":
    main()
