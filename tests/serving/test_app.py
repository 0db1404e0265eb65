"""The HTTP service against a real SQLite file: freshness, idempotency, items, erasure, swaps."""

from __future__ import annotations

import collections
import logging
import shutil
import sqlite3
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from serving_fixtures import ENCODER, auth, make_artifact

from lmrec.serving import Settings, create_app


@pytest.fixture(params=["sqlite", "redis"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Every test here runs on both state stores."""
    return str(request.param)


def recommend(client: TestClient, key: str, **body: object) -> list[str]:
    r = client.post("/v1/recommendations", json=body, headers=auth(key))
    assert r.status_code == 200, r.text
    return [item["item_id"] for item in r.json()["items"]]


def event(
    event_id: str, user: str, item: str, type_: str = "click", ts: float = 1e9
) -> dict[str, object]:
    return {"event_id": event_id, "user_id": user, "item_id": item, "type": type_, "timestamp": ts}


def post_events(client: TestClient, key: str, *events: dict[str, object]) -> dict[str, int]:
    r = client.post("/v1/events", json={"events": list(events)}, headers=auth(key))
    assert r.status_code == 200, r.text
    return r.json()


def stored_events(client: TestClient, *users: str) -> list[tuple[str, ...]]:
    """The stored events of `users`, oldest first, read from the serving app's store."""
    store = client.app.state.services.store  # type: ignore[attr-defined]
    rows = [
        (e.timestamp, e.event_id, e.user_id, e.item_id, e.type)
        for u in users
        for e in store.user_events(u)
    ]
    return [r[1:] for r in sorted(rows)]


def leftovers(settings: Settings, secret: str) -> list[str]:
    """Where `secret` still appears in the state store's data: a SQLite file's tables
    and files (WAL included), or every Redis key, name and value."""
    if settings.store is None:
        found = []
        with sqlite3.connect(settings.db) as conn:
            tables = [
                t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            for table in tables:
                for row in conn.execute(f"SELECT * FROM {table}"):
                    found += [table for cell in row if secret in str(cell)]
        for suffix in ("", "-wal", "-shm"):
            f = Path(str(settings.db) + suffix)
            if f.exists() and secret.encode() in f.read_bytes():
                found.append(f.name)
        return found
    import redis

    r = redis.Redis.from_url(settings.store)
    found = []
    for key in r.scan_iter(count=1000):
        kind = r.type(key).decode()
        if kind == "hash":
            parts = [b for kv in r.hgetall(key).items() for b in kv]
        elif kind in ("set",):
            parts = list(r.smembers(key))
        elif kind == "zset":
            parts = r.zrange(key, 0, -1)
        elif kind == "stream":
            parts = [v for _id, fields in r.xrange(key) for kv in fields.items() for v in kv]
        else:
            parts = [r.get(key) or b""]
        found += [key.decode() for p in [key, *parts] if secret.encode() in p]
    r.close()
    return found


def test_same_event_id_is_stored_once(
    client: TestClient, keys: dict[str, str], settings: Settings
) -> None:
    e = event("e1", "u0", "s1")
    assert post_events(client, keys["ingest"], e, e) == {"accepted": 1, "duplicates": 1}
    assert post_events(client, keys["ingest"], e) == {"accepted": 0, "duplicates": 1}
    assert stored_events(client, "u0") == [("e1", "u0", "s1", "click")]


def test_an_acknowledged_event_changes_the_next_recommendation(
    client: TestClient, keys: dict[str, str]
) -> None:
    before = recommend(client, keys["read"], user_id="u4", k=5)
    assert before[0].startswith("r")  # a romance fan gets romances
    post_events(client, keys["ingest"], event("e1", "u4", before[0], "purchase"))
    after = recommend(client, keys["read"], user_id="u4", k=5)
    assert before[0] not in after  # consumed, so excluded
    assert after != before


def test_new_user_gets_popular_items_then_personal_ones(
    client: TestClient, keys: dict[str, str]
) -> None:
    cold = client.post(
        "/v1/recommendations", json={"user_id": "newcomer", "k": 3}, headers=auth(keys["read"])
    )
    assert cold.json()["items"][0]["reasons"] == ["popular"]
    post_events(client, keys["ingest"], event("n1", "newcomer", "s0", "view"))
    warm = recommend(client, keys["read"], user_id="newcomer", k=3)
    assert all(i.startswith("s") for i in warm) and "s0" not in warm


def test_not_interested_excludes_the_item(client: TestClient, keys: dict[str, str]) -> None:
    first = recommend(client, keys["read"], user_id="u0", k=3)[0]
    post_events(client, keys["ingest"], event("x1", "u0", first, "not_interested"))
    assert first not in recommend(client, keys["read"], user_id="u0", k=12, exclude_seen=False)


def test_history_exclude_and_filters(client: TestClient, keys: dict[str, str]) -> None:
    got = recommend(
        client, keys["read"], history=["r0", "r1"], k=12, exclude=["r2"], filters={"brand": "Rose"}
    )
    assert got and set(got) <= {"r3", "r5"}
    got = recommend(client, keys["read"], history=["r0"], k=12, filters={"categories": "space"})
    assert got and all(i.startswith("s") for i in got)
    bad = client.post(
        "/v1/recommendations",
        json={"history": ["r0"], "filters": {"colour": "red"}},
        headers=auth(keys["read"]),
    )
    assert bad.status_code == 422 and "colour" in bad.json()["error"]["message"]


def test_new_item_is_recommendable_in_the_same_request(
    client: TestClient, keys: dict[str, str]
) -> None:
    r = client.post(
        "/v1/items",
        headers=auth(keys["ingest"]),
        json={
            "items": [
                {
                    "item_id": "n1",
                    "title": "Star Voyage",
                    "brand": "Orbit",
                    "categories": ["space"],
                    "year": 2025,
                }
            ]
        },
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"added": 1, "updated": 0, "deleted": 0, "scored_from_text": True}
    got = client.post(
        "/v1/recommendations", json={"history": ["s0"], "k": 3}, headers=auth(keys["read"])
    )
    items = {i["item_id"]: i for i in got.json()["items"]}
    assert "n1" in items
    assert items["n1"]["reasons"][0].startswith("content")
    similar = client.get(
        "/v1/items/similar", params={"item_id": "n1", "k": 1}, headers=auth(keys["read"])
    )
    assert [i["item_id"] for i in similar.json()["items"]] == ["s0"]
    # Attributes given at upsert are filterable at once.
    assert recommend(client, keys["read"], history=["s0"], k=5, filters={"year": "2025"}) == ["n1"]


def test_deleted_item_is_never_recommended(client: TestClient, keys: dict[str, str]) -> None:
    top = recommend(client, keys["read"], user_id="u0", k=1)[0]
    r = client.delete("/v1/items", params={"item_id": top}, headers=auth(keys["delete"]))
    assert r.status_code == 200 and r.json()["deleted"] == 1
    assert top not in recommend(client, keys["read"], user_id="u0", k=12, exclude_seen=False)
    again = client.delete("/v1/items", params={"item_id": top}, headers=auth(keys["delete"]))
    assert again.status_code == 404 and again.json()["error"]["code"] == "not_found"
    # The delete flag on upsert does the same, and needs the delete scope too.
    flagged = {"items": [{"item_id": "s2", "deleted": True}]}
    refused = client.post("/v1/items", json=flagged, headers=auth(keys["ingest"]))
    assert refused.status_code == 403 and "'delete' scope" in refused.json()["error"]["message"]
    r = client.post("/v1/items", json=flagged, headers=auth(keys["all"]))  # ingest + delete
    assert r.json()["deleted"] == 1
    assert "s2" not in recommend(client, keys["read"], history=["s0"], k=12)


def _traces(root: object, needle: str) -> list[str]:
    """Where, among the objects reachable from `root`, a string contains `needle`.

    Walks attributes, slots, mappings, collections and string arrays (not modules,
    classes or functions), so a cache added anywhere under the app's services is
    scanned without this test knowing its name.
    """
    skip = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, int, float)
    found: list[str] = []
    seen: set[int] = set()
    stack: list[tuple[object, str]] = [(root, "services")]
    while stack:
        obj, where = stack.pop()
        if id(obj) in seen or obj is None or isinstance(obj, skip):
            continue
        seen.add(id(obj))
        if isinstance(obj, str | bytes):
            if (needle if isinstance(obj, str) else needle.encode()) in obj:
                found.append(where)
        elif isinstance(obj, np.ndarray):
            if obj.dtype.kind in "OSU":
                stack.extend((x, f"{where}[]") for x in obj.ravel().tolist())
        elif isinstance(obj, dict):
            stack.extend((k, f"{where}{{key}}") for k in obj)
            stack.extend((v, f"{where}[{k!r}]") for k, v in obj.items())
        elif isinstance(obj, list | tuple | set | frozenset | collections.deque):
            stack.extend((x, f"{where}[]") for x in obj)
        else:
            names = list(getattr(obj, "__dict__", {}))
            names += [n for c in type(obj).__mro__ for n in getattr(c, "__slots__", ())]
            stack.extend((getattr(obj, n, None), f"{where}.{n}") for n in names)
    return found


def test_erasing_a_user_leaves_no_trace(
    client: TestClient, keys: dict[str, str], settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "user-7f3a-to-be-forgotten"
    in_context = {**event("z4", secret, "s2", "click"), "context": {"session": f"s-{secret}"}}
    post_events(
        client,
        keys["ingest"],
        event("z1", secret, "s0", "view"),
        event("z2", secret, "s1", "purchase"),
        event("z3", secret, "r2", "not_interested"),
        in_context,
        event("keep", "u1", "s5", "click"),
    )
    assert recommend(client, keys["read"], user_id=secret, k=3)
    r = client.request(
        "DELETE", "/v1/users", json={"user_id": secret}, headers=auth(keys["delete"])
    )
    # Redis keeps the erased writes in its append-only file until the rewrite it was
    # asked for finishes, so it cannot say the log is clear.
    cleared = settings.store is None
    assert r.status_code == 200 and r.json() == {"erased_events": 4, "wal_cleared": cleared}
    # Nothing in the server's memory: store, model registry, pipeline, caches, metrics.
    services = client.app.state.services  # type: ignore[attr-defined]
    assert _traces(services, "Star Voyage")  # the walk does reach the served catalogue
    assert _traces(services, secret) == []
    assert secret not in client.get("/metrics").text
    assert not [r.getMessage() for r in caplog.records if secret in r.getMessage()]

    assert leftovers(settings, secret) == []
    assert [e[0] for e in stored_events(client, "u1", secret)] == ["keep"]
    # Served like a stranger now (popularity), not from the erased state.
    cold = client.post(
        "/v1/recommendations", json={"user_id": secret, "k": 3}, headers=auth(keys["read"])
    )
    assert cold.json()["items"][0]["reasons"] == ["popular"]


def test_erased_trained_user_is_no_longer_served_from_the_artefact(
    client: TestClient, keys: dict[str, str]
) -> None:
    client.request("DELETE", "/v1/users", json={"user_id": "u1"}, headers=auth(keys["delete"]))
    got = client.post(
        "/v1/recommendations", json={"user_id": "u1", "k": 3}, headers=auth(keys["read"])
    )
    assert got.json()["items"][0]["reasons"] == ["popular"]


def _operations(client: TestClient) -> list[tuple[str, str]]:
    """Every (method, path) in the served OpenAPI document except the health checks."""
    spec = client.get("/openapi.json").json()
    return [
        (method.upper(), path)
        for path, ops in spec["paths"].items()
        for method in ops
        if not path.startswith("/health")
    ]


#: Reads sent as POST so that the ids they name stay out of URLs (the dashboard's views).
_READS_BY_POST = {"/v1/users/history", "/v1/items/lookup"}


def _scope_needed(spec: dict[str, Any], method: str, path: str) -> str:
    """The scope the design gives an operation (the matrix in `lmrec.serving.auth`): admin;
    delete for what destroys data; ingest for other writes; read for reads."""
    tag = spec["paths"][path][method.lower()]["tags"][0]
    if path in _READS_BY_POST:
        return "read"
    if tag == "admin":
        return "admin"
    if tag == "users" or (tag == "items" and method == "DELETE"):
        return "delete"
    if tag == "events" or (tag == "items" and method != "GET"):
        return "ingest"
    return "read"


def test_every_route_is_in_the_openapi_or_is_metrics(client: TestClient) -> None:
    """So a test generated from the document reaches every route there is."""
    served = {
        (method, route.path)
        for route in client.app.routes  # type: ignore[attr-defined]
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    documented = set(_operations(client)) | {("GET", "/health/live"), ("GET", "/health/ready")}
    assert served - documented == {("GET", "/metrics")}


def test_every_protected_route_needs_a_key_with_the_right_scope(
    client: TestClient, keys: dict[str, str]
) -> None:
    """Generated from the OpenAPI: each operation, no key, an unknown key, and every scope."""
    spec = client.get("/openapi.json").json()
    operations = _operations(client)
    assert len(operations) == 18  # 8 + the five experiment routes + five dashboard views
    for method, path in operations:
        needed = _scope_needed(spec, method, path)
        missing = client.request(method, path)
        assert missing.status_code == 401, (method, path)
        assert missing.json()["error"]["code"] == "unauthorized"
        assert missing.headers["WWW-Authenticate"] == "Bearer"
        bad_key = client.request(method, path, headers=auth("not-a-key"))
        assert bad_key.status_code == 401, (method, path)
        assert bad_key.json()["error"]["message"] == "unknown API key"
        for scope in ("read", "ingest", "delete", "admin"):
            r = client.request(method, path, headers=auth(keys[scope]))
            if scope == needed:  # admitted: whatever it answers, it is not an auth refusal
                assert r.status_code not in (401, 403), (method, path, scope)
            else:
                assert r.status_code == 403, (method, path, scope)
                assert r.json()["error"] == {
                    "code": "forbidden",
                    "message": f"this API key lacks the {needed!r} scope",
                }
        # X-API-Key works as well as a bearer token.
        right = client.request(method, path, headers={"X-API-Key": keys[needed]})
        assert right.status_code not in (401, 403), (method, path)


def test_private_metrics_need_an_admin_key(settings: Settings, keys: dict[str, str]) -> None:
    private = settings.model_copy(update={"metrics_public": False})
    with TestClient(create_app(private, encoder=ENCODER)) as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers=auth("not-a-key")).status_code == 401
        for scope in ("read", "ingest"):
            assert c.get("/metrics", headers=auth(keys[scope])).status_code == 403
        assert c.get("/metrics", headers=auth(keys["admin"])).status_code == 200
        assert c.get("/metrics", headers={"X-API-Key": keys["admin"]}).status_code == 200


def test_health_and_metrics_need_no_key(client: TestClient, keys: dict[str, str]) -> None:
    assert client.get("/health/live").json() == {"status": "ok"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["model_version"]
    recommend(client, keys["read"], user_id="u0")
    metrics = client.get("/metrics").text
    assert (
        'lmrec_http_requests_total{method="POST",route="/v1/recommendations",status="200"}'
        in metrics
    )
    assert "u0" not in metrics


def test_oversized_bodies_are_refused_with_413(
    client: TestClient, keys: dict[str, str], settings: Settings
) -> None:
    big = b'{"events": [' + b" " * settings.max_body_bytes + b"]}"
    r = client.post(
        "/v1/events",
        content=big,
        headers={**auth(keys["ingest"]), "Content-Type": "application/json"},
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

    def chunks():  # no Content-Length: sent with Transfer-Encoding: chunked
        yield b'{"events": ['
        for _ in range(settings.max_body_bytes // 1024 + 1):
            yield b" " * 1024
        yield b"]}"

    r = client.post(
        "/v1/events",
        content=chunks(),
        headers={**auth(keys["ingest"]), "Content-Type": "application/json"},
    )
    assert r.status_code == 413


def test_limits_give_clear_422s(client: TestClient, keys: dict[str, str]) -> None:
    r = client.post(
        "/v1/recommendations", json={"user_id": "u0", "k": 501}, headers=auth(keys["read"])
    )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_request"
    assert "k: Input should be less than or equal to 500" in r.json()["error"]["message"]
    r = client.post("/v1/recommendations", json={"user_id": "x" * 257}, headers=auth(keys["read"]))
    assert r.status_code == 422 and "256 bytes" in r.json()["error"]["message"]
    r = client.post(
        "/v1/events",
        json={"events": [event(str(i), "u", "i") for i in range(1001)]},
        headers=auth(keys["ingest"]),
    )
    assert r.status_code in (413, 422)
    r = client.post(
        "/v1/events",
        json={"events": [event("1", "u", "i", "teleport")]},
        headers=auth(keys["ingest"]),
    )
    assert r.status_code == 422 and "type" in r.json()["error"]["message"]


def test_broken_artefact_is_rejected_and_the_old_one_keeps_serving(
    client: TestClient, keys: dict[str, str], artifact_dir: Path, tmp_path: Path
) -> None:
    old = client.get("/v1/models/current", headers=auth(keys["read"])).json()["model_version"]
    broken = tmp_path / "broken"
    shutil.copytree(artifact_dir, broken)
    state = broken / "model" / "state.safetensors"
    state.write_bytes(state.read_bytes()[:-8] + b"\x00" * 8)
    r = client.post("/v1/admin/models", json={"path": str(broken)}, headers=auth(keys["admin"]))
    assert r.status_code == 422
    assert "state.safetensors: checksum mismatch" in r.json()["error"]["message"]
    got = client.post("/v1/recommendations", json={"user_id": "u0"}, headers=auth(keys["read"]))
    assert got.status_code == 200 and got.json()["model_version"] == old


def test_hot_swap_keeps_online_items_and_events(
    client: TestClient, keys: dict[str, str], tmp_path: Path
) -> None:
    client.post(
        "/v1/items",
        json={"items": [{"item_id": "n1", "title": "Star Voyage"}]},
        headers=auth(keys["ingest"]),
    )
    post_events(client, keys["ingest"], event("e1", "fan", "s0"))
    new = make_artifact(tmp_path / "v2", reg=5.0)
    r = client.post("/v1/admin/models", json={"path": str(new)}, headers=auth(keys["admin"]))
    assert r.status_code == 200, r.text
    version = r.json()["model_version"]
    got = client.post(
        "/v1/recommendations", json={"user_id": "fan", "k": 3}, headers=auth(keys["read"])
    ).json()
    assert got["model_version"] == version
    assert "n1" in [i["item_id"] for i in got["items"]] and "s0" not in [
        i["item_id"] for i in got["items"]
    ]


def test_state_survives_a_restart(settings: Settings, keys: dict[str, str]) -> None:
    with TestClient(create_app(settings, encoder=ENCODER)) as c:
        post_events(c, keys["ingest"], event("e1", "fan", "r0"))
        c.post(
            "/v1/items",
            json={"items": [{"item_id": "n1", "title": "Paris Love"}]},
            headers=auth(keys["ingest"]),
        )
    with TestClient(create_app(settings, encoder=ENCODER)) as c:
        got = recommend(c, keys["read"], user_id="fan", k=12)
        assert "r0" not in got and "n1" in got
        assert post_events(c, keys["ingest"], event("e1", "fan", "r0")) == {
            "accepted": 0,
            "duplicates": 1,
        }


@pytest.mark.parametrize("anonymous", [False, True])
def test_no_keys_configured(settings: Settings, anonymous: bool) -> None:
    s = settings.model_copy(
        update={
            "api_keys": settings.api_keys.model_copy(update={"keys": ()}),
            "allow_anonymous": anonymous,
        }
    )
    with TestClient(create_app(s, encoder=ENCODER)) as c:
        r = c.post("/v1/recommendations", json={"user_id": "u0"})
        assert r.status_code == (200 if anonymous else 401)


def test_erasure_empties_the_wal_even_while_a_reader_holds_it(tmp_path):
    """A reader mid-query blocks a TRUNCATE checkpoint; erasure waits it out, so no old
    page image of the user's rows stays behind in the write-ahead log."""
    import threading

    from lmrec.serving.store import Event, SQLiteStateStore

    store = SQLiteStateStore(tmp_path / "state.db").open()
    secret = "user-to-forget-7f3a"
    store.add_events([Event(f"e{i}", secret, f"item{i}", "view", 1.0 + i) for i in range(50)])
    reader = sqlite3.connect(tmp_path / "state.db", isolation_level=None, check_same_thread=False)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM events").fetchone()  # holds a read snapshot
    threading.Timer(0.2, reader.rollback).start()
    assert store.erase_user(secret).events == 50
    reader.close()
    wal = tmp_path / "state.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    assert secret.encode() not in (tmp_path / "state.db").read_bytes()
    assert store.user_state(secret).history == []
