"""Redis memory per event and per user, and the write rate of one client, for the scale plan.

Starts a redis-server on a loopback port (AOF on, `appendfsync everysec`), writes
`--events` events for `--users` users through `RedisStateStore.add_events` in batches
of `--batch`, with the ids, types and context a shop's events carry, and reads
Redis's `used_memory` before and after.

    python benchmarks/redis_footprint.py --users 20000 --events 200000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from lmrec.serving.local_redis import RedisServer
from lmrec.serving.redis_store import RedisStateStore
from lmrec.serving.store import Event

TYPES = ("view", "view", "view", "click", "click", "add_to_cart", "purchase")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp), fsync="everysec").start()
        try:
            store = RedisStateStore(server.url).open()
            client = store.client
            before = int(client.info("memory")["used_memory"])
            users = rng.integers(0, args.users, args.events)
            items = rng.integers(0, args.items, args.events)
            kinds = rng.integers(0, len(TYPES), args.events)
            t = time.perf_counter()
            for lo in range(0, args.events, args.batch):
                store.add_events(
                    [
                        Event(
                            event_id=f"e{j:012d}",
                            user_id=f"user-{users[j]:09d}",
                            item_id=f"sku-{items[j]:010d}",
                            type=TYPES[kinds[j]],
                            timestamp=1.7e9 + j,
                            context={"device": "mobile"},
                        )
                        for j in range(lo, min(args.events, lo + args.batch))
                    ]
                )
            seconds = time.perf_counter() - t
            after = int(client.info("memory")["used_memory"])
            store.close()
        finally:
            server.stop()
    n_users = len(np.unique(users))
    result = {
        "events": args.events,
        "users": n_users,
        "bytes_per_event": round((after - before) / args.events, 1),
        "events_per_s_one_client": round(args.events / seconds),
    }
    print(json.dumps(result))
    if args.out:
        args.out.write_text(json.dumps({"args": vars(args) | {"out": str(args.out)}, **result}))


if __name__ == "__main__":
    main()
