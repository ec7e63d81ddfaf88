"""A paced OpenAI-style upstream for the benchmarks (not a test, not a product part).

    .venv/bin/python bench/sse_upstream.py --port 9100 --chunks 40 --chunk-delay 0.02

`POST /v1/chat/completions` answers every request with `--chunks` text chunks, `--chunk-delay`
seconds apart, as server-sent events in OpenAI's chunk format (the first delta carries the
role, the last chunk the finish reason, then a usage chunk when `stream_options.include_usage`
asks for it, then `data: [DONE]`); `stream: false` gets one JSON completion. Keep-alive, chunked
transfer encoding. It runs on one asyncio loop in its own process, so a thousand concurrent
streams cost it little and its CPU is not counted as the gateway's (or LiteLLM's).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid

MODEL_ANSWER_WORD = "token"


def json_response(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def chunk(payload: dict) -> bytes:
    data = b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


async def answer(writer: asyncio.StreamWriter, request: dict, chunks: int, delay: float) -> None:
    model = str(request.get("model", "bench-model"))
    count = max(1, min(chunks, int(request.get("max_tokens") or chunks)))
    texts = [f"{MODEL_ANSWER_WORD}{i} " for i in range(count)]
    prompt_tokens = sum(len(str(m.get("content", ""))) for m in request.get("messages", [])) // 4 + 1
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex[:20]}", int(time.time())
    base = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model}
    if not request.get("stream"):
        message = {"role": "assistant", "content": "".join(texts)}
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": count, "total_tokens": prompt_tokens + count}
        body = json.dumps({
            "id": completion_id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": usage,
        }).encode()
        writer.write(json_response(body))
        await writer.drain()
        return
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    for index, text in enumerate(texts):
        if index:
            await asyncio.sleep(delay)
        delta = {"role": "assistant", "content": text} if index == 0 else {"content": text}
        writer.write(chunk({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}))
        await writer.drain()
    writer.write(chunk({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    if (request.get("stream_options") or {}).get("include_usage"):
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": count, "total_tokens": prompt_tokens + count}
        writer.write(chunk({**base, "choices": [], "usage": usage}))
    data = b"data: [DONE]\n\n"
    writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data))
    await writer.drain()


async def serve_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, chunks: int, delay: float
) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
            if method == "POST" and path.rstrip("/").endswith("/chat/completions"):
                await answer(writer, json.loads(body or b"{}"), chunks, delay)
            else:
                reply = json.dumps({"object": "list", "data": [{"id": "bench-model", "object": "model"}]}).encode()
                writer.write(json_response(reply))
                await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def main_async(port: int, chunks: int, delay: float) -> None:
    server = await asyncio.start_server(
        lambda r, w: serve_connection(r, w, chunks, delay), "127.0.0.1", port, backlog=4096
    )
    print(f"upstream on 127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chunks", type=int, default=40)
    parser.add_argument("--chunk-delay", type=float, default=0.02)
    args = parser.parse_args()
    asyncio.run(main_async(args.port, args.chunks, args.chunk_delay))


if __name__ == "__main__":
    main()
