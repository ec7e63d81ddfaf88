"""Pytest plugin: a local OpenAI-compatible chat completions server (server-sent events).

`POST /v1/chat/completions` with `stream: true` answers `data: {chunk}` lines, a final usage
chunk when the request asked for it (`stream_options.include_usage`) and `data: [DONE]`.
Scenarios are scripted per model name:

    openai_server.script("m", chunks=["Hel", "lo"], usage=(12, 2))
    openai_server.script("m", send_usage=False)               # a server that ignores include_usage
    openai_server.script("m", status=429)                     # HTTP error, JSON error body
    openai_server.script("m", chunks=[...], fail_after=2)     # connection drops after 2 chunks
    openai_server.script("m", tool_calls=[("call_1", "now", ['{"tz":', '"UTC"}'])])  # calls a tool

An unscripted model answers "Echo: <last user text>" with honest token counts. Requests are
recorded (`openai_server.requests`) with parsed body and headers. Session-scoped: use a model
name of your own per test, or `reset()`.
"""
from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from dataplane import tokens
from tests.servers.scripted import ScriptedServer


@dataclass
class OpenAIScript:
    chunks: list[str] | None = None  # None: the echo answer
    usage: tuple[int, int] | None = None  # None: honest estimate
    finish_reason: str = "stop"
    send_usage: bool = True
    status: int | None = None
    error_message: str = "scripted error"
    fail_after: int | None = None  # drop the connection after this many chunks
    chunk_delay: float = 0.0
    times: int | None = None
    # Tool calls streamed after the text: (id, function name, the arguments' JSON in pieces);
    # the answer then finishes with "tool_calls".
    tool_calls: list[tuple[str, str, list[str]]] = field(default_factory=list)


@dataclass
class ReceivedCompletion:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    chunks_sent: int = 0
    client_disconnected: bool = False
    client_port: int = 0  # tells connections apart: a kept-alive one sends several requests
    finished: threading.Event = field(default_factory=threading.Event)

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))


class OpenAIServer(ScriptedServer[OpenAIScript, ReceivedCompletion]):
    script_type = OpenAIScript
    name = "OpenAI server"

    def __init__(self) -> None:
        super().__init__(_handler_for)

    @staticmethod
    def model_of(received: ReceivedCompletion) -> str:
        return received.model


def _echo_chunks(body: dict) -> list[str]:
    last_user = next((m for m in reversed(body.get("messages", [])) if m.get("role") == "user"), None)
    words = f"Echo: {last_user.get('content', '') if last_user else ''}".split(" ")
    return [word if i == 0 else " " + word for i, word in enumerate(words)]


def _honest_usage(body: dict, chunks: list[str]) -> tuple[int, int]:
    messages = body.get("messages", [])
    system = next((m["content"] for m in messages if m.get("role") == "system"), None)
    turns = [m for m in messages if m.get("role") != "system"]
    return tokens.estimate_messages(turns, system), tokens.estimate("".join(chunks))


def _handler_for(server: OpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # No Nagle delay, like the servers this one stands for (uvicorn under vLLM, Go's
            # net/http under Ollama): otherwise a kept-alive connection waits for the client's
            # delayed ACK (~40 ms) before the first chunk of every answer but the first.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send_json(404, {"error": {"message": f"no route for {self.path}", "code": 404}})
                return
            received = ReceivedCompletion(
                path=self.path, headers=dict(self.headers.items()), body=body, client_port=self.client_address[1]
            )
            server._record(received)
            try:
                self._answer(server._take_script(received.model), received)
            finally:
                received.finished.set()

        def _answer(self, scripted: OpenAIScript, received: ReceivedCompletion) -> None:
            if scripted.status is not None:
                error = {"message": scripted.error_message, "type": "scripted", "code": scripted.status}
                self._send_json(scripted.status, {"error": error})
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                completed = self._stream(scripted, received)
            except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
                received.client_disconnected = True
                self.close_connection = True
                return
            if completed:
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.close_connection = True  # no terminating chunk: the stream is cut

        def _stream(self, scripted: OpenAIScript, received: ReceivedCompletion) -> bool:
            model = received.model
            chunks = scripted.chunks if scripted.chunks is not None else _echo_chunks(received.body)
            self._event(_chunk(model, {"role": "assistant", "content": ""}))
            for index, text in enumerate(chunks):
                if scripted.fail_after is not None and index >= scripted.fail_after:
                    return False
                if index and scripted.chunk_delay:
                    time.sleep(scripted.chunk_delay)
                self._event(_chunk(model, {"content": text}))
                received.chunks_sent += 1
            if scripted.fail_after is not None and scripted.fail_after >= len(chunks):
                return False
            for index, (call_id, name, pieces) in enumerate(scripted.tool_calls):
                start = {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
                self._event(_chunk(model, {"tool_calls": [start]}))
                for piece in pieces:
                    self._event(_chunk(model, {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
                chunks = [*chunks, *pieces]  # the arguments are output too
            finish_reason = "tool_calls" if scripted.tool_calls else scripted.finish_reason
            self._event(_chunk(model, {}, finish_reason=finish_reason))
            wants_usage = bool((received.body.get("stream_options") or {}).get("include_usage"))
            if scripted.send_usage and wants_usage:
                prompt, completion = scripted.usage or _honest_usage(received.body, chunks)
                usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
                self._event({"id": "chatcmpl-local", "object": "chat.completion.chunk", "model": model,
                             "choices": [], "usage": usage})
            self._write(b"data: [DONE]\n\n")
            return True

        def _event(self, payload: dict) -> None:
            self._write(b"data: " + json.dumps(payload).encode("utf-8") + b"\n\n")

        def _write(self, data: bytes) -> None:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        def _send_json(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _chunk(model: str, delta: dict, finish_reason: str | None = None) -> dict:
    return {
        "id": "chatcmpl-local",
        "object": "chat.completion.chunk",
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


@pytest.fixture(scope="session")
def openai_server() -> Iterator[OpenAIServer]:
    server = OpenAIServer().start()
    yield server
    server.stop()
