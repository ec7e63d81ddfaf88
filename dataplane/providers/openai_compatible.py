"""Self-hosted and private models behind an OpenAI-compatible chat completions API
(vLLM, TGI, Ollama, LiteLLM, llama.cpp server, OpenAI itself).

`POST {endpoint}/v1/chat/completions` with `stream: true` and
`stream_options: {"include_usage": true}`, read as server-sent events. The endpoint is the
model's base URL from the catalogue (`AllowedModel.endpoint`, carried on `ModelCall.endpoint`);
a base URL that already ends in `/v1` is not given a second one.

API key, read from the environment at call time: `OPENAI_API_KEY_<MODEL>` where `<MODEL>` is the
model id upper-cased with every run of non-alphanumerics turned into `_`
(`llama-3.1-8b` → `OPENAI_API_KEY_LLAMA_3_1_8B`), else `OPENAI_API_KEY`, else no
`Authorization` header (most self-hosted servers need none).

Connections are kept alive and pooled per endpoint (one urllib3 `PoolManager` per process), so
a turn does not pay a TCP (and TLS) handshake; a turn that stops reading early closes its
connection instead, which tells the server to stop generating. `astream` is the same call on
an event loop (`dataplane.providers.async_http`, pooled per loop), for a door that reads
many answers at once without a thread each. The body is read in whatever
pieces the socket delivers and split into lines in memory, not line by line from the socket.

Tools pass through: a request's `toolConfig` is sent as `tools` and `tool_choice`, tool blocks
in the conversation as `tool_calls` and `tool` messages (`dataplane.openai_wire`), and the
streamed `tool_calls` deltas come back as `ToolUseStart` and `ToolUseInput` events.

Usage comes from the final chunk (`prompt_tokens`, `completion_tokens`); a server that ignores
`include_usage` gives a `StreamEnd` without usage and the pipeline bills an estimate.

| failure | gateway error |
| --- | --- |
| HTTP 429 | ModelThrottled |
| HTTP 5xx, connection refused, timeouts, stream cut before it finished | ModelUnavailable |
| HTTP 401, 403 (the gateway's key was refused), 404 (no such model/route) | ModelUnavailable |
| HTTP 400, 422 | ValidationError |
| any other status, an `error` object mid-stream, malformed data | UpstreamError |
"""
from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import threading
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

from dataplane.errors import GatewayError, ModelThrottled, ModelUnavailable, UpstreamError, ValidationError
from dataplane.inference import openai_parameters
from dataplane.openai_wire import openai_messages, openai_tools
from dataplane.providers import async_http
from dataplane.providers.base import (
    ModelCall,
    ProviderEvent,
    ProviderStream,
    StreamEnd,
    TextDelta,
    ToolUseInput,
    ToolUseStart,
)

CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 60.0
# Idle keep-alive connections kept per endpoint; past it, extra connections are opened for
# the moment and closed after use (never a wait: the turn workers bound concurrency).
POOLED_CONNECTIONS_PER_ENDPOINT = 32
HTTP_OK = 200
READ_SIZE = 16 * 1024  # at most this much per socket read; a read returns what has arrived

_pool: urllib3.PoolManager | None = None
_pool_lock = threading.Lock()


def connection_pool() -> urllib3.PoolManager:
    """The process's keep-alive connections to model servers, one pool per endpoint."""
    global _pool  # noqa: PLW0603 - built once, on first use, under the lock
    with _pool_lock:
        if _pool is None:
            # No retries: a POST that reached the server may have started a generation; a
            # stale pooled connection is detected before reuse (urllib3 checks for EOF).
            _pool = urllib3.PoolManager(
                num_pools=64, maxsize=POOLED_CONNECTIONS_PER_ENDPOINT, block=False, retries=False
            )
        return _pool

# OpenAI finish_reason → Converse stopReason, so the rest of the gateway sees one vocabulary.
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "content_filter": "content_filtered",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
}


def api_key_variable(model_id: str) -> str:
    """The per-model environment variable holding the API key for `model_id`."""
    return "OPENAI_API_KEY_" + re.sub(r"[^A-Za-z0-9]+", "_", model_id).strip("_").upper()


