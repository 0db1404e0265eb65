"""A heavy recommendation request never blocks the event loop: health checks answer meanwhile."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from serving_fixtures import ENCODER

from lmrec.serving import Settings, create_app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_health_answers_while_a_heavy_request_ranks(artifact_dir: Path, tmp_path: Path) -> None:
    settings = Settings(model_dir=artifact_dir, db=tmp_path / "s.db", allow_anonymous=True)
    app = create_app(settings, encoder=ENCODER)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    while not server.started:
        time.sleep(0.01)
    # The ranking of this request waits until a health check has been answered: if it ran
    # on the event loop, the health check could never be served and both would time out.
    pipeline = app.state.services.registry.pipeline
    answered = threading.Event()
    real = pipeline.recommend

    def gated(*args: Any, **kwargs: Any) -> Any:
        assert answered.wait(timeout=10), "the health check was not answered while ranking"
        return real(*args, **kwargs)

    pipeline.recommend = gated
    result: dict[str, Any] = {}

    def heavy() -> None:
        body = {"history": ["s0", "s1"] * 100, "k": 100}  # long history: the ranking thread
        result["r"] = httpx.post(f"{base}/v1/recommendations", json=body, timeout=20)

    sender = threading.Thread(target=heavy)
    sender.start()
    try:
        time.sleep(0.2)  # the heavy request is in flight
        live = httpx.get(f"{base}/health/live", timeout=5)
        assert live.status_code == 200
        answered.set()
        sender.join(timeout=20)
        assert result["r"].status_code == 200, result["r"].text
        ids = [i["item_id"] for i in result["r"].json()["items"]]
        assert ids and not {"s0", "s1"} & set(ids)  # an answer, consumed items left out
    finally:
        answered.set()
        server.should_exit = True
        thread.join(timeout=10)
