"""Benchmark: N concurrent WebSocket chat sessions against a real daphne (not a test).

    .venv/bin/python bench/ws_chat.py                 # N = 10, 100, 500
    .venv/bin/python bench/ws_chat.py --sessions 50 --turns 2 --chunk-delay 0.005 --workers 32

It builds a scratch SQLite database with N users and their sessions, publishes a demo-model
policy for each to a scratch data-plane store, starts daphne on 127.0.0.1 (embedded-default
settings, so the in-memory channel layer unless REDIS_URL is set), opens N signed-in
connections speaking the AppSync Events protocol, and has every session publish a chat turn
at the same moment. It prints, per N:

- time to first token (publish sent → first `contentBlockDelta` received), p50 / p99;
- gateway overhead over the bare provider: the same figures minus what the demo provider
  itself takes for its first chunk / whole answer, measured in-process on the same request;
- total turn time, errors (refused connections, error events, timeouts) and the server's
  peak RSS memory.

With `--think T` it runs a user model instead of bursts: every one of the N connected users
sends a turn, reads the whole answer, thinks for a random 0.5·T to 1.5·T seconds (the first
wait is spread over 0 to T, so the users do not start together) and sends the next, for
`--duration` seconds; turns still running then may finish within `--deadline`. Upstream pacing
is `--chunk-delay`. For example, 1,000 users each sending a turn every ~10 s at 20 ms/chunk:

    .venv/bin/python bench/ws_chat.py --sessions 1000 --think 10 --duration 60 --chunk-delay 0.02

With `--upstream openai` the model is a local OpenAI-style SSE server (`bench/sse_upstream.py`,
its own process: `--chunks` chunks `--chunk-delay` apart) that the gateway reaches through its
OpenAI-compatible provider; the overhead figures are then over that upstream measured alone.

`--processes 1 2` runs each N against one daphne process, then against two on one Redis
channel layer (REDIS_URL must be set), the users' connections spread over them in turn as a
load balancer would; CPU and RSS are the sum over the processes.

`--v1` also runs the same load against the gateway's own OpenAI-compatible door: each user
gets an API key, and sends its turns as streaming `POST /v1/chat/completions` requests to a
fresh daphne per process layout (the same users, think times and pacing as over WebSockets).

`--litellm` (implies `--upstream openai` and `--v1`) also runs the same load, in the same run,
against LiteLLM's proxy on the same upstream: installed once by this script into a throw-away
venv under /tmp (`pip install litellm[proxy]`, never a project dependency), started on
127.0.0.1 with one worker, and driven over its streaming `/v1/chat/completions` (LiteLLM has no
WebSocket door), with the same users, think times and pacing. The figures print side by side,
one column per door (gateway WebSocket, gateway /v1, LiteLLM proxy):

    .venv/bin/python bench/ws_chat.py --sessions 1000 --think 10 --duration 60 \
        --chunk-delay 0.02 --litellm --processes 1 2

Everything is bounded in time (`--deadline` per N) and the servers are stopped at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dataplane.channels import inbound_channel  # noqa: E402 (after the path)
from dataplane.providers.demo import DEMO_MODEL_ID, DEMO_MODEL_NAME  # noqa: E402

BENCH_MODEL = "bench-model"  # the OpenAI-style upstream's model, for the gateway and LiteLLM alike
LITELLM_VENV = Path("/tmp/bench-litellm-venv")  # noqa: S108 - a throw-away venv, outside the project on purpose


@dataclass
class TurnTiming:
    first_token: float | None = None
    total: float | None = None
    error: str | None = None


@dataclass
class RunResult:
    sessions: int
    timings: list[TurnTiming] = field(default_factory=list)
    connect_errors: int = 0
    peak_rss_mb: float = 0.0
    idle_rss_mb: float = 0.0
    label: str = "gateway"
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0  # the server's user + system CPU while the turns ran
    client_cpu_seconds: float = 0.0  # this benchmark's own CPU meanwhile (it shares the machine)


# --- fixtures: database, users, sessions, policies ---------------------------------------


def prepare(scratch: Path, sessions: int, upstream: str | None = None) -> list[tuple[str, str]]:
    """Migrate a scratch database, create users with sessions and policies; (sub, cookie) each."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "gateway_project.settings.local"
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    from dataplane.policy import AllowedModel, EffectivePolicy, WindowLimits
    from gateway_project.gateway import gateway_store

    call_command("migrate", verbosity=0, interactive=False)
    user_model = get_user_model()
    existing = user_model.objects.filter(username__startswith="bench-").count()
    user_model.objects.bulk_create(
        [user_model(username=f"bench-{n}", password="!unusable") for n in range(existing, sessions)]
    )
    demo = AllowedModel(model_id=DEMO_MODEL_ID, display_name=DEMO_MODEL_NAME, provider="demo")
    if upstream:
        demo = AllowedModel(model_id=BENCH_MODEL, display_name="Bench upstream", provider="openai", endpoint=upstream)
    version = time.time_ns() // 1000
    users = []
    for user in user_model.objects.filter(username__startswith="bench-").order_by("id")[:sessions]:
        gateway_store().policy_put(
            EffectivePolicy(sub=user.sub, version=version, models=(demo,),
                            ten_minute=WindowLimits(total=10**9), monthly=WindowLimits(total=10**10))
        )
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        users.append((user.sub, f"{settings.SESSION_COOKIE_NAME}={session.session_key}"))
    return users


