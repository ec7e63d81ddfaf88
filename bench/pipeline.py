"""Per-turn overhead of the chat-turn pipeline over the bare provider call.

Prints, for the SQLite store and the DynamoDB store (a local moto server over HTTP), the
p50/p99 of (pipeline turn - bare provider stream) for a cache miss, a cache hit and a quota
rejection, and the store round trips each kind of turn makes. Not a test: it asserts nothing.

    .venv/bin/python bench/pipeline.py [--turns 300]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dataplane.channels import inbound_channel
from dataplane.config import GatewayConfig
from dataplane.gateway import Gateway
from dataplane.outbound import ListOutbound
from dataplane.pipeline import Identity, chat_turn
from dataplane.policy import AllowedModel, EffectivePolicy, WindowLimits
from dataplane.providers.base import ModelCall
from dataplane.providers.demo import DEMO_MODEL_ID, DEMO_MODEL_NAME, DemoProvider
from dataplane.stores.base import StoreStats
from dataplane.telemetry.sinks import MemorySink

SUB = "bench-0000-4000-8000-000000000001"
STINGY = "bench-0000-4000-8000-000000000002"
MODEL = AllowedModel(model_id=DEMO_MODEL_ID, display_name=DEMO_MODEL_NAME, provider="demo", default_max_tokens=256)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@contextmanager
def moto_endpoint():
    import logging

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server("127.0.0.1", 0, DomainDispatcherApplication(create_backend_app), threaded=True,
                         request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def make_store(kind: str, workdir: str, endpoint: str | None):
    if kind == "sqlite":
        from dataplane.stores.sqlite import SQLiteStore

        return SQLiteStore(os.path.join(workdir, "bench.sqlite3"))
    from dataplane import aws
    from dataplane.stores.dynamodb import DynamoDBStore

    client = aws.new_client("dynamodb", aws.ClientSettings(
        region="us-east-1", endpoint_url=endpoint, aws_access_key_id="bench", aws_secret_access_key="bench"))
    store = DynamoDBStore(policies_table="bench-policies", usage_table="bench-usage", cache_table="bench-cache",
                          region="us-east-1", endpoint_url=endpoint, client=client)
    store.create_tables()
    return store


def request(text: str) -> dict:
    return {"modelId": MODEL.model_id, "conversationId": "bench",
            "messages": [{"role": "user", "content": [{"text": text}]}], "inferenceConfig": {"maxTokens": 256}}


def bare_call(provider: DemoProvider, text: str) -> float:
    call = ModelCall(model_id=MODEL.model_id, messages=request(text)["messages"], max_tokens=256)
    started = time.perf_counter()
    for _ in provider.stream(call):
        pass
    return time.perf_counter() - started


def measure(gateway: Gateway, provider: DemoProvider, kind: str, turns: int) -> dict:
    identity = Identity(sub=STINGY if kind == "rejection" else SUB)
    overheads: list[float] = []
    trips: list[StoreStats] = []
    # A hit needs the answer in the cache; a refusal needs a window already partly used, so
    # the store's conditional write (not the up-front size check) is what refuses.
    warm_up = {"hit": "How do quotas work?", "rejection": "Fill the window?"}.get(kind)
    if warm_up:
        chat_turn(gateway=gateway, identity=identity, channel=inbound_channel(identity.sub),
                  payload=request(warm_up), outbound=ListOutbound())
    for i in range(turns):
        text = {"hit": "How do quotas work?", "miss": f"Question number {i} about quotas?"}.get(kind, f"Refused {i}?")
        bare = bare_call(provider, text)
        gateway.store.stats = StoreStats()
        started = time.perf_counter()
        record = chat_turn(gateway=gateway, identity=identity, channel=inbound_channel(identity.sub),
                           payload=request(text), outbound=ListOutbound())
        elapsed = time.perf_counter() - started
        expected = {"miss": "miss", "hit": "hit", "rejection": "miss"}[kind]
        if record.cache != expected or (kind == "rejection") != (record.outcome == "refused"):
            raise SystemExit(f"{kind} turn {i} was {record.cache}/{record.outcome}, not a {kind}")
        # A miss is measured over the bare call it wraps; a hit or a refusal calls no model,
        # so its whole turn is the gateway's cost.
        overheads.append((elapsed - (bare if kind == "miss" else 0)) * 1000)
        trips.append(gateway.store.stats)
    last = trips[-1]
    return {
        "p50": statistics.median(overheads),
        "p99": percentile(overheads, 0.99),
        "reads": last.reads,
        "writes": last.writes,
        "conditional": last.conditional_writes,
        "ops": dict(sorted(last.by_operation.items())),
    }


def run(turns: int) -> None:
    provider = DemoProvider(chunk_delay=0)
    print(
        f"pipeline overhead over the bare demo provider, {turns} turns per row"
        " (ms; miss = turn - bare call, hit and rejection = whole turn)"
    )
    print(f"{'store':9} {'turn':10} {'p50':>8} {'p99':>8}  store round trips of one warm turn")
    with tempfile.TemporaryDirectory() as workdir, moto_endpoint() as endpoint:
        for store_kind in ("sqlite", "dynamodb"):
            store = make_store(store_kind, workdir, endpoint)
            config = GatewayConfig(store=store_kind, policy_cache_seconds=300, cache_ttl_seconds=3600)
            gateway = Gateway(config=config, store=store, telemetry=MemorySink(),
                              provider_factory=lambda model, cfg: provider)
            store.policy_put(EffectivePolicy(sub=SUB, version=1, models=(MODEL,),
                                             ten_minute=WindowLimits(total=10**12), monthly=WindowLimits(total=10**12)))
            store.policy_put(EffectivePolicy(sub=STINGY, version=1, models=(MODEL,),
                                             ten_minute=WindowLimits(total=300), monthly=WindowLimits(total=10**6)))
            bare = [bare_call(provider, f"Question number {i} about quotas?") * 1000 for i in range(turns)]
            print(
                f"{store_kind:9} {'bare call':10} {statistics.median(bare):8.3f}"
                f" {percentile(bare, 0.99):8.3f}  (baseline)"
            )
            single = []
            for _ in range(50):
                started = time.perf_counter()
                store.policy_get(SUB)
                single.append((time.perf_counter() - started) * 1000)
            print(f"{store_kind:9} {'1 get':10} {statistics.median(single):8.3f} {percentile(single, 0.99):8.3f}  "
                  "(baseline: one store round trip)")
            for kind in ("miss", "hit", "rejection"):
                figures = measure(gateway, provider, kind, turns if store_kind == "sqlite" else max(50, turns // 3))
                print(f"{store_kind:9} {kind:10} {figures['p50']:8.3f} {figures['p99']:8.3f}  "
                      f"reads={figures['reads']} writes={figures['writes']} conditional={figures['conditional']} "
                      f"{figures['ops']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=300)
    run(parser.parse_args().turns)


if __name__ == "__main__":
    main()
