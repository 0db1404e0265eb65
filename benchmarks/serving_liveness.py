"""Liveness under abuse: /health/live latency while 8 connections send the heaviest requests.

The heaviest request a read key may send: a 1,000-item history, k 500, explanations on
(`serving_wrk.lua` mode "heavy"). Eight wrk connections send them as fast as the server
answers (closed loop: a rate far above what it can serve), while one more wrk
connection probes `GET /health/live` on a fixed schedule (`--probe-rate`, open-loop,
latency from the scheduled time). A server that ranks on its event loop stalls the
probe for as long as each heavy request takes; one that ranks in worker threads keeps
answering. `--src` serves another checkout (a baseline commit) under the same script.

    LMREC_DATA_DIR=../shared/datasets python benchmarks/serving_liveness.py \
        --dataset amazon-beauty --model hybrid --seconds 20 --repeats 3
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
    id_files,
    load_arguments,
    needs_encoder,
    serve,
    start_wrk,
    summary,
    wrk_result,
)


def one_run(model: Path, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One fresh server: heavy requests on 8 connections, the probe on one more."""
    ids = id_files(model, root)
    with serve(model, root, args.port, ("read",), args.src, needs_encoder(model)) as served:
        wrk_result(start_wrk(served, "live", 20, 1, 2, ids))  # warm-up, not measured
        heavy = start_wrk(
            served,
            "heavy",
            1000 * args.heavy_connections,
            args.heavy_connections,
            args.seconds + 2,
            ids,
            args.history,
        )
        time.sleep(1)  # the heavy requests are in flight before the probe starts
        probe = summary(
            wrk_result(start_wrk(served, "live", args.probe_rate, 1, args.seconds, ids))
        )
        return {"live": probe, "heavy": summary(wrk_result(heavy))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    load_arguments(parser, port=8933, seconds=20)
    parser.add_argument("--params", default="{}", help="Hyperparameters as JSON.")
    parser.add_argument("--heavy-connections", type=int, default=8)
    parser.add_argument(
        "--history", type=int, default=1000, help="History items per heavy request."
    )
    parser.add_argument("--probe-rate", type=float, default=20, help="/health/live probes per s.")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    model = cached_artifact(args.work, args.dataset, args.model, json.loads(args.params))
    runs = []
    for repeat in range(args.repeats):
        root = Path(tempfile.mkdtemp(prefix="lmrec-live-"))
        runs.append(one_run(model, root, args))
        print(json.dumps({"repeat": repeat, **runs[-1]}), flush=True)
    median = {
        part: {k: statistics.median(r[part][k] for r in runs) for k in runs[0][part]}
        for part in ("live", "heavy")
    }
    print(
        json.dumps(
            {"dataset": args.dataset, "model": args.model, "src": str(args.src), "median": median}
        )
    )


if __name__ == "__main__":
    main()
