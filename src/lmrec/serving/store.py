"""Durable online state: the event log, per-user state and online item changes.

`StateStore` is the seam; `SQLiteStateStore` is the default (one file, WAL mode,
`synchronous=FULL`, so a commit that returned survives a power cut or `kill -9`).
`RedisStateStore` (`lmrec.serving.redis_store`) implements the same protocol for
several workers and servers sharing one state; `open_store` opens either.

Experiment definitions and the exposure log (every list served in an experiment)
live in the same file, so one commit standard covers them all.

Events are idempotent by `event_id` (a primary key: a repeated id is ignored).
A user's state is derived from their events, so erasing the events erases the
state. After an erasure only a salted hash of the user id is kept, so that the
immutable model artefact's copy of their history is no longer served.

Which stored events join a user's history is the store's `EventPolicy`, the same
one the data layer cleans training logs with (`lmrec.data.events`): every event
is kept in the log, and the policy is applied when the state is read, so changing
it (say, `min_rating`) changes the served histories without rewriting events.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from lmrec.data.events import EventPolicy
from lmrec.experiments.design import Experiment, Exposure

__all__ = [
    "Erasure",
    "Event",
    "ModelAnnouncement",
    "SQLiteStateStore",
    "StateStore",
    "StoreCounts",
    "StoreUnavailable",
    "StoredItem",
    "UserState",
    "open_store",
]


@dataclass(frozen=True)
class Event:
    """One user action; `timestamp` is seconds since the epoch.

    `item_id` is None only for a `search` that names no item (its query text is in
    `context["query"]`); it is stored as an empty id and never joins a history.
    `request_id`: the served list the event responds to (experiment attribution).
    """

    event_id: str
    user_id: str
    item_id: str | None
    type: str
    timestamp: float
    value: float | None = None
    context: dict[str, Any] = field(default_factory=dict)
    request_id: str | None = None


@dataclass(frozen=True)
class UserState:
    """What the recommender needs about a user right now.

    `history`: ids of the user's positive events' items under the store's event
    policy, oldest first (the most recent `limit`; an item seen twice appears twice);
    `negative`: items of the policy's negative events (not interested);
    `erased`: the user asked to be forgotten (ignore older copies of their data).
    """

    history: list[str]
    negative: list[str]
    erased: bool = False


class StoreUnavailable(RuntimeError):
    """The state file cannot take writes (removed, replaced or unwritable): nothing was acknowledged."""


@dataclass(frozen=True)
class Erasure:
    """What an erasure did: events removed, and whether the write-ahead log was emptied.

    `wal_cleared` False: the erasure is committed (nothing of the user is served or
    read again), but old page images may remain in the WAL file until a checkpoint.
    """

    events: int
    wal_cleared: bool


@dataclass(frozen=True)
class StoredItem:
    """An item added or changed online (catalogue fields) or deleted.

    `vector`: its text vector, made by the encoder named `encoder`, kept so that a
    restart or a model swap does not encode every online item again; `seq`: the
    store's order of changes (set when read back).
    """

    item_id: str
    fields: dict[str, Any]
    deleted: bool
    vector: np.ndarray | None = None
    encoder: str | None = None
    seq: int = 0


@dataclass(frozen=True)
class StoreCounts:
    """What the state file holds: events, users with events, online items (of them
    deleted) and erased users' tombstones."""

    events: int
    users: int
    items: int
    deleted_items: int
    erased_users: int


@dataclass(frozen=True)
class ModelAnnouncement:
    """The artefact every worker sharing the store should serve: `seq` grows with each
    announcement, `path` and `version` name it."""

    seq: int
    path: str
    version: str


