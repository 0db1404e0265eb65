"""Experiments against real server processes on one SQLite file: stickiness, counts, kill -9.

Two `uvicorn` processes share the state file (two workers); one is killed with
SIGKILL in the middle of traffic and restarted. Nothing a client saw acknowledged
(a served list, an event batch) may be missing afterwards.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from serving_fixtures import ServerProcess

from lmrec.experiments import bucket
from lmrec.serving.store import SQLiteStateStore

pytestmark = pytest.mark.slow

SERVER = """
import sys, uvicorn
from lmrec.serving import Settings, create_app
settings = Settings(model_dir=sys.argv[1], db=sys.argv[2], allow_anonymous=True)
uvicorn.run(create_app(settings), host="127.0.0.1", port=int(sys.argv[3]), log_level="error")
"""

EXP = {
    "id": "exp1",
    "variants": [
        {"name": "a", "share": 0.5},
        {"name": "b", "share": 0.5, "knobs": {"mmr_lambda": 0.7}},
    ],
}


class _Server(ServerProcess):
    def __init__(self, model: Path, db: Path):
        super().__init__(
            lambda port: [sys.executable, "-c", SERVER, str(model), str(db), str(port)]
        )

    def variant(self, user: str) -> str:
        r = httpx.post(f"{self.url}/v1/recommendations", json={"user_id": user, "k": 3}, timeout=30)
        assert r.status_code == 200, r.text
        return str(r.json()["variant"])


def _traffic(server: _Server, stop: threading.Event, seen: dict[str, Any]) -> None:
    """Recommend, then click the first item with the list's request id; record what was acked."""
    n = 0
    with httpx.Client(base_url=server.url, timeout=5) as http:
        while not stop.is_set():
            n += 1
            user = f"load-{n % 50}"
            try:
                r = http.post("/v1/recommendations", json={"user_id": user, "history": ["s0"]})
                if r.status_code != 200:
                    continue
                body = r.json()
                seen["lists"].append(body["request_id"])
                event = {
                    "event_id": f"click-{n}",
                    "user_id": user,
                    "item_id": body["items"][0]["item_id"],
                    "type": "click",
                    "request_id": body["request_id"],
                }
                if http.post("/v1/events", json={"events": [event]}).status_code == 200:
                    seen["events"].append(event["event_id"])
            except httpx.HTTPError:
                continue  # the server was killed mid-request: nothing was acknowledged


def test_sticky_across_workers_and_restarts_and_nothing_acked_is_lost(
    artifact_dir: Path, tmp_path: Path
) -> None:
    db = tmp_path / "state.db"
    first = _Server(artifact_dir, db).start()
    second = _Server(artifact_dir, db).start()
    try:
        r = httpx.post(f"{first.url}/v1/admin/experiments", json=EXP, timeout=30)
        assert r.status_code == 201, r.text
        users = [f"u{i}" for i in range(8)] + [f"visitor-{i}" for i in range(24)]
        expected = {u: "a" if bucket("exp1", u) < 5_000 else "b" for u in users}
        # The second worker never saw the definition arrive: it reads it from the file.
        assert {u: second.variant(u) for u in users} == expected
        assert {u: first.variant(u) for u in users} == expected
        report = httpx.get(f"{second.url}/v1/experiments/exp1/report", timeout=30).json()
        assert report["exposures_total"] == 2 * len(users)  # one per request sent

        seen: dict[str, Any] = {"lists": [], "events": []}
        stop = threading.Event()
        clients = [threading.Thread(target=_traffic, args=(first, stop, seen)) for _ in range(3)]
        for c in clients:
            c.start()
        time.sleep(2.0)
        first.kill()  # SIGKILL while lists and events are in flight
        stop.set()
        for c in clients:
            c.join(timeout=30)
        assert len(seen["lists"]) > 20 and len(seen["events"]) > 10
        first.start()
        assert {u: first.variant(u) for u in users} == expected  # sticky after the restart
    finally:
        first.stop()
        second.stop()
    store = SQLiteStateStore(db).open()
    try:
        logged = {x.request_id for x in store.exposures("exp1")}
        stored = {e.event_id for e in store.unit_events("exp1")}
        assert store.integrity_check() == []
    finally:
        store.close()
    assert set(seen["lists"]) <= logged, "an acknowledged list is missing from the exposure log"
    assert set(seen["events"]) <= stored, "an acknowledged event is missing"
