"""The `StateStore` on Redis: shared online state for several workers and servers.

Every write is one Lua script, so Redis applies it whole or not at all (a script's
effects reach the append-only file as one transaction) and every worker sees it on
its next read. Keys live under a prefix (default `lmrec:`):

- `events` (hash): event id -> `seq|stream id|event JSON`; the id makes adding
  idempotent, a repeated id is ignored.
- `stream` (stream): every accepted event in order, for consumers outside the API
  (exports for refits, analytics) reading in consumer groups (`EventConsumer`).
- `u:USER` (sorted set): the user's events, scored by timestamp; the member starts
  with the zero-padded `seq`, so ties keep arrival order as SQLite's `seq` does.
- `users`, `erased` (sets): users with events; salted hashes of erased users.
- `items`, `item_vectors` (hashes), `items_seq` (sorted set by change number),
  `items_deleted` (set): online item changes, replayed onto a loaded model.
- `experiments` (hash), `experiments_version` (counter).
- `x:EXP` (hash request id -> exposure JSON), `xt:EXP` (sorted set by time),
  `xu:EXP` (units exposed), `ux:UNIT` (the unit's exposures, for erasure).

**Durability.** A write returns once Redis has applied it; whether it survives a
crash is Redis's `appendonly`/`appendfsync` setting, which `open` reads:

- `appendonly yes` + `appendfsync always`: Redis fsyncs the append-only file before
  it answers, so an acknowledged event survives `kill -9` of redis-server and a
  power cut. What `lmrec serve --store redis://` expects, and what the tests run.
- `appendfsync everysec`: Redis writes the file before it answers (the OS holds it),
  so `kill -9` of redis-server loses nothing acknowledged; a power cut or kernel
  crash loses up to about 2 s of acknowledged writes.
- `appendonly no` (snapshots only, or none): a crash loses everything since the last
  snapshot; `open` refuses it unless the URL says `?volatile=1`.
"""

from __future__ import annotations

import json
import logging
import secrets
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmrec.data.events import EventPolicy
from lmrec.errors import LmrecError
from lmrec.experiments.design import Experiment, Exposure
from lmrec.serving.store import (
    Erasure,
    Event,
    ModelAnnouncement,
    SaltedStore,
    StoreCounts,
    StoredItem,
    StoreUnavailable,
    UserState,
    check_events,
)

__all__ = ["EventConsumer", "RedisStateStore", "StreamEntry"]

log = logging.getLogger("lmrec.serving")

_SEQ_DIGITS = 12  # the member prefix of u:USER: "%012d|" then the event's summary

_ADD_EVENTS = """
local p, maxlen, new = ARGV[1], tonumber(ARGV[2]), 0
for i = 3, #ARGV, 5 do
  local eid, user, payload, summary, ts = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4]
  if redis.call('HEXISTS', p..'events', eid) == 0 then
    local seq = redis.call('INCR', p..'seq')
    local sid
    if maxlen > 0 then
      sid = redis.call('XADD', p..'stream', 'MAXLEN', '~', maxlen, '*', 'e', payload)
    else
      sid = redis.call('XADD', p..'stream', '*', 'e', payload)
    end
    redis.call('HSET', p..'events', eid, seq..'|'..sid..'|'..payload)
    redis.call('ZADD', p..'u:'..user, ts, string.format('%012d', seq)..'|'..summary)
    redis.call('SADD', p..'users', user)
    new = new + 1
  end
end
return new
"""

_ERASE_USER = """
local p, user, tombstone = ARGV[1], ARGV[2], ARGV[3]
local members = redis.call('ZRANGE', p..'u:'..user, 0, -1)
local removed = 0
for _, m in ipairs(members) do
  local eid = cjson.decode(string.sub(m, 14))[1]
  local stored = redis.call('HGET', p..'events', eid)
  if stored then
    local a = string.find(stored, '|', 1, true)
    local b = string.find(stored, '|', a + 1, true)
    redis.call('XDEL', p..'stream', string.sub(stored, a + 1, b - 1))
    redis.call('HDEL', p..'events', eid)
    removed = removed + 1
  end
end
redis.call('DEL', p..'u:'..user)
redis.call('SREM', p..'users', user)
for _, key in ipairs(redis.call('SMEMBERS', p..'ux:'..user)) do
  local nl = string.find(key, '\\n', 1, true)
  local exp, req = string.sub(key, 1, nl - 1), string.sub(key, nl + 1)
  redis.call('HDEL', p..'x:'..exp, req)
  redis.call('ZREM', p..'xt:'..exp, req)
  redis.call('SREM', p..'xu:'..exp, user)
end
redis.call('DEL', p..'ux:'..user)
redis.call('SADD', p..'erased', tombstone)
return removed
"""

