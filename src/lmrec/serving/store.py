"""Durable online state: the event log, per-user state and online item changes.

`StateStore` is the seam; `SQLiteStateStore` is the default (one file, WAL mode,
`synchronous=FULL`, so a commit that returned survives a power cut or `kill -9`).
A Redis store for scale-out implements the same protocol.

Events are idempotent by `event_id` (a primary key: a repeated id is ignored).
A user's state is derived from their events, so erasing the events erases the
state. After an erasure only a salted hash of the user id is kept, so that the
immutable model artefact's copy of their history is no longer served.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "NEGATIVE_EVENTS",
    "POSITIVE_EVENTS",
    "Event",
    "SQLiteStateStore",
    "StateStore",
    "StoredItem",
    "UserState",
]

#: Event types that count as consumption (they join the user's history).
POSITIVE_EVENTS = ("view", "click", "add_to_cart", "purchase", "rating")
#: Event types that mean "do not show me this".
NEGATIVE_EVENTS = ("not_interested",)
#: Ratings below this are not treated as liking the item.
MIN_POSITIVE_RATING = 3.0


@dataclass(frozen=True)
class Event:
    """One user action; `timestamp` is seconds since the epoch."""

    event_id: str
    user_id: str
    item_id: str
    type: str
    timestamp: float
    value: float | None = None
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UserState:
    """What the recommender needs about a user right now.

    `history`: consumed item ids, oldest first (the most recent `limit`);
    `negative`: items the user said they are not interested in;
    `erased`: the user asked to be forgotten (ignore older copies of their data).
    """

    history: list[str]
    negative: list[str]
    erased: bool = False


@dataclass(frozen=True)
class StoredItem:
    """An item added or changed online (catalogue fields) or deleted."""

    item_id: str
    fields: dict[str, Any]
    deleted: bool


class StateStore(Protocol):
    """Durable per-user state and event log behind one protocol."""

    def add_events(self, events: Sequence[Event]) -> int:
        """Store events durably (return only after commit); returns how many were new."""
        ...

    def user_state(self, user_id: str, limit: int = 200) -> UserState:
        """The user's recent history and negative feedback."""
        ...

    def erase_user(self, user_id: str) -> int:
        """Delete every trace of a user (events, state); returns events removed."""
        ...

    def put_items(self, items: Sequence[StoredItem]) -> None:
        """Record online item upserts and deletions durably."""
        ...

    def items(self) -> list[StoredItem]:
        """All online item changes, oldest first (replayed onto a freshly loaded model)."""
        ...

    def ping(self) -> bool:
        """Whether the store answers."""
        ...

    def close(self) -> None:
        """Release resources."""
        ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    event_id   TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    item_id    TEXT NOT NULL,
    type       TEXT NOT NULL,
    timestamp  REAL NOT NULL,
    value      REAL,
    context    TEXT NOT NULL DEFAULT '{}',
    seq        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_user ON events (user_id, timestamp, seq);
