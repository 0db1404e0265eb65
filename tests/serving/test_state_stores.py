"""One conformance suite for every `StateStore`: SQLite (a real file) and Redis (a real
redis-server on a loopback port). Each test gives both the same calls and expects the
same known answers; Redis-only behaviour (durability check, the event stream's
consumer groups, an unreachable server) follows."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from lmrec.data.events import EventPolicy
from lmrec.errors import LmrecError
from lmrec.experiments import Experiment, ExperimentSpec, Exposure
from lmrec.experiments.design import allocate
from lmrec.serving.local_redis import RedisServer
from lmrec.serving.redis_store import RedisStateStore
from lmrec.serving.store import (
    Event,
    StateStore,
    StoredItem,
    StoreUnavailable,
    open_store,
)


@pytest.fixture(params=["sqlite", "redis"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where a store lives: a SQLite path or a live Redis URL."""
    if request.param == "sqlite":
        yield str(tmp_path / "state.db")
    else:
        yield request.getfixturevalue("redis_server").url


@pytest.fixture
def store(location: str) -> Iterator[StateStore]:
    s = open_store(location, EventPolicy(min_rating=3.0))
    try:
        yield s
    finally:
        s.close()


def ev(eid: str, user: str, item: str | None, t: float, kind: str = "click", **kw: object) -> Event:
    return Event(eid, user, item, kind, t, **kw)  # type: ignore[arg-type]


def test_events_are_idempotent_by_id(store: StateStore) -> None:
    first = [ev("e1", "u", "a", 1.0), ev("e2", "u", "b", 2.0), ev("e1", "u", "zz", 9.0)]
    assert store.add_events(first) == 2  # the repeat inside the batch is ignored too
    assert store.add_events([ev("e2", "u", "c", 3.0), ev("e3", "u", "c", 3.0)]) == 1
    assert store.user_state("u").history == ["a", "b", "c"]
    assert store.counts().events == 3


def test_history_follows_the_policy_time_and_arrival_order(store: StateStore) -> None:
    store.add_events(
        [
            ev("1", "u", "late", 50.0),
            ev("2", "u", "early", 10.0),
            ev("3", "u", "tie-first", 20.0),
            ev("4", "u", "tie-second", 20.0),
            ev("5", "u", "low", 30.0, "rating", value=2.0),  # below min_rating 3
            ev("6", "u", "high", 31.0, "rating", value=4.0),
            ev("7", "u", None, 32.0, "search", context={"query": "red shoes"}),
            ev("8", "u", "nope", 33.0, "not_interested"),
            ev("9", "u", "nope", 34.0, "not_interested"),
            ev("10", "other", "x", 1.0),
        ]
    )
    state = store.user_state("u")
    assert state.history == ["early", "tie-first", "tie-second", "high", "late"]
    assert state.negative == ["nope"]
    assert not state.erased
    assert store.user_state("u", limit=2).history == ["high", "late"]  # the newest two
    newest = store.user_events("u", limit=3)
    assert [e.event_id for e in newest] == ["1", "9", "8"]
    assert store.user_events("u", limit=10)[3].context == {"query": "red shoes"}
    assert store.user_state("nobody").history == []


def test_an_event_without_an_item_must_be_a_search(store: StateStore) -> None:
    with pytest.raises(ValueError, match="only a search may omit item_id"):
        store.add_events([ev("ok", "u", "a", 1.0), ev("bad", "u", None, 2.0)])
    assert store.counts().events == 0  # nothing of the refused batch was kept


def test_erasure_removes_events_and_exposures_and_leaves_a_tombstone(store: StateStore) -> None:
    store.add_events(
        [ev("1", "gone", "a", 1.0), ev("2", "gone", "b", 2.0), ev("3", "kept", "a", 1.0)]
    )
    store.add_exposures(
        [
            Exposure("r1", "exp", "a", "gone", 5.0, ("a", "b")),
            Exposure("r2", "exp", "b", "kept", 6.0, ("b",)),
        ]
    )
    done = store.erase_user("gone")
    assert done.events == 2
    state = store.user_state("gone")
    assert state.history == [] and state.erased
    assert store.erased_among(["kept", "gone", "never"]) == ["gone"]
    assert [x.request_id for x in store.exposures("exp")] == ["r2"]
    assert store.user_state("kept").history == ["a"]
    counts = store.counts()
    assert (counts.events, counts.users, counts.erased_users) == (1, 1, 1)
    # A later event of the user is stored again (the tombstone only hides old copies).
    assert store.add_events([ev("4", "gone", "c", 9.0)]) == 1


def test_item_changes_replay_in_order_and_the_last_change_wins(store: StateStore) -> None:
    v = np.arange(4, dtype=np.float32)
    store.put_items([StoredItem("n1", {"title": "one"}, False, v, "enc-1")])
    store.put_items([StoredItem("n2", {"title": "two"}, False)])
    store.put_items([StoredItem("n1", {"title": "one, again"}, False, v * 2, "enc-1")])
    store.put_items([StoredItem("n2", {}, True)])
    items = store.items()
    assert [(i.item_id, i.deleted) for i in items] == [("n1", False), ("n2", True)]
    assert items[0].fields == {"title": "one, again"} and items[0].encoder == "enc-1"
    np.testing.assert_array_equal(items[0].vector, v * 2)
    assert items[1].vector is None
    assert items[0].seq < items[1].seq
    assert [i.item_id for i in store.items(after=items[0].seq)] == ["n2"]
    assert store.items(after=items[1].seq) == []
    counts = store.counts()
    assert (counts.items, counts.deleted_items) == (2, 1)


