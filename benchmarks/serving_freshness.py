"""How long from an event's acknowledgement to a recommendation that reflects it.

Starts the server under uvicorn in its own process (real SQLite file, real HTTP on
loopback). Each trial takes a real user, asks for their top-k, sends one event on
the first item (alternately consumed and "not interested"), and from the moment the
200 arrives asks again until an answer leaves that item out. The time from the
acknowledgement to the reflecting answer is the freshness latency; the share of
trials where the very first answer after the ack reflects it is the freshness rate.
The latency of each trial's first request (the same user, no event before it) is
the baseline: freshness cannot beat one round-trip.

    python benchmarks/serving_freshness.py --trials 1000
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

SERVER = """
import sys, uvicorn
from lmrec.serving import Settings, create_app
from lmrec.serving.auth import ApiKeys
settings = Settings(model_dir=sys.argv[1], db=sys.argv[2], api_keys=ApiKeys.model_validate_json(sys.argv[3]))
uvicorn.run(create_app(settings), host="127.0.0.1", port=int(sys.argv[4]), access_log=False, log_level="warning")
"""

TYPES = ("view", "not_interested")


def build(root: Path, dataset: str) -> Path:
    """An EASE artefact on `dataset` (the packaged sample by default)."""
    from lmrec.artifacts import train_artifact
    from lmrec.data.loaders import load_dataset

    return train_artifact(load_dataset(dataset), "ease", root / "model", {})


def user_ids(model: Path) -> list[str]:
    """The artefact's users: real histories, so answers are personal, not popularity."""
    from lmrec.artifacts import load_artifact

    return list(load_artifact(model).users.ids)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(model: Path, db: Path, keys_json: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(model), str(db), keys_json, str(port)]
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health/ready", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not become ready")


def top(http: httpx.Client, url: str, user: str, k: int) -> list[str]:
    body = {"user_id": user, "k": k, "explain": False}
    r = http.post(f"{url}/v1/recommendations", json=body)
    r.raise_for_status()
    return [i["item_id"] for i in r.json()["items"]]


def trial(http: httpx.Client, url: str, n: int, user: str, k: int) -> dict[str, Any]:
    """One event on the user's current top item; time until an answer leaves it out."""
    start = time.perf_counter()
    before = top(http, url, user, k)
    sent = time.perf_counter()
    item, type_ = before[0], TYPES[n % len(TYPES)]
    event = {"event_id": f"fresh-{n}", "user_id": user, "item_id": item, "type": type_}
    r = http.post(f"{url}/v1/events", json={"events": [event]})
    acked = time.perf_counter()
    if r.status_code != 200 or r.json()["accepted"] != 1:
        raise SystemExit(f"event not accepted: {r.status_code} {r.text}")
    requests = 0
    while True:
        after = top(http, url, user, k)
        requests += 1
        if item not in after:
            break
        if time.perf_counter() - acked > 10:
            raise SystemExit(f"trial {n}: not reflected 10 s after the acknowledgement")
    reflected = time.perf_counter()
    return {
        "plain_ms": (sent - start) * 1000,
        "ack_ms": (acked - sent) * 1000,
        "fresh_ms": (reflected - acked) * 1000,
        "requests": requests,
        "changed": after != before,
    }


def warm_up(http: httpx.Client, url: str, users: list[str], k: int, n: int = 50) -> None:
    """First requests pay for lazy start-up work; keep them out of the figures."""
    for _ in range(n):
        top(http, url, random.choice(users), k)


def percentile(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--dataset", default="sample")
    parser.add_argument("--model-dir", type=Path, help="Serve this artefact instead of training.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    random.seed(args.seed)

    from lmrec.serving.auth import ApiKeys, new_api_key

    key, entry = new_api_key("bench", ("read", "ingest"))
    root = Path(tempfile.mkdtemp(prefix="lmrec-freshness-"))
    model = args.model_dir or build(root, args.dataset)
    users = user_ids(model)
    proc, url = start(model, root / "state.db", ApiKeys(keys=(entry,)).model_dump_json())
    try:
        with httpx.Client(timeout=30, headers={"X-API-Key": key}) as http:
            warm_up(http, url, users, args.k)
            trials = [trial(http, url, n, random.choice(users), args.k) for n in range(args.trials)]
    finally:
        proc.kill()
        proc.wait()
    fresh = [t["fresh_ms"] for t in trials]
    baseline = statistics.median(t["plain_ms"] for t in trials)
    first = sum(t["requests"] == 1 for t in trials)
    print(
        json.dumps(
            {
                "trials": args.trials,
                "model": str(model) if args.model_dir else f"{args.dataset} EASE",
                "k": args.k,
                "reflected_by_first_request": first,
                "reflected_share": first / args.trials,
                "list_changed": sum(t["changed"] for t in trials),
                "ack_to_reflecting_recommendation_ms": {
                    "median": round(statistics.median(fresh), 2),
                    "p95": round(percentile(fresh, 0.95), 2),
                    "max": round(max(fresh), 2),
                },
                "event_ack_ms_median": round(statistics.median(t["ack_ms"] for t in trials), 2),
                "plain_recommendation_ms_median": round(baseline, 2),
                "ratio_to_plain": round(statistics.median(fresh) / baseline, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
