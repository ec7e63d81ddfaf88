"""A small HTTP/1.1 client on asyncio streams, for reading model streams on an event loop.

Just what a streaming POST to a model server needs: keep-alive connections pooled per
endpoint and per event loop, a body read as chunked, length-delimited or until close, in the
pieces the socket delivers, and timeouts for connecting and between reads. A full client
(httpx, aiohttp) would be a new dependency and costs more CPU per small event than the
server-sent events it carries; this one is used by `OpenAICompatibleProvider.astream`.

A connection goes back to the pool only after its response was read to the end; one closed
early (a turn cancelled or cut) is closed, which tells the server to stop generating.
"""
from __future__ import annotations

import asyncio
import ssl
import weakref
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

READ_SIZE = 16 * 1024
MAX_HEADER_BYTES = 64 * 1024
IDLE_CONNECTIONS_PER_ENDPOINT = 64  # past it, a finished connection is closed, never waited for

Endpoint = tuple[str, str, int]  # scheme, host, port


class ProtocolViolationError(OSError):
    """The server's answer is not HTTP/1.1 as this client reads it."""


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def usable(self) -> bool:
        # A pooled connection the server has closed meanwhile shows EOF (or a closing transport).
        return not self.reader.at_eof() and not self.writer.is_closing() and self.reader.exception() is None

    def close(self) -> None:
        self.writer.close()


@dataclass
class _Pool:
    idle: dict[Endpoint, deque[_Connection]] = field(default_factory=dict)

    def take(self, endpoint: Endpoint) -> _Connection | None:
        connections = self.idle.get(endpoint)
        while connections:
            connection = connections.pop()
            if connection.usable():
                return connection
            connection.close()
        return None

    def give_back(self, endpoint: Endpoint, connection: _Connection) -> None:
        connections = self.idle.setdefault(endpoint, deque())
        if len(connections) >= IDLE_CONNECTIONS_PER_ENDPOINT or not connection.usable():
            connection.close()
        else:
            connections.append(connection)


# Streams belong to the loop that opened them: one pool per loop, gone with its loop.
_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pool] = weakref.WeakKeyDictionary()


def _pool() -> _Pool:
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None:
        pool = _pools[loop] = _Pool()
    return pool


class Response:
    """A response whose body is still on the socket; read it with `pieces()`, then `release()`."""

    def __init__(self, *, status: int, headers: dict[str, str], connection: _Connection, endpoint: Endpoint,
                 read_timeout: float) -> None:
        self.status = status
        self.headers = headers
        self._connection = connection
        self._endpoint = endpoint
        self._read_timeout = read_timeout
        self._complete = False
        self._released = False

    async def pieces(self) -> AsyncIterator[bytes]:
        reader = self._connection.reader
        with _ReadWatch(self._read_timeout) as watch:
            if "chunked" in self.headers.get("transfer-encoding", "").lower():
                chunks = _chunked(reader)
                while True:
                    try:
                        piece = await watch.bounded(anext(chunks))
                    except StopAsyncIteration:
                        break
                    yield piece
            elif "content-length" in self.headers:
                remaining = int(self.headers["content-length"])
                while remaining > 0:
                    piece = await watch.bounded(reader.read(min(remaining, READ_SIZE)))
                    if not piece:
                        raise asyncio.IncompleteReadError(b"", remaining)
                    remaining -= len(piece)
                    yield piece
            else:
                self.headers["connection"] = "close"  # the body ends when the server closes
                while piece := await watch.bounded(reader.read(READ_SIZE)):
                    yield piece
        self._complete = True

    async def read(self, limit: int) -> bytes:
        """At most `limit` bytes of the body (for error messages)."""
        body = b""
        async for piece in self.pieces():
            body += piece
            if len(body) >= limit:
                break
        return body[:limit]

    def release(self) -> None:
        """Back to the pool after a body read to its end on a keep-alive connection; else closed."""
        if self._released:
            return
        self._released = True
        if self._complete and self.headers.get("connection", "").lower() != "close":
            _pool().give_back(self._endpoint, self._connection)
        else:
            self._connection.close()