_PUT_ITEMS = """
local p = ARGV[1]
for i = 2, #ARGV, 4 do
  local id, record, deleted, vector = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3]
  local seq = redis.call('INCR', p..'seq')
  redis.call('HSET', p..'items', id, seq..'|'..record)
  redis.call('ZADD', p..'items_seq', seq, id)
  if deleted == '1' then redis.call('SADD', p..'items_deleted', id)
  else redis.call('SREM', p..'items_deleted', id) end
  if vector == '' then redis.call('HDEL', p..'item_vectors', id)
  else redis.call('HSET', p..'item_vectors', id, vector) end
end
return 1
"""

_ADD_EXPOSURES = """
local p = ARGV[1]
for i = 2, #ARGV, 5 do
  local exp, req, unit, ts, record = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4]
  if redis.call('HSETNX', p..'x:'..exp, req, record) == 1 then
    redis.call('ZADD', p..'xt:'..exp, ts, req)
    redis.call('SADD', p..'xu:'..exp, unit)
    redis.call('SADD', p..'ux:'..unit, exp..'\\n'..req)
  end
end
return 1
"""

_ANNOUNCE = """
local old = redis.call('GET', ARGV[1])
local seq = tonumber(ARGV[2])
if old then
  local bar = string.find(old, '|', 1, true)
  if tonumber(string.sub(old, 1, bar - 1)) > seq then return 0 end
end
redis.call('SET', ARGV[1], ARGV[2]..'|'..ARGV[3])
return 1
"""


def _event_json(e: Event) -> str:
    return json.dumps(
        {
            "event_id": e.event_id,
            "user_id": e.user_id,
            "item_id": e.item_id,
            "type": e.type,
            "timestamp": e.timestamp,
            "value": e.value,
            "context": e.context,
            "request_id": e.request_id,
        },
        separators=(",", ":"),
        allow_nan=False,
    )


def _event_from_json(text: str | bytes) -> Event:
    d = json.loads(text)
    return Event(
        d["event_id"],
        d["user_id"],
        d["item_id"],
        d["type"],
        d["timestamp"],
        d["value"],
        d["context"],
        d["request_id"],
    )


def _stored_event(raw: bytes) -> tuple[int, Event]:
    """(seq, event) of an `events` hash value."""
    seq, _sid, payload = raw.split(b"|", 2)
    return int(seq), _event_from_json(payload)


@dataclass(frozen=True)
class StreamEntry:
    """One event as a stream consumer reads it: the stream's entry id and the event."""

    entry_id: str
    event: Event


