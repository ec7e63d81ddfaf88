"""A real daphne process serving the project, for the end-to-end and browser tests.

The subprocess must see the test's users and sessions: on PostgreSQL it connects to the test
database itself (the tests are transactional, so their rows are committed); on SQLite the
in-memory test database is copied to a file with SQLite's backup API just before start.
"""
from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url(scratch: Path) -> str:
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        copy = scratch / "db.sqlite3"
        connection.ensure_connection()
        with sqlite3.connect(copy) as target:
            connection.connection.backup(target)
        return f"sqlite:///{copy}"
    auth = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class LiveDaphne:
    def __init__(self, scratch: Path, *, extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/event/realtime"
        self.log_path = scratch / "daphne.log"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.chat.daphne_settings",
            "DATABASE_URL": database_url(scratch),
            "CHAT_LIVE_GATEWAY_SQLITE_PATH": settings.GATEWAY_SQLITE_PATH,
            "CHAT_LIVE_GATEWAY_LAKE_DIR": settings.GATEWAY_LAKE_DIR,
            "PYTHONPATH": str(ROOT),
            **(extra_env or {}),
        }
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - the server's log until stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway_project.serve", "-b", "127.0.0.1", "-p", str(self.port)],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )
        self._wait_until_serving()

    def _wait_until_serving(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited with {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.1)  # readiness poll of a starting process, not a timing assumption
        self.stop()
        raise RuntimeError(f"daphne did not answer within {START_TIMEOUT}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()