def _spec(eid: str, traffic: float = 0.6) -> ExperimentSpec:
    return ExperimentSpec(
        id=eid,
        traffic=traffic,
        variants=[{"name": "a", "share": 0.5}, {"name": "b", "share": 0.5}],  # type: ignore[list-item]
    )


def test_concurrent_experiment_changes_never_share_an_id_or_buckets(store: StateStore) -> None:
    """Eight threads each try to create "exp" and their own 10% experiment at once."""
    made, refused = [], []

    def create(eid: str) -> None:
        def add(stored: list[Experiment]) -> Experiment:
            if any(e.id == eid for e in stored):
                raise KeyError(eid)
            return allocate(Experiment(**_spec(eid, 0.1).model_dump(), created_at=1.0), stored, 1.0)

        try:
            made.append(store.change_experiment(add))
        except KeyError:
            refused.append(eid)

    version = store.experiments_version()
    threads = [threading.Thread(target=create, args=(e,)) for e in ["exp"] * 4 + list("wxyz")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(refused) == 3  # "exp" was created once
    stored = store.experiments()
    assert [e.id for e in stored] == ["exp", "w", "x", "y", "z"]
    ranges = sorted(e.buckets for e in stored if e.buckets is not None)
    assert len(ranges) == 5
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(ranges))  # disjoint
    assert store.experiments_version() == version + 5


def test_exposures_are_idempotent_and_units_events_are_found(store: StateStore) -> None:
    shown = [
        Exposure("r1", "exp", "a", "u1", 10.0, ("i1", "i2")),
        Exposure("r2", "exp", "b", "u2", 11.0, ("i2", "i3"), ("a", "b")),
        Exposure("r1", "exp", "b", "u9", 99.0, ("x",)),  # a retried log of r1: ignored
        Exposure("r3", "other", "a", "u3", 12.0, ("i1",)),
    ]
    store.add_exposures(shown)
    got = store.exposures("exp")
    assert got == shown[:2]
    store.add_events(
        [
            ev("e1", "u2", "i3", 20.0, request_id="r2"),
            ev("e0", "u1", "i1", 5.0),  # before the exposure: still the unit's event
            ev("e2", "u3", "i1", 21.0),  # not exposed in "exp"
        ]
    )
    events = store.unit_events("exp")
    assert [e.event_id for e in events] == ["e0", "e1"]
    assert events[1].request_id == "r2"


def test_the_salt_and_the_data_survive_a_reopen(location: str) -> None:
    first = open_store(location)
    first.add_events([ev("1", "u", "a", 1.0)])
    hashed = first.hash_id("u")
    first.close()
    again = open_store(location)
    try:
        assert again.hash_id("u") == hashed != again.hash_id("v")
        assert again.user_state("u").history == ["a"]
    finally:
        again.close()


# -- Redis only ------------------------------------------------------------------------


def test_a_redis_without_an_append_only_file_is_refused(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "volatile", appendonly=False).start()
    try:
        with pytest.raises(LmrecError, match="--appendonly yes"):
            open_store(server.url)
        store = open_store(server.url + "?volatile=1")
        assert isinstance(store, RedisStateStore) and store.durability == "none"
        store.close()
    finally:
        server.stop()


def test_acknowledged_events_survive_kill_9_of_redis(redis_server: RedisServer) -> None:
    store = open_store(redis_server.url)
    assert isinstance(store, RedisStateStore) and store.durability == "always"
    store.add_events([ev(str(i), f"u{i % 7}", f"i{i}", float(i)) for i in range(500)])
    redis_server.stop(kill=True)
    with pytest.raises(StoreUnavailable, match="does not answer"):
        store.add_events([ev("late", "u", "x", 1.0)])
    redis_server.start()  # replays the append-only file
    again = open_store(redis_server.url)
    try:
        assert again.counts().events == 500
        assert again.user_state("u3").history == [f"i{i}" for i in range(3, 500, 7)]
    finally:
        again.close()
        store.close()


def test_stream_consumers_share_entries_and_take_over_a_dead_ones(
    redis_server: RedisServer,
) -> None:
    store = open_store(redis_server.url)
    assert isinstance(store, RedisStateStore)
    store.add_events([ev(f"e{i}", "u" if i < 5 else "v", f"i{i}", float(i)) for i in range(10)])
    first, second = store.consumer("export", "w1"), store.consumer("export", "w2")
    got = first.read(count=6)
    assert [e.event.event_id for e in got] == [f"e{i}" for i in range(6)]
    time.sleep(0.3)  # w1's entries go idle; w2's, read now, are fresh
    assert [e.event.event_id for e in second.read(count=100)] == [f"e{i}" for i in range(6, 10)]
    first.ack([got[0].entry_id])
    assert first.pending() == 9
    # w1 "dies" holding e1..e5; u's events are then erased, so only e5 (user v) is left.
    store.erase_user("u")
    claimed = second.claim_stale(min_idle_ms=250)
    assert [e.event.event_id for e in claimed] == ["e5"]
    second.ack([e.entry_id for e in claimed])
    assert second.pending() == 4  # w2's own e6..e9, not yet acknowledged
    # A new group starts at the beginning of what is left.
    assert len(store.consumer("audit", "a").read(count=100)) == 5
    store.close()