class RedisStateStore(SaltedStore):
    """A `StateStore` on one Redis server (see the module docstring for the layout).

    `url`: `redis://[:password@]host:port/db`, optionally with `?prefix=NAME:` (keys
    of several deployments on one server) and `?volatile=1` (accept a server without
    an append-only file). `stream_maxlen` > 0 trims the event stream to about that
    many entries (the per-user state is kept whole); 0 keeps every entry.
    """

    def __init__(
        self,
        url: str,
        event_policy: EventPolicy | None = None,
        stream_maxlen: int = 0,
    ):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("redis", "rediss", "unix"):
            raise LmrecError(f"{url!r} is not a Redis URL (redis://host:port/db)")
        query = urllib.parse.parse_qs(parsed.query)
        self.prefix = query.pop("prefix", ["lmrec:"])[0]
        self.volatile = query.pop("volatile", ["0"])[0] in ("1", "true", "yes")
        rest = urllib.parse.urlencode({k: v[0] for k, v in query.items()})
        self.url = urllib.parse.urlunsplit(parsed._replace(query=rest))
        self._event_policy = event_policy if event_policy is not None else EventPolicy()
        self.stream_maxlen = stream_maxlen
        self._client: Any = None
        self._salt = ""
        self.durability = "unknown"

    # -- lifecycle -----------------------------------------------------------------

    def open(self) -> RedisStateStore:
        """Connect, check durability, and load (or create) the salt; returns `self`."""
        import redis

        self._client = redis.Redis.from_url(self.url, socket_timeout=10, health_check_interval=30)
        with self._errors():
            self._client.ping()
            self.durability = self._read_durability()
            self._client.hsetnx(self._key("meta"), "salt", secrets.token_hex(16))
            self._salt = self._client.hget(self._key("meta"), "salt").decode()
            self._scripts = {
                name: self._client.register_script(src)
                for name, src in (
                    ("add_events", _ADD_EVENTS),
                    ("erase_user", _ERASE_USER),
                    ("put_items", _PUT_ITEMS),
                    ("add_exposures", _ADD_EXPOSURES),
                    ("announce", _ANNOUNCE),
                )
            }
        if self.durability == "none" and not self.volatile:
            self.close()
            raise LmrecError(
                f"the Redis server at {self.url} keeps no append-only file, so a crash "
                "would lose acknowledged events; start it with `--appendonly yes "
                "--appendfsync always` (or add ?volatile=1 to the URL to accept the loss)"
            )
        return self

    def _read_durability(self) -> str:
        """`always`, `everysec`, `no` (AOF on, the OS syncs), `none` (no AOF) or `unknown`."""
        import redis

        try:
            conf = self._client.config_get("append*")
        except redis.ResponseError:  # CONFIG disabled (managed Redis): cannot tell
            log.warning("cannot read the Redis durability settings (CONFIG is disabled)")
            return "unknown"
        get = {k.decode() if isinstance(k, bytes) else k: v for k, v in conf.items()}

        def text(v: Any) -> str:
            return v.decode() if isinstance(v, bytes) else str(v)

        if text(get.get("appendonly", "no")) != "yes":
            return "none"
        return text(get.get("appendfsync", "everysec"))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except Exception:
            return False

    def flush(self) -> None:
        """Nothing to force: Redis's own `appendfsync` decides when the disk has a write."""

    @property
    def client(self) -> Any:
        if self._client is None:
            raise RuntimeError("RedisStateStore is not open: call open() first")
        return self._client

    def _key(self, name: str) -> str:
        return self.prefix + name

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Redis being unreachable is `StoreUnavailable` (a 503 that names it), as a
        missing state file is."""
        import redis

        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreUnavailable(
                f"the Redis store at {self.url} does not answer ({exc})"
            ) from None
        except redis.ResponseError as exc:
            if "READONLY" in str(exc) or "MISCONF" in str(exc):
                raise StoreUnavailable(
                    f"the Redis store at {self.url} cannot take writes ({exc})"
                ) from None
            raise

    # -- events and users ------------------------------------------------------------

    def add_events(self, events: Sequence[Event]) -> int:
        if not events:
            return 0
        check_events(events)
        args: list[Any] = [self.prefix, self.stream_maxlen]
        for e in events:
            item = "" if e.item_id is None else e.item_id
            summary = json.dumps([e.event_id, e.type, e.value, item], separators=(",", ":"))
            args += (e.event_id, e.user_id, _event_json(e), summary, repr(float(e.timestamp)))
        with self._errors():
            return int(self._scripts["add_events"](args=args))

    def _summaries(self, user_id: str, newest_first: bool = True) -> Iterator[list[Any]]:
        """The user's events as `[event_id, type, value, item]`, read in pages."""
        key = self._key("u:" + user_id)
        page, start = 500, 0
        read = self.client.zrevrange if newest_first else self.client.zrange
        while True:
            with self._errors():
                members = read(key, start, start + page - 1)
            for m in members:
                yield json.loads(m[_SEQ_DIGITS + 1 :])
            if len(members) < page:
                return
            start += page

    def user_state(self, user_id: str, limit: int = 200) -> UserState:
        policy = self._event_policy
        positive: list[str] = []
        negative: list[str] = []
        seen_negative: set[str] = set()
        for _eid, kind, value, item in self._summaries(user_id):
            if not item:
                continue
            if kind in policy.negative_types and item not in seen_negative:
                seen_negative.add(item)
                negative.append(item)
            if len(positive) < limit and policy.is_positive(kind, value):
                positive.append(item)
        with self._errors():
            erased = self.client.sismember(self._key("erased"), self.hash_id(user_id))
        return UserState(positive[::-1], negative, bool(erased))

    def erase_user(self, user_id: str) -> Erasure:
        import redis

        with self._errors():
            removed = self._scripts["erase_user"](
                args=[self.prefix, user_id, self.hash_id(user_id)]
            )
            # The append-only file still holds the erased writes until it is rewritten.
            with suppress(redis.ResponseError):  # a rewrite already running, or disabled
                self.client.bgrewriteaof()
        return Erasure(int(removed), False)

    def erased_among(self, user_ids: Sequence[str]) -> list[str]:
        """Which of these users asked to be erased (their tombstones are salted hashes)."""
        if not user_ids:
            return []
        with self._errors():
            flags = self.client.smismember(self._key("erased"), [self.hash_id(u) for u in user_ids])
        return [u for u, f in zip(user_ids, flags, strict=True) if f]

    def _events(self, ids: Sequence[str | bytes]) -> list[tuple[int, Event]]:
        if not ids:
            return []
        with self._errors():
            raw = self.client.hmget(self._key("events"), list(ids))
        return [_stored_event(r) for r in raw if r is not None]

    def user_events(self, user_id: str, limit: int = 200) -> list[Event]:
        """A user's newest `limit` stored events of every type, newest first."""
        ids: list[str] = []
        for summary in self._summaries(user_id):
            if len(ids) >= limit:
                break
            ids.append(summary[0])
        return [e for _seq, e in self._events(ids)]

    def unit_events(self, experiment_id: str) -> list[Event]:
        """Every stored event of the units exposed in an experiment, oldest first."""
        with self._errors():
            units = sorted(
                m.decode() for m in self.client.smembers(self._key("xu:" + experiment_id))
            )
        rows: list[tuple[int, Event]] = []
        for unit in units:
            rows += self._events([s[0] for s in self._summaries(unit, newest_first=False)])
        rows.sort(key=lambda r: (r[1].timestamp, r[0]))
        return [e for _seq, e in rows]

    def counts(self) -> StoreCounts:
        """How much the store holds (five O(1) reads)."""
        with self._errors():
            pipe = self.client.pipeline(transaction=False)
            for name in ("events", "items"):
                pipe.hlen(self._key(name))
            for name in ("users", "items_deleted", "erased"):
                pipe.scard(self._key(name))
            events, items, users, deleted, erased = pipe.execute()
        return StoreCounts(int(events), int(users), int(items), int(deleted), int(erased))

    # -- items -----------------------------------------------------------------------

    def put_items(self, items: Sequence[StoredItem]) -> None:
        if not items:
            return
        args: list[Any] = [self.prefix]
        for item in items:
            record = json.dumps(
                {"fields": item.fields, "deleted": item.deleted, "encoder": item.encoder},
                allow_nan=False,
            )
            vector = b"" if item.vector is None else np.asarray(item.vector, "<f4").tobytes()
            args += (item.item_id, record, "1" if item.deleted else "0", vector)
        with self._errors():
            self._scripts["put_items"](args=args)

    def items(self, after: int = 0) -> list[StoredItem]:
        with self._errors():
            ids = self.client.zrangebyscore(self._key("items_seq"), f"({after}", "+inf")
            if not ids:
                return []
            pipe = self.client.pipeline(transaction=True)
            pipe.hmget(self._key("items"), ids)
            pipe.hmget(self._key("item_vectors"), ids)
            records, vectors = pipe.execute()
        out = []
        for item_id, raw, vector in zip(ids, records, vectors, strict=True):
            if raw is None:
                continue
            seq, record = raw.split(b"|", 1)
            d = json.loads(record)
            if int(seq) <= after:  # changed again between the two reads: the later wins
                continue
            out.append(
                StoredItem(
                    item_id.decode(),
                    d["fields"],
                    bool(d["deleted"]),
                    None if not vector else np.frombuffer(vector, "<f4"),
                    d["encoder"],
                    int(seq),
                )
            )
        out.sort(key=lambda i: i.seq)
        return out

    # -- experiments -------------------------------------------------------------------

    def change_experiment(self, change: Callable[[list[Experiment]], Experiment]) -> Experiment:
        """Store `change(stored experiments)` atomically; returns it.

        An optimistic transaction (WATCH the definitions, decide, MULTI/EXEC): a
        concurrent change makes EXEC fail and `change` runs again on the new
        definitions, so two workers cannot take one id or overlapping buckets.
        """
        import redis

        key = self._key("experiments")
        with self._errors(), self.client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    stored = [
                        Experiment.model_validate_json(v)
                        for _k, v in sorted(pipe.hgetall(key).items())
                    ]
                    experiment = change(stored)
                    pipe.multi()
                    pipe.hset(key, experiment.id, experiment.model_dump_json())
                    pipe.incr(self._key("experiments_version"))
                    pipe.execute()
                    return experiment
                except redis.WatchError:
                    continue

    def experiments(self) -> list[Experiment]:
        """Every stored experiment, by id."""
        with self._errors():
            rows = self.client.hgetall(self._key("experiments"))
        return [Experiment.model_validate_json(v) for _k, v in sorted(rows.items())]

    def experiments_version(self) -> int:
        """A counter that changes whenever a definition does (one GET per request)."""
        with self._errors():
            value = self.client.get(self._key("experiments_version"))
        return int(value) if value else 0

    def add_exposures(self, exposures: Sequence[Exposure]) -> None:
        """Log served lists (idempotent by experiment and request id)."""
        if not exposures:
            return
        args: list[Any] = [self.prefix]
        for x in exposures:
            record = json.dumps(
                {
                    "variant": x.variant,
                    "unit": x.unit,
                    "timestamp": x.timestamp,
                    "items": list(x.items),
                    "teams": None if x.teams is None else list(x.teams),
                }
            )
            args += (x.experiment_id, x.request_id, x.unit, repr(float(x.timestamp)), record)
        with self._errors():
            self._scripts["add_exposures"](args=args)

    def exposures(self, experiment_id: str) -> list[Exposure]:
        """The lists served in an experiment, oldest first."""
        with self._errors():
            ids = self.client.zrange(self._key("xt:" + experiment_id), 0, -1)
            raw = self.client.hmget(self._key("x:" + experiment_id), ids) if ids else []
        out = []
        for rid, r in zip(ids, raw, strict=True):
            if r is None:
                continue
            d = json.loads(r)
            out.append(
                Exposure(
                    rid.decode(),
                    experiment_id,
                    d["variant"],
                    d["unit"],
                    d["timestamp"],
                    tuple(d["items"]),
                    None if d["teams"] is None else tuple(d["teams"]),
                )
            )
        return out

    # -- the served model ----------------------------------------------------------------

    def announce_model(self, path: str, version: str) -> ModelAnnouncement:
        with self._errors():
            seq = int(self.client.incr(self._key("model_seq")))
            value = json.dumps({"seq": seq, "path": path, "version": version})
            # Only a newer announcement replaces the stored one (two at once: the later wins).
            self._scripts["announce"](args=[self._key("model"), seq, value])
        return ModelAnnouncement(seq, path, version)

    def announced_model(self) -> ModelAnnouncement | None:
        with self._errors():
            raw = self.client.get(self._key("model"))
        if raw is None:
            return None
        value = raw.split(b"|", 1)[1]
        return ModelAnnouncement(**json.loads(value))

    # -- the event stream ----------------------------------------------------------------

    def consumer(self, group: str, name: str) -> EventConsumer:
        """A reader of the event stream in consumer group `group` (created at the
        stream's start if new), as consumer `name`."""
        return EventConsumer(self, group, name)


