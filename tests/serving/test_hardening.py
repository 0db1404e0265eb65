"""A careless or hostile client cannot stall, fool or corrupt the server (issue 16's cases)."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from serving_fixtures import ENCODER, auth

from lmrec.artifacts import _sha256, build_artifact
from lmrec.data import Dataset
from lmrec.models import EASE, TrainingData
from lmrec.serving import Settings, create_app
from lmrec.serving.encoders import HashingEncoder


def _event(i: int, **fields: object) -> dict:
    return {"event_id": f"e{i}", "user_id": "u0", "item_id": "r0", "type": "click", **fields}


def _post(client: TestClient, keys: dict[str, str], *events: dict) -> object:
    return client.post("/v1/events", json={"events": list(events)}, headers=auth(keys["ingest"]))


def _top(client: TestClient, keys: dict[str, str], user: str = "u0") -> list[str]:
    r = client.post(
        "/v1/recommendations", json={"user_id": user, "k": 3}, headers=auth(keys["read"])
    )
    assert r.status_code == 200, r.text
    return [i["item_id"] for i in r.json()["items"]]


# -- 1. timestamps ----------------------------------------------------------------------


def test_far_future_and_millisecond_timestamps_are_refused_naming_the_field(
    client: TestClient, keys: dict[str, str]
) -> None:
    future = _post(client, keys, _event(1), _event(2, timestamp=4_102_444_800))  # 2100
    assert future.status_code == 422  # type: ignore[attr-defined]
    message = future.json()["error"]["message"]  # type: ignore[attr-defined]
    assert "events.1.timestamp" in message and "after the server's clock" in message
    millis = _post(client, keys, _event(3, timestamp=time.time() * 1000))
    assert "looks like milliseconds" in millis.json()["error"]["message"]  # type: ignore[attr-defined]
    micros = _post(client, keys, _event(4, timestamp=time.time() * 1e6))
    assert "looks like microseconds" in micros.json()["error"]["message"]  # type: ignore[attr-defined]
    boolean = _post(client, keys, _event(5, timestamp=True))
    assert boolean.status_code == 422  # type: ignore[attr-defined]
    # Nothing of a refused batch was stored: the first, valid event of it included.
    ok = _post(client, keys, _event(1))
    assert ok.json() == {"accepted": 1, "duplicates": 0}  # type: ignore[attr-defined]


def test_a_user_cannot_be_pinned_from_the_future(client: TestClient, keys: dict[str, str]) -> None:
    """Events as far ahead as allowed still lose to a later real event's ordering."""
    soon = time.time() + 500  # within the 600 s skew allowed
    pinned = [
        {
            "event_id": f"p{i}",
            "user_id": "u9",
            "item_id": f"s{i % 6}",
            "type": "click",
            "timestamp": soon,
        }
        for i in range(6)
    ]
    assert _post(client, keys, *pinned).status_code == 200  # type: ignore[attr-defined]
    too_far = {**pinned[0], "event_id": "p99", "timestamp": time.time() + 10 * 86_400}
    assert _post(client, keys, too_far).status_code == 422  # type: ignore[attr-defined]


# -- 2. a vanished state file ----------------------------------------------------------


def test_a_deleted_state_file_is_unavailable_not_acknowledged(
    settings: Settings, keys: dict[str, str]
) -> None:
    with TestClient(create_app(settings, encoder=ENCODER)) as client:
        assert _post(client, keys, _event(1)).status_code == 200  # type: ignore[attr-defined]
        for f in settings.db.parent.glob(settings.db.name + "*"):
            f.unlink()
        lost = _post(client, keys, _event(2))
        assert lost.status_code == 503  # type: ignore[attr-defined]
        assert lost.json()["error"]["code"] == "store_unavailable"  # type: ignore[attr-defined]
        assert client.get("/health/ready").status_code == 503
        r = client.post("/v1/recommendations", json={"user_id": "u0"}, headers=auth(keys["read"]))
        assert r.status_code == 503
        assert not settings.db.exists()  # no empty file was created in its place


# -- 3. a mismatched artefact ----------------------------------------------------------


def _mismatched(tmp_path: Path, good: Path) -> Path:
    """`good`'s artefact with the model state of another, smaller dataset; checksums fixed."""
    frame = pd.DataFrame(
        [
            {"user": f"x{u}", "item": f"q{(u + j) % 5}", "timestamp": u * 10 + j}
            for u in range(6)
            for j in range(3)
        ]
    )
    other = Dataset.from_frames("other", frame)
    model = EASE(reg=1.0).fit(TrainingData(other.interactions, other.catalog))
    foreign = build_artifact(other, model, tmp_path / "foreign")
    bad = tmp_path / "bad"
    shutil.copytree(good, bad)
    manifest = json.loads((bad / "manifest.json").read_text())
    for name in ("model/state.safetensors",):  # model.json still says 12 items
        shutil.copy(foreign / name, bad / name)
        manifest["files"][name] = {
            "sha256": _sha256(bad / name),
            "bytes": (bad / name).stat().st_size,
        }
    (bad / "manifest.json").write_text(json.dumps(manifest))
    return bad


