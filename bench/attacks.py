"""Replays the attacks of the hardening review against a real server and prints what held.

It serves the given checkout on its embedded default (SQLite, process-local layer, demo
model) on 127.0.0.1, with a fresh data directory, signs a user in, and runs each attack a
bounded number of times. Run it on two checkouts to compare before and after:

    .venv/bin/python bench/attacks.py                    # this checkout
    .venv/bin/python bench/attacks.py --repo /path/to/old/checkout

Only 127.0.0.1 is targeted; every loop is bounded and the server is stopped at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin, Subprotocol

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))

from dataplane.channels import inbound_channel, outbound_channel  # noqa: E402 (after the path)
from dataplane.providers.demo import DEMO_MODEL_ID  # noqa: E402

SUBPROTOCOLS = [Subprotocol("aws-appsync-event-ws"), Subprotocol("header-e30")]
SIGN_IN = """
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
User = get_user_model()
user = User.objects.create_user("attacker", "attacker@example.com", "Attack-pass-123", is_staff=True)
from quotas.services import policy_publish_request
policy_publish_request(users=[user])  # a script that creates a user publishes their policy itself
session = SessionStore()
session["_auth_user_id"] = str(user.pk)
session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
session["_auth_user_hash"] = user.get_session_auth_hash()
session.save()
print(session.session_key, user.sub)
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    def __init__(self, repo: Path) -> None:
        self.repo, self.port = repo, free_port()
        self.url, self.ws_url = f"http://127.0.0.1:{self.port}", f"ws://127.0.0.1:{self.port}/event/realtime"
        self.scratch = Path(tempfile.mkdtemp(prefix="attacks-"))
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
            "DJANGO_SETTINGS_MODULE": "gateway_project.settings.local",
            "DATABASE_URL": f"sqlite:///{self.scratch / 'db.sqlite3'}",
            "GATEWAY_SQLITE_PATH": str(self.scratch / "dataplane.sqlite3"),
            "GATEWAY_LAKE_DIR": str(self.scratch / "lake"),
            "PYTHONPATH": str(repo),
        }

    def manage(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=self.repo, env=self.env,
                              capture_output=True, text=True, check=True)
        return done.stdout

    def start(self) -> tuple[str, str]:
        self.manage("migrate", "--noinput", "-v0")
        self.manage("seed_demo")
        cookie, sub = self.manage("shell", "-c", SIGN_IN).split()[-2:]
        served = (
            ["-m", "gateway_project.serve"]
            if (self.repo / "gateway_project" / "serve.py").exists()
            else ["-m", "daphne"]
        )
        tail = [] if "gateway_project.serve" in served else ["gateway_project.asgi:application"]
        self.process = subprocess.Popen(
            [sys.executable, *served, "-b", "127.0.0.1", "-p", str(self.port), *tail],
            cwd=self.repo,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=open(self.scratch / "log", "wb"),  # noqa: SIM115 - the server's log for its lifetime
        )
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{self.url}/healthz", timeout=1)
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
            else:
                return f"sessionid={cookie}", sub
        raise RuntimeError("the server did not start")

    def rss_mb(self) -> float:
        return int(Path(f"/proc/{self.process.pid}/statm").read_text().split()[1]) * 4096 / 2**20

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


async def session(server: Server, cookie: str):
    ws = await connect(server.ws_url, subprotocols=SUBPROTOCOLS, additional_headers={"Cookie": cookie},
                       origin=Origin(server.url), max_size=None, open_timeout=10)
    await ws.send(json.dumps({"type": "connection_init"}))
    await asyncio.wait_for(ws.recv(), 10)
    return ws


def publish(sub: str, *events: dict) -> str:
    return json.dumps({"type": "publish", "id": str(uuid.uuid4()), "channel": inbound_channel(sub),
                       "events": [json.dumps(e) for e in events]})


async def deep_nesting(server: Server, cookie: str, sub: str, connections: int = 200) -> str:
    crashed = answered = 0
    before = server.rss_mb()
    for _ in range(connections):
        ws = await session(server, cookie)
        await ws.send("[" * 100_000)
        try:
            reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
            answered += reply.get("type") == "error"
        except ConnectionClosed as closed:
            crashed += closed.rcvd is not None and closed.rcvd.code == 1011
        await ws.close()
    status = [_post(server, cookie, "[" * 100_000) for _ in range(50)]
    return (
        f"{connections} sockets: {answered} error frames, {crashed} closed 1011; "
        f"50 POST /event: {status.count(500)} × 500, {status.count(400)} × 400; RSS +{server.rss_mb() - before:.1f} MB"
    )


