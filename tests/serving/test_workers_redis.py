"""Several real server processes sharing one real redis-server.

Two `lmrec serve` processes on their own ports (so each request's worker is known)
and one `lmrec serve --workers 2` (one port, a supervisor that restarts a killed
worker). Any worker's answer must reflect what any other acknowledged; item changes
and model loads reach every worker; a version never flips back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from serving_fixtures import ServerProcess, make_artifact

from lmrec.serving.local_redis import RedisServer

pytestmark = pytest.mark.slow


def _serve(model: Path, store: str, *extra: str) -> Callable[[int], list[str]]:
    return lambda port: [
        sys.executable,
        "-m",
        "lmrec.cli",
        "serve",
        "--model-dir",
        str(model),
        "--store",
        store,
        "--allow-anonymous",
        "--port",
        str(port),
        *extra,
    ]


def _until(check: Callable[[], bool], timeout_s: float = 20) -> float:
    """Seconds until `check()` holds (fails the test after `timeout_s`)."""
    t0 = time.monotonic()
    while not check():
        assert time.monotonic() - t0 < timeout_s, "timed out"
        time.sleep(0.02)
    return time.monotonic() - t0


def _active(url: str, item_id: str) -> bool | None:
    """Whether the server serves the item (None: it has never heard of it)."""
    r = httpx.post(f"{url}/v1/items/lookup", json={"item_ids": [item_id]}, timeout=30)
    items = r.json()["items"]
    return bool(items[0]["active"]) if items else None


def _top(url: str, body: dict) -> list[str]:
    r = httpx.post(f"{url}/v1/recommendations", json=body, timeout=30)
    assert r.status_code == 200, r.text
    return [i["item_id"] for i in r.json()["items"]]


@pytest.fixture
def models(tmp_path: Path) -> tuple[Path, Path]:
    return make_artifact(tmp_path / "models" / "v1"), make_artifact(
        tmp_path / "models" / "v2", reg=50.0
    )


@pytest.fixture
def pair(redis_server: RedisServer, models: tuple[Path, Path]) -> Iterator[list[ServerProcess]]:
    servers = [ServerProcess(_serve(models[0], redis_server.url)).start() for _ in range(2)]
    try:
        yield servers
    finally:
        for s in servers:
            s.stop()


def test_events_items_and_model_loads_reach_every_server(
    pair: list[ServerProcess], models: tuple[Path, Path]
) -> None:
    a, b = pair
    # An event acknowledged by A is in B's very next answer (no wait).
    before = _top(b.url, {"user_id": "new-user", "k": 3})
    event = {"event_id": "e1", "user_id": "new-user", "item_id": "r0", "type": "purchase"}
    assert httpx.post(f"{a.url}/v1/events", json={"events": [event]}).json()["accepted"] == 1
    after = _top(b.url, {"user_id": "new-user", "k": 3})
    assert "r0" not in after and after != before  # r0 is history now; romance comes first
    assert {"r1", "r2", "r3", "r4", "r5"} & set(after)
    # The same event sent to B is a duplicate: idempotent across servers.
    assert httpx.post(f"{b.url}/v1/events", json={"events": [event]}).json()["duplicates"] == 1

    # An item added through A is served by B within the follow interval, and a
    # deletion through B reaches A.
    item = {"item_id": "s9", "title": "Star Voyage Returns", "genre": "Orbit"}
    assert httpx.post(f"{a.url}/v1/items", json={"items": [item]}).status_code == 200
    waited = _until(lambda: _active(b.url, "s9") is True)
    assert waited < 5
    assert httpx.delete(f"{b.url}/v1/items", params={"item_id": "s9"}).status_code == 200
    _until(lambda: _active(a.url, "s9") is False)

    # A model loaded through A is served by B; neither ever reports the old one again.
    v1 = httpx.get(f"{b.url}/v1/models/current").json()["model_version"]
    r = httpx.post(f"{a.url}/v1/admin/models", json={"path": str(models[1])}, timeout=60)
    assert r.status_code == 200, r.text
    v2 = r.json()["model_version"]
    assert v2 != v1
    _until(lambda: httpx.get(f"{b.url}/v1/models/current").json()["model_version"] == v2)
    for _ in range(20):
        for s in (a, b):
            assert httpx.get(f"{s.url}/v1/models/current").json()["model_version"] == v2


def test_a_restarted_server_comes_back_on_the_announced_model(
    pair: list[ServerProcess], models: tuple[Path, Path]
) -> None:
    a, b = pair
    r = httpx.post(f"{a.url}/v1/admin/models", json={"path": str(models[1])}, timeout=60)
    v2 = r.json()["model_version"]
    b.kill()
    b.start()  # started with --model-dir v1, as before
    assert httpx.get(f"{b.url}/v1/models/current").json()["model_version"] == v2


def _children(pid: int) -> set[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return {int(p) for p in out.stdout.split()}


def test_workers_share_one_port_and_a_killed_worker_is_replaced(
    redis_server: RedisServer, models: tuple[Path, Path]
) -> None:
    server = ServerProcess(_serve(models[0], redis_server.url, "--workers", "2")).start()
    assert server.proc is not None
    try:
        # Both workers up (the supervisor's children that serve; spawn adds a tracker).
        _until(lambda: len(_children(server.proc.pid)) >= 3, timeout_s=120)  # type: ignore[union-attr]
        before = _children(server.proc.pid)
        acked, failed = 0, 0
        with httpx.Client(base_url=server.url, timeout=10) as http:
            for i in range(200):
                if i == 50:  # SIGKILL one worker mid-traffic
                    victim = max(before)
                    os.kill(victim, signal.SIGKILL)
                e = {"event_id": f"w{i}", "user_id": f"u-{i % 5}", "item_id": "s1", "type": "click"}
                for _attempt in range(20):  # a client retries what was not acknowledged
                    try:
                        if http.post("/v1/events", json={"events": [e]}).status_code == 200:
                            acked += 1
                            break
                    except httpx.HTTPError:
                        failed += 1
                    time.sleep(0.05)
        assert acked == 200
        assert redis_stored_events(redis_server.url) == 200  # none lost, none twice
        # The supervisor replaced the killed worker.
        _until(
            lambda: (
                victim not in _children(server.proc.pid) and len(_children(server.proc.pid)) >= 3
            ),
            timeout_s=120,
        )  # type: ignore[union-attr]
        assert _children(server.proc.pid) - before  # a new pid
    finally:
        server.stop()


def redis_stored_events(url: str) -> int:
    import redis

    r = redis.Redis.from_url(url)
    try:
        return int(r.hlen("lmrec:events"))
    finally:
        r.close()


def test_settings_travel_to_workers_unchanged(tmp_path: Path) -> None:
    """What `--workers` sends each process (Settings as JSON) reads back equal."""
    from lmrec.serving import ApiKeys, Settings, new_api_key

    _key, entry = new_api_key("svc", ("read", "admin"))
    settings = Settings(
        model_dir=tmp_path / "m",
        db=tmp_path / "s.db",
        store="redis://127.0.0.1:1/0",
        api_keys=ApiKeys(keys=(entry,)),
        experiment_holdout=0.05,
    )
    again = Settings.model_validate_json(settings.model_dump_json())
    assert again == settings
    assert json.loads(again.model_dump_json())["store"] == "redis://127.0.0.1:1/0"