def test_a_model_from_another_dataset_is_a_counted_422(
    client: TestClient, keys: dict[str, str], artifact_dir: Path, tmp_path: Path
) -> None:
    bad = _mismatched(artifact_dir.parent, artifact_dir)
    before = _top(client, keys)
    r = client.post("/v1/admin/models", json={"path": str(bad)}, headers=auth(keys["admin"]))
    assert r.status_code == 422, r.text
    assert (
        r.json()["error"]["code"] == "invalid_artifact"
        and "still serving" in r.json()["error"]["message"]
    )
    assert _top(client, keys) == before
    metrics = client.get("/metrics").text
    assert 'lmrec_model_loads_total{result="rejected"} 1.0' in metrics


# -- 4. artefact contents ---------------------------------------------------------------


def _tampered(artifact_dir: Path, tmp_path: Path, change) -> Path:
    copy = tmp_path / "tampered"
    shutil.copytree(artifact_dir, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    change(copy, manifest)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def test_manifest_paths_cannot_leave_the_artefact(
    client: TestClient, keys: dict[str, str], artifact_dir: Path, tmp_path: Path
) -> None:
    def escape(root: Path, manifest: dict) -> None:
        manifest["files"]["../../../../etc/passwd"] = {"sha256": "0", "bytes": 1}

    def escape_missing(root: Path, manifest: dict) -> None:
        manifest["files"]["../../../../no/such/file"] = {"sha256": "0", "bytes": 1}

    messages = []
    for change in (escape, escape_missing):
        bad = _tampered(artifact_dir, tmp_path / change.__name__, change)
        # Under the served model's folder, so the root check is not what refuses it.
        target = artifact_dir.parent / f"t-{change.__name__}"
        shutil.copytree(bad, target)
        r = client.post("/v1/admin/models", json={"path": str(target)}, headers=auth(keys["admin"]))
        assert r.status_code == 422
        messages.append(r.json()["error"]["message"].replace(str(target), "X"))
    assert "outside the artefact directory" in messages[0]
    assert messages[0] == messages[1]  # the answer does not tell whether the file exists


def test_only_known_model_classes_are_imported(
    client: TestClient, keys: dict[str, str], artifact_dir: Path
) -> None:
    import sys

    sys.modules.pop("this", None)

    def foreign_class(root: Path, manifest: dict) -> None:
        meta = json.loads((root / "model/model.json").read_text())
        meta["class"] = "this:Anything"
        (root / "model/model.json").write_text(json.dumps(meta))
        f = root / "model/model.json"
        manifest["files"]["model/model.json"] = {"sha256": _sha256(f), "bytes": f.stat().st_size}

    bad = _tampered(artifact_dir, artifact_dir.parent / "cls", foreign_class)
    r = client.post("/v1/admin/models", json={"path": str(bad)}, headers=auth(keys["admin"]))
    assert r.status_code == 422 and "not one of lmrec's strategies" in r.json()["error"]["message"]
    assert "this" not in sys.modules  # refused before anything was imported


def test_admin_loads_stay_in_the_first_models_folder_by_default(
    settings: Settings, keys: dict[str, str], tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(settings.model_dir, elsewhere)  # a sound artefact, in the wrong place
    default = settings.model_copy(update={"model_root": None})
    with TestClient(create_app(default, encoder=ENCODER)) as client:
        body = {"path": str(elsewhere)}
        r = client.post("/v1/admin/models", json=body, headers=auth(keys["admin"]))
        assert r.status_code == 422 and "outside the model root" in r.json()["error"]["message"]
        metrics = client.get("/metrics").text
    assert 'lmrec_model_loads_total{result="rejected"} 1.0' in metrics


# -- 6. keys and logs --------------------------------------------------------------------


def test_a_key_with_surrounding_spaces_works_in_either_header(
    client: TestClient, keys: dict[str, str]
) -> None:
    body = {"history": ["s0"]}
    for headers in (
        {"X-API-Key": f"  {keys['read']} "},
        {"Authorization": f"Bearer  {keys['read']} "},
    ):
        assert client.post("/v1/recommendations", json=body, headers=headers).status_code == 200


def test_the_erasure_log_line_cannot_be_matched_to_an_id_without_the_state_file(
    client: TestClient, keys: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    import hashlib

    caplog.set_level(logging.INFO)
    client.request("DELETE", "/v1/users", json={"user_id": "u3"}, headers=auth(keys["delete"]))
    line = next(r.getMessage() for r in caplog.records if "erased user" in r.getMessage())
    unsalted = hashlib.sha256(b"lmrec-log\x00u3").hexdigest()[:12]
    plain = hashlib.sha256(b"u3").hexdigest()[:12]
    assert unsalted not in line and plain not in line and "u3" not in line


# -- 9. event context ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        '{"a": NaN}',
        '{"a": [1, Infinity]}',
        '{"a": "\\ud800"}',
        '{"\\udfff": 1}',
    ],
)
def test_invalid_numbers_or_text_in_context_are_refused(
    client: TestClient, keys: dict[str, str], raw: str
) -> None:
    event = '{"event_id": "c1", "user_id": "u0", "item_id": "r0", "type": "click", "context": '
    body = '{"events": [' + event + raw + "}]}"
    r = client.post(
        "/v1/events",
        content=body,
        headers={**auth(keys["ingest"]), "Content-Type": "application/json"},
    )
    assert r.status_code == 422, r.text
    assert "context" in r.json()["error"]["message"]


def test_metrics_and_docs_can_be_closed(settings: Settings, keys: dict[str, str]) -> None:
    closed = settings.model_copy(update={"metrics_public": False, "docs": False})
    with TestClient(create_app(closed, encoder=ENCODER)) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers=auth(keys["read"])).status_code == 403
        assert client.get("/metrics", headers=auth(keys["admin"])).status_code == 200
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert client.get(path).status_code == 404


