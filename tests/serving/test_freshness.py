"""An acknowledged event changes the user's very next recommendation, every time.

1,000 trials against the real app and a real SQLite file. Each trial is a new user,
so the only thing that can change their answer is the one event just acknowledged,
and the fixture's two disjoint tastes (space films, romances, each watched by the
same users in pairs) give a known answer for what the change must be.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from serving_fixtures import ROMANCE, SPACE, auth


@pytest.fixture(params=["sqlite", "redis"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Every test here runs on both state stores."""
    return str(request.param)


TRIALS = 1000
POSITIVE = ("view", "click", "add_to_cart", "purchase", "rating")
TYPES = (*POSITIVE, "not_interested")
ITEMS = [i for i, *_ in SPACE + ROMANCE]


def same_taste(item: str) -> list[str]:
    """The six items of `item`'s taste (the fixture's items are `s0..s5` and `r0..r5`)."""
    return [i for i in ITEMS if i[0] == item[0]]


def partner(item: str) -> str:
    """The item watched by exactly the same users as `item`: index j and j + 3 of a pool.

    The fixture's user u watches pool item j when (u + j) % 3 != 0, so j and j + 3 share
    every viewer: EASE must rank the partner first for someone who has seen only `item`.
    """
    pool = same_taste(item)
    return pool[(pool.index(item) + 3) % len(pool)]


def ids(client: TestClient, key: str, user: str, k: int, exclude_seen: bool = True) -> list[str]:
    body = {"user_id": user, "k": k, "exclude_seen": exclude_seen, "explain": False}
    r = client.post("/v1/recommendations", json=body, headers=auth(key))
    assert r.status_code == 200, r.text
    return [i["item_id"] for i in r.json()["items"]]


def acknowledge(client: TestClient, key: str, trial: int, user: str, item: str, type_: str) -> None:
    event = {"event_id": f"t{trial}", "user_id": user, "item_id": item, "type": type_}
    if type_ == "rating":
        event["value"] = 5.0
    r = client.post("/v1/events", json={"events": [event]}, headers=auth(key))
    assert r.status_code == 200 and r.json() == {"accepted": 1, "duplicates": 0}, r.text


def trial(client: TestClient, keys: dict[str, str], n: int) -> None:
    """One new user, one event, and the next answer checked against the known one."""
    user, item, type_ = f"fresh-{n}", ITEMS[n % len(ITEMS)], TYPES[n % len(TYPES)]
    if type_ == "not_interested":
        before = ids(client, keys["read"], user, k=len(ITEMS), exclude_seen=False)
        assert item in before  # a stranger is offered every item
        acknowledge(client, keys["ingest"], n, user, item, type_)
        after = ids(client, keys["read"], user, k=len(ITEMS), exclude_seen=False)
        assert sorted(after) == sorted(set(ITEMS) - {item}), (n, type_, item, after)
        return
    before = ids(client, keys["read"], user, k=5)
    assert {i[0] for i in before} == {"s", "r"}  # popularity mixes both tastes
    acknowledge(client, keys["ingest"], n, user, item, type_)
    after = ids(client, keys["read"], user, k=5)
    assert after[0] == partner(item), (n, type_, item, after)
    assert sorted(after) == sorted(set(same_taste(item)) - {item}), (n, type_, item, after)


@pytest.mark.slow
def test_every_acknowledged_event_changes_the_next_recommendation(
    client: TestClient, keys: dict[str, str]
) -> None:
    for n in range(TRIALS):
        trial(client, keys, n)  # asserts inside: a single miss fails the test