def _post(server: Server, cookie: str, body: str) -> int:
    request = urllib.request.Request(f"{server.url}/event", data=body.encode(), method="POST", headers={
        "Cookie": f"{cookie}; csrftoken=x" + "x" * 31, "X-CSRFToken": "x" * 32, "Content-Type": "application/json",
        "Origin": server.url, "Referer": server.url + "/"})
    try:
        return urllib.request.urlopen(request, timeout=10).status
    except urllib.error.HTTPError as error:
        return error.code


async def turns_in_flight(server: Server, cookie: str, sub: str, turns: int = 40) -> str:
    ws = await session(server, cookie)
    await ws.send(json.dumps({"type": "subscribe", "id": "s", "channel": outbound_channel(sub)}))
    conversations = [f"flight-{n}" for n in range(turns)]
    for start in range(0, turns, 5):
        await ws.send(publish(sub, *({"modelId": DEMO_MODEL_ID, "conversationId": c, "private": True,
                                      "messages": [{"role": "user", "content": [{"text": "Explain quotas " * 15}]}]}
                                     for c in conversations[start:start + 5])))
    finished: set[str] = set()
    deadline = time.monotonic() + 30
    try:
        while len(finished) < turns and time.monotonic() < deadline:
            frame = json.loads(await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.monotonic())))
            if frame.get("type") == "data":
                event = json.loads(frame["event"])
                if "metadata" in event:
                    finished.add(event["conversationId"])
    except (TimeoutError, ConnectionClosed):
        pass
    await ws.close()
    return f"{len(finished)} of {turns} answers complete within 30 s"


async def large_frame(server: Server, cookie: str, sub: str) -> str:
    ws = await session(server, cookie)
    event = {"action": "cancel", "conversationId": "c", "padding": "x" * (230 * 1024)}
    frame = publish(sub, *[event] * 5)
    await ws.send(frame)
    try:
        reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
        outcome = f"answered {reply['type']}"
    except ConnectionClosed as closed:
        outcome = f"closed {closed.rcvd.code if closed.rcvd else 1006}"
    await ws.close()
    return f"{len(frame) / 2**20:.2f} MiB publish: {outcome}"


async def publish_flood(server: Server, cookie: str, sub: str, connections: int = 40, each: int = 60) -> str:
    await asyncio.sleep(5.5)  # the allowance's window (burst 10 / 2 per s) spent by the attacks before
    sockets = [await session(server, cookie) for _ in range(connections)]
    cancel = {"action": "cancel", "conversationId": "none"}

    async def flood(ws) -> int:
        accepted = 0
        for _ in range(each):
            try:
                await ws.send(publish(sub, cancel))
                accepted += json.loads(await asyncio.wait_for(ws.recv(), 10)).get("type") == "publish_success"
            except ConnectionClosed:  # closed for abuse (4429) after enough refusals
                break
        return accepted

    started = time.monotonic()
    accepted = sum(await asyncio.gather(*(flood(ws) for ws in sockets)))
    elapsed = time.monotonic() - started
    for ws in sockets:
        await ws.close()
    return f"{connections} connections × {each} publishes: {accepted} accepted in {elapsed:.1f} s"


def admin_guessing(server: Server, attempts: int = 30) -> str:
    import http.cookiejar
    import re

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def attempt(password: str) -> tuple[int, str]:
        page = opener.open(f"{server.url}/admin/login/?next=/admin/", timeout=10)
        html = page.read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
        form_url = page.geturl()
        field = "login" if "/accounts/login/" in form_url else "username"
        data = urllib.parse.urlencode({"csrfmiddlewaretoken": token.group(1) if token else "", field: "attacker",
                                       "password": password, "next": "/admin/"}).encode()
        request = urllib.request.Request(form_url, data=data, headers={"Referer": form_url})
        try:
            answer = opener.open(request, timeout=10)
            return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    throttled = sum(
        status == 429 or "Too many" in body for status, body in (attempt(f"wrong-{n}") for n in range(attempts))
    )
    _status, _body = attempt("Attack-pass-123")
    signed_in = "sessionid" in {c.name for c in jar}
    return f"{attempts} wrong passwords: {throttled} throttled; the right one then signed in: {signed_in}"


def _git_head(repo: Path) -> str:
    # Run once before any attack starts, so blocking the loop costs nothing.
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], check=False, cwd=repo, capture_output=True, text=True
    ).stdout.strip()


async def main() -> None:
    import urllib.parse  # noqa: F401 - used by admin_guessing

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=HERE, help="the checkout to serve")
    repo = parser.parse_args().repo.resolve()
    server = Server(repo)
    cookie, sub = server.start()
    try:
        print(f"serving {repo} (git {_git_head(repo)})")
        for name, attack in (("deep nesting", deep_nesting), ("40 turns in flight", turns_in_flight),
                             ("1.1 MiB publish", large_frame), ("publish flood, one user", publish_flood)):
            print(f"{name:26} {await attack(server, cookie, sub)}")
        print(f"{'admin password guessing':26} {admin_guessing(server)}")
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
