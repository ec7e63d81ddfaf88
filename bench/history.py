"""Benchmark: the conversation-history API for one user with a long history (not a test).

    .venv/bin/python bench/history.py                          # 1,000 conversations of 20 messages
    .venv/bin/python bench/history.py --conversations 5000 --messages 10 --repeat 50

It migrates a scratch SQLite database (or the one `--database-url` names; its tables get the
bench user's rows, removed at the end), gives one user that history under a policy that keeps
it, and times what the chat page does, through Django's full request stack (test client, a
signed-in session): the first page of the list, a search that matches one message deep in the
history, opening a conversation, appending a turn, and the export of everything. It prints the
p50 and p95 of each in milliseconds, and the queries each request ran.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def setup(database_url: str | None, scratch: Path) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "gateway_project.settings.local"
    os.environ["DATABASE_URL"] = database_url or f"sqlite:///{scratch / 'db.sqlite3'}"
    os.environ.setdefault("GATEWAY_SQLITE_PATH", str(scratch / "dataplane.sqlite3"))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def fill(*, conversations: int, messages: int) -> tuple[Any, Any]:
    from django.contrib.auth import get_user_model

    from chat.models import Conversation, Message
    from quotas.models import QuotaPolicy, UserPolicyOverride

    user = get_user_model().objects.create(username=f"bench-history-{time.time_ns()}")
    policy = QuotaPolicy.objects.create(name=f"Bench history {user.pk}", unlimited=True)
    UserPolicyOverride.objects.create(user=user, policy=policy)
    rows = Conversation.objects.bulk_create(
        [Conversation(owner=user, title=f"Conversation {n}", model_id="demo.echo-v1") for n in range(conversations)]
    )
    batch: list[Message] = []
    for n, conversation in enumerate(rows):
        for m in range(messages):
            needle = " zanzibar" if (n, m) == (conversations // 2, messages - 1) else ""
            text = f"Message {m} of conversation {n}: some ordinary words about tokens and quotas{needle}."
            batch.append(Message(conversation=conversation, role="user" if m % 2 == 0 else "assistant", content=text))
        if len(batch) >= 5_000:
            Message.objects.bulk_create(batch)
            batch = []
    Message.objects.bulk_create(batch)
    return user, policy


def timed(call: Callable[[], object], repeat: int) -> tuple[list[float], int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        call()
    queries = len(captured)
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples, queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=1_000)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        setup(args.database_url, Path(scratch))
        from django.test import Client

        user, policy = fill(conversations=args.conversations, messages=args.messages)
        client = Client(HTTP_HOST="127.0.0.1")  # a host the local settings allow
        client.force_login(user)
        some = client.get("/api/conversations/").json()["conversations"][0]["id"]
        answer = {"role": "assistant", "content": "One more answer", "modelId": "demo.echo-v1"}
        turn = json.dumps({"messages": [{"role": "user", "content": "One more question"}, answer]})

        def search() -> None:
            assert client.get("/api/conversations/", {"q": "ZANZIBAR"}).json()["total"] == 1

        cases = {
            "list, first page": lambda: client.get("/api/conversations/"),
            "search (one match)": search,
            "open a conversation": lambda: client.get(f"/api/conversations/{some}"),
            "append a turn": lambda: client.post(f"/api/conversations/{some}/turns", data=turn,
                                                 content_type="application/json"),
            "export everything": lambda: client.get("/api/conversations/export"),
        }
        print(f"{args.conversations:,} conversations × {args.messages} messages, {args.repeat} runs each "
              f"({'SQLite' if not args.database_url else args.database_url.split(':')[0]})")
        for name, call in cases.items():
            repeat = max(3, args.repeat // 10) if name == "export everything" else args.repeat
            samples, queries = timed(call, repeat)
            p95 = statistics.quantiles(samples, n=20)[-1] if len(samples) >= 2 else samples[0]
            print(f"  {name:<22} p50 {statistics.median(samples):8.1f} ms   p95 {p95:8.1f} ms   {queries} queries")
        user.delete()
        policy.delete()


if __name__ == "__main__":
    main()