def issue_keys(count: int) -> list[str]:
    """An API key for each of the first `count` bench users (in `prepare`'s order), for the
    gateway's `/v1` door."""
    from django.contrib.auth import get_user_model

    from api.services import api_key_create

    users = get_user_model().objects.filter(username__startswith="bench-").order_by("id")[:count]
    return [api_key_create(user=user, name="bench").secret for user in users]


def bare_provider_seconds(chunk_delay: float, repeats: int = 50) -> tuple[float, float]:
    """What the demo provider alone takes for its first chunk and its whole answer (median)."""
    from dataplane.providers.base import ModelCall
    from dataplane.providers.demo import DemoProvider

    provider = DemoProvider(chunk_delay=chunk_delay)
    call = ModelCall(model_id=DEMO_MODEL_ID, messages=[{"role": "user", "content": [{"text": "bench question"}]}],
                     system=None, max_tokens=1024, temperature=None, top_p=None, stop_sequences=(), endpoint="")
    firsts, totals = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        first = None
        for _event in provider.stream(call):
            first = first or time.perf_counter()
        assert first is not None, "the provider answered nothing"
        firsts.append(first - started)
        totals.append(time.perf_counter() - started)
    return statistics.median(firsts), statistics.median(totals)


# --- server ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_daphne(scratch: Path, port: int, env: dict[str, str]) -> subprocess.Popen:
    log_path = scratch / f"daphne-{port}.log"
    log = open(log_path, "wb")  # noqa: SIM115 - the server's log, open for the server's lifetime
    process = subprocess.Popen(
        # BENCH_PROFILE=<dir>: each server writes a cProfile of its run there (for finding costs).
        [sys.executable, *(["-m", "cProfile", "-o", f"{os.environ['BENCH_PROFILE']}/daphne-{port}.prof"]
                           if os.environ.get("BENCH_PROFILE") else []),
         "-m", "gateway_project.serve", "-b", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"daphne exited: {log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("daphne did not start within 30 s")


def _tree(pid: int) -> list:
    import psutil

    try:
        process = psutil.Process(pid)
        return [process, *process.children(recursive=True)]
    except psutil.Error:
        return []


def rss_mb(pids: list[int]) -> float:
    """Resident memory of the servers and their children (LiteLLM may fork workers)."""
    import psutil

    total = 0
    for pid in pids:
        for process in _tree(pid):
            with contextlib.suppress(psutil.Error):
                total += process.memory_info().rss
    return total / 2**20


async def watch_rss(pids: list[int], result: RunResult, stop: asyncio.Event) -> None:
    while not stop.is_set():
        result.peak_rss_mb = max(result.peak_rss_mb, rss_mb(pids))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)


# --- clients ---------------------------------------------------------------------------------


async def open_session(url: str, origin: str, sub: str, cookie: str):
    from websockets.asyncio.client import connect
    from websockets.typing import Origin, Subprotocol

    subprotocols = [Subprotocol("aws-appsync-event-ws"), Subprotocol("header-e30")]
    ws = await connect(url, subprotocols=subprotocols, origin=Origin(origin),
                       additional_headers={"Cookie": cookie}, open_timeout=60, max_queue=None)
    await ws.send(json.dumps({"type": "connection_init"}))
    await expect(ws, "connection_ack")
    await ws.send(json.dumps({"type": "subscribe", "id": "answers", "channel": f"/outbound/{sub}"}))
    await expect(ws, "subscribe_success")
    return ws


async def expect(ws, kind: str) -> dict:
    while True:
        frame = json.loads(await ws.recv())
        if frame["type"] == kind:
            return frame
        if frame["type"].endswith("_error"):
            raise RuntimeError(json.dumps(frame))


async def one_turn(ws, sub: str, start: asyncio.Event, model: str = DEMO_MODEL_ID) -> TurnTiming:
    timing = TurnTiming()
    conversation = f"bench-{uuid.uuid4().hex[:16]}"
    request = {"modelId": model, "conversationId": conversation, "private": True,
               "messages": [{"role": "user", "content": [{"text": f"bench question {conversation}"}]}]}
    await start.wait()
    sent = time.perf_counter()
    await ws.send(json.dumps({"type": "publish", "id": uuid.uuid4().hex, "channel": inbound_channel(sub),
                              "events": [json.dumps(request)]}))
    while True:
        frame = json.loads(await ws.recv())
        if frame["type"] == "publish_error":
            timing.error = frame["errors"][0]["errorType"]
            return timing
        if frame["type"] != "data":
            continue
        event = json.loads(frame["event"])
        if event.get("conversationId") != conversation:
            continue
        if "contentBlockDelta" in event and timing.first_token is None:
            timing.first_token = time.perf_counter() - sent
        if "error" in event:
            timing.error = event["error"]["type"]
            return timing
        if "metadata" in event:
            timing.total = time.perf_counter() - sent
            return timing


async def paced_turns(turn, think: float, until: float, timings: list[TurnTiming]) -> None:
    """One user: a turn, a think time, the next turn, until `until` (perf_counter seconds)."""
    await asyncio.sleep(random.uniform(0, think))
    while time.perf_counter() < until:
        timings.append(await turn())
        await asyncio.sleep(random.uniform(0.5 * think, 1.5 * think))


async def run_paced(turns: list, result: RunResult, think: float, duration: float, deadline: float) -> None:
    tasks = [asyncio.create_task(paced_turns(turn, think, time.perf_counter() + duration, result.timings))
             for turn in turns]
    done, not_done = await asyncio.wait(tasks, timeout=deadline)
    for task in not_done:
        task.cancel()
        result.timings.append(TurnTiming(error="timeout"))
    for task in done:
        if task.exception() is not None:
            result.timings.append(TurnTiming(error=repr(task.exception())))


async def run_load(result: RunResult, turn_makers: list, pids: list[int], load: Load) -> None:
    """The same load for any server: `turn_makers` are one coroutine factory per user, each
    taking the event that starts a turn."""
    cpu_before, client_before = server_cpu_seconds(pids), time.process_time()
    started = time.perf_counter()
    try:
        if load.think is not None:
            now = asyncio.Event()
            now.set()
            await run_paced([functools.partial(make, now) for make in turn_makers], result, load.think,
                            load.duration, load.deadline)
            return
        for _ in range(load.turns):
            go = asyncio.Event()
            pending = [asyncio.create_task(make(go)) for make in turn_makers]
            go.set()
            remaining = max(1.0, load.deadline - (time.perf_counter() - started))
            done, not_done = await asyncio.wait(pending, timeout=remaining)
            for task in not_done:
                task.cancel()
                result.timings.append(TurnTiming(error="timeout"))
            for task in done:
                error = task.exception()
                result.timings.append(TurnTiming(error=repr(error)) if error else task.result())
            if not_done:
                break
    finally:
        result.wall_seconds = time.perf_counter() - started
        result.cpu_seconds = server_cpu_seconds(pids) - cpu_before
        result.client_cpu_seconds = time.process_time() - client_before


@dataclass
class Load:
    turns: int = 1
    deadline: float = 120.0
    think: float | None = None
    duration: float = 60.0
    model: str = DEMO_MODEL_ID


def layout_label(door: str, ports: list[int]) -> str:
    return f"{door} x{len(ports)}" if len(ports) > 1 else door


async def run(users: list[tuple[str, str]], ports: list[int], pids: list[int], load: Load) -> RunResult:
    """The gateway: users connect over WebSockets, spread over the server processes in turn
    (as a load balancer would), and chat on their own channels."""
    result = RunResult(sessions=len(users), label=layout_label("gateway WS", ports))
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_rss(pids, result, stop))
    gate = asyncio.Semaphore(50)  # open connections 50 at a time, as a crowd arriving would

    async def connect(index: int, sub: str, cookie: str):
        port = ports[index % len(ports)]
        async with gate:
            try:
                url, origin = f"ws://127.0.0.1:{port}/event/realtime", f"http://127.0.0.1:{port}"
                return await open_session(url, origin, sub, cookie)
            except Exception:  # noqa: BLE001 - counted, not fatal
                result.connect_errors += 1
                return None

    sockets = await asyncio.gather(*(connect(index, sub, cookie) for index, (sub, cookie) in enumerate(users)))
    result.idle_rss_mb = rss_mb(pids)
    live = [(ws, sub) for ws, (sub, _) in zip(sockets, users, strict=True) if ws is not None]
    try:
        makers = [functools.partial(one_turn, ws, sub, model=load.model) for ws, sub in live]
        await run_load(result, makers, pids, load)
    finally:
        await asyncio.gather(*(ws.close() for ws, _ in live), return_exceptions=True)
        stop.set()
        await watcher
    return result