CREATE TABLE IF NOT EXISTS items (
    item_id    TEXT PRIMARY KEY,
    fields     TEXT NOT NULL,
    deleted    INTEGER NOT NULL DEFAULT 0,
    seq        INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS erased_users (
    user_hash  TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


_EVENT_COLUMNS = 8
_EVENT_ROW = "(" + ",".join("?" * _EVENT_COLUMNS) + ")"
_ROWS_PER_INSERT = 1000


class SQLiteStateStore:
    """A `StateStore` in one SQLite file (WAL journal, full fsync on every commit).

    Writes go through one connection guarded by a lock: SQLite serialises writers
    anyway. Reads (`user_state`, on every recommendation) use a read-only connection
    per thread instead: in WAL mode a reader sees the last commit without waiting,
    whereas sharing the writer's lock made every recommendation queue behind the
    fsync of whatever event batch was committing (tens of ms on a loaded disk).
    `secure_delete` overwrites erased rows so no copy of a forgotten user lingers
    in free pages.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._salt = ""
        self._seq = 0

    def open(self) -> SQLiteStateStore:
        """Open (creating if needed) the database; returns `self`."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA secure_delete=ON")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.executescript(_SCHEMA)
        row = conn.execute("SELECT value FROM meta WHERE key='salt'").fetchone()
        if row is None:
            self._salt = secrets.token_hex(16)
            conn.execute("INSERT INTO meta VALUES ('salt', ?)", (self._salt,))
        else:
            self._salt = row[0]
        seq = conn.execute(
            "SELECT MAX(s) FROM (SELECT MAX(seq) AS s FROM events UNION ALL SELECT MAX(seq) FROM items)"
        ).fetchone()[0]
        self._seq = int(seq or 0)
        self._conn = conn
        return self

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("SQLiteStateStore is not open: call open() first")
        return self._conn

    def _reader(self) -> sqlite3.Connection:
        """This thread's read-only connection, opened on first use."""
        if self._conn is None:
            raise RuntimeError("SQLiteStateStore is not open: call open() first")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
            conn.execute("PRAGMA query_only=ON")
            with self._lock:
                self._readers.append(conn)
            self._local.conn = conn
        return conn

    def hash_id(self, user_id: str) -> str:
        """A salted hash of an id (for tombstones and logs; the salt never leaves the file)."""
        return hashlib.sha256((self._salt + "\x00" + user_id).encode()).hexdigest()

    def add_events(self, events: Sequence[Event]) -> int:
        if not events:
            return 0
        with self._lock:
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                before = conn.total_changes
                params: list[Any] = []
                for e in events:
                    self._seq += 1
                    context = json.dumps(e.context, separators=(",", ":"))
                    params += (e.event_id, e.user_id, e.item_id, e.type, e.timestamp, e.value)
                    params += (context, self._seq)
                # One multi-row statement, not `executemany`: the sqlite3 module releases
                # and retakes the GIL around every step, and under load each retake can
                # wait a whole switch interval (5 ms) behind the thread serving queries.
                # Batches are at most MAX_BATCH rows (8 parameters each, far below
                # SQLite's limit of 32,766); larger ones go in chunks.
                for start in range(0, len(events), _ROWS_PER_INSERT):
                    n = min(_ROWS_PER_INSERT, len(events) - start)
                    conn.execute(
                        "INSERT OR IGNORE INTO events VALUES " + ",".join([_EVENT_ROW] * n),
                        params[start * _EVENT_COLUMNS : (start + n) * _EVENT_COLUMNS],
                    )
                added = conn.total_changes - before
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return added

    def user_state(self, user_id: str, limit: int = 200) -> UserState:
        conn = self._reader()
        # One read transaction, so the three answers come from the same commit.
        conn.execute("BEGIN")
        try:
            positive = conn.execute(
                f"SELECT item_id FROM events WHERE user_id=? AND type IN ({','.join('?' * len(POSITIVE_EVENTS))}) "
                "AND (type != 'rating' OR value IS NULL OR value >= ?) "
                "ORDER BY timestamp DESC, seq DESC LIMIT ?",
                (user_id, *POSITIVE_EVENTS, MIN_POSITIVE_RATING, limit),
            ).fetchall()
            negative = conn.execute(
                "SELECT DISTINCT item_id FROM events WHERE user_id=? AND type='not_interested'",
                (user_id,),
            ).fetchall()
            erased = conn.execute(
                "SELECT 1 FROM erased_users WHERE user_hash=?", (self.hash_id(user_id),)
            ).fetchone()
        finally:
            conn.execute("COMMIT")
        return UserState(
            [r[0] for r in reversed(positive)], [r[0] for r in negative], erased is not None
        )

    def erase_user(self, user_id: str) -> int:
        with self._lock:
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                removed = conn.execute("DELETE FROM events WHERE user_id=?", (user_id,)).rowcount
                conn.execute(
                    "INSERT OR IGNORE INTO erased_users VALUES (?)", (self.hash_id(user_id),)
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._checkpoint_wal(conn)
        return removed

    @staticmethod
    def _checkpoint_wal(conn: sqlite3.Connection, attempts: int = 3) -> None:
        """Copy the WAL into the database and empty it, waiting out readers that block it.

        Old page images in the WAL still hold erased rows until a checkpoint completes.
        A reader mid-query makes a TRUNCATE checkpoint busy; SQLite's busy handler waits
        for it (the connection's timeout) and reports busy only if it is still there.
        """
        for _ in range(attempts):
            busy, _log, _done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return
        raise RuntimeError("could not empty the write-ahead log after an erasure; retry the delete")

    def put_items(self, items: Sequence[StoredItem]) -> None:
        if not items:
            return
        with self._lock:
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                for item in items:
                    self._seq += 1
                    conn.execute(
                        "INSERT INTO items VALUES (?,?,?,?) ON CONFLICT(item_id) DO UPDATE SET "
                        "fields=excluded.fields, deleted=excluded.deleted, seq=excluded.seq",
                        (item.item_id, json.dumps(item.fields), int(item.deleted), self._seq),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def items(self) -> list[StoredItem]:
        with self._lock:
            rows = self.conn.execute(
                "SELECT item_id, fields, deleted FROM items ORDER BY seq"
            ).fetchall()
        return [StoredItem(r[0], json.loads(r[1]), bool(r[2])) for r in rows]

    def count_events(self) -> int:
        """Number of stored events."""
        with self._lock:
            return int(self.conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def integrity_check(self) -> list[str]:
        """SQLite's own consistency check; an empty list means the file is sound."""
        with self._lock:
            rows = self.conn.execute("PRAGMA integrity_check").fetchall()
        problems = [r[0] for r in rows]
        return [] if problems == ["ok"] else problems

    def ping(self) -> bool:
        try:
            with self._lock:
                self.conn.execute("SELECT 1").fetchone()
            return True
        except (sqlite3.Error, RuntimeError):
            return False

    def close(self) -> None:
        with self._lock:
            for reader in self._readers:
                reader.close()
            self._readers.clear()
            self._local = threading.local()
            if self._conn is not None:
                self._conn.close()
                self._conn = None
