"""Serve the project with daphne, its WebSocket limits set from the chat protocol's own.

daphne closes a connection that sends a WebSocket message over 1 MiB without a word (1006),
while the protocol accepts publish frames up to `MAX_FRAME_BYTES` (five 240 KB events): a
large, valid publish was cut off with no error. Here daphne takes messages up to twice the
protocol's limit, so every frame up to that reaches the app and gets either served or the
protocol's own error; only larger ones are refused by daphne itself (close 1009).

Usage: `python -m gateway_project.serve -b 127.0.0.1 -p 8000` (any other daphne option may
follow; the application is always `gateway_project.asgi:application`).
"""
from __future__ import annotations

import sys

from chat.protocol import MAX_FRAME_BYTES

SERVER_MESSAGE_LIMIT = 2 * MAX_FRAME_BYTES


def daphne_arguments(options: list[str]) -> list[str]:
    limit = str(SERVER_MESSAGE_LIMIT)
    return [
        "--websocket-max-message-size", limit, "--websocket-max-frame-size", limit,
        *options, "gateway_project.asgi:application",
    ]


def main(options: list[str] | None = None) -> None:
    from daphne.cli import CommandLineInterface

    CommandLineInterface().run(daphne_arguments(sys.argv[1:] if options is None else options))


if __name__ == "__main__":
    main()
