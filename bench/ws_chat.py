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

Everything is bounded in time (`--deadline` per N) and the server is stopped at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dataplane.channels import inbound_channel, outbound_channel  # noqa: E402 (after the path)
from dataplane.providers.demo import DEMO_MODEL_ID, DEMO_MODEL_NAME  # noqa: E402


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
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0  # the server's user + system CPU while the turns ran


# --- fixtures: database, users, sessions, policies ---------------------------------------


def prepare(sessions: int) -> list[tuple[str, str]]:
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
        assert first is not None, "the demo model always answers"
        firsts.append(first - started)
        totals.append(time.perf_counter() - started)
    return statistics.median(firsts), statistics.median(totals)


# --- server ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_daphne(scratch: Path, port: int, env: dict[str, str]) -> subprocess.Popen:
    log = open(scratch / "daphne.log", "wb")  # noqa: SIM115 - the server's log for its lifetime
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway_project.serve", "-b", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"daphne exited: {(scratch / 'daphne.log').read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("daphne did not start within 30 s")


def rss_mb(pid: int) -> float:
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss / 2**20
    except ImportError:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except Exception:  # noqa: BLE001 - the process may have gone
        return 0.0
    return 0.0


async def watch_rss(pid: int, result: RunResult, stop: asyncio.Event) -> None:
    while not stop.is_set():
        result.peak_rss_mb = max(result.peak_rss_mb, rss_mb(pid))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)


# --- clients ---------------------------------------------------------------------------------


async def open_session(url: str, origin: str, sub: str, cookie: str):
    from websockets.asyncio.client import connect
    from websockets.typing import Origin, Subprotocol

    ws = await connect(url, subprotocols=[Subprotocol("aws-appsync-event-ws"), Subprotocol("header-e30")],
                       origin=Origin(origin),
                       additional_headers={"Cookie": cookie}, open_timeout=60, max_queue=None)
    await ws.send(json.dumps({"type": "connection_init"}))
    await expect(ws, "connection_ack")
    await ws.send(json.dumps({"type": "subscribe", "id": "answers", "channel": outbound_channel(sub)}))
    await expect(ws, "subscribe_success")
    return ws


async def expect(ws, kind: str) -> dict:
    while True:
        frame = json.loads(await ws.recv())
        if frame["type"] == kind:
            return frame
        if frame["type"].endswith("_error"):
            raise RuntimeError(json.dumps(frame))


async def one_turn(ws, sub: str, start: asyncio.Event) -> TurnTiming:
    timing = TurnTiming()
    conversation = f"bench-{uuid.uuid4().hex[:16]}"
    request = {"modelId": DEMO_MODEL_ID, "conversationId": conversation, "private": True,
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


async def paced_turns(ws, sub: str, think: float, until: float, timings: list[TurnTiming]) -> None:
    """One user: a turn, a think time, the next turn, until `until` (perf_counter seconds)."""
    now = asyncio.Event()
    now.set()
    await asyncio.sleep(random.uniform(0, think))
    while time.perf_counter() < until:
        timings.append(await one_turn(ws, sub, now))
        await asyncio.sleep(random.uniform(0.5 * think, 1.5 * think))


async def run_paced(live: list, result: RunResult, think: float, duration: float, deadline: float) -> None:
    tasks = [asyncio.create_task(paced_turns(ws, sub, think, time.perf_counter() + duration, result.timings))
             for ws, sub in live]
    done, not_done = await asyncio.wait(tasks, timeout=deadline)
    for task in not_done:
        task.cancel()
        result.timings.append(TurnTiming(error="timeout"))
    for task in done:
        if task.exception() is not None:
            result.timings.append(TurnTiming(error=repr(task.exception())))


async def run(users: list[tuple[str, str]], *, port: int, pid: int, turns: int, deadline: float,
              think: float | None = None, duration: float = 60.0) -> RunResult:
    result = RunResult(sessions=len(users))
    url, origin = f"ws://127.0.0.1:{port}/event/realtime", f"http://127.0.0.1:{port}"
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_rss(pid, result, stop))
    gate = asyncio.Semaphore(50)  # open connections 50 at a time, as a crowd arriving would

    async def connect(sub: str, cookie: str):
        async with gate:
            try:
                return await open_session(url, origin, sub, cookie)
            except Exception:  # noqa: BLE001 - counted, not fatal
                result.connect_errors += 1
                return None

    sockets = await asyncio.gather(*(connect(sub, cookie) for sub, cookie in users))
    result.idle_rss_mb = rss_mb(pid)
    live = [(ws, sub) for ws, (sub, _) in zip(sockets, users, strict=True) if ws is not None]
    cpu_before = server_cpu_seconds(pid)
    started = time.perf_counter()
    try:
        if think is not None:
            await run_paced(live, result, think, duration, deadline)
            turns = 0
        for _ in range(turns):
            go = asyncio.Event()
            pending = [asyncio.create_task(one_turn(ws, sub, go)) for ws, sub in live]
            go.set()
            done, not_done = await asyncio.wait(pending, timeout=max(1.0, deadline - (time.perf_counter() - started)))
            for task in not_done:
                task.cancel()
                result.timings.append(TurnTiming(error="timeout"))
            for task in done:
                result.timings.append(
                    task.result() if not task.exception() else TurnTiming(error=repr(task.exception()))
                )
            if not_done:
                break
    finally:
        result.wall_seconds = time.perf_counter() - started
        result.cpu_seconds = server_cpu_seconds(pid) - cpu_before
        await asyncio.gather(*(ws.close() for ws, _ in live), return_exceptions=True)
        stop.set()
        await watcher
    return result