# -- 7. slow clients ----------------------------------------------------------------------


@pytest.fixture
def live_server(settings: Settings):
    """A real uvicorn server (its own protocol class, as `lmrec serve` runs it), 0.5 s deadlines."""
    import socket
    import threading

    import uvicorn

    from lmrec.serving.protocol import guarded_protocol

    quick = settings.model_copy(update={"body_timeout_s": 0.5})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        create_app(quick, encoder=ENCODER),
        host="127.0.0.1",
        port=port,
        log_level="error",
        http=guarded_protocol(0.5),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield port
    server.should_exit = True
    thread.join(timeout=10)


def _stall(port: int, data: bytes, n: int = 50) -> list:
    import socket

    out = []
    for _ in range(n):
        c = socket.create_connection(("127.0.0.1", port))
        c.sendall(data)
        c.settimeout(5)
        out.append(c)
    return out


def _drained(conns: list) -> list[bytes]:
    """What each connection got before the server closed it."""
    answers = []
    for c in conns:
        answer = b""
        while chunk := c.recv(4096):
            answer += chunk
        answers.append(answer)
        c.close()
    return answers


def _served(port: int, keys: dict[str, str]) -> bool:
    import httpx

    r = httpx.post(
        f"http://127.0.0.1:{port}/v1/recommendations",
        json={"history": ["s0"]},
        headers=auth(keys["read"]),
        timeout=5,
    )
    return r.status_code == 200


def test_clients_that_stall_mid_body_are_answered_and_dropped(
    live_server: int, keys: dict[str, str]
) -> None:
    head = (
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {keys['ingest']}\r\nContent-Length: 400\r\n\r\n"
    )
    stalled = _stall(live_server, head.encode() + b'{"events": [')  # half a body, then nothing
    assert _served(live_server, keys)  # a well-behaved client is served meanwhile
    started = time.monotonic()
    answers = _drained(stalled)
    assert all(a.startswith(b"HTTP/1.1 408") for a in answers), answers[0][:80]
    assert time.monotonic() - started < 5


def test_clients_that_stall_mid_headers_are_dropped(live_server: int, keys: dict[str, str]) -> None:
    stalled = _stall(live_server, b"POST /v1/events HTTP/1.1\r\nHost: x\r\n")  # no blank line
    assert _served(live_server, keys)
    started = time.monotonic()
    assert _drained(stalled) == [b""] * 50  # closed without an answer
    assert time.monotonic() - started < 5
    assert _served(live_server, keys)  # and the server is still fine


# -- 5. online items across swaps and restarts -------------------------------------------


class _TimedLock:
    """A lock that records the longest time it was held."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self.longest = 0.0
        self._since = 0.0

    def __enter__(self) -> None:
        self._lock.acquire()
        self._since = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.longest = max(self.longest, time.perf_counter() - self._since)
        self._lock.release()


class _SlowEncoder(HashingEncoder):
    """The test encoder at MiniLM's pace (2 ms a text), counting the texts it encodes."""

    def __init__(self) -> None:
        super().__init__(dim=128)  # the artefact's vectors are this encoder's
        self.texts = 0

    def __call__(self, texts):  # type: ignore[no-untyped-def]
        self.texts += len(texts)
        time.sleep(0.002 * len(texts))
        return super().__call__(texts)


