"""Hot swap while clients keep asking: no failed request, and the version never flips back.

A real uvicorn server on a loopback socket, real SQLite state, two real artefacts;
client threads each keep one connection and send one request at a time, so each
thread's responses arrive in a defined order.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from serving_fixtures import ENCODER, auth, make_artifact

from lmrec.serving import Settings, create_app

CLIENTS = 4
USERS = [f"u{i}" for i in range(8)]


def version_of(model: Path) -> str:
    return str(json.loads((model / "manifest.json").read_text())["version"])


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    """The app under uvicorn in a background thread; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(create_app(settings, encoder=ENCODER), log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        srv.should_exit = True
        thread.join(timeout=30)
        sock.close()


@dataclass
class Client:
    """One connection's answers: (version or None, status, sent after the swap returned)."""

    answers: list[tuple[str | None, int, bool]] = field(default_factory=list)


def run_client(
    url: str, key: str, me: Client, swapped: threading.Event, stop: threading.Event
) -> None:
    with httpx.Client(base_url=url, headers=auth(key), timeout=30) as http:
        n = 0
        while not stop.is_set():
            after = swapped.is_set()  # read before sending: True means the swap had answered
            try:
                r = http.post("/v1/recommendations", json={"user_id": USERS[n % len(USERS)]})
                version = r.json().get("model_version") if r.status_code == 200 else None
                me.answers.append((version, r.status_code, after))
            except httpx.HTTPError:
                me.answers.append((None, 0, after))
            n += 1


def wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_swap_under_concurrent_load_never_fails_or_flips_back(
    server: str, artifact_dir: Path, tmp_path: Path, keys: dict[str, str]
) -> None:
    old, new = version_of(artifact_dir), version_of(make_artifact(tmp_path / "v2", reg=5.0))
    assert old != new
    clients = [Client() for _ in range(CLIENTS)]
    swapped, stop = threading.Event(), threading.Event()
    threads = [
        threading.Thread(target=run_client, args=(server, keys["read"], c, swapped, stop))
        for c in clients
    ]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: all(len(c.answers) >= 10 for c in clients))
        r = httpx.post(
            f"{server}/v1/admin/models",
            json={"path": str(tmp_path / "v2")},
            headers=auth(keys["admin"]),
            timeout=60,
        )
        assert r.status_code == 200, r.text
        assert r.json()["model_version"] == new
        swapped.set()
        wait_for(lambda: all(sum(a[2] for a in c.answers) >= 10 for c in clients))
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)

    for c in clients:
        statuses = {status for _, status, _ in c.answers}
        assert statuses == {200}, statuses  # no request failed, before, during or after
        versions = [v for v, _, _ in c.answers]
        # old ... old, new ... new: both seen, and nothing old after the first new
        first_new = versions.index(new)
        assert first_new >= 10
        assert set(versions[:first_new]) == {old}
        assert set(versions[first_new:]) == {new}
        # every request sent after the swap answered was served by the new model
        assert {v for v, _, after in c.answers if after} == {new}
