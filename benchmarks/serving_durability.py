"""Nothing acknowledged is lost or stored twice when the server is `kill -9`ed mid-stream.

The issue's protocol, per cycle (20 by default): client threads send 20,000 events in
batches, each batch retried with the *same* event ids until a 200 acknowledges it.
At a random moment in the stream the server gets SIGKILL. With the server down the
SQLite file is opened and checked: `PRAGMA integrity_check` is "ok" and every event
acknowledged so far is stored exactly once, with the fields it was sent with. The
server is restarted, the clients' retries finish the stream, and the same check runs
on the whole cycle: all 20,000 acknowledged, each stored exactly once, no rows that
were never sent. The restarted server carries on into the next cycle.

A batch whose commit finished just before the kill but whose response never arrived
is retried and answered as duplicates: the count of such batches shows the kills
land inside the commit-to-response window, which is the case idempotency exists for.

With `--store redis` the state is in a local redis-server (`--appendonly yes
--appendfsync always`) and `--kill` chooses what dies each cycle: `worker`, one of
`lmrec serve --workers 2`'s processes (the supervisor restarts it; the clients retry
on the other meanwhile), or `redis`, redis-server itself (restarted on the same port
after a random pause, replaying its append-only file; the server answers 503 until
then). The check reads Redis: every acknowledged event once in the events hash, once
in its user's history and once in the stream (applied twice would show in either).

    python benchmarks/serving_durability.py --cycles 20 --events 20000
    python benchmarks/serving_durability.py --store redis --kill worker --cycles 10
    python benchmarks/serving_durability.py --store redis --kill redis --cycles 10
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from _serving_common import wait_ready

SERVER = """
import sys, uvicorn
from lmrec.serving import Settings, create_app
from lmrec.serving.auth import ApiKeys
settings = Settings(model_dir=sys.argv[1], db=sys.argv[2], api_keys=ApiKeys.model_validate_json(sys.argv[3]))
uvicorn.run(create_app(settings), host="127.0.0.1", port=int(sys.argv[4]), access_log=False, log_level="warning")
"""

SNAPSHOT = """
local n = 0
for _, u in ipairs(redis.call('SMEMBERS', 'lmrec:users')) do
  n = n + redis.call('ZCARD', 'lmrec:u:'..u)
end
return {redis.call('HVALS', 'lmrec:events'), n, redis.call('XLEN', 'lmrec:stream')}
"""

USERS = 97  # events are spread over this many users and the sample's items
TYPES = ("view", "click", "add_to_cart", "purchase", "not_interested")


def build(root: Path) -> Path:
    """A small EASE artefact on the packaged sample data (the model is not what is tested)."""
    from lmrec.artifacts import train_artifact
    from lmrec.data.loaders import load_dataset

    return train_artifact(load_dataset("sample"), "ease", root / "model", {})


def item_ids(model: Path) -> list[str]:
    """The artefact's item ids, so events name real items."""
    from lmrec.artifacts import load_artifact

    return list(load_artifact(model).items.ids)


def expected_row(event_id: str, index: int, items: list[str]) -> tuple[str, str, str, str]:
    """What event `index` is stored as: derived from the index, so the check can recompute it."""
    return (
        event_id,
        f"user{index % USERS}",
        items[(index * 7) % len(items)],
        TYPES[index % len(TYPES)],
    )