class OpenAICompatibleProvider:
    """Streams answers from an OpenAI-compatible `/v1/chat/completions` endpoint.

    `endpoint` is a default base URL; a call's own `ModelCall.endpoint` wins. `environ` is
    where API keys are read (default `os.environ`).
    """

    name = "OpenAI-compatible"
    takes_tools = True  # a server whose model cannot call tools answers 400, a ValidationError

    def __init__(
        self,
        *,
        endpoint: str = "",
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
        read_timeout: float = READ_TIMEOUT_SECONDS,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._environ = environ

    def stream(self, call: ModelCall) -> ProviderStream:
        endpoint = call.endpoint or self.endpoint
        if not endpoint:
            raise ModelUnavailable(f"Model {call.model_id} has no endpoint configured.", modelId=call.model_id)
        url = completions_url(call.model_id, endpoint)
        response: urllib3.BaseHTTPResponse | None = None
        finished = False
        try:
            response = self._post(call, url)
            yield from _read_stream(call.model_id, _body_pieces(response))
            finished = True
        except (OSError, http.client.HTTPException, Urllib3Error) as error:
            raise _unreachable(call.model_id, error) from error
        finally:
            if response is not None:
                _release(response, reusable=finished)

    async def astream(self, call: ModelCall) -> AsyncIterator[ProviderEvent]:
        """`stream` on an event loop: the same request, events and errors, read with
        asyncio streams from connections pooled per endpoint and per loop."""
        endpoint = call.endpoint or self.endpoint
        if not endpoint:
            raise ModelUnavailable(f"Model {call.model_id} has no endpoint configured.", modelId=call.model_id)
        url = completions_url(call.model_id, endpoint)
        response: async_http.Response | None = None
        try:
            body, headers = self._request(call)
            response = await async_http.post(
                url, body=body, headers=headers, connect_timeout=self.connect_timeout, read_timeout=self.read_timeout
            )
            if response.status != HTTP_OK:
                message = _error_text(await response.read(64 * 1024))
                raise error_for_status(call.model_id, response.status, message)
            async for event in _read_stream_async(call.model_id, response.pieces()):
                yield event
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
            raise _unreachable(call.model_id, error) from error
        finally:
            if response is not None:
                response.release()  # pooled only when read to the end; else closed

    def _request(self, call: ModelCall) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(chat_completions_request(call)).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream", "Accept-Encoding": "identity"}
        api_key = self._api_key(call.model_id)
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        return body, headers

    def _post(self, call: ModelCall, url: str) -> urllib3.BaseHTTPResponse:
        body, headers = self._request(call)
        response = connection_pool().request(
            "POST",
            url,
            body=body,
            headers=headers,
            # The connect timeout only covers connecting; reading may wait longer between chunks.
            timeout=urllib3.Timeout(connect=self.connect_timeout, read=self.read_timeout),
            preload_content=False,
            redirect=False,
        )
        if response.status != HTTPStatus.OK:
            message = _error_message(response)
            _release(response, reusable=False)
            raise error_for_status(call.model_id, response.status, message)
        return response

    def _api_key(self, model_id: str) -> str:
        environ = os.environ if self._environ is None else self._environ
        return environ.get(api_key_variable(model_id)) or environ.get("OPENAI_API_KEY") or ""


def completions_url(model_id: str, endpoint: str) -> str:
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ModelUnavailable(f"Model {model_id} has an invalid endpoint: {endpoint!r}.", modelId=model_id)
    return f"{parts.scheme}://{parts.netloc}{completions_path(endpoint)}"


def completions_path(endpoint: str) -> str:
    path = urlsplit(endpoint).path.rstrip("/")
    if not path.endswith("/v1"):
        path += "/v1"
    return path + "/chat/completions"


def chat_completions_request(call: ModelCall) -> dict[str, Any]:
    """The request body: the Converse-shaped call as OpenAI chat messages and tools."""
    return {
        "model": call.model_id,
        "messages": openai_messages(call.system, call.messages),
        "stream": True,
        "stream_options": {"include_usage": True},
        **openai_parameters(call.inference_config()),
        **openai_tools(call.tool_config),
    }


def _body_pieces(response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    """The body as the socket delivers it: `read1` returns what has arrived (up to
    `READ_SIZE`), so a chunk is handed on as soon as it is there."""
    read1 = getattr(response, "read1", None)
    if read1 is None:
        # urllib3 1.x (a Lambda runtime's own botocore may bring it) has no read1; its
        # stream() yields each HTTP chunk as it arrives, which is how model servers stream.
        yield from response.stream(READ_SIZE, decode_content=False)
        return
    while True:
        # No content decoding: the request asks for `identity`, and urllib3's decoding layer
        # more than doubled the CPU of reading a stream of small events (bench/openai_provider.py).
        piece = read1(READ_SIZE, decode_content=False)
        if not piece:
            return
        yield piece


def _release(response: urllib3.BaseHTTPResponse, *, reusable: bool) -> None:
    """Back to the pool after a complete answer; otherwise closed (also on GeneratorExit:
    closing the socket tells the server to stop generating)."""
    if reusable:
        response.drain_conn()  # what follows `[DONE]` (the chunked terminator), so the next turn starts clean
        response.release_conn()
    else:
        response.close()  # the pool replaces a closed connection with a fresh one
        response.release_conn()


class _ServerSentEvents:
    """Splits a body, fed in the pieces the socket delivers, into the `data` of each
    server-sent event (multi-line data joined by newlines).

    Lines are split in memory; splitting bytes at b"\n" before decoding is safe, as no
    multi-byte UTF-8 sequence contains that byte."""

    def __init__(self) -> None:
        self._data_lines: list[str] = []
        self._pending = b""

    def feed(self, piece: bytes) -> list[str]:
        *lines, self._pending = (self._pending + piece).split(b"\n")
        events: list[str] = []
        data_lines = self._data_lines
        for raw in lines:
            line = raw.decode("utf-8").rstrip("\r")
            if not line:
                if data_lines:
                    events.append("\n".join(data_lines))
                    data_lines.clear()
            elif line.startswith("data:"):
                data_lines.append(line[5:].removeprefix(" "))
            # other fields (event:, id:, retry:) and comments (":") carry nothing we use
        return events

    def close(self) -> list[str]:
        if self._pending.startswith(b"data:"):
            self._data_lines.append(self._pending.decode("utf-8").rstrip("\r")[5:].removeprefix(" "))
        self._pending = b""
        return ["\n".join(self._data_lines)] if self._data_lines else []


def _server_sent_data(pieces: Iterable[bytes]) -> Iterator[str]:
    """The `data` of each server-sent event in a body read in pieces."""
    events = _ServerSentEvents()
    for piece in pieces:
        yield from events.feed(piece)
    yield from events.close()


class _Completion:
    """The chat completion as its stream's data arrives: text and tool call deltas, then how
    it ended."""

    def __init__(self, model_id: str) -> None:
        self.model_id = model_id
        self.finish_reason: str | None = None
        self.usage: dict | None = None
        self.done = False
        self.tool_calls: dict[int, int] = {}  # the server's tool call index -> the answer's n-th call

    def take(self, data: str) -> list[ProviderEvent]:
        """The events of one event's data; sets `done` at `[DONE]`."""
        if data.strip() == "[DONE]":
            self.done = True
            return []
        chunk = _parse_chunk(self.model_id, data)
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        deltas: list[ProviderEvent] = []
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if text:
                deltas.append(TextDelta(text))
            for tool_call in delta.get("tool_calls") or []:
                deltas.extend(self._tool_call(tool_call))
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return deltas

    def _tool_call(self, delta: Any) -> list[ProviderEvent]:
        """A `tool_calls` delta: the first for an index names the call, the rest carry its
        arguments (a server may send the whole call in one)."""
        if not isinstance(delta, dict):
            raise UpstreamError(f"The server of {self.model_id} sent a malformed tool call.", modelId=self.model_id)
        index = delta.get("index", len(self.tool_calls))
        function = delta.get("function") or {}
        events: list[ProviderEvent] = []
        if index not in self.tool_calls:
            call = self.tool_calls[index] = len(self.tool_calls)
            tool_use_id = delta.get("id") or f"call_{call}"
            events.append(ToolUseStart(call=call, tool_use_id=tool_use_id, name=str(function.get("name") or "")))
        if function.get("arguments"):
            events.append(ToolUseInput(call=self.tool_calls[index], text=str(function["arguments"])))
        return events

    def end(self) -> StreamEnd:
        if not self.done and self.finish_reason is None:
            raise ModelUnavailable(
                f"The answer from {self.model_id} was cut off: its server ended the stream early.",
                modelId=self.model_id,
            )
        finish_reason = self.finish_reason
        return StreamEnd(
            stop_reason=STOP_REASONS.get(finish_reason or "stop", finish_reason or "end_turn"),
            input_tokens=_opt_int(self.usage, "prompt_tokens"),
            output_tokens=_opt_int(self.usage, "completion_tokens"),
        )


def _read_stream(model_id: str, pieces: Iterable[bytes]) -> Iterator[ProviderEvent]:
    completion = _Completion(model_id)
    for data in _server_sent_data(pieces):
        yield from completion.take(data)
        if completion.done:
            break
    yield completion.end()


async def _read_stream_async(model_id: str, pieces: AsyncIterator[bytes]) -> AsyncIterator[ProviderEvent]:
    completion, events = _Completion(model_id), _ServerSentEvents()
    async for piece in pieces:
        if completion.done:
            continue  # what follows `[DONE]` (the chunked terminator) is read, so the connection can be reused
        for data in events.feed(piece):
            for delta in completion.take(data):
                yield delta
            if completion.done:
                break
    if not completion.done:
        for data in events.close():
            for delta in completion.take(data):
                yield delta
    yield completion.end()


def _parse_chunk(model_id: str, data: str) -> dict:
    try:
        chunk = json.loads(data)
    except json.JSONDecodeError:
        raise UpstreamError(f"The server of {model_id} sent malformed stream data.", modelId=model_id) from None
    if not isinstance(chunk, dict):
        raise UpstreamError(f"The server of {model_id} sent malformed stream data.", modelId=model_id)
    if chunk.get("error"):
        raise _error_from_stream(model_id, chunk["error"])
    return chunk


def _error_from_stream(model_id: str, error: Any) -> GatewayError:
    # vLLM and LiteLLM report failures mid-stream as {"error": {"code": <HTTP status>, ...}}.
    code = error.get("code") if isinstance(error, dict) else None
    message = str(error.get("message", "")) if isinstance(error, dict) else ""
    if isinstance(code, int) or (isinstance(code, str) and code.isdigit()):
        return error_for_status(model_id, int(code), message)
    return UpstreamError(f"The server of {model_id} failed while answering.", modelId=model_id)


def _opt_int(usage: dict | None, key: str) -> int | None:
    if not usage or usage.get(key) is None:
        return None
    return int(usage[key])


def _error_message(response: urllib3.BaseHTTPResponse) -> str:
    try:
        return _error_text(response.read(64 * 1024))
    except (OSError, http.client.HTTPException, Urllib3Error):
        return ""


def _error_text(raw: bytes) -> str:
    """The server's own message in an error body, if it has one."""
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message", ""))
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    return ""


def error_for_status(model_id: str, status: int, upstream_message: str = "") -> GatewayError:
    """The gateway error for an HTTP status (see the table in the module docstring)."""
    details = {"modelId": model_id, "status": status}
    if status == HTTPStatus.TOO_MANY_REQUESTS:
        return ModelThrottled(f"Model {model_id} is busy (rate limited); try again shortly.", **details)
    if status in (400, 422):
        reason = f": {upstream_message}" if upstream_message else "."
        return ValidationError(f"The server of {model_id} rejected the request{reason}", **details)
    if status in (401, 403):
        return ModelUnavailable(
            f"Model {model_id} is unavailable: its server refused the gateway's API key "
            f"(set {api_key_variable(model_id)} or OPENAI_API_KEY).",
            **details,
        )
    if status == HTTPStatus.NOT_FOUND:
        return ModelUnavailable(f"Model {model_id} is unavailable: its server does not know it.", **details)
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        return ModelUnavailable(f"Model {model_id} is unavailable right now (HTTP {status}).", **details)
    return UpstreamError(f"The server of {model_id} failed to answer (HTTP {status}).", **details)


def _unreachable(model_id: str, error: BaseException) -> ModelUnavailable:
    """The one wording, for both ways of reading, of a server that could not be reached or
    stopped answering."""
    return ModelUnavailable(
        f"Model {model_id} is unavailable: its server could not be reached or stopped "
        f"answering ({type(error).__name__}).",
        modelId=model_id,
    )
