"""The embedded store: one SQLite file (stdlib `sqlite3`), safe across threads and processes.

Each thread gets its own connection (a `sqlite3.Connection` must not be shared while a
transaction is open), the file runs in WAL mode so readers never wait for the writer, and every
read-check-write sequence runs under `BEGIN IMMEDIATE`, which takes the file's write lock up
front: two racing reservations are serialised by SQLite itself, across threads *and* processes
(daphne and a Celery worker may share the file).
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from dataplane.errors import StoreUnavailableError
from dataplane.policy import EffectivePolicy
from dataplane.stores.base import (
    CachedAnswer,
    PreparedAnswer,
    Reservation,
    StoredAnswers,
    StoreStats,
    TokenCount,
    WindowCharge,
    WindowUsage,
    cached_answer_document,
    cached_answer_from_document,
    quota_refusal,
    reservation_of,
    window_usage,
)

Clock = Callable[[], datetime]

BUSY_TIMEOUT_MS = 10_000
# Expired rows are swept every this many writes of their kind: SQLite has no TTL, and a sweep
# per write would double the cost of the hot path for rows nobody reads any more.
SWEEP_EVERY = 500

SCHEMA = """
CREATE TABLE IF NOT EXISTS policies (
    sub TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    document TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS usage_windows (
    sub TEXT NOT NULL,
    window_key TEXT NOT NULL,
    input INTEGER NOT NULL DEFAULT 0,
    output INTEGER NOT NULL DEFAULT 0,
    total INTEGER NOT NULL DEFAULT 0,
    reserved INTEGER NOT NULL DEFAULT 0,
    requests INTEGER NOT NULL DEFAULT 0,
    expires_at INTEGER NOT NULL,
    cost INTEGER NOT NULL DEFAULT 0,  -- micro-USD
    PRIMARY KEY (sub, window_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS usage_windows_by_key ON usage_windows (window_key);
CREATE TABLE IF NOT EXISTS cached_answers (
    key TEXT PRIMARY KEY,
    answer TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS prepared_answers (
    question_key TEXT NOT NULL,
    model_id TEXT NOT NULL,  -- '' answers for every model
    text TEXT NOT NULL,
    question TEXT NOT NULL DEFAULT '',
    expires_at INTEGER,  -- NULL never expires
    PRIMARY KEY (question_key, model_id)
);
CREATE TABLE IF NOT EXISTS cancel_markers (
    sub TEXT NOT NULL,
    conversation_id TEXT NOT NULL,  -- '' cancels every conversation of the user
    requested_at_ms INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (sub, conversation_id)
) WITHOUT ROWID;
"""

ADD_TO_WINDOW = """
INSERT INTO usage_windows (sub, window_key, input, output, total, reserved, requests, expires_at, cost)
VALUES (:sub, :key, :input, :output, :total, :reserved, :requests, :expires_at, :cost)
ON CONFLICT (sub, window_key) DO UPDATE SET
    input = input + excluded.input,
    cost = cost + excluded.cost,
    output = output + excluded.output,
    total = total + excluded.total,
    reserved = reserved + excluded.reserved,
    requests = requests + excluded.requests,
    expires_at = max(expires_at, excluded.expires_at)
"""


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """A store file from an earlier version lacks the columns added since (CREATE TABLE IF
    NOT EXISTS leaves an existing table alone)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(usage_windows)")}
    if "cost" not in columns:
        conn.execute("ALTER TABLE usage_windows ADD COLUMN cost INTEGER NOT NULL DEFAULT 0")


class SQLiteStore:
    def __init__(self, path: str, *, clock: Clock | None = None) -> None:
        if path in ("", ":memory:"):
            # Each thread has its own connection, and each in-memory connection its own database.
            raise ValueError("SQLiteStore needs a file path; an in-memory database is not shared between threads")
        self.path = path
        self.stats = StoreStats()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._local = threading.local()
        self._lock = threading.Lock()  # guards the schema flag, the connection list and stats
        # Writers of this process take turns here, woken as soon as the lock is free. Racing
        # for SQLite's own write lock instead, the losers sleep in its busy handler (for up to
        # 100 ms a try), which showed as a long tail of time to first token under load.
        self._write_turn = threading.Lock()
        self._schema_ready = False
        self._connections: list[sqlite3.Connection] = []
        self._writes_since_sweep = 0

    # -- plumbing -----------------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        # isolation_level=None: we issue BEGIN ourselves, so sqlite3 never opens a deferred
        # transaction behind our back (a deferred one would upgrade to a write lock mid-way
        # and fail with SQLITE_BUSY instead of waiting).
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        with self._lock:
            if not self._schema_ready:
                conn.executescript(SCHEMA)
                _add_missing_columns(conn)
                self._schema_ready = True
            self._connections.append(conn)
        self._local.conn = conn
        return conn

    @contextmanager
    def _transaction(self, operation: str) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any exception."""
        with self._errors(operation), self._write_turn:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def _errors(self, operation: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as error:
            raise StoreUnavailableError(f"SQLite store {self.path!r} failed during {operation}: {error}") from error
        except OSError as error:
            raise StoreUnavailableError(
                f"SQLite store {self.path!r} cannot be opened ({operation}): {error}"
            ) from error

    def _count(self, operation: str, kind: str) -> None:
        with self._lock:
            self.stats.count(operation, kind=kind)

    def _now_epoch(self) -> int:
        return int(self._clock().timestamp())

    def _due_for_sweep(self) -> bool:
        with self._lock:
            self._writes_since_sweep += 1
            if self._writes_since_sweep < SWEEP_EVERY:
                return False
            self._writes_since_sweep = 0
            return True

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()

    # -- policies -----------------------------------------------------------------------------
    def policy_get(self, sub: str) -> EffectivePolicy | None:
        with self._errors("policy_get"):
            row = self._connection().execute("SELECT document FROM policies WHERE sub = ?", (sub,)).fetchone()
        self._count("policy_get", "read")
        return EffectivePolicy.from_document(json.loads(row["document"])) if row else None

    def policy_put(self, policy: EffectivePolicy) -> bool:
        with self._errors("policy_put"):
            cursor = self._connection().execute(
                """
                INSERT INTO policies (sub, version, document) VALUES (?, ?, ?)
                ON CONFLICT (sub) DO UPDATE SET version = excluded.version, document = excluded.document
                WHERE excluded.version > policies.version
                """,
                (policy.sub, policy.version, json.dumps(policy.to_document())),
            )
        self._count("policy_put", "conditional_write")
        return cursor.rowcount == 1

    def policy_delete(self, sub: str) -> None:
        with self._errors("policy_delete"):
            self._connection().execute("DELETE FROM policies WHERE sub = ?", (sub,))
        self._count("policy_delete", "write")

    def policy_list(self) -> list[EffectivePolicy]:
        with self._errors("policy_list"):
            rows = self._connection().execute("SELECT document FROM policies ORDER BY sub").fetchall()
        self._count("policy_list", "read")
        return [EffectivePolicy.from_document(json.loads(row["document"])) for row in rows]

    # -- usage windows ------------------------------------------------------------------------
    def reserve(self, *, sub: str, charges: list[WindowCharge], estimate: TokenCount) -> Reservation:
        refusal = quota_refusal(charges, estimate)
        if refusal is not None:
            raise refusal
        with self._transaction("reserve") as conn:
            rows = self._read_rows(conn, [(charge.owner_for(sub), charge.window.key) for charge in charges])
            usage = {charge.slot: rows.get((charge.owner_for(sub), charge.window.key), {}) for charge in charges}
            refusal = quota_refusal(charges, estimate, usage)
            if refusal is None:
                for charge in charges:
                    conn.execute(
                        ADD_TO_WINDOW,
                        {
                            "sub": charge.owner_for(sub),
                            "key": charge.window.key,
                            "input": estimate.input,
                            "output": estimate.output,
                            "total": estimate.total,
                            "reserved": estimate.total,
                            "cost": estimate.cost,
                            "requests": 1,
                            "expires_at": charge.window.expires_at,
                        },
                    )
            if self._due_for_sweep():
                conn.execute("DELETE FROM usage_windows WHERE expires_at < ?", (self._now_epoch(),))
        self._count("reserve", "conditional_write")
        if refusal is not None:
            raise refusal
        return reservation_of(sub=sub, charges=charges, estimate=estimate)

    def settle(self, *, reservation: Reservation, actual: TokenCount) -> list[WindowUsage]:
        estimate = reservation.estimate
        after: dict[tuple[str, str], dict[str, int]] = {}
        with self._transaction("settle") as conn:
            for owner, key, expires_at in reservation.rows():
                # An upsert, so a settle whose row was already swept still records the usage;
                # RETURNING hands back the counters for the usage bars in the same statement.
                row = conn.execute(
                    ADD_TO_WINDOW + " RETURNING window_key, input, output, total, reserved, cost",
                    {
                        "sub": owner,
                        "key": key,
                        "input": actual.input - estimate.input,
                        "output": actual.output - estimate.output,
                        "total": actual.total - estimate.total,
                        "reserved": -estimate.total,
                        "cost": actual.cost - estimate.cost,
                        "requests": 0,
                        "expires_at": expires_at,
                    },
                ).fetchone()
                after[(owner, key)] = dict(row)
        self._count("settle", "write")
        return [
            window_usage(charge, after.get((charge.owner_for(reservation.sub), charge.window.key), {}))
            for charge in reservation.charges
        ]

    def usage_read(self, *, sub: str, charges: list[WindowCharge]) -> list[WindowUsage]:
        rows = [(charge.owner_for(sub), charge.window.key) for charge in charges]
        with self._errors("usage_read"):
            usage = self._read_rows(self._connection(), rows)
        self._count("usage_read", "read")
        return [window_usage(charge, usage.get(row, {})) for charge, row in zip(charges, rows, strict=True)]

    def usage_reset(self, *, sub: str, window_key: str) -> None:
        # Deleting the row zeroes the window. A request in flight during the reset settles
        # into a fresh row, leaving it off by at most that request's unused estimate.
        with self._errors("usage_reset"):
            self._connection().execute("DELETE FROM usage_windows WHERE sub = ? AND window_key = ?", (sub, window_key))
        self._count("usage_reset", "write")

    def usage_list(self, *, window_key: str) -> dict[str, TokenCount]:
        with self._errors("usage_list"):
            rows = self._connection().execute(
                "SELECT sub, input, output, cost FROM usage_windows WHERE window_key = ? ORDER BY sub", (window_key,)
            ).fetchall()
        self._count("usage_list", "read")
        return {row["sub"]: TokenCount(input=row["input"], output=row["output"], cost=row["cost"]) for row in rows}

    def usage_row(self, *, sub: str, window_key: str) -> dict | None:
        """The raw row of one window (for tests and the drift check)."""
        with self._errors("usage_row"):
            row = self._connection().execute(
                "SELECT * FROM usage_windows WHERE sub = ? AND window_key = ?", (sub, window_key)
            ).fetchone()
        return dict(row) if row else None

    @staticmethod
    def _read_rows(conn: sqlite3.Connection, rows: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, int]]:
        """The counters of these (owner, window key) rows that exist."""
        if not rows:
            return {}
        where = " OR ".join("(sub = ? AND window_key = ?)" for _ in rows)
        found = conn.execute(
            f"SELECT sub, window_key, input, output, total, reserved, cost FROM usage_windows "  # noqa: S608 - only ? marks
            f"WHERE {where}",
            [value for row in rows for value in row],
        ).fetchall()
        return {(row["sub"], row["window_key"]): dict(row) for row in found}

    # -- answer cache -------------------------------------------------------------------------
    def cache_get(self, key: str) -> CachedAnswer | None:
        now = self._now_epoch()
        with self._errors("cache_get"):
            conn = self._connection()
            row = conn.execute("SELECT answer, expires_at FROM cached_answers WHERE key = ?", (key,)).fetchone()
            if row is not None and row["expires_at"] <= now:
                # Lazy purge; the guard on expires_at keeps a fresh answer written meanwhile.
                conn.execute("DELETE FROM cached_answers WHERE key = ? AND expires_at <= ?", (key, now))
                row = None
        self._count("cache_get", "read")
        return cached_answer_from_document(json.loads(row["answer"])) if row else None

    def cache_put(self, key: str, answer: CachedAnswer, *, ttl_seconds: int) -> None:
        now = self._now_epoch()
        with self._errors("cache_put"):
            conn = self._connection()
            conn.execute(
                "INSERT INTO cached_answers (key, answer, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET answer = excluded.answer, expires_at = excluded.expires_at",
                (key, json.dumps(cached_answer_document(answer)), now + int(ttl_seconds)),
            )
            if self._due_for_sweep():
                conn.execute("DELETE FROM cached_answers WHERE expires_at <= ?", (now,))
        self._count("cache_put", "write")

    def cache_purge(self) -> int:
        with self._errors("cache_purge"):
            cursor = self._connection().execute("DELETE FROM cached_answers")
        self._count("cache_purge", "write")
        return cursor.rowcount

    # -- prepared answers ---------------------------------------------------------------------
    def prepared_get(self, *, question_key: str, model_id: str) -> PreparedAnswer | None:
        now = self._now_epoch()
        with self._errors("prepared_get"):
            rows = self._connection().execute(
                "SELECT * FROM prepared_answers WHERE question_key = ? AND model_id IN (?, '') "
                "AND (expires_at IS NULL OR expires_at > ?) ORDER BY model_id DESC",
                (question_key, model_id, now),
            ).fetchall()
        self._count("prepared_get", "read")
        if not rows:
            return None
        row = rows[0]  # the model-scoped answer sorts before the '' one
        return PreparedAnswer(
            question_key=row["question_key"],
            model_id=row["model_id"],
            text=row["text"],
            question=row["question"],
            expires_at=row["expires_at"],
        )

    def answers_get(self, *, question_key: str, model_id: str, cache_key: str | None) -> StoredAnswers:
        now = self._now_epoch()
        query = (
            "SELECT 0 AS cached, model_id, text, question, expires_at FROM prepared_answers "
            "WHERE question_key = ? AND model_id IN (?, '') AND (expires_at IS NULL OR expires_at > ?)"
        )
        params: tuple = (question_key, model_id, now)
        if cache_key is not None:
            # Expired answers are filtered, not purged: the periodic sweep in `cache_put` deletes them.
            query += (
                " UNION ALL SELECT 1, '', answer, '', expires_at FROM cached_answers WHERE key = ? AND expires_at > ?"
            )
            params += (cache_key, now)
        with self._errors("answers_get"):
            rows = self._connection().execute(query, params).fetchall()
        self._count("answers_get", "read")
        prepared_rows = sorted(
            (row for row in rows if not row["cached"]), key=lambda row: row["model_id"], reverse=True
        )
        cached_row = next((row for row in rows if row["cached"]), None)
        prepared = None
        if prepared_rows:
            row = prepared_rows[0]  # the model-scoped answer sorts before the '' one
            prepared = PreparedAnswer(
                question_key=question_key,
                model_id=row["model_id"],
                text=row["text"],
                question=row["question"],
                expires_at=row["expires_at"],
            )
        cached = cached_answer_from_document(json.loads(cached_row["text"])) if cached_row else None
        return StoredAnswers(prepared=prepared, cached=cached)

    def prepared_put(self, answer: PreparedAnswer) -> None:
        with self._errors("prepared_put"):
            self._connection().execute(
                "INSERT INTO prepared_answers (question_key, model_id, text, question, expires_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (question_key, model_id) DO UPDATE SET "
                "text = excluded.text, question = excluded.question, expires_at = excluded.expires_at",
                (answer.question_key, answer.model_id, answer.text, answer.question, answer.expires_at),
            )
        self._count("prepared_put", "write")

    def prepared_delete(self, *, question_key: str, model_id: str) -> None:
        with self._errors("prepared_delete"):
            self._connection().execute(
                "DELETE FROM prepared_answers WHERE question_key = ? AND model_id = ?", (question_key, model_id)
            )
        self._count("prepared_delete", "write")

    # -- cancel markers -----------------------------------------------------------------------
    def cancel_request(self, *, sub: str, conversation_id: str, ttl_seconds: int) -> None:
        now = self._clock()
        with self._errors("cancel_request"):
            conn = self._connection()
            conn.execute(
                "INSERT INTO cancel_markers (sub, conversation_id, requested_at_ms, expires_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (sub, conversation_id) DO UPDATE SET "
                "requested_at_ms = excluded.requested_at_ms, expires_at = excluded.expires_at",
                (sub, conversation_id, _epoch_ms(now), int(now.timestamp()) + int(ttl_seconds)),
            )
            if self._due_for_sweep():
                conn.execute("DELETE FROM cancel_markers WHERE expires_at <= ?", (int(now.timestamp()),))
        self._count("cancel_request", "write")

    def cancel_requested(self, *, sub: str, conversation_id: str, since: datetime) -> bool:
        with self._errors("cancel_requested"):
            row = self._connection().execute(
                "SELECT max(requested_at_ms) AS latest FROM cancel_markers "
                "WHERE sub = ? AND conversation_id IN (?, '') AND expires_at > ?",
                (sub, conversation_id, self._now_epoch()),
            ).fetchone()
        self._count("cancel_requested", "read")
        return row["latest"] is not None and row["latest"] >= _epoch_ms(since)


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