class _ReadWatch:
    """A read timeout that costs little per read: one timer per response, rescheduled only
    when it fires, cancels the reading task once a single read has waited `seconds` (moving
    an `asyncio.timeout` before every read cost more than parsing what was read). Time the
    reader spends elsewhere between reads (its consumer is busy) does not count."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        self.read_since = 0.0
        self.reading = False
        self.timer: asyncio.TimerHandle | None = None
        self.expired = False

    def __enter__(self) -> _ReadWatch:  # noqa: PYI034 - a private helper, never subclassed
        self.timer = self.loop.call_later(self.seconds, self._check)
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.expired and kind is asyncio.CancelledError and self.task is not None and not self.task.uncancel():
            raise TimeoutError(f"no data for {self.seconds} s") from error

    async def bounded(self, read):
        self.read_since, self.reading = self.loop.time(), True
        try:
            return await read
        finally:
            self.reading = False

    def _check(self) -> None:
        delay = self.seconds
        if self.reading:
            waited = self.loop.time() - self.read_since
            if waited >= self.seconds:
                self.expired = True
                if self.task is not None:
                    self.task.cancel()
                return
            delay = self.seconds - waited
        self.timer = self.loop.call_later(delay, self._check)


async def _chunked(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while True:
        line = await reader.readline()
        if not line.endswith(b"\n"):
            raise asyncio.IncompleteReadError(line, None)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise ProtocolViolationError("malformed chunk size") from None
        if size == 0:
            while (await reader.readline()).strip():  # trailers, up to the empty line
                pass
            return
        remaining = size
        while remaining:
            piece = await reader.read(min(remaining, READ_SIZE))
            if not piece:
                raise asyncio.IncompleteReadError(b"", remaining)
            remaining -= len(piece)
            yield piece
        await reader.readexactly(2)  # the chunk's CRLF


async def post(url: str, *, body: bytes, headers: Mapping[str, str], connect_timeout: float,
               read_timeout: float) -> Response:
    """POST `body` to `url`; returns once the status line and headers have arrived."""
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    endpoint: Endpoint = (parts.scheme, parts.hostname or "", parts.port or (443 if secure else 80))
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request = _request_bytes(target, parts.netloc, body, headers)
    pool = _pool()
    connection = pool.take(endpoint)
    if connection is not None:
        try:
            return await _exchange(connection, request, endpoint, read_timeout)
        except (ConnectionError, asyncio.IncompleteReadError) as error:
            if isinstance(error, asyncio.IncompleteReadError) and error.partial:
                raise
            # The server closed an idle keep-alive connection as we reused it, before a byte
            # of an answer: it had not taken this request, so a new connection may send it.
            connection.close()
    async with asyncio.timeout(connect_timeout):
        reader, writer = await asyncio.open_connection(
            endpoint[1], endpoint[2], ssl=ssl.create_default_context() if secure else None, limit=MAX_HEADER_BYTES
        )
    return await _exchange(_Connection(reader, writer), request, endpoint, read_timeout)


def _request_bytes(target: str, host: str, body: bytes, headers: Mapping[str, str]) -> bytes:
    lines = [f"POST {target} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}", "Connection: keep-alive"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _exchange(connection: _Connection, request: bytes, endpoint: Endpoint, read_timeout: float) -> Response:
    try:
        connection.writer.write(request)
        await connection.writer.drain()
        async with asyncio.timeout(read_timeout):
            head = await connection.reader.readuntil(b"\r\n\r\n")
    except BaseException:
        connection.close()
        raise
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    version, _, rest = status_line.partition(" ")
    code_text = rest[:3]
    if not version.startswith("HTTP/1.") or not code_text.isdigit():
        connection.close()
        raise ProtocolViolationError(f"not an HTTP/1.1 status line: {status_line[:64]!r}")
    code = int(code_text)
    headers: dict[str, str] = {}
    for line in header_lines:
        name, separator, value = line.partition(":")
        if separator:
            headers[name.strip().lower()] = value.strip()
    if version == "HTTP/1.0" and headers.get("connection", "").lower() != "keep-alive":
        headers["connection"] = "close"
    return Response(status=code, headers=headers, connection=connection, endpoint=endpoint, read_timeout=read_timeout)
