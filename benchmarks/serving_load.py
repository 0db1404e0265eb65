"""Latency under load: POST /v1/recommendations at a fixed rate while events are ingested.

Trains (once, cached in `--work`) an artefact on the whole dataset, starts `lmrec serve`
in its own process with a fresh SQLite state file, and then, from separate wrk
processes on loopback, sends recommendation requests for random real user ids at
`--rps` while a second wrk posts `--eps` events per second (batches of `--batch`
"view" events with unique ids for random real users and items). Both are open-loop:
every connection sends on a fixed schedule and latency counts from the scheduled
time (see serving_wrk.lua), so a stalled server cannot hide its queue. Each repeat
starts a fresh server; the median over repeats is printed last.

    LMREC_DATA_DIR=../shared/datasets python benchmarks/serving_load.py \
        --dataset amazon-beauty --model ease --rps 200 --eps 1000 --seconds 30 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _serving_common import (
    cached_artifact,
    cpu_seconds,
    id_files,
    load_arguments,
    needs_encoder,
    serve,
    start_wrk,
    summary,
    wrk_result,
)


def one_run(model: Path, root: Path, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """One fresh server: a short warm-up, then the measured recommendations + events run."""
    ids = id_files(model, root)
    scopes = ("read", "ingest")
    extra = getattr(args, "serve_flags", ())
    with serve(model, root, args.port, scopes, args.src, needs_encoder(model), extra) as served:
        wrk_result(start_wrk(served, "recommend", 50, 2, 3, ids))  # warm-up, not measured
        events = None
        if args.eps > 0:
            events = start_wrk(
                served, "events", args.eps / args.batch, 2, args.seconds + 2, ids, args.batch
            )
            time.sleep(1)  # ingestion is running before the measured window opens
        cpu, wall = cpu_seconds(served.process), time.monotonic()
        recs = start_wrk(served, "recommend", args.rps, args.connections, args.seconds, ids)
        out = {"recommendations": summary(wrk_result(recs))}
        # Cores the server kept busy: a load-independent view of its cost on a noisy machine.
        busy = (cpu_seconds(served.process) - cpu) / (time.monotonic() - wall)
        out["recommendations"]["server_cores"] = round(busy, 2)
        if events is not None:
            out["events"] = summary(wrk_result(events), per_request=args.batch)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    load_arguments(parser, port=8932, seconds=30)
    parser.add_argument("--params", default="{}", help="Hyperparameters as JSON.")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    model = cached_artifact(args.work, args.dataset, args.model, json.loads(args.params))
    runs = []
    for repeat in range(args.repeats):
        root = Path(tempfile.mkdtemp(prefix="lmrec-load-"))
        runs.append(one_run(model, root, args))
        print(json.dumps({"repeat": repeat, **runs[-1]}), flush=True)
    recs = [r["recommendations"] for r in runs]
    median = {k: statistics.median(r[k] for r in recs) for k in recs[0]}
    print(json.dumps({"dataset": args.dataset, "model": args.model, "median": median}))


if __name__ == "__main__":
    main()
