"""Nothing acknowledged is lost: ingest events, `kill -9` the server mid-stream, restart, check.

Each cycle starts `lmrec.serving` under uvicorn in a child process, streams event
batches from several client threads, kills the server with SIGKILL at a random
moment, then opens the SQLite file and checks that every batch that got a 2xx is
there in full and that the file passes SQLite's integrity check.

    python benchmarks/serving_durability.py --cycles 20
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

SERVER = """
import sys, uvicorn
from lmrec.serving import Settings, create_app
from lmrec.serving.auth import ApiKeys
settings = Settings(model_dir=sys.argv[1], db=sys.argv[2], api_keys=ApiKeys.model_validate_json(sys.argv[3]))
uvicorn.run(create_app(settings), host="127.0.0.1", port=int(sys.argv[4]), access_log=False, log_level="warning")
"""


def build(root: Path) -> Path:
    from lmrec.artifacts import train_artifact
    from lmrec.data.loaders import load_dataset

    return train_artifact(load_dataset("sample"), "ease", root / "model", {})


def wait_ready(port: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("server did not become ready")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--port", type=int, default=8931)
    args = parser.parse_args()

    from lmrec.serving.auth import ApiKeys, new_api_key

    key, entry = new_api_key("bench", ("ingest",))
    keys_json = ApiKeys(keys=(entry,)).model_dump_json()
    root = Path(tempfile.mkdtemp(prefix="lmrec-durability-"))
    model = build(root)
    db = root / "state.db"
    acknowledged: list[str] = []
    lock = threading.Lock()
    for cycle in range(args.cycles):
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(model), str(db), keys_json, str(args.port)]
        )
        wait_ready(args.port)
        stop = threading.Event()

        def client(worker: int, cycle: int = cycle, stop: threading.Event = stop) -> None:
            n = 0
            with httpx.Client(timeout=10, headers={"X-API-Key": key}) as http:
                while not stop.is_set():
                    ids = [f"c{cycle}-w{worker}-b{n}-e{i}" for i in range(args.batch)]
                    body = {
                        "events": [
                            {
                                "event_id": e,
                                "user_id": f"user{worker}",
                                "item_id": "1",
                                "type": "view",
                                "timestamp": time.time(),
                            }
                            for e in ids
                        ]
                    }
                    n += 1
                    try:
                        r = http.post(f"http://127.0.0.1:{args.port}/v1/events", json=body)
                    except httpx.HTTPError:
                        return  # the server died mid-request: not acknowledged
                    if r.status_code == 200:
                        with lock:
                            acknowledged.extend(ids)

        threads = [threading.Thread(target=client, args=(w,)) for w in range(args.clients)]
        for t in threads:
            t.start()
        time.sleep(random.uniform(0.5, 2.0))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        stop.set()
        for t in threads:
            t.join()
        with sqlite3.connect(db) as conn:
            stored = {r[0] for r in conn.execute("SELECT event_id FROM events")}
            check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        lost = [e for e in acknowledged if e not in stored]
        print(
            f"cycle {cycle + 1}: {len(acknowledged)} acknowledged events, {len(stored)} stored, "
            f"{len(lost)} lost, integrity {check}",
            flush=True,
        )
        if lost or check != "ok":
            raise SystemExit("FAILED: acknowledged events were lost or the file is corrupt")
    print(json.dumps({"cycles": args.cycles, "acknowledged_events": len(acknowledged), "lost": 0}))


if __name__ == "__main__":
    main()