def free_port() -> int:
    """A port nobody listens on now (other benchmarks may run on this machine)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """The server process; `url` changes on every start (a fresh free port).

    With `store` (a Redis URL) it is `lmrec serve --store URL --workers N`, whose
    worker processes `kill_worker` can SIGKILL one at a time.
    """

    model: Path
    db: Path
    keys_json: str
    store: str | None = None
    workers: int = 1
    proc: subprocess.Popen[bytes] | None = None
    url: str = ""
    starts: int = 0

    def start(self) -> None:
        port = free_port()
        if self.store is None:
            argv = [sys.executable, "-c", SERVER, str(self.model), str(self.db), self.keys_json]
            argv.append(str(port))
        else:
            keys = self.db.with_name("keys.json")
            keys.write_text(self.keys_json)
            argv = [sys.executable, "-m", "lmrec.cli", "serve", "--model-dir", str(self.model)]
            argv += ["--store", self.store, "--api-keys-file", str(keys), "--port", str(port)]
            argv += ["--workers", str(self.workers), "--encoder", "none"]
        self.proc = subprocess.Popen(argv, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{port}"
        self.starts += 1
        wait_ready(self.url, self.proc, timeout=120)

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no flush, the process just stops."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def worker_pids(self) -> list[int]:
        """The serving processes under the `--workers` supervisor (not its resource tracker)."""
        assert self.proc is not None
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True)
        pids = []
        for pid in out.stdout.split():
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"resource_tracker" not in cmdline:
                pids.append(int(pid))
        return pids

    def kill_worker(self) -> int:
        """SIGKILL one worker; returns its pid (the supervisor starts another)."""
        pid = random.choice(self.worker_pids())
        os.kill(pid, signal.SIGKILL)
        return pid


@dataclass
class Ledger:
    """What the clients saw, shared by the client threads (guarded by `lock`)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    acked: list[str] = field(default_factory=list)
    accepted: int = 0
    duplicates: int = 0
    attempts: int = 0
    failed_attempts: int = 0
    found_stored: int = 0  # batches a retry found already committed (ack lost in the kill)


def send(
    batches: queue.Queue[list[dict[str, Any]]], server: Server, key: str, ledger: Ledger
) -> None:
    """One client: take batches until none are left; retry each until a 200 acknowledges it."""
    with httpx.Client(timeout=30, headers={"X-API-Key": key}) as http:
        while True:
            try:
                batch = batches.get_nowait()
            except queue.Empty:
                return
            body = {"events": batch}
            retried = False
            deadline = time.monotonic() + 300
            while True:
                with ledger.lock:
                    ledger.attempts += 1
                try:
                    r = http.post(f"{server.url}/v1/events", json=body)
                except httpx.HTTPError:
                    r = None  # the server died mid-request, or is restarting
                if r is not None and r.status_code == 200:
                    got = r.json()
                    with ledger.lock:
                        ledger.acked.extend(e["event_id"] for e in batch)
                        ledger.accepted += got["accepted"]
                        ledger.duplicates += got["duplicates"]
                        if retried and got["duplicates"] == len(batch):
                            ledger.found_stored += 1
                    break
                if r is not None and r.status_code != 503 and r.status_code < 500:
                    raise SystemExit(f"unexpected {r.status_code}: {r.text}")
                with ledger.lock:
                    ledger.failed_attempts += 1
                if time.monotonic() > deadline:
                    raise SystemExit("a batch was not acknowledged within 300 s of retries")
                retried = True
                time.sleep(0.02)


def stored_rows(location: Path | str) -> tuple[list[str], list[tuple[str, ...]]]:
    """(integrity problems or ["ok"], every stored event as (id, user, item, type)).

    SQLite: its own connection (WAL readers never block) and `PRAGMA integrity_check`.
    Redis: the events hash, checked against the users' histories and the stream, which
    hold each accepted event once too.
    """
    if isinstance(location, Path):
        conn = sqlite3.connect(location, timeout=30)
        try:
            integrity = [r[0] for r in conn.execute("PRAGMA integrity_check")]
            rows = conn.execute("SELECT event_id, user_id, item_id, type FROM events").fetchall()
        finally:
            conn.close()
        return integrity, rows
    import redis

    r = redis.Redis.from_url(location)
    try:  # one script: a consistent snapshot while the server goes on writing
        values, in_histories, in_stream = r.eval(SNAPSHOT, 0)
    finally:
        r.close()
    rows = []
    for raw in values:
        e = json.loads(raw.split(b"|", 2)[2])
        rows.append((e["event_id"], e["user_id"], e["item_id"], e["type"]))
    problems = [
        f"{name}: {n} entries for {len(rows)} events"
        for name, n in (("histories", in_histories), ("stream", in_stream))
        if n != len(rows)
    ]
    return problems or ["ok"], rows