class EventConsumer:
    """Reads accepted events from the store's stream in a Redis consumer group.

    Each entry goes to one consumer of the group and stays pending until `ack`; a
    consumer that dies leaves its entries pending, and `claim_stale` hands those idle
    longer than `min_idle_ms` to another (XAUTOCLAIM). Entries erased since they were
    read come back with no event and are acknowledged by `read` itself.
    """

    def __init__(self, store: RedisStateStore, group: str, name: str):
        import redis

        self.store, self.group, self.name = store, group, name
        self.stream = store._key("stream")
        with store._errors():
            try:
                store.client.xgroup_create(self.stream, group, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def _entries(self, raw: Sequence[Any]) -> list[StreamEntry]:
        out, gone = [], []
        for entry_id, fields in raw:
            eid = entry_id.decode()
            if not fields:  # deleted (an erasure) after it was delivered
                gone.append(eid)
                continue
            out.append(StreamEntry(eid, _event_from_json(fields[b"e"])))
        if gone:
            self.ack([*gone])
        return out

    def read(self, count: int = 100, block_ms: int | None = None) -> list[StreamEntry]:
        """Up to `count` entries no consumer of the group has had yet."""
        with self.store._errors():
            reply = self.store.client.xreadgroup(
                self.group, self.name, {self.stream: ">"}, count=count, block=block_ms
            )
        return self._entries(reply[0][1]) if reply else []

    def claim_stale(self, min_idle_ms: int, count: int = 100) -> list[StreamEntry]:
        """Take over entries another consumer read and has not acknowledged for `min_idle_ms`."""
        with self.store._errors():
            reply = self.store.client.xautoclaim(
                self.stream, self.group, self.name, min_idle_ms, "0-0", count=count
            )
        return self._entries(reply[1])

    def ack(self, entry_ids: Sequence[str]) -> int:
        """Mark entries done; returns how many were pending."""
        if not entry_ids:
            return 0
        with self.store._errors():
            return int(self.store.client.xack(self.stream, self.group, *entry_ids))

    def pending(self) -> int:
        """Entries of the group delivered and not yet acknowledged."""
        with self.store._errors():
            return int(self.store.client.xpending(self.stream, self.group)["pending"])