@pytest.mark.slow
def test_swaps_and_restarts_reuse_stored_vectors_and_never_block_upserts(
    settings: Settings, keys: dict[str, str], artifact_dir: Path, tmp_path: Path
) -> None:
    import threading

    encoder = _SlowEncoder()
    items = [{"item_id": f"online-{i}", "title": f"Space saga part {i}"} for i in range(500)]
    with TestClient(create_app(settings, encoder=encoder)) as client:
        for start in range(0, len(items), 100):
            r = client.post(
                "/v1/items",
                json={"items": items[start : start + 100]},
                headers=auth(keys["ingest"]),
            )
            assert r.json()["added"] == 100
        assert encoder.texts == 1 + 500  # the dimension probe at start-up, then each item once
        v2 = tmp_path / "v2"
        shutil.copytree(artifact_dir, v2)
        waits: list[float] = []
        swapping = threading.Event()

        def upserts() -> None:
            swapping.wait()
            for n in range(20):
                t = time.perf_counter()
                body = {"items": [{"item_id": f"during-{n}", "title": "Comet"}]}
                client.post("/v1/items", json=body, headers=auth(keys["ingest"]))
                waits.append(time.perf_counter() - t)

        registry = client.app.state.services.registry  # type: ignore[attr-defined]
        held = _TimedLock()
        registry.items_lock = held
        writer = threading.Thread(target=upserts)
        writer.start()
        swapping.set()
        r = client.post("/v1/admin/models", json={"path": str(v2)}, headers=auth(keys["admin"]))
        writer.join()
        assert r.status_code == 200, r.text
        # The swap encoded its probe and the 20 new items once, no online item again.
        assert encoder.texts == 1 + 500 + 1 + 20
        # Nothing holds the items lock for 100 ms (the swap's share of it is the few
        # changes made while it loaded), so no upsert queues behind it that long.
        assert held.longest < 0.1, held.longest
        assert max(waits) < 1.0, max(waits)
        got = client.post(
            "/v1/recommendations",
            json={"history": ["online-7"], "k": 500},
            headers=auth(keys["read"]),
        )
        assert {"online-3", "during-19"} <= {i["item_id"] for i in got.json()["items"]}
    restarted = _SlowEncoder()
    with TestClient(create_app(settings, encoder=restarted)) as client:
        assert restarted.texts == 1  # the probe: the restart re-encodes no online item
        r = client.get(
            "/v1/items/similar", params={"item_id": "online-3", "k": 3}, headers=auth(keys["read"])
        )
        assert r.status_code == 200 and len(r.json()["items"]) == 3


# -- 8. erasure reaches the model -----------------------------------------------------------


def test_erasure_reaches_the_loaded_model_and_the_next_training(
    settings: Settings, keys: dict[str, str], artifact_dir: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from lmrec.cli import app
    from lmrec.data.loaders import load_dataset

    with TestClient(create_app(settings, encoder=ENCODER)) as client:
        services = client.app.state.services  # type: ignore[attr-defined]
        pipeline = services.registry.pipeline
        assert len(pipeline.histories.get("u1")) == 4
        r = client.request(
            "DELETE", "/v1/users", json={"user_id": "u1"}, headers=auth(keys["delete"])
        )
        assert r.status_code == 200
        assert len(pipeline.histories.get("u1")) == 0  # gone from memory, not just hidden
        # A swap to another version does not bring the artefact's copy back.
        v2 = tmp_path / "v2"
        shutil.copytree(artifact_dir, v2)
        client.post("/v1/admin/models", json={"path": str(v2)}, headers=auth(keys["admin"]))
        assert len(services.registry.pipeline.histories.get("u1")) == 0
    # The next training from the same data leaves the user out, id and all.
    data = tmp_path / "log.csv"
    pd.DataFrame(
        [
            {"user_id": f"u{u}", "item_id": f"s{j}", "timestamp": u * 10 + j}
            for u in range(4)
            for j in range(3)
        ]
    ).to_csv(data, index=False)
    out = tmp_path / "retrained"
    result = CliRunner().invoke(
        app,
        ["train", "--dataset", str(data), "--out", str(out), "--forget-erased", str(settings.db)],
    )
    assert result.exit_code == 0, result.output
    assert "left out 1 users" in result.output
    users = json.loads((out / "users.json").read_text())
    assert "u1" not in users and {"u0", "u2", "u3"} <= set(users)
    assert load_dataset(str(data)).n_users == 4  # the log itself is the operator's to clean