def check(
    location: Path | str, expected: dict[str, tuple[str, str, str, str]], acked: list[str]
) -> dict[str, Any]:
    """Integrity, and every acknowledged event stored exactly once as sent; no unsent rows."""
    integrity, rows = stored_rows(location)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row[0]] = counts.get(row[0], 0) + 1
    stored = {row[0]: tuple(row) for row in rows}
    return {
        "integrity": integrity,
        "acked": len(acked),
        "acked_twice": len(acked) - len(set(acked)),
        "lost": sum(1 for e in acked if e not in stored),
        "stored_twice": sum(1 for n in counts.values() if n > 1),
        "altered": sum(1 for e in acked if e in stored and stored[e] != expected[e]),
        "never_sent": sum(1 for e in stored if e not in expected),
        "rows": len(rows),
    }


def clean(result: dict[str, Any]) -> bool:
    return result["integrity"] == ["ok"] and not any(
        result[k] for k in ("acked_twice", "lost", "stored_twice", "altered", "never_sent")
    )


def cycle(
    n: int, args: argparse.Namespace, server: Server, key: str, items: list[str],
    expected: dict[str, tuple[str, str, str, str]], acked_before: list[str],
) -> dict[str, Any]:  # fmt: skip
    """Send one cycle's events, kill the server at a random moment, restart, finish, check."""
    ledger = Ledger()
    batches: queue.Queue[list[dict[str, Any]]] = queue.Queue()
    events = []
    for i in range(args.events):
        event_id = f"c{n}-e{i}"
        row = expected_row(event_id, n * args.events + i, items)
        expected[event_id] = row
        events.append(
            {"event_id": row[0], "user_id": row[1], "item_id": row[2], "type": row[3],
             "timestamp": 1.7e9 + n * args.events + i}
        )  # fmt: skip
    for start in range(0, args.events, args.batch):
        batches.put(events[start : start + args.batch])

    kill_after = random.uniform(0.02, 0.95) * args.events  # acknowledged events, then...
    jitter = random.uniform(0, 0.05)  # ...a random delay, so the kill lands mid-request
    clients = [
        threading.Thread(target=send, args=(batches, server, key, ledger))
        for _ in range(args.clients)
    ]
    started = time.perf_counter()
    for t in clients:
        t.start()
    while len(ledger.acked) < kill_after and any(t.is_alive() for t in clients):
        time.sleep(0.001)
    time.sleep(jitter)
    if args.kill == "worker":
        server.kill_worker()
    elif args.kill == "redis":
        args.redis.stop(kill=True)
    else:
        server.kill()
    killed_at = time.perf_counter() - started
    with ledger.lock:
        acked_at_kill = list(ledger.acked)
    mid_stream = len(acked_at_kill) < args.events  # some events were still to be acknowledged
    if args.kill == "redis":  # its state is only readable once it has replayed its AOF
        time.sleep(random.uniform(0.2, 1.0))
        args.redis.start()
    after_kill = check(args.location, expected, acked_before + acked_at_kill)
    if args.kill == "server":
        server.start()
    for t in clients:
        t.join()
    after_cycle = check(args.location, expected, acked_before + ledger.acked)
    acked_before.extend(ledger.acked)
    return {
        "cycle": n + 1,
        "kill_at_s": round(killed_at, 3),
        "kill_mid_stream": mid_stream,
        "acked_at_kill": len(acked_at_kill),
        "acked": len(ledger.acked),
        "accepted": ledger.accepted,
        "duplicates": ledger.duplicates,
        "attempts": ledger.attempts,
        "failed_attempts": ledger.failed_attempts,
        "ack_lost_batches": ledger.found_stored,
        "after_kill": after_kill,
        "after_cycle": after_cycle,
        "seconds": round(time.perf_counter() - started, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--events", type=int, default=20_000, help="Events sent per cycle.")
    parser.add_argument("--clients", type=int, default=4, help="Concurrent client threads.")
    parser.add_argument("--batch", type=int, default=50, help="Events per POST /v1/events.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="Write the per-cycle results as JSON here.")
    parser.add_argument("--store", choices=("sqlite", "redis"), default="sqlite")
    parser.add_argument(
        "--kill",
        choices=("server", "worker", "redis"),
        default=None,
        help="What gets SIGKILL each cycle (default: server; worker or redis need --store redis).",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="Server processes with --store redis."
    )
    args = parser.parse_args()
    args.kill = args.kill or ("server" if args.store == "sqlite" else "worker")
    if args.kill != "server" and args.store != "redis":
        parser.error(f"--kill {args.kill} needs --store redis")
    random.seed(args.seed)

    from lmrec.serving.auth import ApiKeys, new_api_key

    key, entry = new_api_key("bench", ("ingest",))
    root = Path(tempfile.mkdtemp(prefix="lmrec-durability-"))
    model = build(root)
    items = item_ids(model)
    args.db = root / "state.db"
    args.location, store = args.db, None
    if args.store == "redis":
        from lmrec.serving.local_redis import RedisServer

        args.redis = RedisServer(root / "redis").start()
        args.location = store = args.redis.url
    keys_json = ApiKeys(keys=(entry,)).model_dump_json()
    server = Server(model, args.db, keys_json, store, args.workers if store else 1)
    expected: dict[str, tuple[str, str, str, str]] = {}
    acked: list[str] = []
    results = []
    started = time.perf_counter()
    server.start()
    try:
        for n in range(args.cycles):
            r = cycle(n, args, server, key, items, expected, acked)
            results.append(r)
            ok = clean(r["after_kill"]) and clean(r["after_cycle"])
            ok = ok and r["acked"] == args.events and r["accepted"] + r["duplicates"] == args.events
            print(
                f"cycle {r['cycle']:2d}: kill -9 {args.kill} at {r['kill_at_s']:.2f} s after "
                f"{r['acked_at_kill']:,} acks (mid-stream: {r['kill_mid_stream']}); "
                f"{r['acked']:,} acked, {r['ack_lost_batches']} batches committed but unacked, "
                f"{r['failed_attempts']} failed attempts; after kill: "
                f"{r['after_kill']['lost']} lost, integrity {r['after_kill']['integrity'][0]}; "
                f"after cycle: {r['after_cycle']['rows']:,} rows, {r['after_cycle']['lost']} lost, "
                f"{r['after_cycle']['stored_twice']} twice, {r['after_cycle']['never_sent']} unsent, "
                f"integrity {r['after_cycle']['integrity'][0]} -> {'OK' if ok else 'FAILED'}",
                flush=True,
            )
            if not ok:
                raise SystemExit(f"FAILED in cycle {n + 1}: {json.dumps(r)}")
    finally:
        if server.proc is not None:
            server.kill()
        if args.store == "redis":
            args.redis.stop()
    total = {
        "store": args.store,
        "killed": args.kill,
        "cycles": args.cycles,
        "events_per_cycle": args.events,
        "kills": args.cycles,
        "kills_mid_stream": sum(r["kill_mid_stream"] for r in results),
        "server_starts": server.starts,
        "acknowledged_events": len(acked),
        "stored_rows": results[-1]["after_cycle"]["rows"],
        "lost": 0,
        "stored_twice": 0,
        "integrity_checks_ok": 2 * args.cycles,
        "batches_committed_but_unacked": sum(r["ack_lost_batches"] for r in results),
        "failed_attempts_retried": sum(r["failed_attempts"] for r in results),
        "seconds": round(time.perf_counter() - started, 1),
    }
    if args.out:
        args.out.write_text(json.dumps({"summary": total, "cycles": results}, indent=1))
    print(json.dumps(total))


if __name__ == "__main__":
    main()
