"""Latency under load: recommendation requests at a fixed rate while events are ingested.

Starts the server (uvicorn, one process) on the `sample` dataset with EASE, then
sends recommendation requests open-loop at `--rps` and events at `--eps` (batches
of 10) for `--seconds`, and prints recommendation latency percentiles. A Python
client is a weaker load generator than wrk, and on a small shared machine client
and server compete for the same cores: treat the figures as upper bounds.

    python benchmarks/serving_load.py --rps 200 --eps 1000 --seconds 20
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from serving_durability import SERVER, build, wait_ready


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rps", type=float, default=200)
    parser.add_argument("--eps", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--port", type=int, default=8932)
    args = parser.parse_args()

    from lmrec.serving.auth import ApiKeys, new_api_key

    key, entry = new_api_key("bench", ("read", "ingest"))
    root = Path(tempfile.mkdtemp(prefix="lmrec-load-"))
    model = build(root)
    users = json.loads((model / "users.json").read_text())
    items = json.loads((model / "items.json").read_text())
    keys_json = ApiKeys(keys=(entry,)).model_dump_json()
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(model), str(root / "s.db"), keys_json, str(args.port)]
    )
    try:
        wait_ready(args.port)
        url = f"http://127.0.0.1:{args.port}"
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        http = httpx.Client(timeout=10, headers={"X-API-Key": key}, limits=limits)
        rng = np.random.default_rng(0)
        latencies: list[float] = []
        errors = [0]
        stop = threading.Event()

        def one_rec(user: str) -> None:
            t0 = time.perf_counter()
            r = http.post(f"{url}/v1/recommendations", json={"user_id": user, "k": 10})
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 200:
                errors[0] += 1

        def ingest() -> None:
            n = 0
            interval = 10 / args.eps
            next_t = time.perf_counter()
            while not stop.is_set():
                batch = [
                    {
                        "event_id": f"e{n}-{i}",
                        "user_id": str(rng.choice(users)),
                        "item_id": str(rng.choice(items)),
                        "type": "click",
                    }
                    for i in range(10)
                ]
                n += 1
                if http.post(f"{url}/v1/events", json={"events": batch}).status_code != 200:
                    errors[0] += 1
                next_t += interval
                time.sleep(max(0.0, next_t - time.perf_counter()))

        ingesters = [threading.Thread(target=ingest) for _ in range(2)]
        for t in ingesters:
            t.start()
        with ThreadPoolExecutor(max_workers=48) as pool:
            start = time.perf_counter()
            sent = 0
            while (now := time.perf_counter() - start) < args.seconds:
                due = int(now * args.rps)
                while sent < due:
                    pool.submit(one_rec, str(rng.choice(users)))
                    sent += 1
                time.sleep(0.001)
        stop.set()
        for t in ingesters:
            t.join()
        lat = np.array(latencies) * 1000
        print(
            json.dumps(
                {
                    "rps_target": args.rps,
                    "eps_target": args.eps,
                    "requests": len(lat),
                    "errors": errors[0],
                    "p50_ms": round(float(np.percentile(lat, 50)), 2),
                    "p95_ms": round(float(np.percentile(lat, 95)), 2),
                    "p99_ms": round(float(np.percentile(lat, 99)), 2),
                }
            )
        )
    finally:
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    main()
