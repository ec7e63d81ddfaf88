"""Client-side cost of the OpenAI-compatible provider against a local SSE server (not a test).

Streams `--turns` answers of `--chunks` chunks each, one after the other, from the scripted
server in `tests/servers/openai.py` (in this process, on its own thread) and prints, per turn,
the p50/p99 of time to first chunk, whole stream, and the CPU the provider's own thread spent
(`time.thread_time`, so the server's work is not counted), plus how many TCP connections the
server saw.

    .venv/bin/python bench/openai_provider.py [--turns 300] [--chunks 200]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path.cwd()))

from dataplane.providers.base import ModelCall, TextDelta
from dataplane.providers.openai_compatible import OpenAICompatibleProvider
from tests.servers.openai import OpenAIServer


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(turns: int, chunks: int) -> None:
    server = OpenAIServer().start()
    try:
        server.script("bench", chunks=[f"tok{i} " for i in range(chunks)], usage=(20, chunks))
        provider = OpenAICompatibleProvider(environ={})
        call = ModelCall(model_id="bench", messages=[{"role": "user", "content": [{"text": "hi"}]}],
                         endpoint=server.url, max_tokens=chunks * 2)
        first, whole, cpu = [], [], []
        for _ in range(turns + 10):
            started, cpu_started = time.perf_counter(), time.thread_time()
            first_at = None
            for event in provider.stream(call):
                if first_at is None and isinstance(event, TextDelta):
                    first_at = time.perf_counter()
            whole.append((time.perf_counter() - started) * 1000)
            cpu.append((time.thread_time() - cpu_started) * 1000)
            first.append(((first_at or time.perf_counter()) - started) * 1000)
        first, whole, cpu = first[10:], whole[10:], cpu[10:]  # the first few warm up imports and pools
        connections = len({getattr(received, "client_port", 0) for received in server.requests} - {0}) or "n/a"
        print(f"{turns} turns of {chunks} chunks: first chunk p50 {statistics.median(first):.3f} ms "
              f"p99 {percentile(first, 0.99):.3f}; whole stream p50 {statistics.median(whole):.2f} ms "
              f"p99 {percentile(whole, 0.99):.2f}; provider CPU per turn p50 {statistics.median(cpu):.2f} ms; "
              f"TCP connections {connections}")
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--chunks", type=int, default=200)
    arguments = parser.parse_args()
    run(arguments.turns, arguments.chunks)


if __name__ == "__main__":
    main()