class StateStore(Protocol):
    """Durable per-user state and event log behind one protocol."""

    def add_events(self, events: Sequence[Event]) -> int:
        """Store events durably (return only after commit); returns how many were new."""
        ...

    def user_state(self, user_id: str, limit: int = 200) -> UserState:
        """The user's recent history and negative feedback."""
        ...

    def erase_user(self, user_id: str) -> Erasure:
        """Delete every trace of a user (events, state, exposures); says what was done."""
        ...

    def erased_among(self, user_ids: Sequence[str]) -> list[str]:
        """Which of these users asked to be erased."""
        ...

    def put_items(self, items: Sequence[StoredItem]) -> None:
        """Record online item upserts and deletions durably."""
        ...

    def items(self, after: int = 0) -> list[StoredItem]:
        """Online item changes after change `after`, oldest first (replayed onto a loaded model)."""
        ...

    def change_experiment(self, change: Callable[[list[Experiment]], Experiment]) -> Experiment:
        """Store `change(stored definitions)` durably, reading and writing as one transaction."""
        ...

    def experiments(self) -> list[Experiment]:
        """Every stored experiment definition."""
        ...

    def add_exposures(self, exposures: Sequence[Exposure]) -> None:
        """Log served lists durably (return only after commit)."""
        ...

    def exposures(self, experiment_id: str) -> list[Exposure]:
        """The lists served in an experiment, oldest first."""
        ...

    def experiments_version(self) -> int:
        """A counter that changes whenever a definition does (read on every request)."""
        ...

    def unit_events(self, experiment_id: str) -> list[Event]:
        """Every stored event of the units exposed in an experiment, oldest first."""
        ...

    def user_events(self, user_id: str, limit: int = 200) -> list[Event]:
        """A user's newest `limit` stored events of every type, newest first."""
        ...

    def counts(self) -> StoreCounts:
        """How much the store holds."""
        ...

    @property
    def event_policy(self) -> EventPolicy:
        """Which events make up a user's history and negative feedback."""
        ...

    def hash_id(self, user_id: str) -> str:
        """A salted hash of an id (tombstones, logs)."""
        ...

    def flush(self) -> None:
        """Force writes acknowledged without waiting for the disk onto it."""
        ...

    def announce_model(self, path: str, version: str) -> ModelAnnouncement:
        """Record that every worker should now serve the artefact at `path`."""
        ...

    def announced_model(self) -> ModelAnnouncement | None:
        """The latest announcement, if any."""
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
    seq        INTEGER NOT NULL,
    vector     BLOB,
    encoder    TEXT
);
CREATE TABLE IF NOT EXISTS erased_users (
    user_hash  TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS experiments (
    id         TEXT PRIMARY KEY,
    definition TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS exposures (
    experiment_id TEXT NOT NULL,
    request_id    TEXT NOT NULL,
    variant       TEXT NOT NULL,
    unit          TEXT NOT NULL,
    timestamp     REAL NOT NULL,
    items         TEXT NOT NULL,
    teams         TEXT,
    PRIMARY KEY (experiment_id, request_id)
);
CREATE INDEX IF NOT EXISTS exposures_by_unit ON exposures (unit);
"""


def _history_query(policy: EventPolicy) -> tuple[str, tuple[Any, ...]]:
    """SQL for a user's recent positive events, run with `(user_id, *params, limit)`.

    The types and `min_rating` are parameters, so the statement stays one cached plan
    on the `events_by_user` index whatever the policy.
    """
    types = policy.positive_types
    sql = f"SELECT item_id FROM events WHERE user_id=? AND type IN ({','.join('?' * len(types))}) "
    params: tuple[Any, ...] = types
    if policy.min_rating is not None and "rating" in types:
        # A rating without a value counts, as in `EventPolicy.is_positive`.
        sql += "AND (type != 'rating' OR value IS NULL OR value >= ?) "
        params += (policy.min_rating,)
    return sql + "ORDER BY timestamp DESC, seq DESC LIMIT ?", params


def _negative_query(policy: EventPolicy) -> tuple[str, tuple[Any, ...]]:
    """SQL for the items of a user's negative events, run with `(user_id, *params)`."""
    types = policy.negative_types
    sql = "SELECT DISTINCT item_id FROM events WHERE user_id=? AND type IN ("
    return sql + ",".join("?" * len(types)) + ")", types


_EVENT_COLUMNS = 9
_EVENT_ROW = "(" + ",".join("?" * _EVENT_COLUMNS) + ")"
_ROWS_PER_INSERT = 1000


def check_events(events: Sequence[Event]) -> None:
    """Refuse a batch with an event no store can keep (before any of it is written)."""
    for e in events:
        if e.item_id is None and e.type != "search":
            raise ValueError(f"event {e.event_id!r}: only a search may omit item_id")


class SaltedStore:
    """What every store shares: its event policy, and the salted hash of ids (the salt
    is the store's own, created with it, so tombstones mean nothing elsewhere)."""

    _event_policy: EventPolicy
    _salt: str

    @property
    def event_policy(self) -> EventPolicy:
        """Which events make up a user's history and negative feedback."""
        return self._event_policy

    def hash_id(self, user_id: str) -> str:
        """A salted hash of an id (for tombstones and logs; the salt stays in the store)."""
        return hashlib.sha256((self._salt + "\x00" + user_id).encode()).hexdigest()


class SQLiteStateStore(SaltedStore):
    """A `StateStore` in one SQLite file (WAL journal, full fsync on every commit).

    Writes go through one connection guarded by a lock: SQLite serialises writers
    anyway. Reads (`user_state`, on every recommendation) use a read-only connection
    per thread instead: in WAL mode a reader sees the last commit without waiting,
    whereas sharing the writer's lock made every recommendation queue behind the
    fsync of whatever event batch was committing (tens of ms on a loaded disk).
    `secure_delete` overwrites erased rows so no copy of a forgotten user lingers
    in free pages. `event_policy` decides which events make up a user's history
    and negative feedback; its types and `min_rating` go into the queries as
    parameters.
    """

    def __init__(self, path: str | Path, event_policy: EventPolicy | None = None):
        self.path = Path(path)
        self._event_policy = event_policy if event_policy is not None else EventPolicy()
        self._history_sql, self._history_params = _history_query(self._event_policy)
        self._negative_sql, self._negative_params = _negative_query(self._event_policy)
        self._lock = threading.RLock()  # erase_user holds it across a transaction and a checkpoint
        self._conn: sqlite3.Connection | None = None
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._salt = ""
        self._seq = 0
        self._identity: tuple[int, int] | None = None
        self._unsynced = False  # commits made without an fsync since the last `flush`

    def open(self) -> SQLiteStateStore:
        """Open (creating if needed) the database; returns `self`."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA secure_delete=ON")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.executescript(_SCHEMA)
        # Columns added since the first state files; older files gain them on open.
        for table, column, kind in (
            ("events", "request_id", "TEXT"),
            ("items", "vector", "BLOB"),
            ("items", "encoder", "TEXT"),
        ):
            if column not in {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
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
        stat = os.stat(self.path)
        self._identity = (stat.st_dev, stat.st_ino)
        return self

    def verify(self) -> None:
        """Raise `StoreUnavailable` unless the file opened is still at its path and writable.

        SQLite keeps writing to a file that was deleted or replaced (its descriptor
        stays open): those commits succeed and are lost at the next restart. So every
        write checks before it commits, and readiness checks too.
        """
        try:
            stat = os.stat(self.path)
        except OSError:
            raise StoreUnavailable(
                f"the state file {self.path} is gone; restore it or restart the server"
            ) from None
        if (stat.st_dev, stat.st_ino) != self._identity:
            raise StoreUnavailable(
                f"the state file {self.path} was replaced while serving; restart the server"
            )
        for path in (self.path, Path(f"{self.path}-wal")):
            if path.exists() and not os.access(path, os.W_OK):
                raise StoreUnavailable(f"the state file {path} cannot be written")

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

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The writer connection inside one write transaction: committed on exit, rolled back on error."""
        with self._lock:
            conn = self.conn
            self.verify()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreUnavailable(
                    f"the state file {self.path} cannot be written ({exc})"
                ) from None
            try:
                yield conn
                self.verify()  # never commit into a file that is no longer the state file
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError):
                    raise StoreUnavailable(
                        f"the state file {self.path} cannot be written ({exc})"
                    ) from None
                raise

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """This thread's reader inside one read transaction (every query sees one commit)."""
        self.verify()  # a reader opened on a vanished path would create an empty file
        conn = self._reader()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def add_events(self, events: Sequence[Event]) -> int:
        if not events:
            return 0
        check_events(events)
        with self.transaction() as conn:
            before = conn.total_changes
            params: list[Any] = []
            for e in events:
                self._seq += 1
                context = json.dumps(e.context, separators=(",", ":"), allow_nan=False)
                item = "" if e.item_id is None else e.item_id
                params += (e.event_id, e.user_id, item, e.type, e.timestamp, e.value)
                params += (context, self._seq, e.request_id)
            # One multi-row statement, not `executemany`: the sqlite3 module releases
            # and retakes the GIL around every step, and under load each retake can
            # wait a whole switch interval (5 ms) behind the thread serving queries.
            # Batches are at most MAX_BATCH rows (9 parameters each, far below
            # SQLite's limit of 32,766); larger ones go in chunks.
            for start in range(0, len(events), _ROWS_PER_INSERT):
                n = min(_ROWS_PER_INSERT, len(events) - start)
                conn.execute(
                    "INSERT OR IGNORE INTO events VALUES " + ",".join([_EVENT_ROW] * n),
                    params[start * _EVENT_COLUMNS : (start + n) * _EVENT_COLUMNS],
                )
            return conn.total_changes - before

    def user_state(self, user_id: str, limit: int = 200) -> UserState:
        with self.snapshot() as conn:
            positive = conn.execute(
                self._history_sql, (user_id, *self._history_params, limit)
            ).fetchall()
            negative = conn.execute(
                self._negative_sql, (user_id, *self._negative_params)
            ).fetchall()
            erased = conn.execute(
                "SELECT 1 FROM erased_users WHERE user_hash=?", (self.hash_id(user_id),)
            ).fetchone()
        return UserState(
            [r[0] for r in reversed(positive)], [r[0] for r in negative], erased is not None
        )

    def erase_user(self, user_id: str) -> Erasure:
        with self._lock:
            with self.transaction() as conn:
                removed = conn.execute("DELETE FROM events WHERE user_id=?", (user_id,)).rowcount
                conn.execute("DELETE FROM exposures WHERE unit=?", (user_id,))
                conn.execute(
                    "INSERT OR IGNORE INTO erased_users VALUES (?)", (self.hash_id(user_id),)
                )
            return Erasure(removed, self._checkpoint_wal(self.conn))

    @staticmethod
    def _checkpoint_wal(conn: sqlite3.Connection, attempts: int = 3) -> bool:
        """Copy the WAL into the database and empty it, waiting out readers that block it.

        Old page images in the WAL still hold erased rows until a checkpoint completes.
        A reader mid-query makes a TRUNCATE checkpoint busy; SQLite's busy handler waits
        for it (the connection's timeout) and reports busy only if it is still there.
        Returns whether it completed (a file that cannot be written makes it fail).
        """
        for _ in range(attempts):
            try:
                busy, _log, _done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            except sqlite3.Error:
                return False
            if not busy:
                return True
        return False

    def put_items(self, items: Sequence[StoredItem]) -> None:
        if not items:
            return
        with self.transaction() as conn:
            for item in items:
                self._seq += 1
                vector = None if item.vector is None else np.asarray(item.vector, "<f4").tobytes()
                conn.execute(
                    "INSERT INTO items VALUES (?,?,?,?,?,?) ON CONFLICT(item_id) DO UPDATE SET "
                    "fields=excluded.fields, deleted=excluded.deleted, seq=excluded.seq, "
                    "vector=excluded.vector, encoder=excluded.encoder",
                    (
                        item.item_id,
                        json.dumps(item.fields, allow_nan=False),
                        int(item.deleted),
                        self._seq,
                        vector,
                        item.encoder,
                    ),
                )

    def items(self, after: int = 0) -> list[StoredItem]:
        with self._lock:
            rows = self.conn.execute(
                "SELECT item_id, fields, deleted, vector, encoder, seq FROM items "
                "WHERE seq > ? ORDER BY seq",
                (after,),
            ).fetchall()
        return [
            StoredItem(
                r[0],
                json.loads(r[1]),
                bool(r[2]),
                None if r[3] is None else np.frombuffer(r[3], "<f4"),
                r[4],
                r[5],
            )
            for r in rows
        ]

    def erased_among(self, user_ids: Sequence[str]) -> list[str]:
        """Which of these users asked to be erased (their tombstones are salted hashes)."""
        with self.snapshot() as conn:
            erased = {r[0] for r in conn.execute("SELECT user_hash FROM erased_users")}
        if not erased:
            return []
        return [u for u in user_ids if self.hash_id(u) in erased]

    # -- experiments ---------------------------------------------------------------

    def change_experiment(self, change: Callable[[list[Experiment]], Experiment]) -> Experiment:
        """Store `change(stored experiments)` in one write transaction; returns it.

        Every worker sees the stored definition from its next request.

        Reading the definitions, deciding (an id check, a bucket allocation) and writing
        happen under one lock on the file, so two processes creating experiments at once
        (a server and the CLI) cannot take one id or overlapping buckets; `change` raises
        to refuse.
        """
        with self.transaction() as conn:
            rows = conn.execute("SELECT definition FROM experiments ORDER BY id").fetchall()
            experiment = change([Experiment.model_validate_json(r[0]) for r in rows])
            conn.execute(
                "INSERT INTO experiments VALUES (?, ?) "
                "ON CONFLICT(id) DO UPDATE SET definition=excluded.definition",
                (experiment.id, experiment.model_dump_json()),
            )
            conn.execute(
                "INSERT INTO meta VALUES ('experiments_version', '1') "
                "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
            )
        return experiment

    def experiments(self) -> list[Experiment]:
        """Every stored experiment, by id."""
        with self.snapshot() as conn:
            rows = conn.execute("SELECT definition FROM experiments ORDER BY id").fetchall()
        return [Experiment.model_validate_json(r[0]) for r in rows]

    def experiments_version(self) -> int:
        """A counter that changes whenever a definition does (cheap: read on every request)."""
        with self.snapshot() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key='experiments_version'").fetchone()
        return int(row[0]) if row else 0

    def add_exposures(self, exposures: Sequence[Exposure]) -> None:
        """Log served lists durably (idempotent by experiment and request id)."""
        if not exposures:
            return
        rows = [
            (
                x.experiment_id,
                x.request_id,
                x.variant,
                x.unit,
                x.timestamp,
                json.dumps(x.items),
                None if x.teams is None else json.dumps(x.teams),
            )
            for x in exposures
        ]
        # Committed without waiting for the disk (`synchronous=NORMAL` in WAL mode): the
        # commit is in the OS's page cache when this returns, so a killed server loses
        # nothing acknowledged; `flush` (the server's `background.disk_sync` calls it every second)
        # or the next event batch's full fsync makes it safe against a power cut too.
        # An fsync per served list was most of an experiment's cost per request.
        with self._lock:
            self.conn.execute("PRAGMA synchronous=NORMAL")
            try:
                with self.transaction() as conn:
                    conn.executemany("INSERT OR IGNORE INTO exposures VALUES (?,?,?,?,?,?,?)", rows)
                self._unsynced = True
            finally:
                self.conn.execute("PRAGMA synchronous=FULL")

    def announce_model(self, path: str, version: str) -> ModelAnnouncement:
        with self.transaction() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key='model'").fetchone()
            seq = (json.loads(row[0])["seq"] if row else 0) + 1
            value = json.dumps({"seq": seq, "path": path, "version": version})
            conn.execute(
                "INSERT INTO meta VALUES ('model', ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (value,),
            )
        return ModelAnnouncement(seq, path, version)

    def announced_model(self) -> ModelAnnouncement | None:
        with self.snapshot() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key='model'").fetchone()
        return None if row is None else ModelAnnouncement(**json.loads(row[0]))

    def flush(self) -> None:
        """Force commits made without waiting for the disk (exposures) onto it."""
        wal = Path(f"{self.path}-wal")
        with self._lock:
            if not self._unsynced:
                return
            self._unsynced = False
            if wal.exists():
                fd = os.open(wal, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)

    def exposures(self, experiment_id: str) -> list[Exposure]:
        """The lists served in an experiment, oldest first."""
        with self.snapshot() as conn:
            rows = conn.execute(
                "SELECT request_id, variant, unit, timestamp, items, teams FROM exposures "
                "WHERE experiment_id=? ORDER BY timestamp, rowid",
                (experiment_id,),
            ).fetchall()
        return [
            Exposure(
                r[0],
                experiment_id,
                r[1],
                r[2],
                r[3],
                tuple(json.loads(r[4])),
                None if r[5] is None else tuple(json.loads(r[5])),
            )
            for r in rows
        ]

    def unit_events(self, experiment_id: str) -> list[Event]:
        """Every stored event of the units exposed in an experiment (before it too), oldest first."""
        with self.snapshot() as conn:
            rows = conn.execute(
                "SELECT event_id, user_id, item_id, type, timestamp, value, context, request_id "
                "FROM events WHERE user_id IN "
                "(SELECT DISTINCT unit FROM exposures WHERE experiment_id=?) "
                "ORDER BY timestamp, seq",
                (experiment_id,),
            ).fetchall()
        return [
            Event(r[0], r[1], r[2] or None, r[3], r[4], r[5], json.loads(r[6]), r[7]) for r in rows
        ]

    def user_events(self, user_id: str, limit: int = 200) -> list[Event]:
        """A user's newest `limit` stored events of every type, newest first."""
        with self.snapshot() as conn:
            rows = conn.execute(
                "SELECT event_id, user_id, item_id, type, timestamp, value, context, request_id "
                "FROM events WHERE user_id=? ORDER BY timestamp DESC, seq DESC LIMIT ?",
                (user_id, limit),
            ).fetchall()
        return [
            Event(r[0], r[1], r[2] or None, r[3], r[4], r[5], json.loads(r[6]), r[7]) for r in rows
        ]

    def counts(self) -> StoreCounts:
        """How much the file holds, read on this thread's reader (never behind a commit).

        Counting distinct users scans the `events_by_user` index: milliseconds for
        10^5 events, a dashboard's poll and not a request path.
        """
        with self.snapshot() as conn:
            events, users = conn.execute(
                "SELECT COUNT(*), COUNT(DISTINCT user_id) FROM events"
            ).fetchone()
            items, deleted = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(deleted), 0) FROM items"
            ).fetchone()
            erased = conn.execute("SELECT COUNT(*) FROM erased_users").fetchone()[0]
        return StoreCounts(int(events), int(users), int(items), int(deleted), int(erased))

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
            self.verify()
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


def open_store(location: str | Path, event_policy: EventPolicy | None = None) -> StateStore:
    """The state store at `location`, opened: a `redis://` (or `rediss://`, `unix://`)
    URL opens a `RedisStateStore`, anything else is a SQLite file path."""
    text = str(location)
    if text.split("://", 1)[0] in ("redis", "rediss", "unix") and "://" in text:
        from lmrec.serving.redis_store import RedisStateStore

        return RedisStateStore(text, event_policy).open()
    return SQLiteStateStore(location, event_policy).open()
