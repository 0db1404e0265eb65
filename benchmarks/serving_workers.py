"""Throughput and p99 with 1, 2 and 4 workers sharing Redis, and SQLite with one worker.

Every configuration gets the same open-loop load as `serving_load.py` (wrk on
loopback: recommendations for random real users at `--rps`, events at `--eps`), from a
fresh server and, for Redis, an emptied redis-server (`--appendonly yes
--appendfsync always`, started here on a loopback port). Configurations alternate
within each repeat, so a slower period of the machine hits them all; the median over
repeats is reported. Offer more than the server can take (the default) to see where
it saturates: `per_s` is what it answered, `server_cores` the CPU it used.

    LMREC_DATA_DIR=../shared/datasets python benchmarks/serving_workers.py \\
        --dataset ml-100k --model ease --rps 600 --eps 500 --seconds 20 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from _serving_common import cached_artifact, load_arguments
from serving_load import one_run

CONFIGS = ("sqlite", "redis-1", "redis-2", "redis-4")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    load_arguments(parser, port=8933, seconds=20)
    parser.add_argument("--params", default="{}", help="Hyperparameters as JSON.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--configs", default=",".join(CONFIGS), help="Which, comma-separated.")
    parser.add_argument("--out", type=Path, help="Write every run and the medians as JSON here.")
    parser.set_defaults(dataset="ml-100k", rps=600, eps=500)
    args = parser.parse_args()

    import redis

    from lmrec.serving.local_redis import RedisServer

    model = cached_artifact(args.work, args.dataset, args.model, json.loads(args.params))
    server = RedisServer(Path(tempfile.mkdtemp(prefix="lmrec-redis-"))).start()
    runs: dict[str, list[dict]] = {c: [] for c in args.configs.split(",")}
    try:
        for repeat in range(args.repeats):
            for config in runs:
                args.serve_flags = ()
                if config.startswith("redis"):
                    redis.Redis.from_url(server.url).flushall()
                    workers = config.split("-")[1]
                    args.serve_flags = ("--store", server.url, "--workers", workers)
                root = Path(tempfile.mkdtemp(prefix="lmrec-workers-"))
                out = one_run(model, root, args)
                runs[config].append(out)
                print(json.dumps({"repeat": repeat, "config": config, **out}), flush=True)
    finally:
        server.stop()
    medians = {}
    for config, rs in runs.items():
        recs = [r["recommendations"] for r in rs]
        medians[config] = {k: statistics.median(r[k] for r in recs) for k in recs[0]}
        if all("events" in r for r in rs):
            medians[config]["events_per_s"] = statistics.median(r["events"]["per_s"] for r in rs)
    doc = {"dataset": args.dataset, "model": args.model, "rps": args.rps, "eps": args.eps,
           "seconds": args.seconds, "repeats": args.repeats, "median": medians, "runs": runs}  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(doc, indent=1))
    print(json.dumps({"median": medians}))


if __name__ == "__main__":
    main()