# --- report ----------------------------------------------------------------------------------


def server_cpu_seconds(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def report(result: RunResult, bare_first: float, bare_total: float) -> None:
    firsts = [t.first_token for t in result.timings if t.first_token is not None and t.error is None]
    totals = [t.total for t in result.timings if t.total is not None]
    errors: dict[str, int] = {}
    for timing in result.timings:
        if timing.error:
            errors[timing.error] = errors.get(timing.error, 0) + 1
    ms = lambda seconds: f"{seconds * 1000:8.1f}"  # noqa: E731
    print(f"\nN = {result.sessions} sessions, {len(result.timings)} turns in {result.wall_seconds:.2f} s"
          f" ({len(totals) / result.wall_seconds if result.wall_seconds else 0:.1f} turns/s)")
    print(f"  time to first token  p50 {ms(percentile(firsts, .5))} ms   p99 {ms(percentile(firsts, .99))} ms")
    print(
        f"  overhead (1st token) p50 {ms(percentile(firsts, 0.5) - bare_first)} ms"
        f"   p99 {ms(percentile(firsts, 0.99) - bare_first)} ms"
    )
    print(f"  whole turn           p50 {ms(percentile(totals, .5))} ms   p99 {ms(percentile(totals, .99))} ms")
    print(
        f"  overhead (turn)      p50 {ms(percentile(totals, 0.5) - bare_total)} ms"
        f"   p99 {ms(percentile(totals, 0.99) - bare_total)} ms"
    )
    print(f"  errors: connect {result.connect_errors}, turns {errors or 0}")
    print(f"  server CPU per turn: {result.cpu_seconds / len(totals) * 1000 if totals else float('nan'):.1f} ms")
    print(f"  server RSS: {result.idle_rss_mb:.0f} MB with all connected, peak {result.peak_rss_mb:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, nargs="*", default=[10, 100, 500])
    parser.add_argument("--turns", type=int, default=1, help="turns per session, all sessions at once each time")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="demo provider's seconds between chunks")
    parser.add_argument("--workers", type=int, default=None, help="GATEWAY_TURN_WORKERS for the server")
    parser.add_argument("--settings", default="gateway_project.settings.local", help="the server's settings module")
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds allowed per N before giving up")
    parser.add_argument("--think", type=float, default=None,
                        help="user model: mean seconds between a user's answer and their next turn")
    parser.add_argument("--duration", type=float, default=60.0, help="user model: seconds users keep sending turns")
    args = parser.parse_args()
    if args.think is not None:
        args.deadline = max(args.deadline, args.duration + 60)

    scratch = Path(tempfile.mkdtemp(prefix="bench-ws-chat-"))
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
    users = prepare(max(args.sessions))
    bare_first, bare_total = bare_provider_seconds(args.chunk_delay)
    from django.conf import settings

    print(f"daphne on 127.0.0.1, channel layer {settings.CHANNEL_LAYERS['default']['BACKEND'].rsplit('.', 1)[-1]}, "
          f"{os.environ.get('GATEWAY_TURN_WORKERS', settings.GATEWAY_TURN_WORKERS)} turn workers, "
          f"demo chunk delay {args.chunk_delay}s; bare provider: first chunk {bare_first * 1000:.2f} ms, "
          f"whole answer {bare_total * 1000:.2f} ms")
    for count in args.sessions:
        port = free_port()
        server = start_daphne(scratch, port, {**os.environ, "DJANGO_SETTINGS_MODULE": args.settings})
        try:
            result = asyncio.run(asyncio.wait_for(
                run(users[:count], port=port, pid=server.pid, turns=args.turns, deadline=args.deadline,
                    think=args.think, duration=args.duration),
                args.deadline + 60))
            report(result, bare_first, bare_total)
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
    print(f"\n(scratch files in {scratch})")


if __name__ == "__main__":
    main()