# --- the OpenAI-style upstream and LiteLLM's proxy, for the side-by-side mode ----------------


def start_upstream(scratch: Path, chunks: int, chunk_delay: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(scratch / "upstream.log", "wb")  # noqa: SIM115 - the upstream writes to it while it runs
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "sse_upstream.py"), "--port", str(port), "--chunks", str(chunks),
         "--chunk-delay", str(chunk_delay)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    wait_for_port(port, process, "the upstream")
    return process, f"http://127.0.0.1:{port}"


def wait_for_port(port: int, process: subprocess.Popen, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            time.sleep(0.2)
        else:
            return
    process.kill()
    raise SystemExit(f"{what} did not listen on {port} within {seconds:.0f} s")


async def completion_timing(
    url: str, start: asyncio.Event, *, api_key: str = "", model: str = BENCH_MODEL
) -> TurnTiming:
    """One streamed chat completion over HTTP: time to the first text, and to the end."""
    from dataplane.providers import async_http
    from dataplane.providers.openai_compatible import _ServerSentEvents

    timing = TurnTiming()
    body = json.dumps({"model": model, "stream": True, "max_tokens": 1024,
                       "messages": [{"role": "user", "content": f"bench question {uuid.uuid4().hex[:16]}"}]}).encode()
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    await start.wait()
    sent = time.perf_counter()
    response = None
    try:
        response = await async_http.post(f"{url}/v1/chat/completions", body=body, headers=headers,
                                         connect_timeout=30, read_timeout=60)
        if response.status != 200:
            timing.error = f"HTTP {response.status}"
            await response.read(64 * 1024)
            return timing
        events = _ServerSentEvents()
        async for piece in response.pieces():
            if timing.first_token is None and any('"content":"' in data and '"content":""' not in data
                                                  for data in events.feed(piece)):
                timing.first_token = time.perf_counter() - sent
        timing.total = time.perf_counter() - sent
    except Exception as error:  # noqa: BLE001 - counted as the turn's error
        timing.error = type(error).__name__
    finally:
        if response is not None:
            response.release()
    return timing


async def bare_upstream(url: str, repeats: int = 30) -> tuple[float, float]:
    """The upstream alone, one request at a time: first text and whole answer (median)."""
    go = asyncio.Event()
    go.set()
    timings = [await completion_timing(url, go) for _ in range(repeats)]
    good = [(t.first_token, t.total) for t in timings if t.error is None and t.first_token is not None]
    if not good:
        raise SystemExit(f"the upstream at {url} did not answer: {timings[0].error}")
    return statistics.median(first for first, _ in good if first is not None), statistics.median(
        total for _, total in good if total is not None
    )


def litellm_install() -> Path:
    """LiteLLM's proxy in a throw-away venv under /tmp (never a project dependency)."""
    binary = LITELLM_VENV / "bin" / "litellm"
    if not binary.exists():
        print(f"installing litellm[proxy] into {LITELLM_VENV} (once) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
        pip = str(LITELLM_VENV / "bin" / "pip")
        subprocess.run([pip, "install", "-q", "litellm[proxy]"], check=True)
    return binary


def start_litellm(scratch: Path, upstream: str) -> tuple[subprocess.Popen, str, str]:
    """LiteLLM's proxy on 127.0.0.1 with a master key made for this run (it refuses to start
    without one); the clients authenticate with it, as the gateway's do with their session."""
    binary = litellm_install()
    config = scratch / "litellm.yaml"
    config.write_text("\n".join([
        "model_list:",
        f"  - model_name: {BENCH_MODEL}",
        "    litellm_params:",
        f"      model: openai/{BENCH_MODEL}",
        f"      api_base: {upstream}/v1",
        "      api_key: bench-not-a-secret",
        "litellm_settings:",
        "  drop_params: true",
        "  telemetry: false",
        "",
    ]))
    port = free_port()
    log = open(scratch / "litellm.log", "wb")  # noqa: SIM115 - the proxy writes to it while it runs
    master_key = "sk-" + secrets.token_hex(32)
    env = {**os.environ, "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False", "DISABLE_SCHEMA_UPDATE": "True",
           "LITELLM_MASTER_KEY": master_key}
    for name in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"):
        env.pop(name, None)  # LiteLLM reads DATABASE_URL as its own; it must run without one
    process = subprocess.Popen(
        [str(binary), "--config", str(config), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=scratch,
    )
    wait_for_port(port, process, "LiteLLM's proxy", seconds=180)
    return process, f"http://127.0.0.1:{port}", master_key


async def run_http(clients: list[tuple[str, str]], pids: list[int], load: Load, label: str) -> RunResult:
    """The same user model against OpenAI-style HTTP endpoints (the gateway's `/v1` door,
    LiteLLM's proxy): one user per (base URL, API key)."""
    result = RunResult(sessions=len(clients), label=label)
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_rss(pids, result, stop))
    result.idle_rss_mb = rss_mb(pids)
    try:
        makers = [functools.partial(completion_timing, url, api_key=api_key, model=load.model)
                  for url, api_key in clients]
        await run_load(result, makers, pids, load)
    finally:
        stop.set()
        await watcher
    return result


# --- report ----------------------------------------------------------------------------------


def server_cpu_seconds(pids: list[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        for process in _tree(pid):
            try:
                times = process.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                pass
    return total


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def figures(result: RunResult, bare_first: float, bare_total: float) -> dict[str, str]:
    firsts = [t.first_token for t in result.timings if t.first_token is not None and t.error is None]
    totals = [t.total for t in result.timings if t.total is not None and t.error is None]
    errors: dict[str, int] = {}
    for timing in result.timings:
        if timing.error:
            errors[timing.error] = errors.get(timing.error, 0) + 1
    ms = lambda seconds: f"{seconds * 1000:.1f} ms"  # noqa: E731
    return {
        "turns (in s)": f"{len(result.timings)} in {result.wall_seconds:.1f}",
        "turns/s": f"{len(totals) / result.wall_seconds if result.wall_seconds else 0:.1f}",
        "TTFT p50": ms(percentile(firsts, .5)),
        "TTFT p99": ms(percentile(firsts, .99)),
        "TTFT overhead p50": ms(percentile(firsts, .5) - bare_first),
        "TTFT overhead p99": ms(percentile(firsts, .99) - bare_first),
        "whole turn p50": ms(percentile(totals, .5)),
        "turn overhead p50": ms(percentile(totals, .5) - bare_total),
        "errors": f"connect {result.connect_errors}, turns {sum(errors.values())}"
                  + (f" {errors}" if errors else ""),
        "CPU per turn": f"{result.cpu_seconds / len(totals) * 1000 if totals else float('nan'):.1f} ms",
        "RSS idle / peak": f"{result.idle_rss_mb:.0f} / {result.peak_rss_mb:.0f} MB",
        "client CPU (of 1 core)": (
            f"{result.client_cpu_seconds / result.wall_seconds * 100 if result.wall_seconds else 0:.0f} %"
        ),
    }


def report(results: list[RunResult], bare_first: float, bare_total: float) -> None:
    """The runs of one N side by side, one column each."""
    columns = [(result.label, figures(result, bare_first, bare_total)) for result in results]
    width = max(22, *(len(value) + 2 for _, column in columns for value in column.values()))
    print(f"\nN = {results[0].sessions} users")
    print(f"  {'':20}" + "".join(f"{label:>{width}}" for label, _ in columns))
    for name in columns[0][1]:
        print(f"  {name:20}" + "".join(f"{column[name]:>{width}}" for _, column in columns))


def load_average() -> str:
    return " ".join(f"{figure:.2f}" for figure in os.getloadavg())


def stop_process(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def run_all(  # noqa: PLR0917 - the benchmark's main loop, called once
    args: argparse.Namespace, scratch: Path, users: list, keys: list[str], upstream: str | None, model: str,
            bare: tuple[float, float]) -> None:
    """Every N against every process count, over WebSockets (and `/v1`, and LiteLLM), printed
    side by side per N."""
    litellm = start_litellm(scratch, upstream) if args.litellm and upstream else None
    try:
        for count in args.sessions:
            load = Load(turns=args.turns, deadline=args.deadline, think=args.think, duration=args.duration, model=model)
            results = []
            for index, processes in enumerate(args.processes):
                # Fresh users per layout: a stopped server leaves its connections in the users'
                # Redis groups for a while, which would send the next layout's frames the slow way.
                cohort = users[index * count:(index + 1) * count]
                with daphnes(args, scratch, processes) as (ports, pids):
                    results.append(asyncio.run(asyncio.wait_for(run(cohort, ports, pids, load), args.deadline + 60)))
            if args.v1:
                for index, processes in enumerate(args.processes):
                    cohort_keys = keys[index * count:(index + 1) * count]
                    with daphnes(args, scratch, processes) as (ports, pids):
                        # Each user's requests go to one process, spread in turn as for WebSockets.
                        clients = [(f"http://127.0.0.1:{ports[n % len(ports)]}", key)
                                   for n, key in enumerate(cohort_keys)]
                        results.append(asyncio.run(asyncio.wait_for(
                            run_http(clients, pids, load, layout_label("gateway /v1", ports)), args.deadline + 60)))
            if litellm is not None:
                results.append(asyncio.run(asyncio.wait_for(
                    run_http([(litellm[1], litellm[2])] * count, [litellm[0].pid], load, "LiteLLM proxy"),
                    args.deadline + 60,
                )))
            report(results, *bare)
    finally:
        if litellm is not None:
            stop_process(litellm[0])


@contextlib.contextmanager
def daphnes(args: argparse.Namespace, scratch: Path, processes: int) -> Iterator[tuple[list[int], list[int]]]:
    """Fresh daphne processes for one run, (ports, pids); stopped after it."""
    ports = [free_port() for _ in range(processes)]
    servers = [start_daphne(scratch, port, {**os.environ, "DJANGO_SETTINGS_MODULE": args.settings})
               for port in ports]
    try:
        yield ports, [server.pid for server in servers]
    finally:
        for server in servers:
            stop_process(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, nargs="*", default=[10, 100, 500])
    parser.add_argument("--turns", type=int, default=1, help="turns per session, all sessions at once each time")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="the model's seconds between chunks")
    parser.add_argument("--workers", type=int, default=None, help="GATEWAY_TURN_WORKERS for the server")
    parser.add_argument("--settings", default="gateway_project.settings.local", help="the server's settings module")
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds allowed per N before giving up")
    parser.add_argument("--think", type=float, default=None,
                        help="user model: mean seconds between a user's answer and their next turn")
    parser.add_argument("--duration", type=float, default=60.0, help="user model: seconds users keep sending turns")
    parser.add_argument("--upstream", choices=("demo", "openai"), default="demo",
                        help="the model: the demo provider in the server, or a local OpenAI-style SSE server")
    parser.add_argument("--chunks", type=int, default=40, help="openai upstream: chunks per answer")
    parser.add_argument("--processes", type=int, nargs="*", default=[1],
                        help="daphne processes to run side by side (several need REDIS_URL), e.g. 1 2")
    parser.add_argument("--v1", action="store_true",
                        help="also the gateway's OpenAI-compatible /v1 door, same users and load, one API key each")
    parser.add_argument("--litellm", action="store_true",
                        help="also LiteLLM's proxy, same load and upstream (implies --upstream openai and --v1)")
    args = parser.parse_args()
    if args.think is not None:
        args.deadline = max(args.deadline, args.duration + 60)
    if args.litellm:
        args.upstream, args.v1 = "openai", True
    if max(args.processes) > 1 and not os.environ.get("REDIS_URL"):
        raise SystemExit("several processes share one Redis channel layer: set REDIS_URL")

    scratch = Path(tempfile.mkdtemp(prefix="bench-ws-chat-"))
    upstream_process, upstream = (None, None)
    if args.upstream == "openai":
        upstream_process, upstream = start_upstream(scratch, args.chunks, args.chunk_delay)
    env_for_server = {
        "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{scratch / 'db.sqlite3'}"),
        "GATEWAY_SQLITE_PATH": str(scratch / "dataplane.sqlite3"),
        "GATEWAY_LAKE_DIR": str(scratch / "lake"),
        "GATEWAY_DEMO_CHUNK_DELAY": str(args.chunk_delay),
        "GATEWAY_POLICY_CACHE_SECONDS": "5",
        "DJANGO_DEBUG": "0",
        "DJANGO_LOG_LEVEL": "WARNING",
    }
    if args.workers:
        env_for_server["GATEWAY_TURN_WORKERS"] = str(args.workers)
    os.environ.update(env_for_server)
    try:
        users = prepare(scratch, max(args.sessions) * len(args.processes), upstream)
        keys = issue_keys(len(users)) if args.v1 else []
        if upstream:
            bare_first, bare_total = asyncio.run(bare_upstream(upstream))
            model = BENCH_MODEL
        else:
            bare_first, bare_total = bare_provider_seconds(args.chunk_delay)
            model = DEMO_MODEL_ID
        from django.conf import settings

        layer = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
        source = f"OpenAI-style upstream, {args.chunks} chunks" if upstream else "demo provider"
        print(f"daphne on 127.0.0.1, channel layer {layer}, model {model} ({source}), "
              f"{args.chunk_delay * 1000:.0f} ms between chunks; "
              f"bare upstream: first chunk {bare_first * 1000:.2f} ms, "
              f"whole answer {bare_total * 1000:.2f} ms; load average {load_average()}")
        run_all(args, scratch, users, keys, upstream, model, (bare_first, bare_total))
    finally:
        if upstream_process is not None:
            stop_process(upstream_process)
    print(f"\n(scratch files in {scratch}; load average now {load_average()})")


if __name__ == "__main__":
    main()
